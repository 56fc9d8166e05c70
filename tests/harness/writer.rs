//! A client that writes keys at a steady rate during an apply, with a deadline
//! per put, and remembers which writes etcd acknowledged and why the others
//! failed.
//!
//! # What a real etcd client retries
//!
//! etcd's Go client (`go.etcd.io/etcd/client/v3`, 3.5) retries a failed unary
//! RPC in `unaryClientInterceptor` (`client/v3/retry_interceptor.go`) only when
//! `isSafeRetry` says so. A put runs under the `nonRepeatable` policy
//! (`retryKVClient.Put` in `client/v3/retry.go` adds no `withRepeatablePolicy`),
//! so `isSafeRetry` defers to `isSafeRetryMutableRPC`: retry only when the gRPC
//! code is `Unavailable` *and* the description is "there is no address
//! available" or "there is no connection available", that is when the
//! request never left the client. A put that timed out (`DeadlineExceeded`,
//! `Canceled`: `isContextError`) or came back `Unavailable` over an established
//! connection is returned to the caller as a failure, to keep
//! write-at-most-once. Below the interceptor, grpc-go's round-robin balancer
//! with `WaitForReady(true)` (`client/v3/options.go`, `defaultCallOpts`) only
//! picks a connected endpoint, so a put waits for a ready connection instead of
//! failing on a member that is down; it never resends a put that may have
//! reached a server.
//!
//! # What this writer does
//!
//! [`Retry::NeverSent`] (the default, [`Writer::start`], [`Writer::start_with`])
//! does the same: each put goes once to one endpoint, round-robin over all of
//! them (one lazy client per endpoint, so a failure names its endpoint), and is
//! tried on the next endpoint only when [`classify`] proves it was never sent.
//! [`Retry::Any`] ([`Writer::retrying`]) is the old, looser writer that tries
//! any failure again on the next endpoint; real clients do not do that, and it
//! is kept only so that benchmarks can print both figures.
//!
//! # Under etcd auth
//!
//! [`Writer::authenticated`] writes as an etcd user ([`WriterAuth`]), the way
//! clientv3 does (`client/v3/client.go`, `getToken` at dial;
//! `shouldRefreshToken` in `client/v3/retry_interceptor.go`): it logs in
//! when it connects to an endpoint; a login answered "authentication is not
//! enabled" (or one that fails because the member is down) leaves that
//! endpoint's client without a token, as clientv3 carries on without one
//! while auth is off. A put refused with "user name is empty" (auth enabled
//! since: a request without a token), "invalid auth token" (expired, or a
//! simple token lost in a restart) or "revision of auth store is old" is
//! refused by etcd before it applies anything, so the writer logs in again
//! on that endpoint and resends the put there, once: exactly what clientv3
//! resends. A login that then fails counts the put as never sent (it moves
//! on to the next endpoint, as above). These resends are counted in
//! [`Writes::retried_after_login`]; every other refusal (permission denied
//! outside the user's prefix, a wrong password) is a failed write.

use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which failed puts the writer tries again on the next endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Only a put that provably never left the client, as etcd's Go client
    /// does for a mutation. A put that may have been sent and failed is a
    /// failed write.
    NeverSent,
    /// Any failure, until the deadline, each attempt under a third of it. No
    /// real client does this: it hides writes that failed after being sent.
    Any,
}

/// Whether a failed put may have reached etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The request provably never left the client: no connection could be
    /// made, so no byte of it was written. Safe to send elsewhere.
    Never,
    /// It may have been sent and even applied. Sending it again could apply
    /// a mutation twice, so a careful client reports it instead.
    Maybe,
}

/// Tells whether the put that failed with `e` may have reached etcd, from the
/// error's structure rather than its text.
///
/// Two shapes prove "never sent":
///
/// - a gRPC status `Unavailable` whose source chain holds a
///   [`tonic::ConnectError`]. tonic builds its channel from a lazily
///   connecting `Reconnect` service; when the TCP connect (with its connect
///   timeout) or the TLS handshake fails, the connector wraps the error in
///   `ConnectError`, `Reconnect::call` fails the request without handing it
///   to hyper, and `Status::from_error` turns it into `Unavailable` with the
///   `ConnectError` kept as source. This is the Rust counterpart of grpc-go's
///   "there is no connection available". The code is checked too, so that a
///   `ConnectError` seen through some other status does not count.
/// - a [`hyper::Error`] in the source chain that `is_canceled()` with the
///   cause "connection closed" or "connection was not ready" (tonic shows it
///   as `Cancelled`). hyper 1.x makes the first in `client/dispatch.rs`,
///   `Envelope::drop`, when a request still queued for the connection task is
///   dropped because the connection ended (it hands the unsent request back),
///   and the second in `client/conn/http2.rs`, `send_request`, when the
///   request could not even be queued. hyper gives both the same kind, so the
///   cause is told by its fixed text; its third canceled error, "runtime
///   dropped the dispatch task", may come after sending and is not matched.
///   grpc-go retries the same case (a stream that never reached the wire)
///   transparently, below etcd's interceptor.
///
/// Everything else is [`Sent::Maybe`]: a client-side timeout (`Cancelled`
/// from tonic's `TimeoutExpired`), a connection that broke while the request
/// was with h2 (reset, broken pipe, GOAWAY), every status etcd itself
/// returned, and any other variant. Some of those were not processed in fact
/// (an h2 stream refused by GOAWAY); grpc-go would transparently retry those
/// once, but tonic does not expose that fact in its error types, so the
/// writer counts them as failures and records their text for the reader to
/// judge.
pub fn classify(e: &etcd_client::Error) -> Sent {
    match e {
        etcd_client::Error::GRpcStatus(s)
            if s.code() == tonic::Code::Unavailable && has_connect_error(s) =>
        {
            Sent::Never
        }
        etcd_client::Error::GRpcStatus(s)
            if s.code() == tonic::Code::Cancelled && has_unsent_hyper_request(s) =>
        {
            Sent::Never
        }
        // `connect` errors of the transport itself (not from a request).
        etcd_client::Error::TransportError(t) if has_connect_error(t) => Sent::Never,
        _ => Sent::Maybe,
    }
}

/// Whether `e` or anything in its source chain is a `tonic::ConnectError`.
fn has_connect_error(e: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Whether the source chain holds hyper's error for a request it dropped or
/// refused before giving it to the connection (see [`classify`]).
fn has_unsent_hyper_request(e: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            let cause = h.source().map(ToString::to_string);
            return h.is_canceled()
                && matches!(
                    cause.as_deref(),
                    Some("connection closed" | "connection was not ready")
                );
        }
        cur = err.source();
    }
    false
}

/// An error with its source chain, each cause once (tonic's `Status` display
/// leaves out the cause that says what really happened, e.g. "Connection
/// refused").
pub fn error_text(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !s.is_empty() && !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cur = err.source();
    }
    text
}

/// One write that failed, with what the reader needs to judge it.
#[derive(Clone)]
pub struct Failure {
    /// The key that was not acknowledged.
    pub key: String,
    /// When the put was first sent, since the writer started.
    pub at: Duration,
    /// The endpoint of the last attempt.
    pub endpoint: String,
    /// What went wrong on that attempt.
    pub error: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:.2}s via {}: {}",
            self.key,
            self.at.as_secs_f64(),
            self.endpoint,
            self.error
        )
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What the writer saw.
#[derive(Debug, Clone)]
pub struct Writes {
    /// How failed puts were retried.
    pub retry: Retry,
    /// Keys etcd acknowledged.
    pub acked: Vec<String>,
    /// Writes that failed or timed out, with why.
    pub failed: Vec<Failure>,
    /// Latency of each acknowledged write, retries included.
    pub latencies: Vec<Duration>,
    /// Attempts sent again because the previous one provably never left the
    /// client (no connection to that endpoint).
    pub retried_never_sent: usize,
    /// Attempts sent again although the previous one may have reached etcd
    /// (only under [`Retry::Any`]): each is a write a real client would have
    /// reported as failed.
    pub retried_maybe_sent: usize,
    /// Puts resent after a fresh login, because etcd refused them for their
    /// token before applying them (see the module doc); clientv3 does so.
    pub retried_after_login: usize,
}

impl Writes {
    fn new(retry: Retry) -> Self {
        Self {
            retry,
            acked: Vec::new(),
            failed: Vec::new(),
            latencies: Vec::new(),
            retried_never_sent: 0,
            retried_maybe_sent: 0,
            retried_after_login: 0,
        }
    }

    /// The slowest acknowledged write.
    pub fn max_latency(&self) -> Duration {
        self.latencies.iter().max().copied().unwrap_or_default()
    }

    /// What a strict writer may claim today during an apply that disturbed
    /// members `disruptions` times (restarts and leader moves, counted by
    /// [`disruptions`]): every failure is marked in the test's output, and
    /// there are at most as many as disruptions. The writer has one put in
    /// flight at a time, so a member stopping (or a leader handing over) can
    /// cut at most that one; etcd does not finish it, and a real client
    /// reports it (etcdctl does: issue 21 measures and works this down to
    /// zero). Anything more (a stall, a window of refusals) fails the test.
    pub fn assert_within(&self, what: &str, disruptions: usize) {
        eprintln!(
            "{what}: strict writer: {} ({disruptions} disruptions)",
            self.summary()
        );
        for f in &self.failed {
            eprintln!("{what}: FAILED WRITE (strict writer, issue 21): {f}");
        }
        assert!(
            self.failed.len() <= disruptions,
            "{what}: {} failed writes for {disruptions} restarts and leader moves: {}: {:?}",
            self.failed.len(),
            self.summary(),
            self.failed
        );
    }

    /// Asserts that the keys read back from the cluster (under the writer's
    /// prefix) are what the writer can vouch for: every acknowledged key is
    /// there, and every key there was either acknowledged or failed. A put
    /// that failed after it was sent may still have been applied (the reply
    /// was lost, not the write), so it may or may not be there.
    pub fn assert_read_back<'a>(&self, what: &str, found: impl IntoIterator<Item = &'a str>) {
        let found: std::collections::BTreeSet<&str> = found.into_iter().collect();
        let missing: Vec<&String> = self
            .acked
            .iter()
            .filter(|k| !found.contains(k.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: acknowledged keys missing: {missing:?}"
        );
        let failed: std::collections::BTreeSet<&str> =
            self.failed.iter().map(|f| f.key.as_str()).collect();
        let acked: std::collections::BTreeSet<&str> =
            self.acked.iter().map(String::as_str).collect();
        let unknown: Vec<&&str> = found
            .iter()
            .filter(|k| !acked.contains(*k) && !failed.contains(*k))
            .collect();
        assert!(
            unknown.is_empty(),
            "{what}: keys the writer never put: {unknown:?}"
        );
    }

    /// One line: writes, failures, retries, max latency.
    pub fn summary(&self) -> String {
        format!(
            "{} writes, {} failed, {} retried (never sent), {} retried (maybe sent), {} resent after a fresh login, max latency {:?}",
            self.acked.len() + self.failed.len(),
            self.failed.len(),
            self.retried_never_sent,
            self.retried_maybe_sent,
            self.retried_after_login,
            self.max_latency()
        )
    }
}

/// A running writer; `stop` ends it and returns what it saw.
pub struct Writer {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Writes>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a writer presents to members that serve https: the CAs it trusts and
/// its client certificate, all PEM.
#[derive(Clone)]
pub struct WriterTls {
    /// CA bundle.
    pub ca_pem: String,
    /// Client certificate.
    pub cert_pem: String,
    /// Its key.
    pub key_pem: String,
}

/// The etcd user a writer logs in as. Its `Debug` hides the password.
#[derive(Clone)]
pub struct WriterAuth {
    /// The user.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl fmt::Debug for WriterAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriterAuth({}, <hidden>)", self.user)
    }
}

/// etcd's refusals of a request for its token, made before apply, that
/// clientv3 answers with a fresh login and a resend (`shouldRefreshToken`).
pub fn wants_fresh_login(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if matches!(
        s.message(),
        "etcdserver: user name is empty"
            | "etcdserver: invalid auth token"
            | "etcdserver: revision of auth store is old"
    ))
}

/// A client for `ep` logged in as `auth`, as clientv3 dials: the login at
/// connect; refused as "not enabled" (or not answered), a client without a
/// token (lazy: it connects on its first request).
async fn connect_as(
    ep: &str,
    opts: &etcd_client::ConnectOptions,
    auth: Option<&WriterAuth>,
) -> Result<etcd_client::Client, etcd_client::Error> {
    if let Some(a) = auth {
        let with_user = opts.clone().with_user(a.user.clone(), a.password.clone());
        if let Ok(c) = etcd_client::Client::connect([ep], Some(with_user)).await {
            return Ok(c);
        }
    }
    etcd_client::Client::connect([ep], Some(opts.clone())).await
}

impl Writer {
    /// Writes `prefix/N` every `every` through `endpoints`, each put under
    /// `deadline`, retrying only what was never sent ([`Retry::NeverSent`]).
    pub fn start(
        endpoints: Vec<String>,
        prefix: &str,
        every: Duration,
        deadline: Duration,
    ) -> Self {
        Self::spawn(
            endpoints,
            prefix,
            every,
            deadline,
            None,
            Retry::NeverSent,
            None,
        )
    }

    /// The strict writer ([`Retry::NeverSent`]) logged in as an etcd user
    /// the way clientv3 logs in (see the module doc), over https when `tls`
    /// is given.
    pub fn authenticated(
        endpoints: Vec<String>,
        prefix: &str,
        every: Duration,
        deadline: Duration,
        tls: Option<WriterTls>,
        auth: WriterAuth,
    ) -> Self {
        Self::spawn(
            endpoints,
            prefix,
            every,
            deadline,
            tls,
            Retry::NeverSent,
            Some(auth),
        )
    }

    /// The same over https with a client certificate.
    pub fn start_with(
        endpoints: Vec<String>,
        prefix: &str,
        every: Duration,
        deadline: Duration,
        tls: Option<WriterTls>,
    ) -> Self {
        Self::spawn(
            endpoints,
            prefix,
            every,
            deadline,
            tls,
            Retry::NeverSent,
            None,
        )
    }

    /// The loose writer ([`Retry::Any`]), for benchmarks that print both
    /// figures; never for a test that claims zero failed writes.
    pub fn retrying(
        endpoints: Vec<String>,
        prefix: &str,
        every: Duration,
        deadline: Duration,
        tls: Option<WriterTls>,
    ) -> Self {
        Self::spawn(endpoints, prefix, every, deadline, tls, Retry::Any, None)
    }

    fn spawn(
        endpoints: Vec<String>,
        prefix: &str,
        every: Duration,
        deadline: Duration,
        tls: Option<WriterTls>,
        retry: Retry,
        auth: Option<WriterAuth>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Writes::new(retry)));
        let (s, w, p) = (stop.clone(), seen.clone(), prefix.to_owned());
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(write_until_stopped(
                endpoints, p, every, deadline, tls, retry, auth, s, w,
            ));
        });
        Self {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Stops the writer and returns what it saw.
    pub fn stop(mut self) -> Writes {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer's loop: one key per `every`, until `stop`.
#[allow(clippy::too_many_arguments)]
async fn write_until_stopped(
    endpoints: Vec<String>,
    prefix: String,
    every: Duration,
    deadline: Duration,
    tls: Option<WriterTls>,
    retry: Retry,
    auth: Option<WriterAuth>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Writes>>,
) {
    // Under `Any` one attempt may take a third of the deadline, so that a
    // put to a member that is stopping moves on. Under `NeverSent` the one
    // attempt that may be sent has the whole deadline, as a Go client's
    // context would.
    let attempt = match retry {
        Retry::NeverSent => deadline,
        Retry::Any => deadline / 3,
    };
    let mut opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(300))
        .with_timeout(attempt);
    if let Some(t) = tls {
        opts = opts.with_tls(
            etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(t.ca_pem))
                .identity(etcd_client::Identity::from_pem(t.cert_pem, t.key_pem)),
        );
    }
    // One lazily connecting client per endpoint: connect does not touch the
    // network, the first put does (with auth, the login at connect does).
    let mut clients = Vec::new();
    for ep in &endpoints {
        if let Ok(c) = connect_as(ep, &opts, auth.as_ref()).await {
            clients.push((ep.clone(), c));
        }
    }
    if clients.is_empty() {
        return;
    }
    let began = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("{prefix}/{n:06}");
        let t = Instant::now();
        let mut i = n as usize;
        let (mut never, mut maybe, mut relogged) = (0usize, 0usize, 0usize);
        // The endpoint and error of the last attempt; `None` once acknowledged.
        let mut last: Option<(String, String)>;
        loop {
            let left = deadline.saturating_sub(t.elapsed());
            let k = clients.len();
            let (ep, c) = &mut clients[i % k];
            let wait = left.min(attempt);
            let mut outcome = tokio::time::timeout(wait, c.put(key.clone(), "v", None)).await;
            if let (Some(a), Ok(Err(e))) = (&auth, &outcome)
                && wants_fresh_login(e)
            {
                // Refused before apply: log in again here and resend once.
                let login = opts.clone().with_user(a.user.clone(), a.password.clone());
                let left = deadline.saturating_sub(t.elapsed());
                match tokio::time::timeout(
                    left,
                    etcd_client::Client::connect([ep.as_str()], Some(login)),
                )
                .await
                {
                    Ok(Ok(fresh)) => {
                        *c = fresh;
                        relogged += 1;
                        let wait = deadline.saturating_sub(t.elapsed()).min(attempt);
                        outcome = tokio::time::timeout(wait, c.put(key.clone(), "v", None)).await;
                    }
                    // The put was not applied and no login was had: never sent.
                    Ok(Err(e)) => {
                        last = Some((ep.clone(), format!("login: {}", error_text(&e))));
                        never += 1;
                        i += 1;
                        if t.elapsed() + Duration::from_millis(10) >= deadline {
                            break;
                        }
                        continue;
                    }
                    Err(_) => {
                        last = Some((ep.clone(), "login: no answer in time".into()));
                        break;
                    }
                }
            }
            let sent = match outcome {
                Ok(Ok(_)) => {
                    last = None;
                    break;
                }
                Ok(Err(e)) => {
                    last = Some((ep.clone(), error_text(&e)));
                    classify(&e)
                }
                Err(_) => {
                    last = Some((ep.clone(), format!("no answer within {wait:?}")));
                    Sent::Maybe
                }
            };
            let again = match (retry, sent) {
                (_, Sent::Never) => true,
                (Retry::Any, Sent::Maybe) => true,
                (Retry::NeverSent, Sent::Maybe) => false,
            };
            if !again || t.elapsed() + Duration::from_millis(10) >= deadline {
                break;
            }
            match sent {
                Sent::Never => never += 1,
                Sent::Maybe => maybe += 1,
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        {
            let mut g = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            g.retried_never_sent += never;
            g.retried_maybe_sent += maybe;
            g.retried_after_login += relogged;
            match last {
                None => {
                    g.acked.push(key);
                    g.latencies.push(t.elapsed());
                }
                Some((endpoint, error)) => g.failed.push(Failure {
                    key,
                    at: t.duration_since(began),
                    endpoint,
                    error,
                }),
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Keys among `keys` that the cluster does not have (read through `endpoint`).
pub fn missing(endpoint: &str, prefix: &str, keys: &[String]) -> Vec<String> {
    let Some(got) = read_keys(endpoint, prefix, None) else {
        return keys.to_vec();
    };
    keys.iter().filter(|k| !got.contains(*k)).cloned().collect()
}

/// The keys under `prefix/` (read through plain `endpoint`); panics when the
/// cluster cannot be read, since then nothing can be vouched for.
pub fn keys(endpoint: &str, prefix: &str) -> Vec<String> {
    keys_with(endpoint, prefix, None)
}

/// [`keys`] over https, presenting `tls`'s client certificate when given.
pub fn keys_with(endpoint: &str, prefix: &str, tls: Option<&WriterTls>) -> Vec<String> {
    keys_as(endpoint, prefix, tls, None)
}

/// [`keys_with`] logged in as `auth` when given (auth on).
pub fn keys_as(
    endpoint: &str,
    prefix: &str,
    tls: Option<&WriterTls>,
    auth: Option<&WriterAuth>,
) -> Vec<String> {
    read_keys_as(endpoint, prefix, tls, auth)
        .unwrap_or_else(|| panic!("cannot read {prefix}/ through {endpoint}"))
        .into_iter()
        .collect()
}

fn read_keys(
    endpoint: &str,
    prefix: &str,
    tls: Option<&WriterTls>,
) -> Option<std::collections::BTreeSet<String>> {
    read_keys_as(endpoint, prefix, tls, None)
}

fn read_keys_as(
    endpoint: &str,
    prefix: &str,
    tls: Option<&WriterTls>,
    auth: Option<&WriterAuth>,
) -> Option<std::collections::BTreeSet<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let mut opts = etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(10));
        if let Some(t) = tls {
            opts = opts.with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(t.ca_pem.clone()))
                    .identity(etcd_client::Identity::from_pem(
                        t.cert_pem.clone(),
                        t.key_pem.clone(),
                    )),
            );
        }
        let mut c = connect_as(endpoint, &opts, auth).await.ok()?;
        let r = c
            .get(
                format!("{prefix}/"),
                Some(
                    etcd_client::GetOptions::new()
                        .with_prefix()
                        .with_keys_only(),
                ),
            )
            .await
            .ok()?;
        Some(
            r.kvs()
                .iter()
                .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
                .collect(),
        )
    })
}

/// How many times an apply's output says it disturbed a member: restarts,
/// takeovers and leader moves, as the progress lines name them
/// (`… 2/10 restart etcd-1 …`, `… take etcd-1 over from etcd.service (…) …`),
/// and each restart of a member that led when it stopped (a leader change
/// with no move before it: etcd's stop hands over), as the executor says
/// after the step (`done in 1.20s: etcd-1 led; etcd-2 leads now`).
pub fn disruptions(applied: &str) -> usize {
    let steps = applied
        .lines()
        .filter(|l| l.trim_end().ends_with('…'))
        .filter(|l| {
            l.contains(" restart ")
                || l.contains(" move leader ")
                || (l.contains(" take ") && l.contains(" over from "))
        })
        .count();
    steps + leader_restarts(applied)
}

/// How many restarts of an apply's output stopped the leader, as the
/// executor says after the step (`etcd-1 led; …`): each is a leader change
/// that no `move leader` step made.
pub fn leader_restarts(applied: &str) -> usize {
    applied
        .lines()
        .filter(|l| l.trim_start().starts_with("done in "))
        .filter(|l| l.contains(" led; ") || l.contains(" led and leads again"))
        .count()
}
