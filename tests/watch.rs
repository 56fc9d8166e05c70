//! `etcdplan watch` with the local transport and real etcd, each test in its
//! own network namespace: edits are applied, bad edits change nothing, drift is
//! repaired, and a signal ends the watch after the current step.

mod harness;

use std::time::{Duration, Instant};

use harness::watch::Watch;
use harness::{Site, prerequisites, text};

fn base() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etcdfile.toml"))
        .unwrap_or_default()
}

fn five() -> String {
    format!(
        "{}\n[[member]]\nname = \"etcd-4\"\naddress = \"127.0.0.14\"\n\n[[member]]\nname = \"etcd-5\"\naddress = \"127.0.0.15\"\n",
        base()
    )
}

/// Saves the etcdfile the way editors do: a new file renamed over the old one.
fn save(site: &Site, content: &str) {
    let tmp = site.path(".etcdfile.toml.new");
    std::fs::write(&tmp, content).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&tmp, site.etcdfile()).unwrap_or_else(|e| panic!("{e}"));
}

fn member_count(site: &Site) -> usize {
    let out = site.etcdctl("http://127.0.0.11:2379", &["member", "list"]);
    String::from_utf8_lossy(&out.stdout).lines().count()
}

const APPLY: Duration = Duration::from_secs(90);

#[test]
fn an_edit_from_three_to_five_members_is_applied_by_a_running_watch() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("watch35", &base());
    let mut w = Watch::start(&site, &["--auto-approve"]);
    w.event("watching", Duration::from_secs(10));
    // At start the watch converges: the cluster is created.
    let first = w.event("applied", APPLY);
    assert_eq!(first["add"], 3, "{first}");
    assert_eq!(member_count(&site), 3);

    let saved = Instant::now();
    save(&site, &five());
    w.event("file_changed", Duration::from_secs(10));
    let plan = w.event("plan", Duration::from_secs(10));
    assert_eq!(plan["trigger"], "edit", "{plan}");
    assert_eq!(plan["changes"], 2, "{plan}");
    w.event("step_started", Duration::from_secs(10));
    // While the watch applies it holds the cluster's lock (the join takes
    // seconds: etcd 3.4 refuses a second promotion for 5 s after the first).
    let other = site.etcdplan(&["apply", "--auto-approve"]);
    let t = text(&other);
    assert_eq!(other.status.code(), Some(1), "{t}");
    assert!(
        t.contains("the cluster is locked by") && t.contains("for watch since"),
        "{t}"
    );
    let applied = w.event("applied", APPLY);
    let took = saved.elapsed();
    let slowest = w
        .seen
        .iter()
        .filter(|v| v["event"] == "step_finished")
        .map(|v| v["seconds"].as_f64().unwrap_or(0.0))
        .fold(0.0, f64::max);
    eprintln!(
        "watch: 3→5 applied {:.1}s after the save (slowest step {slowest:.1}s)",
        took.as_secs_f64()
    );
    assert_eq!(applied["add"], 2, "{applied}");
    assert_eq!(member_count(&site), 5);
    // Every step was reported, started and finished.
    let started = w
        .seen
        .iter()
        .filter(|v| v["event"] == "step_started")
        .count();
    let finished = w
        .seen
        .iter()
        .filter(|v| v["event"] == "step_finished")
        .count();
    assert!(started > 0 && started == finished, "{:#?}", w.seen);

    assert_eq!(
        w.terminate(),
        Some(0),
        "a signal while idle ends the watch cleanly"
    );
    let out = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn an_invalid_edit_changes_nothing_and_the_next_valid_edit_is_applied() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("watchbad", &base());
    site.apply_ok();
    let config = site.path("demo-cluster/etcd-1/etc/etcd.conf.yml");
    let before = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));

    let mut w = Watch::start(&site, &["--auto-approve"]);
    let start = w.event("plan", Duration::from_secs(30));
    assert_eq!(start["changes"], 0, "{start}");

    // A unit the file does not accept, and a member without an address.
    let bad = base()
        .replace("\"2GiB\"", "\"2GB\"")
        .replace("address = \"127.0.0.13\"\n", "");
    save(&site, &bad);
    let invalid = w.event("invalid", Duration::from_secs(10));
    let problems = invalid["problems"].as_array().cloned().unwrap_or_default();
    assert!(problems.len() >= 2, "{invalid}");
    assert!(
        problems.iter().all(|p| p["line"].as_u64().is_some()),
        "every problem points at its line: {invalid}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p["message"].as_str().is_some_and(|m| m.contains("2GB"))),
        "{invalid}"
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap_or_default(),
        before,
        "an invalid edit changed a member's config"
    );
    assert_eq!(member_count(&site), 3);

    // The watch went on: a valid edit is planned and rolled out.
    save(&site, &base().replace("\"2GiB\"", "\"4GiB\""));
    let plan = w.until(Duration::from_secs(10), |v| v["event"] == "plan");
    assert_eq!(plan["changes"], 3, "{plan}");
    let applied = w.event("applied", APPLY);
    assert_eq!(applied["change"], 3, "{applied}");
    assert!(
        std::fs::read_to_string(&config)
            .unwrap_or_default()
            .contains("quota-backend-bytes: 4294967296")
    );
    drop(w);
    let out = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_member_stopped_by_hand_is_brought_back_within_one_interval() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("watchdrift", &base());
    site.apply_ok();
    let mut w = Watch::start(&site, &["--auto-approve", "--interval", "2"]);
    let start = w.event("plan", Duration::from_secs(30));
    assert_eq!(start["changes"], 0, "{start}");

    site.kill_member("etcd-2", "KILL");
    let killed = Instant::now();
    let drift = w.event("drift", Duration::from_secs(10));
    assert_eq!(drift["changes"], 1, "{drift}");
    let plan = w.event("plan", Duration::from_secs(5));
    assert_eq!(plan["trigger"], "interval", "{plan}");
    w.event("applied", APPLY);
    eprintln!(
        "watch: a killed member was running again {:.1}s after the kill (interval 2s)",
        killed.elapsed().as_secs_f64()
    );
    let health = site.etcdctl("http://127.0.0.12:2379", &["endpoint", "health"]);
    assert!(health.status.success(), "{}", text(&health));
    // No flapping: with nothing to repair the watch stays quiet.
    std::thread::sleep(Duration::from_secs(5));
    while let Ok(v) = w.events.try_recv() {
        assert_ne!(v["event"], "drift", "a repaired cluster still drifts: {v}");
    }
}

#[test]
fn a_signal_during_a_watch_apply_ends_it_after_the_current_step() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("watchterm", &base());
    site.apply_ok();
    let mut w = Watch::start(&site, &["--auto-approve"]);
    w.event("plan", Duration::from_secs(30));
    save(&site, &five());
    w.until(APPLY, |v| {
        v["event"] == "step_finished"
            && v["detail"]
                .as_str()
                .is_some_and(|d| d.contains("added etcd-4 as learner"))
    });
    assert_eq!(w.terminate(), Some(1), "it did not stop after the step");
    let failed = w.event("apply_failed", Duration::from_secs(5));
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("stopped by a signal before this step")),
        "{failed}"
    );
    let ended = w.event("stopped", Duration::from_secs(5));
    assert!(
        ended["reason"]
            .as_str()
            .is_some_and(|r| r.contains("stopped by a signal")),
        "{ended}"
    );
    let t = text(&site.etcdplan(&["plan"]));
    harness::assert_join_continued(&t, "etcd-4");
    assert!(t.contains("+ etcd-5"), "etcd-5 is still to come: {t}");
    site.apply_ok();
    assert_eq!(member_count(&site), 5);
}

/// Each member's backend (dbSize, dbSizeInUse) from its own Status, through
/// etcdctl inside the site's namespace.
fn backends(site: &Site) -> Vec<(u64, u64)> {
    (11..=13)
        .map(|i| {
            let out = site.etcdctl(
                &format!("http://127.0.0.{i}:2379"),
                &["endpoint", "status", "-w", "json"],
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let s = &v[0]["Status"];
            (
                s["dbSize"].as_u64().unwrap_or(0),
                s["dbSizeInUse"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_watch_with_auto_approve_applies_the_defragmentations_the_rule_asks_for() {
    if !prerequisites() {
        return;
    }
    let file = format!(
        "{}\n[maintenance]\ndefrag_rule = \"dbSizeFree > 1MiB\"\n",
        base()
    );
    let site = Site::new("watchrule", &file);
    site.apply_ok();
    let ep = "http://127.0.0.11:2379";
    let big = "x".repeat(100 * 1024);
    for i in 0..40 {
        let out = site.etcdctl(ep, &["put", &format!("bulk/{i}"), &big]);
        assert!(out.status.success(), "{}", text(&out));
    }
    assert!(
        site.etcdctl(ep, &["del", "--prefix", "bulk/"])
            .status
            .success()
    );
    let got = site.etcdctl(ep, &["get", "bulk/0", "-w", "json"]);
    let rev = serde_json::from_slice::<serde_json::Value>(&got.stdout).unwrap_or_default()
        ["header"]["revision"]
        .as_i64()
        .unwrap_or(0);
    let c = site.etcdctl(ep, &["compact", &rev.to_string(), "--physical"]);
    assert!(c.status.success(), "{}", text(&c));
    // bbolt counts freed pages as free from its next write on.
    let free = harness::wait_for(Duration::from_secs(30), || {
        let _ = site.etcdctl(ep, &["put", "tick", "1"]);
        std::thread::sleep(Duration::from_millis(300));
        backends(&site)
            .iter()
            .all(|(size, used)| size.saturating_sub(*used) > 1024 * 1024)
    });
    let before = backends(&site);
    assert!(free, "{before:?}");

    let mut w = Watch::start(&site, &["--auto-approve", "--interval", "2"]);
    let plan = w.event("plan", Duration::from_secs(30));
    assert_eq!(plan["changes"], 3, "{plan}");
    let applied = w.event("applied", APPLY);
    assert_eq!(applied["change"], 3, "{applied}");
    let defrags = w
        .seen
        .iter()
        .filter(|v| {
            v["event"] == "step_started"
                && v["description"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("defragment"))
        })
        .count();
    assert_eq!(defrags, 3, "{:#?}", w.seen);
    let after = backends(&site);
    for (b, a) in before.iter().zip(&after) {
        assert!(a.0 < b.0, "dbSize before {before:?}, after {after:?}");
    }
    assert_eq!(w.terminate(), Some(0));
    // The rule holds nowhere now: nothing to do.
    let out = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
