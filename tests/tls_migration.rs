//! End to end over ssh on the test bed: a plain cluster moved to peer TLS
//! under a writer, then to client TLS with client-certificate auth, then its
//! short-lived certificates renewed by a rolling apply. Real etcd, real sshd,
//! real certificates.

mod harness;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harness::testbed::{Testbed, up_or_skip};
use harness::text;
use harness::writer::{Writer, missing};

fn etcdfile(tb: &Testbed, tls: &str) -> String {
    // The [tls] table goes after [etcd]'s (empty) keys.
    tb.etcdfile("secure", &format!("\n[tls]\n{tls}\n"), &tb.all(), &[])
}

fn ok(what: &str, out: &Output, seen: &mut String) -> String {
    let t = text(out);
    seen.push_str(&t);
    assert!(out.status.success(), "{what} failed:\n{t}");
    t
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The base64 body lines of a PEM private key.
fn key_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_owned)
        .collect()
}

fn etcdctl(args: &[String]) -> Output {
    Command::new("/usr/bin/etcdctl")
        .env_remove("ETCDCTL_ENDPOINTS")
        .env("ETCDCTL_API", "3")
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("etcdctl: {e}"))
}

/// The fingerprints of every member's peer certificate, from `status --json`.
fn peer_fingerprints(tb: &Testbed, file: &str, seen: &mut String) -> Vec<String> {
    let status = tb.etcdplan(file, &["status", "--json"]);
    ok("status", &status, seen);
    let out = String::from_utf8_lossy(&status.stdout);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (1..=3)
        .map(|i| {
            v["hosts"][format!("etcd-{i}")]["certificates"]["peer"]["fingerprint_sha256"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn a_plain_cluster_moves_to_tls_without_a_failed_write_and_renews_its_certificates() {
    let Some(tb) = up_or_skip(3) else { return };
    let mut seen = String::new();
    let http: Vec<String> = tb
        .hosts
        .iter()
        .map(|h| format!("http://{}:2379", h.ip))
        .collect();
    ok(
        "bootstrap",
        &tb.etcdplan(&etcdfile(&tb, ""), &["apply", "--auto-approve"]),
        &mut seen,
    );

    // 1. Peer TLS while a writer puts keys over the (plain) client port.
    // Certificates valid two days, so that step 3 finds them about to expire.
    let peer = etcdfile(&tb, "peer = true\ncert_days = 2\nrenew_before_days = 1");
    let planned = ok("plan peer TLS", &tb.etcdplan(&peer, &["plan"]), &mut seen);
    assert!(
        planned.contains("peer TLS phase 1: listens on"),
        "{planned}"
    );
    let writer = Writer::start(
        http.clone(),
        "w",
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let applied = ok(
        "apply peer TLS",
        &tb.etcdplan(&peer, &["apply", "--auto-approve"]),
        &mut seen,
    );
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let writes = writer.stop();
    assert!(
        writes.failed.is_empty(),
        "failed writes: {:?}\n(the apply started 0.3s after the writer)\n{applied}",
        writes.failed
    );
    assert!(
        writes.acked.len() > 50,
        "the writer barely wrote: {}",
        writes.acked.len()
    );
    assert!(missing(&http[0], "w", &writes.acked).is_empty());
    let max = writes.latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "peer http→https: {:.1}s, {} writes, 0 failed, max latency {max:?}",
        took.as_secs_f64(),
        writes.acked.len()
    );
    let status = ok("status", &tb.etcdplan(&peer, &["status"]), &mut seen);
    for h in &tb.hosts {
        assert!(
            status.contains(&format!("https://{}:2380", h.ip)),
            "{status}"
        );
    }
    assert!(!status.contains(":2381"), "{status}");
    let again = tb.etcdplan(&peer, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // 2. Client TLS with client-certificate auth.
    let client = etcdfile(
        &tb,
        "peer = true\nclient = true\nclient_cert_auth = true\ncert_days = 2\nrenew_before_days = 1",
    );
    ok(
        "apply client TLS",
        &tb.etcdplan(&client, &["apply", "--auto-approve"]),
        &mut seen,
    );
    let out_dir = tb.dir.path().join("alice");
    let file_path = tb.dir.path().join("etcdfile.toml");
    let issued = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["pki", "client", "alice", "--out"])
        .arg(&out_dir)
        .arg("-f")
        .arg(&file_path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    ok("pki client", &issued, &mut seen);
    assert_eq!(mode(&out_dir.join("alice.key")), 0o600);
    let cacert = out_dir.join("ca.crt").display().to_string();
    let with_cert = |ep: &str, args: &[&str]| {
        let mut a = vec![
            "--endpoints".to_owned(),
            ep.to_owned(),
            "--cacert".into(),
            cacert.clone(),
            "--cert".into(),
            out_dir.join("alice.crt").display().to_string(),
            "--key".into(),
            out_dir.join("alice.key").display().to_string(),
        ];
        a.extend(args.iter().map(|s| (*s).to_owned()));
        etcdctl(&a)
    };
    for h in &tb.hosts {
        let out = with_cert(
            &format!("https://{}:2379", h.ip),
            &["get", "--prefix", "w/", "--keys-only"],
        );
        assert!(out.status.success(), "{}", text(&out));
        let keys = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("w/"))
            .count();
        assert_eq!(
            keys,
            writes.acked.len(),
            "every key the writer put is readable"
        );
    }
    let ep = format!("https://{}:2379", tb.hosts[0].ip);
    let refused = etcdctl(&[
        "--endpoints".into(),
        ep.clone(),
        "--cacert".into(),
        cacert.clone(),
        "get".into(),
        "w/000001".into(),
    ]);
    assert!(
        !refused.status.success(),
        "no client certificate: {}",
        text(&refused)
    );
    let plain = etcdctl(&[
        "--endpoints".into(),
        http[0].clone(),
        "get".into(),
        "w/000001".into(),
    ]);
    assert!(!plain.status.success(), "plain http: {}", text(&plain));

    // 3. Certificates about to expire are renewed in place, one member at a time.
    let before = peer_fingerprints(&tb, &client, &mut seen);
    let renew = etcdfile(
        &tb,
        "peer = true\nclient = true\nclient_cert_auth = true\ncert_days = 30\nrenew_before_days = 7",
    );
    let planned = ok("plan renewal", &tb.etcdplan(&renew, &["plan"]), &mut seen);
    assert!(
        planned.contains("certificate expires in 1 day"),
        "{planned}"
    );
    assert!(!planned.contains("restart etcd"), "{planned}");
    ok(
        "apply renewal",
        &tb.etcdplan(&renew, &["apply", "--auto-approve"]),
        &mut seen,
    );
    let after = peer_fingerprints(&tb, &renew, &mut seen);
    for (b, a) in before.iter().zip(&after) {
        assert!(
            !b.is_empty() && !a.is_empty() && a != b,
            "{before:?} → {after:?}"
        );
    }
    let status = ok("status", &tb.etcdplan(&renew, &["status"]), &mut seen);
    assert_eq!(
        status.matches("healthy").count() - status.matches("unhealthy").count(),
        3,
        "{status}"
    );
    assert!(
        status.contains("(29 days)") || status.contains("(30 days)"),
        "{status}"
    );
    let again = tb.etcdplan(&renew, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let out = with_cert(&ep, &["get", "w/000001"]);
    assert!(out.status.success(), "{}", text(&out));

    // Keys are private, and none appears in anything etcdplan printed.
    let ca_key = tb.dir.path().join("pki/ca.key");
    assert_eq!(mode(&ca_key), 0o600);
    let mut keys = key_lines(&ca_key);
    for h in &tb.hosts {
        for k in ["server.key", "peer.key"] {
            let p = h.file(&format!("/etc/etcd/pki/{k}"));
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            keys.extend(key_lines(&p));
        }
    }
    assert!(keys.len() > 10);
    for line in &keys {
        assert!(
            !seen.contains(line.as_str()),
            "key material in etcdplan's output"
        );
    }
}
