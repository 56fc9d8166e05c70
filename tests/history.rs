//! `etcdplan history` and `etcdplan endpoints --healthy` on real etcd over
//! ssh (the namespace test bed, 3 members): a bootstrap apply, a rolling
//! change etcd cannot start with (it fails at the first restarted member),
//! the apply that repairs and finishes it, and an apply killed mid-walk (the failpoint) whose record
//! still says "started". `history` lists them newest first with their
//! results, as text and as JSON; the records are real keys in etcd, read
//! back with etcdctl.

mod harness;

use std::process::{Command, Output};
use std::time::Duration;

use harness::failpoint::run_held;
use harness::testbed::{Testbed, up_or_skip};
use harness::text;

fn etcdfile(tb: &Testbed, etcd: &str) -> String {
    tb.etcdfile("history", etcd, &tb.all(), &[])
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `apply --auto-approve` held for good by the failpoint after step 0, then
/// killed by its pid: a walk that never wrote its end.
fn killed_after_first_step(tb: &Testbed, file: &str) -> Result<(), String> {
    let held = run_held(
        tb,
        file,
        &["apply", "--auto-approve"],
        "after-step:0",
        Duration::from_secs(300),
    )?;
    match held.reached {
        Some(_) => Ok(()),
        None => Err(format!("the failpoint was not reached:\n{}", held.text())),
    }
}

#[test]
fn history_lists_each_walk_with_its_result_newest_first() {
    let Some(tb) = up_or_skip(3) else { return };
    let base = etcdfile(&tb, "");
    ok(tb.etcdplan(&base, &["apply", "--auto-approve"]));

    // endpoints --healthy: every member answers.
    let out = ok(tb.etcdplan(&base, &["endpoints", "--healthy", "--format", "kv-addr"]));
    let addrs: Vec<String> = tb.hosts.iter().map(|h| format!("{}:2379", h.ip)).collect();
    assert!(
        out.contains(&format!("KV_BACKEND=etcd\nKV_ADDR={}\n", addrs.join(","))),
        "{out}"
    );

    // A rolling change etcd cannot start with (a number it cannot read):
    // the first member restarted never becomes healthy, and the walk stops.
    let bad = etcdfile(
        &tb,
        "quota_backend_bytes = \"4GiB\"\n\n[etcd.extra]\nmax-txn-ops = \"lots\"\n",
    );
    let failed = tb.etcdplan(&bad, &["apply", "--auto-approve", "--gate-timeout", "3s"]);
    assert!(!failed.status.success(), "{}", text(&failed));
    // Then the apply that repairs it and finishes the roll.
    let quota = etcdfile(&tb, "quota_backend_bytes = \"4GiB\"\n");
    ok(tb.etcdplan(&quota, &["apply", "--auto-approve"]));
    // The no-op apply walks nothing, so records nothing.
    ok(tb.etcdplan(&quota, &["apply", "--auto-approve"]));

    let listed = tb.etcdplan(&quota, &["history"]);
    let table = stdout(&listed);
    assert!(listed.status.success(), "{}", text(&listed));
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows[0].ends_with("applied"), "{table}");
    assert!(rows[1].contains("failed at step"), "{table}");
    assert!(rows[2].ends_with("applied"), "the bootstrap: {table}");

    // JSON: the records as stored, newest first.
    let json = stdout(&ok_json(tb.etcdplan(&quota, &["history", "--json"])));
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let records = v.as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 3, "{json}");
    let results: Vec<&str> = records
        .iter()
        .map(|r| r["result"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(results, ["applied", "failed", "applied"]);
    for r in &records {
        assert!(r["who"].as_str().is_some_and(|w| w.contains('@')), "{r}");
        assert_eq!(r["plan_sha256"].as_str().map(str::len), Some(64), "{r}");
        assert!(r["steps"].as_array().is_some_and(|s| !s.is_empty()), "{r}");
        assert!(r["finished"].is_string(), "{r}");
        assert_eq!(r["operation"], "apply");
    }
    assert!(records[1]["error"].as_str().is_some_and(|e| !e.is_empty()));
    let steps_failed = records[1]["step"].as_u64().unwrap_or(0);
    assert!(steps_failed >= 1, "{}", records[1]);
    let keys: Vec<&str> = records
        .iter()
        .map(|r| r["key"].as_str().unwrap_or(""))
        .collect();
    assert!(keys[0] > keys[1] && keys[1] > keys[2], "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("etcdplan/history/")));
    assert_eq!(history(&tb, 1).len(), 1, "--limit");

    // The records are keys in etcd, read by etcdctl.
    let ep = tb.client_endpoints(&[0]).join(",");
    let ctl = Command::new("etcdctl")
        .args([
            "--endpoints",
            &ep,
            "--dial-timeout",
            "5s",
            "--command-timeout",
            "10s",
        ])
        .args(["get", "--prefix", "--keys-only", "etcdplan/history/"])
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap_or_else(|e| panic!("etcdctl: {e}"));
    let keys_in_etcd: Vec<String> = stdout(&ctl)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(keys_in_etcd.len(), 3, "{}", text(&ctl));

    // A walk killed after its first step: its record still says started.
    let back = etcdfile(&tb, "quota_backend_bytes = \"2GiB\"\n");
    killed_after_first_step(&tb, &back).unwrap_or_else(|e| panic!("{e}"));
    let records = history(&tb, 10);
    assert_eq!(records.len(), 4);
    assert_eq!(records[0]["result"], "started", "{}", records[0]);
    assert!(records[0]["finished"].is_null());
    let table = stdout(&tb.etcdplan(&back, &["history"]));
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.ends_with("started, no end recorded")),
        "{table}"
    );
}

fn ok_json(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// `history --json --limit N` on the test bed's current etcdfile.
fn history(tb: &Testbed, limit: usize) -> Vec<serde_json::Value> {
    let path = tb.dir.path().join("etcdfile.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["history", "--json", "--limit", &limit.to_string(), "-f"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}
