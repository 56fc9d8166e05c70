//! TLS with real etcd and real certificates, local transport, each test in its
//! own network namespace: a cluster created with client and peer TLS and
//! client-certificate auth, etcdctl with a certificate from `etcdplan pki
//! client`, key modes, no key material in any output, and a broken CA refused.

mod harness;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use harness::{Site, prerequisites, text};

fn tls_etcdfile() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etcdfile.toml"))
        .unwrap_or_default()
        .replace(
            "[hosts]",
            "[tls]\nclient = true\npeer = true\nclient_cert_auth = true\n\n[hosts]",
        )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The base64 body lines of every private key under `dir`.
fn key_lines(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "key") {
                let t = std::fs::read_to_string(&p).unwrap_or_default();
                out.extend(
                    t.lines()
                        .filter(|l| !l.starts_with("-----") && l.len() > 16)
                        .map(str::to_owned),
                );
            }
        }
    }
    out
}

#[test]
fn a_cluster_created_with_tls_serves_only_clients_with_a_certificate() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("tls", &tls_etcdfile());
    let plan = site.etcdplan(&["plan"]);
    let apply = site.apply_ok();
    let t = text(&apply);
    assert!(
        t.contains("issued etcd-1's certificates for DNS:etcd-1, IP:127.0.0.1, IP:127.0.0.11"),
        "{t}"
    );

    // Keys: 0600 in ca_dir and on the host; the CA folder is private.
    assert_eq!(mode(&site.path("pki/ca.key")), 0o600);
    assert_eq!(mode(&site.path("pki")), 0o700);
    for m in ["etcd-1", "etcd-2", "etcd-3"] {
        for k in ["server.key", "peer.key"] {
            assert_eq!(
                mode(&site.path(&format!("demo-cluster/{m}/etc/pki/{k}"))),
                0o600
            );
        }
    }
    // The CA key stays in ca_dir: no host folder holds it.
    let ca_key = std::fs::read_to_string(site.path("pki/ca.key")).unwrap_or_default();
    for m in ["etcd-1", "etcd-2", "etcd-3"] {
        let dir = site.path(&format!("demo-cluster/{m}"));
        assert!(!key_lines(&dir).iter().any(|l| ca_key.contains(l.as_str())));
    }

    // etcdplan itself talks TLS with its own certificate: status and plan work.
    let status = site.etcdplan(&["status", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("https://127.0.0.11:2379"),
        "{}",
        text(&status)
    );
    let again = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // An operator's certificate from `etcdplan pki client` reads every key.
    let issued = site.etcdplan(&[
        "pki",
        "client",
        "alice",
        "--out",
        &site.path("").display().to_string(),
    ]);
    assert!(issued.status.success(), "{}", text(&issued));
    assert_eq!(mode(&site.path("alice.key")), 0o600);
    let tls = |args: &[&str]| {
        let mut all = vec![
            "--cacert".to_owned(),
            site.path("ca.crt").display().to_string(),
        ];
        all.extend(args.iter().map(|s| (*s).to_owned()));
        all
    };
    let with_cert = |ep: &str, args: &[&str]| {
        let mut a = tls(&[
            "--cert",
            &site.path("alice.crt").display().to_string(),
            "--key",
            &site.path("alice.key").display().to_string(),
        ]);
        a.extend(args.iter().map(|s| (*s).to_owned()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        site.etcdctl(ep, &refs)
    };
    for i in 0..20 {
        let out = with_cert(
            "https://127.0.0.11:2379",
            &["put", &format!("k{i}"), &format!("v{i}")],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    for ep in ["https://127.0.0.12:2379", "https://127.0.0.13:2379"] {
        let out = with_cert(ep, &["get", "--prefix", "k", "--keys-only"]);
        assert!(out.status.success(), "{}", text(&out));
        let keys = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('k'))
            .count();
        assert_eq!(keys, 20, "{}", text(&out));
    }
    // Without a client certificate the member refuses; over http nothing listens.
    let plain = tls(&["get", "k1"]);
    let refs: Vec<&str> = plain.iter().map(String::as_str).collect();
    let refused = site.etcdctl("https://127.0.0.11:2379", &refs);
    assert!(!refused.status.success(), "{}", text(&refused));
    let http = site.etcdctl("http://127.0.0.11:2379", &["get", "k1"]);
    assert!(!http.status.success(), "{}", text(&http));

    // A member joins with its own certificates.
    let four = format!(
        "{}\n[[member]]\nname = \"etcd-4\"\naddress = \"127.0.0.14\"\n",
        tls_etcdfile()
    );
    std::fs::write(site.etcdfile(), four).unwrap_or_else(|e| panic!("{e}"));
    let grow = site.apply_ok();
    let out = with_cert("https://127.0.0.14:2379", &["get", "k19"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("v19"),
        "{}",
        text(&out)
    );
    let json = site.etcdplan(&["plan", "--json"]);

    // No key material in anything etcdplan printed.
    let keys: Vec<String> = key_lines(site.dir.path());
    assert!(keys.len() >= 2 * 4 * 2, "found {} key lines", keys.len());
    for out in [&plan, &apply, &status, &again, &issued, &grow, &json] {
        let t = text(out);
        assert!(!t.contains("PRIVATE KEY"), "{t}");
        for k in &keys {
            assert!(!t.contains(k.as_str()), "key material printed: {t}");
        }
    }
}

#[test]
fn a_broken_ca_stops_the_plan_and_changes_nothing() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("tlsbad", &tls_etcdfile());
    let issued = site.etcdplan(&[
        "pki",
        "client",
        "bob",
        "--out",
        &site.path("").display().to_string(),
    ]);
    assert!(issued.status.success(), "{}", text(&issued));
    // A certificate without its key.
    std::fs::rename(site.path("pki/ca.key"), site.path("ca.key.moved"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = site.etcdplan(&["apply", "--auto-approve"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("holds ca.crt but not ca.key"), "{t}");
    assert!(
        !site.path("demo-cluster").exists(),
        "something was written: {t}"
    );
    // A key that belongs to another CA.
    let other = Site::new("tlsother", &tls_etcdfile());
    let o = other.etcdplan(&[
        "pki",
        "client",
        "eve",
        "--out",
        &other.path("").display().to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::copy(other.path("pki/ca.key"), site.path("pki/ca.key"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = site.etcdplan(&["plan"]);
    let t = text(&out);
    assert!(t.contains("does not match"), "{t}");
    let out = site.etcdplan(&["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!site.path("demo-cluster").exists(), "something was written");
}
