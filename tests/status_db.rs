//! End to end over ssh on etcd 3.5: what `status` says of each member's
//! backend and of the voters' data, read from real members. 3.5's Status
//! has no quota, so the quota must come from each member's `/metrics`; the
//! HashKV check must agree before and after a compaction.

mod harness;

use std::process::Output;
use std::time::Duration;

use harness::release::etcd_3_5_30_or_skip;
use harness::testbed::{Testbed, up_or_skip};
use harness::{etcdctl, text, wait_for};

/// The quota the etcdfile sets (1 GiB), not etcd's default (2 GiB).
const QUOTA: u64 = 1 << 30;

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

fn etcdfile(tb: &Testbed, release: &str) -> String {
    tb.etcdfile(
        "statusdb",
        &format!(
            "binary = \"/var/lib/etcdplan/bin/etcd\"\nbinary_source = \"{release}\"\nquota_backend_bytes = \"1GiB\"\n"
        ),
        &tb.all(),
        &[],
    )
    .replacen(
        "name = \"statusdb\"\n",
        "name = \"statusdb\"\nversion = \"3.5.30\"\n",
        1,
    )
}

fn status_json(tb: &Testbed, file: &str) -> serde_json::Value {
    let out = tb.etcdplan(file, &["status", "--json"]);
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// The current revision, as the member at `endpoint` reports it.
fn revision(endpoint: &str) -> i64 {
    let out = etcdctl(endpoint, &["endpoint", "status", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&text(&out)).unwrap_or_default();
    v[0]["Status"]["header"]["revision"].as_i64().unwrap_or(0)
}

#[test]
fn status_shows_each_backend_with_its_quota_from_metrics_and_agreeing_hashes() {
    let Some(tb) = up_or_skip(3) else { return };
    let Some(release) = etcd_3_5_30_or_skip() else {
        return;
    };
    let file = etcdfile(&tb, &release.join("usr/bin/etcd").display().to_string());
    ok(tb.etcdplan(&file, &["apply", "--auto-approve"]));
    let endpoints = tb.client_endpoints(&tb.all()).join(",");

    // Keys written then deleted: the file keeps the pages the history holds.
    let value = "x".repeat(4096);
    for i in 0..60 {
        let out = etcdctl(&endpoints, &["put", &format!("/db/{i:03}"), &value]);
        assert!(out.status.success(), "put {i}: {}", text(&out));
    }
    let out = etcdctl(&endpoints, &["del", "--prefix", "/db/0"]);
    assert!(out.status.success(), "{}", text(&out));

    let v = status_json(&tb, &file);
    let members = v["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(members.len(), 3, "{v:#}");
    for m in &members {
        let db = &m["db"];
        let size = db["size"].as_u64().unwrap_or(0);
        let in_use = db["in_use"].as_u64().unwrap_or(u64::MAX);
        assert!(size > 0 && size >= in_use, "{}: {db}", m["name"]);
        assert_eq!(db["free"].as_u64(), Some(size - in_use), "{db}");
        assert_eq!(db["quota"].as_u64(), Some(QUOTA), "{}: {db}", m["name"]);
        assert_eq!(db["quota_from"], "metrics", "{}: {db}", m["name"]);
        // 3.5 has the defragmentation gauge, and none runs.
        assert_eq!(db["defragmenting"], false, "{}: {db}", m["name"]);
    }
    let h = &v["hash_check"];
    assert_eq!(h["verdict"], "agree", "{h:#}");
    assert_eq!(h["members"].as_array().map(Vec::len), Some(3), "{h:#}");
    let at = h["revision"].as_i64().unwrap_or(0);
    assert!(at >= 61, "the hash covers every write: {h:#}");
    let hashes: Vec<u64> = h["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["hash"].as_u64())
        .collect();
    assert!(
        hashes.len() == 3 && hashes.iter().all(|x| *x == hashes[0]),
        "{h:#}"
    );

    // Compacted: every member hashes from the same compact revision, and
    // the hashes still agree (once the compaction is applied everywhere).
    // One write after it: at a compaction's own revision etcd 3.5 answers
    // from the hash it kept when compacting, which begins at the previous
    // compact revision (LAB: -1 there, 62 from `endpoint hashkv` at the head).
    let rev = revision(&tb.client_endpoints(&[0])[0]);
    let out = etcdctl(&endpoints, &["compact", &rev.to_string(), "--physical"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = etcdctl(&endpoints, &["put", "/after", "compaction"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut last = serde_json::Value::Null;
    let agreed = wait_for(Duration::from_secs(15), || {
        last = status_json(&tb, &file)["hash_check"].clone();
        last["verdict"] == "agree" && last["compact_revision"].as_i64() == Some(rev)
    });
    assert!(agreed, "after compacting to {rev}: {last:#}");

    let human = ok(tb.etcdplan(&file, &["status"]));
    assert!(
        human.contains("Backends:") && human.contains("of the quota 1.0 GiB (metrics)"),
        "{human}"
    );
    assert!(human.contains("Data: hashes agree at revision "), "{human}");
}

/// The body of `GET path` (plain HTTP/1.0) on port 2381 of `ip`; empty
/// when it does not answer within 5 s.
fn get_2381(ip: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::new(ip.parse().unwrap_or([0, 0, 0, 0].into()), 2381),
        Duration::from_secs(5),
    ) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

#[test]
fn over_tls_the_metrics_are_read_with_the_client_certificate_or_on_a_metrics_listener() {
    let Some(tb) = up_or_skip(3) else { return };
    // Debian's etcd 3.4.23: no quota in Status; client-certificate auth on
    // the client port; etcd-1 also serves /metrics on plain http :2381.
    let file = tb.etcdfile(
        "statustls",
        "quota_backend_bytes = \"512MiB\"\n\n[tls]\nclient = true\npeer = true\nclient_cert_auth = true\n",
        &tb.all(),
        &["listen_metrics_urls = [\"http://{address}:2381\"]\n"],
    );
    ok(tb.etcdplan(&file, &["apply", "--auto-approve"]));
    let v = status_json(&tb, &file);
    let members = v["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(members.len(), 3, "{v:#}");
    for m in &members {
        let db = &m["db"];
        assert_eq!(db["quota"].as_u64(), Some(512 << 20), "{}: {db}", m["name"]);
        assert_eq!(db["quota_from"], "metrics", "{}: {db}", m["name"]);
        assert!(
            db["size"].as_u64().unwrap_or(0) >= db["in_use"].as_u64().unwrap_or(u64::MAX),
            "{db}"
        );
        assert_ne!(db["defragmenting"], true, "{}: {db}", m["name"]);
    }
    assert_eq!(v["hash_check"]["verdict"], "agree", "{:#}", v["hash_check"]);
    // The listener etcdplan read etcd-1's figures from answers without a certificate.
    let plain = get_2381(&tb.hosts[0].ip, "/metrics");
    assert!(
        plain
            .lines()
            .any(|l| l == "etcd_server_quota_backend_bytes 5.36870912e+08"),
        "{}",
        plain
            .lines()
            .filter(|l| l.contains("quota"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
