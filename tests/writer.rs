//! The test writer's classification of failed puts ("never sent" or "maybe
//! sent") and its strict retry rule, without etcd: built errors, and real puts
//! against local sockets that refuse, drop or never answer.

mod harness;

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use harness::writer::{Retry, Sent, Writer, classify, error_text};

fn connect_error() -> tonic::ConnectError {
    tonic::ConnectError(Box::new(std::io::Error::from(
        std::io::ErrorKind::ConnectionRefused,
    )))
}

#[test]
fn a_status_made_from_a_connect_error_is_never_sent() {
    let s = tonic::Status::from_error(Box::new(connect_error()));
    assert_eq!(s.code(), tonic::Code::Unavailable);
    assert_eq!(classify(&etcd_client::Error::GRpcStatus(s)), Sent::Never);
}

#[test]
fn unavailable_without_a_connect_error_may_have_been_sent() {
    // The same code, even a connect-like message: without the structure
    // that proves it, the put may have reached etcd.
    for msg in [
        "error trying to connect: Connection refused",
        "transport is closing",
    ] {
        let s = tonic::Status::unavailable(msg);
        assert_eq!(
            classify(&etcd_client::Error::GRpcStatus(s)),
            Sent::Maybe,
            "{msg}"
        );
    }
}

#[test]
fn a_connect_error_under_another_code_may_have_been_sent() {
    let mut s = tonic::Status::internal("odd");
    s.set_source(Arc::new(connect_error()));
    assert_eq!(classify(&etcd_client::Error::GRpcStatus(s)), Sent::Maybe);
}

#[test]
fn a_client_timeout_and_server_errors_may_have_been_sent() {
    let timeout = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
    assert_eq!(timeout.code(), tonic::Code::Cancelled);
    for s in [
        timeout,
        tonic::Status::deadline_exceeded("context deadline exceeded"),
        tonic::Status::unknown("etcdserver: request timed out"),
        tonic::Status::unavailable("etcdserver: leader changed"),
        // hyper's text for an unsent request, but without hyper's error
        // behind it: the text alone proves nothing.
        tonic::Status::cancelled("operation was canceled: connection closed"),
    ] {
        let text = s.to_string();
        assert_eq!(
            classify(&etcd_client::Error::GRpcStatus(s)),
            Sent::Maybe,
            "{text}"
        );
    }
    assert_eq!(
        classify(&etcd_client::Error::Internal("x".into())),
        Sent::Maybe
    );
}

#[test]
fn the_error_text_keeps_the_cause() {
    let s = tonic::Status::from_error(Box::new(connect_error()));
    let text = error_text(&etcd_client::Error::GRpcStatus(s));
    assert!(text.contains("unavailable"), "{text}");
    assert!(text.contains("refused"), "{text}");
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    l.local_addr().unwrap_or_else(|e| panic!("{e}")).port()
}

/// A server that accepts, reads what it gets for `hold`, then drops the
/// connection (or keeps every connection open and silent when `hold` is long).
fn server(hold: Duration) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = l.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    std::thread::spawn(move || {
        for conn in l.incoming().map_while(Result::ok) {
            std::thread::spawn(move || read_for(conn, hold));
        }
    });
    port
}

fn read_for(mut conn: TcpStream, hold: Duration) {
    let end = std::time::Instant::now() + hold;
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < end {
        let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
        match conn.read(&mut buf) {
            Ok(0) => return,
            _ => continue,
        }
    }
}

/// One real put through etcd-client to `endpoint`, classified.
fn put(endpoint: &str) -> (Sent, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(300))
            .with_timeout(Duration::from_secs(2));
        let mut c = etcd_client::Client::connect([endpoint], Some(opts))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        match c.put("k", "v", None).await {
            Ok(_) => panic!("{endpoint} is no etcd, yet the put succeeded"),
            Err(e) => (classify(&e), error_text(&e)),
        }
    })
}

#[test]
fn a_put_to_a_closed_port_is_never_sent() {
    let (sent, text) = put(&format!("http://127.0.0.1:{}", closed_port()));
    assert_eq!(sent, Sent::Never, "{text}");
    assert!(text.contains("refused"), "{text}");
}

#[test]
fn a_put_whose_connection_drops_after_sending_may_have_been_sent() {
    let port = server(Duration::from_millis(200));
    let (sent, text) = put(&format!("http://127.0.0.1:{port}"));
    assert_eq!(sent, Sent::Maybe, "{text}");
}

#[test]
fn a_put_that_gets_no_answer_times_out_as_maybe_sent() {
    let port = server(Duration::from_secs(30));
    let (sent, text) = put(&format!("http://127.0.0.1:{port}"));
    assert_eq!(sent, Sent::Maybe, "{text}");
}

#[test]
fn the_strict_writer_retries_only_what_was_never_sent() {
    // Every other put first goes to a closed port (never sent: retried on the
    // next endpoint), and every put ends on a silent server (maybe sent: a
    // failure, not retried, with that endpoint and error recorded).
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let silent = format!("http://127.0.0.1:{}", server(Duration::from_secs(30)));
    let w = Writer::start(
        vec![closed.clone(), silent.clone()],
        "s",
        Duration::from_millis(10),
        Duration::from_millis(400),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let seen = w.stop();
    assert_eq!(seen.retry, Retry::NeverSent);
    assert!(seen.acked.is_empty(), "{:?}", seen.acked);
    assert!(seen.failed.len() >= 2, "{}", seen.summary());
    for f in &seen.failed {
        assert_eq!(f.endpoint, silent, "{f}");
        // The client's own deadline or the writer's, whichever fires first.
        assert!(
            f.error.contains("Timeout expired") || f.error.contains("no answer within"),
            "{f}"
        );
    }
    assert!(seen.retried_never_sent >= 1, "{}", seen.summary());
    assert_eq!(seen.retried_maybe_sent, 0, "{}", seen.summary());
}

#[test]
fn the_retrying_writer_sends_a_maybe_sent_put_again() {
    let a = format!("http://127.0.0.1:{}", server(Duration::from_secs(30)));
    let b = format!("http://127.0.0.1:{}", server(Duration::from_secs(30)));
    let w = Writer::retrying(
        vec![a, b],
        "r",
        Duration::from_millis(10),
        Duration::from_millis(600),
        None,
    );
    std::thread::sleep(Duration::from_millis(1500));
    let seen = w.stop();
    assert_eq!(seen.retry, Retry::Any);
    assert!(!seen.failed.is_empty(), "{}", seen.summary());
    assert!(seen.retried_maybe_sent >= 1, "{}", seen.summary());
}
