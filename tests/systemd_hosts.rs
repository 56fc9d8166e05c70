//! End to end on booted hosts: Debian systems with systemd as PID 1 (booted
//! with systemd-nspawn in the test bed's network namespaces), etcd run by the
//! `etcd.service` unit etcdplan writes (`service = "systemd"`). Each scenario
//! boots its own hosts; what systemd decides (readiness through `Type=notify`,
//! `Restart=` after a removal, enablement across a reboot) is read back from
//! systemctl on the host.

mod harness;

use std::process::Output;
use std::time::Duration;

use harness::booted::boot_or_skip;
use harness::testbed::Testbed;
use harness::text;
use harness::writer::{Writer, disruptions};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

/// The plan for `file` is empty (exit 0 with `--detailed-exitcode`).
fn assert_plan_empty(tb: &Testbed, file: &str) {
    let out = tb.etcdplan(file, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "plan not empty:\n{}", text(&out));
}

/// `status --json`, parsed.
fn status_json(tb: &Testbed, file: &str) -> serde_json::Value {
    let out = tb.etcdplan(file, &["status", "--json"]);
    assert!(out.status.success(), "status failed:\n{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// Every acknowledged key is in the cluster, none it never put.
fn read_back(tb: &Testbed, which: &[usize], prefix: &str, seen: &harness::writer::Writes, what: &str) {
    let endpoint = &tb.client_endpoints(which)[0];
    let found = harness::writer::keys(endpoint, prefix);
    seen.assert_read_back(what, found.iter().map(String::as_str));
}

#[test]
fn bootstrap_under_systemd() {
    let Some(tb) = boot_or_skip(3) else { return };
    let file = tb.etcdfile("booted", "", &tb.all(), &[]);
    let applied = ok(tb.etcdplan(&file, &["apply", "--auto-approve"]));
    assert!(applied.contains("3 added, 0 changed, 0 removed"), "{applied}");

    for i in tb.all() {
        // systemd runs etcd: the unit is active (Type=notify: etcd said READY)
        // and enabled (it comes back at boot).
        let (active, enabled) = tb.unit_state(i);
        assert_eq!((active.as_str(), enabled.as_str()), ("active", "enabled"), "h{}", i + 1);
        let main_pid = tb.ssh(i, "systemctl show -p MainPID --value etcd.service");
        let pid = String::from_utf8_lossy(&main_pid.stdout).trim().to_owned();
        let comm = tb.ssh(i, &format!("cat /proc/{pid}/comm"));
        assert_eq!(String::from_utf8_lossy(&comm.stdout).trim(), "etcd", "h{}", i + 1);
    }
    assert_eq!(tb.etcd_pids().len(), 3);
    assert_plan_empty(&tb, &file);
}
