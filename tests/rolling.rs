//! End to end over ssh: settings and ports rolled through a live cluster one
//! member at a time, saved plans, and the stop when a member fails mid-apply.

mod harness;

use std::io::BufRead as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use harness::testbed::{Testbed, up_or_skip};
use harness::writer::{Writer, disruptions, missing};
use harness::{http_get, text};

fn etcdfile(tb: &Testbed, etcd: &str, per_member: &[&str]) -> String {
    tb.etcdfile("rolling", etcd, &tb.all(), per_member)
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

fn endpoints(tb: &Testbed) -> Vec<String> {
    tb.client_endpoints(&tb.all())
}

#[test]
fn quota_and_compaction_roll_through_a_saved_plan_under_writes() {
    let Some(tb) = up_or_skip(3) else { return };
    ok(tb.etcdplan(&etcdfile(&tb, "", &[]), &["apply", "--auto-approve"]));
    let changed = etcdfile(
        &tb,
        "quota_backend_bytes = \"4GiB\"\nauto_compaction_mode = \"periodic\"\nauto_compaction_retention = \"2h\"\n",
        &[],
    );
    let plan_path = tb.dir.path().join("rolling.plan");
    let planned = ok(tb.etcdplan(
        &changed,
        &["plan", "--out", &plan_path.display().to_string()],
    ));
    assert!(planned.contains("Saved the plan to"), "{planned}");

    let writer = Writer::start(
        endpoints(&tb),
        "q",
        Duration::from_millis(20),
        Duration::from_secs(1),
    );
    std::thread::sleep(Duration::from_millis(300));
    // A saved plan needs no prompt (stdin is closed here: a prompt would cancel).
    let applied = ok(tb.etcdplan(&changed, &["apply", &plan_path.display().to_string()]));
    assert!(
        applied.contains("0 added, 3 changed, 0 removed"),
        "{applied}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let seen = writer.stop();
    seen.assert_within("quota+compaction", disruptions(&applied));
    assert!(missing(&endpoints(&tb)[0], "q", &seen.acked).is_empty());

    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap_or_default())
            .unwrap_or_default();
    for (i, h) in tb.hosts.iter().enumerate() {
        // /metrics shows the new quota.
        let m = http_get(&h.ip, "/metrics");
        assert!(
            m.lines()
                .any(|l| l == "etcd_server_quota_backend_bytes 4.294967296e+09"),
            "etcd-{}: {}",
            i + 1,
            m.lines()
                .filter(|l| l.contains("quota"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        // The file on the host is what the plan's diff said it would be.
        let on_host =
            std::fs::read_to_string(h.file("/etc/etcd/etcd.conf.yml")).unwrap_or_default();
        let change = saved["changes"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["member"] == format!("etcd-{}", i + 1))
                    .cloned()
            })
            .unwrap_or_default();
        let diff = change["files"][0]["diff"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!diff.is_empty(), "no diff for etcd-{}", i + 1);
        for line in diff.lines().skip(2) {
            if let Some(added) = line.strip_prefix('+') {
                assert!(
                    on_host.lines().any(|l| l == added),
                    "etcd-{}: {added:?} missing on the host",
                    i + 1
                );
            } else if let Some(removed) = line.strip_prefix('-') {
                assert!(
                    !on_host.lines().any(|l| l == removed),
                    "etcd-{}: {removed:?} still on the host",
                    i + 1
                );
            }
        }
    }
    let out = tb.etcdplan(&changed, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_peer_port_change_keeps_the_cluster_healthy() {
    let Some(tb) = up_or_skip(3) else { return };
    ok(tb.etcdplan(&etcdfile(&tb, "", &[]), &["apply", "--auto-approve"]));
    let moved = etcdfile(&tb, "peer_port = 2390\n", &[]);
    let writer = Writer::start(
        endpoints(&tb),
        "p",
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    std::thread::sleep(Duration::from_millis(300));
    let applied = ok(tb.etcdplan(&moved, &["apply", "--auto-approve"]));
    assert!(applied.matches("(MemberUpdate)").count() >= 3, "{applied}");
    std::thread::sleep(Duration::from_millis(300));
    let seen = writer.stop();
    seen.assert_within("peer port change", disruptions(&applied));
    assert!(missing(&endpoints(&tb)[1], "p", &seen.acked).is_empty());
    let list = Command::new("/usr/bin/etcdctl")
        .env_remove("ETCDCTL_ENDPOINTS")
        .args([
            "--endpoints",
            &format!("{}:2379", tb.hosts[0].ip),
            "member",
            "list",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    for h in &tb.hosts {
        assert!(
            text(&list).contains(&format!("http://{}:2390", h.ip)),
            "{}",
            text(&list)
        );
    }
    let out = tb.etcdplan(&moved, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_member_down_mid_apply_stops_the_next_restart() {
    let Some(tb) = up_or_skip(3) else { return };
    ok(tb.etcdplan(&etcdfile(&tb, "", &[]), &["apply", "--auto-approve"]));
    // Only etcd-1 and etcd-2 change (their client ports); etcd-3 is not touched.
    let changed = etcdfile(&tb, "", &["client_port = 2479\n", "client_port = 2479\n"]);
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, &changed).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["apply", "--auto-approve", "-f"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut log = String::new();
    let mut killed = false;
    if let Some(err) = child.stderr.take() {
        let mut lines = std::io::BufReader::new(err).lines();
        let mut first_gate = false;
        while let Some(Ok(line)) = lines.next() {
            log.push_str(&line);
            log.push('\n');
            if line.contains("wait until etcd-") && line.contains("healthy") {
                first_gate = true;
            } else if first_gate && !killed && line.trim_start().starts_with("done in") {
                // Between two restarts: etcd-3 fails.
                let pid = std::fs::read_to_string(tb.hosts[2].file("/var/lib/etcdplan/etcd.pid"))
                    .unwrap_or_default();
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).output();
                killed = true;
            }
        }
    }
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(killed, "never reached the first gate:\n{log}");
    assert!(!status.success(), "the apply went on:\n{log}");
    // The report is wrapped to the terminal's width, maybe inside a name.
    let flat: String = log
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    assert!(
        flat.contains("refusingtorestart") && flat.contains("(etcd-3)"),
        "{log}"
    );
    assert!(log.contains("Not started:"), "{log}");
    // The cluster keeps quorum: the two others take writes.
    let put = Command::new("/usr/bin/etcdctl")
        .env_remove("ETCDCTL_ENDPOINTS")
        .args([
            "--endpoints",
            &format!(
                "{}:2479,{}:2379,{}:2479",
                tb.hosts[0].ip, tb.hosts[1].ip, tb.hosts[1].ip
            ),
            "--command-timeout=5s",
            "put",
            "after",
            "ok",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(put.status.success(), "{}", text(&put));
}

#[test]
fn a_stale_saved_plan_is_refused_saying_what_changed() {
    let Some(tb) = up_or_skip(3) else { return };
    ok(tb.etcdplan(&etcdfile(&tb, "", &[]), &["apply", "--auto-approve"]));
    let changed = etcdfile(&tb, "quota_backend_bytes = \"3GiB\"\n", &[]);
    let plan_path = tb.dir.path().join("stale.plan");
    ok(tb.etcdplan(
        &changed,
        &["plan", "--out", &plan_path.display().to_string()],
    ));
    // Someone edits a host's file by hand after the plan was made.
    let edit = tb.ssh(1, "echo '# hand edit' >> /etc/etcd/etcd.conf.yml");
    assert!(edit.status.success());
    let out = tb.etcdplan(&changed, &["apply", &plan_path.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("Saved plan is stale"), "{t}");
    assert!(t.contains("file /etc/etcd/etcd.conf.yml of etcd-2"), "{t}");
    // Nothing was applied.
    assert!(
        !std::fs::read_to_string(tb.hosts[0].file("/etc/etcd/etcd.conf.yml"))
            .unwrap_or_default()
            .contains("3221225472")
    );
}
