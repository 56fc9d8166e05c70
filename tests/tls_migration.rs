//! End to end over ssh on the test bed: a plain cluster moved to peer TLS
//! under a writer, then to client TLS with client-certificate auth, its
//! short-lived certificates renewed by a rolling apply, and its CA rotated and
//! the old one retired, each under a writer. Real etcd, real sshd, real
//! certificates.

mod harness;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harness::testbed::{Testbed, up_or_skip};
use harness::text;
use harness::writer::{Writer, WriterTls, Writes, disruptions, missing};

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

/// Applies `file` while a writer puts `prefix/N` every 20 ms through
/// `endpoints` (over https when `tls` is given), and checks that no write
/// failed. Returns what the writer saw, how long the apply took, and its output.
fn apply_under_writer(
    tb: &Testbed,
    file: &str,
    what: &str,
    endpoints: &[String],
    prefix: &str,
    tls: Option<WriterTls>,
    seen: &mut String,
) -> (Writes, Duration, String) {
    let writer = Writer::start_with(
        endpoints.to_vec(),
        prefix,
        Duration::from_millis(20),
        Duration::from_secs(2),
        tls,
    );
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let applied = ok(what, &tb.etcdplan(file, &["apply", "--auto-approve"]), seen);
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let writes = writer.stop();
    writes.assert_within(what, disruptions(&applied));
    (writes, took, applied)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The common name of a PEM certificate.
fn pki_subject(pem: &str) -> String {
    etcdplan::pki::inspect(pem)
        .unwrap_or_else(|e| panic!("{e}"))
        .subject
}

/// A client certificate from `etcdplan pki client NAME`: (cert, key, ca).
fn client_cert(
    tb: &Testbed,
    file: &str,
    name: &str,
    seen: &mut String,
) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tb.dir.path().join(name);
    let out_dir = dir.display().to_string();
    ok(
        &format!("pki client {name}"),
        &tb.etcdplan(file, &["pki", "client", name, "--out", &out_dir]),
        seen,
    );
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
        dir.join("ca.crt"),
    )
}

/// etcdctl as the holder of a `client_cert`.
fn etcdctl_as(who: &(PathBuf, PathBuf, PathBuf), ep: &str, args: &[&str]) -> Output {
    let mut a = vec![
        "--endpoints".to_owned(),
        ep.to_owned(),
        "--cacert".into(),
        who.2.display().to_string(),
        "--cert".into(),
        who.0.display().to_string(),
        "--key".into(),
        who.1.display().to_string(),
    ];
    a.extend(args.iter().map(|s| (*s).to_owned()));
    etcdctl(&a)
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
fn a_plain_cluster_moves_to_tls_renews_its_certificates_and_rotates_its_ca_without_a_failed_write()
{
    let Some(tb) = up_or_skip(3) else { return };
    let mut seen = String::new();
    let http = tb.client_endpoints(&tb.all());
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
    let (writes, took, _) =
        apply_under_writer(&tb, &peer, "apply peer TLS", &http, "w", None, &mut seen);
    assert!(
        writes.acked.len() > 50,
        "the writer barely wrote: {}",
        writes.acked.len()
    );
    assert!(missing(&http[0], "w", &writes.acked).is_empty());
    eprintln!(
        "peer http→https: {:.1}s, {}",
        took.as_secs_f64(),
        writes.summary()
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
    let alice = client_cert(&tb, &client, "alice", &mut seen);
    assert_eq!(mode(&alice.1), 0o600);
    let cacert = alice.2.display().to_string();
    for h in &tb.hosts {
        let out = etcdctl_as(
            &alice,
            &format!("https://{}:2379", h.ip),
            &["get", "--prefix", "w/", "--keys-only"],
        );
        assert!(out.status.success(), "{}", text(&out));
        let keys = String::from_utf8_lossy(&out.stdout).into_owned();
        writes.assert_read_back(
            &format!("w/ through {}", h.ip),
            keys.lines().filter(|l| l.starts_with("w/")),
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
    let out = etcdctl_as(&alice, &ep, &["get", "w/000001"]);
    assert!(out.status.success(), "{}", text(&out));

    // 4. The CA is rotated under a writer whose certificate comes from the old CA.
    let pki_dir = tb.dir.path().join("pki");
    let bob = client_cert(&tb, &renew, "bob", &mut seen);
    let rotated = ok(
        "rotate-ca",
        &tb.etcdplan(&renew, &["pki", "rotate-ca"]),
        &mut seen,
    );
    assert!(rotated.contains("previous"), "{rotated}");
    assert_eq!(mode(&pki_dir.join("previous/ca.key")), 0o600);
    let old_ca = read(&pki_dir.join("previous/ca.crt"));
    let new_ca = read(&pki_dir.join("ca.crt"));
    let new_subject = pki_subject(&new_ca);
    // Bob's operator hands it both CAs, as rotate-ca says: members' certificates
    // come from either while the rotation runs.
    std::fs::write(&bob.2, format!("{old_ca}{new_ca}")).unwrap_or_else(|e| panic!("{e}"));
    let planned = ok("plan rotation", &tb.etcdplan(&renew, &["plan"]), &mut seen);
    assert!(
        planned.contains("step 1 of 3") && planned.contains("step 2 of 3"),
        "{planned}"
    );
    assert!(!planned.contains("step 3 of 3"), "{planned}");
    assert!(
        planned.contains(&format!("+# certificate {new_subject:?}")),
        "{planned}"
    );
    let https: Vec<String> = tb
        .hosts
        .iter()
        .map(|h| format!("https://{}:2379", h.ip))
        .collect();
    let (r1, took, _) = apply_under_writer(
        &tb,
        &renew,
        "apply rotation",
        &https,
        "r1",
        Some(WriterTls {
            ca_pem: format!("{old_ca}{new_ca}"),
            cert_pem: read(&bob.0),
            key_pem: read(&bob.1),
        }),
        &mut seen,
    );
    println!(
        "rotation (trust both, reissue): {:.1}s, {}",
        took.as_secs_f64(),
        r1.summary()
    );
    assert!(r1.acked.len() > 50, "{}", r1.acked.len());
    let status = tb.etcdplan(&renew, &["status", "--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&status)));
    for i in 1..=3 {
        let host = &v["hosts"][format!("etcd-{i}")];
        for role in ["server", "peer"] {
            assert_eq!(
                host["certificates"][role]["issuer"].as_str(),
                Some(new_subject.as_str()),
                "{host}"
            );
        }
        assert_eq!(host["trusts"].as_array().map(Vec::len), Some(2), "{host}");
    }
    let again = tb.etcdplan(&renew, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    // Old-CA clients still work while the previous CA is kept; new ones too.
    let carol = client_cert(&tb, &renew, "carol", &mut seen);
    for who in [&bob, &carol] {
        let out = etcdctl_as(who, &https[1], &["get", "--prefix", "r1/", "--keys-only"]);
        assert!(out.status.success(), "{}", text(&out));
        let keys = String::from_utf8_lossy(&out.stdout).into_owned();
        r1.assert_read_back("r1/", keys.lines().filter(|l| l.starts_with("r1/")));
    }

    // 5. The old CA is retired: a rolling restart drops it, under a writer
    // whose certificate comes from the new CA.
    ok(
        "retire-ca",
        &tb.etcdplan(&renew, &["pki", "retire-ca"]),
        &mut seen,
    );
    let planned = ok(
        "plan retirement",
        &tb.etcdplan(&renew, &["plan"]),
        &mut seen,
    );
    assert!(planned.contains("step 3 of 3"), "{planned}");
    assert!(!planned.contains("issue etcd"), "{planned}");
    let (r2, took, _) = apply_under_writer(
        &tb,
        &renew,
        "apply retirement",
        &https,
        "r2",
        Some(WriterTls {
            ca_pem: new_ca.clone(),
            cert_pem: read(&carol.0),
            key_pem: read(&carol.1),
        }),
        &mut seen,
    );
    println!(
        "retirement (drop the old CA): {:.1}s, {}",
        took.as_secs_f64(),
        r2.summary()
    );
    let out = etcdctl_as(&bob, &https[0], &["get", "r1/000001"]);
    assert!(
        !out.status.success(),
        "an old-CA client is refused: {}",
        text(&out)
    );
    let out = etcdctl_as(
        &carol,
        &https[2],
        &["get", "--prefix", "r2/", "--keys-only"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let keys = String::from_utf8_lossy(&out.stdout).into_owned();
    r2.assert_read_back("r2/", keys.lines().filter(|l| l.starts_with("r2/")));
    let status = tb.etcdplan(&renew, &["status", "--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&status)));
    for i in 1..=3 {
        let host = &v["hosts"][format!("etcd-{i}")];
        assert_eq!(host["trusts"].as_array().map(Vec::len), Some(1), "{host}");
        let p = tb.hosts[i - 1].file("/etc/etcd/pki/ca.crt");
        assert_eq!(read(&p), new_ca, "{}", p.display());
    }
    let again = tb.etcdplan(&renew, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // Keys are private, and none appears in anything etcdplan printed.
    let ca_key = tb.dir.path().join("pki/ca.key");
    assert_eq!(mode(&ca_key), 0o600);
    let mut keys = key_lines(&ca_key);
    for retired in std::fs::read_dir(&pki_dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("retired-"))
    {
        keys.extend(key_lines(&retired.path().join("ca.key")));
    }
    for who in [&bob, &carol] {
        keys.extend(key_lines(&who.1));
    }
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
