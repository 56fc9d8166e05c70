//! End to end over ssh: etcdplan puts the etcd release on each host itself
//! (from `binary_source`), then upgrades the live cluster from Debian's 3.4.23
//! to Debian trixie's 3.5.16 under a writer, one member at a time.

mod harness;

use std::process::Output;
use std::time::Duration;

use harness::release::etcd_3_5_16_or_skip;
use harness::testbed::{Testbed, up_or_skip};
use harness::writer::{Writer, disruptions, missing};
use harness::{http_get, text};

/// Where the members' binary lives: per host (the test bed's hosts share /usr).
const BIN: &str = "/var/lib/etcdplan/bin/etcd";

fn etcdfile(tb: &Testbed, version: &str, source: &str) -> String {
    tb.etcdfile(
        "upgrade",
        &format!("binary = \"{BIN}\"\nbinary_source = \"{source}\"\n"),
        &tb.all(),
        &[],
    )
    .replacen(
        "name = \"upgrade\"\n",
        &format!("name = \"upgrade\"\nversion = \"{version}\"\n"),
        1,
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

/// `GET /version` from a member: (etcdserver, etcdcluster).
fn versions(ip: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(&http_get(ip, "/version")).unwrap_or_default();
    (
        v["etcdserver"].as_str().unwrap_or_default().to_owned(),
        v["etcdcluster"].as_str().unwrap_or_default().to_owned(),
    )
}

fn endpoints(tb: &Testbed) -> Vec<String> {
    tb.client_endpoints(&tb.all())
}

#[test]
fn a_live_cluster_is_upgraded_from_3_4_to_3_5_under_writes() {
    let Some(tb) = up_or_skip(3) else { return };
    let Some(release) = etcd_3_5_16_or_skip() else {
        return;
    };
    let release = release.display().to_string();

    // Bootstrap on 3.4.23, uploaded by etcdplan from this machine's etcd.
    let v34 = etcdfile(&tb, "3.4.23", "/usr/bin/etcd");
    let out = ok(tb.etcdplan(&v34, &["apply", "--auto-approve"]));
    assert!(out.contains("sha256 checked"), "{out}");
    for h in &tb.hosts {
        assert_eq!(versions(&h.ip).0, "3.4.23");
        let link = std::fs::read_link(h.file(BIN)).unwrap_or_default();
        assert_eq!(link.display().to_string(), format!("{BIN}-3.4.23"));
    }

    // Bad input changes nothing: a binary that is not etcd, and a release
    // that is not the version the file names.
    for (bad, says) in [
        (etcdfile(&tb, "3.5", "/bin/true"), "is not an etcd binary"),
        (
            etcdfile(&tb, "3.6", &release),
            "[cluster] version asks for etcd 3.6, but binary_source holds 3.5.16",
        ),
    ] {
        let out = tb.etcdplan(&bad, &["apply", "--auto-approve"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains(says), "{t}");
        assert!(
            t.contains("binary_source = "),
            "the diagnostic shows the line: {t}"
        );
    }
    for h in &tb.hosts {
        assert_eq!(versions(&h.ip).0, "3.4.23");
        assert!(!h.file(&format!("{BIN}-3.5.16")).exists());
    }

    // A release that says it is 3.5.16 but cannot serve: the apply stops at
    // the first member it restarts, the others untouched, and the next plan
    // says how to roll that member back; rolling back brings it up again.
    let fake = tb.dir.path().join("broken/etcd");
    std::fs::create_dir_all(tb.dir.path().join("broken")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then exec {release}/usr/bin/etcd --version; fi\necho 'broken build' >&2\nexit 1\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let broken = etcdfile(
        &tb,
        "3.5.16",
        &tb.dir.path().join("broken").display().to_string(),
    );
    let out = tb.etcdplan(&broken, &["apply", "--auto-approve"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    let now: Vec<String> = tb.hosts.iter().map(|h| versions(&h.ip).0).collect();
    let down: Vec<usize> = (0..3).filter(|&i| now[i].is_empty()).collect();
    assert_eq!(
        down.len(),
        1,
        "one member down, the others on 3.4.23: {now:?}\n{t}"
    );
    assert_eq!(now.iter().filter(|v| *v == "3.4.23").count(), 2, "{now:?}");
    let name = format!("etcd-{}", down[0] + 1);
    assert!(t.contains(&format!("etcd of {name} exited")), "{t}");
    assert!(t.contains("broken build"), "the member's log is shown: {t}");
    assert!(t.contains("Not started:"), "{t}");
    let next = ok(tb.etcdplan(&broken, &["plan"]));
    assert!(
        next.contains(&format!(
            "{name} is down, and the binary on its host is etcd 3.5.16"
        )) && next.contains("set [cluster] version = \"3.4.23\""),
        "{next}"
    );
    let back = ok(tb.etcdplan(&v34, &["apply", "--auto-approve"]));
    assert!(
        back.contains(&format!("point {name}'s binary at etcd 3.4.23")),
        "{back}"
    );
    for h in &tb.hosts {
        assert_eq!(versions(&h.ip).0, "3.4.23");
    }

    // The upgrade, under a writer.
    let v35 = etcdfile(&tb, "3.5", &release);
    let planned = ok(tb.etcdplan(&v35, &["plan"]));
    assert!(planned.contains("etcd 3.4.23 → 3.5.16"), "{planned}");
    assert!(
        planned.contains("wait until the cluster version is 3.5"),
        "{planned}"
    );
    let writer = Writer::start(
        endpoints(&tb),
        "u",
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    std::thread::sleep(Duration::from_millis(300));
    let t = std::time::Instant::now();
    let applied = ok(tb.etcdplan(&v35, &["apply", "--auto-approve"]));
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let seen = writer.stop();
    seen.assert_within("upgrade 3.4 → 3.5", disruptions(&applied));
    assert!(!seen.acked.is_empty());
    assert!(applied.contains("cluster version 3.5"), "{applied}");
    assert!(applied.contains("snapshot"), "{applied}");
    for ep in endpoints(&tb) {
        assert!(
            missing(&ep, "u", &seen.acked).is_empty(),
            "keys lost via {ep}"
        );
    }
    for h in &tb.hosts {
        assert_eq!(
            versions(&h.ip),
            ("3.5.16".to_owned(), "3.5.0".to_owned()),
            "{}",
            h.ip
        );
        let link = std::fs::read_link(h.file(BIN)).unwrap_or_default();
        assert_eq!(link.display().to_string(), format!("{BIN}-3.5.16"));
        // The old release stays on the host for a rollback.
        assert!(h.file(&format!("{BIN}-3.4.23")).exists());
    }
    let out = tb.etcdplan(&v35, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The figures of the steps that matter, for the record.
    for l in applied.lines().filter(|l| {
        l.contains("MB to") || l.contains("cluster version") || l.contains("restart etcd")
    }) {
        eprintln!("  {}", l.trim());
    }
    eprintln!(
        "upgrade 3.4.23 → 3.5.16: {:.1}s, {}",
        took.as_secs_f64(),
        seen.summary()
    );
}
