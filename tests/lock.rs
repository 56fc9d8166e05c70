//! One apply at a time (the lock in etcd), and signals: real etcd on the local
//! demo, each test in its own network namespace.

mod harness;

use std::io::BufRead as _;
use std::process::{Child, Stdio};

use harness::{Site, prerequisites, text};

fn demo(site_tag: &str) -> Option<Site> {
    if !prerequisites() {
        return None;
    }
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etcdfile.toml"))
        .unwrap_or_default();
    let site = Site::new(site_tag, &base);
    site.apply_ok();
    let five = format!(
        "{base}\n[[member]]\nname = \"etcd-4\"\naddress = \"127.0.0.14\"\n\n[[member]]\nname = \"etcd-5\"\naddress = \"127.0.0.15\"\n"
    );
    std::fs::write(site.etcdfile(), &five).unwrap_or_else(|e| panic!("{e}"));
    Some(site)
}

/// Starts `apply --auto-approve` in the background; returns it once a line
/// containing `marker` was printed, with everything printed so far.
fn apply_until(site: &Site, marker: &str) -> (Child, String) {
    let mut child = site
        .ns
        .command(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["apply", "--auto-approve", "-f"])
        .arg(site.etcdfile())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut seen = String::new();
    if let Some(err) = child.stderr.take() {
        let mut lines = std::io::BufReader::new(err);
        let mut line = String::new();
        while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
            seen.push_str(&line);
            if line.contains(marker) {
                break;
            }
            line.clear();
        }
        // Keep draining in the background so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut lines, &mut rest);
        });
    }
    (child, seen)
}

#[test]
fn two_applies_never_run_at_once() {
    let Some(site) = demo("lock2") else {
        return;
    };
    let (mut first, seen) = apply_until(&site, "add etcd-4 as a learner");
    assert!(seen.contains("add etcd-4 as a learner"), "{seen}");
    let second = site.etcdplan(&["apply", "--auto-approve"]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        text(&second).contains("the cluster is locked by"),
        "{}",
        text(&second)
    );
    assert!(
        text(&second).contains("for apply since"),
        "{}",
        text(&second)
    );
    let status = first.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    // Waiting for the lock works too: nothing left to do once it is free.
    let again = site.etcdplan(&["apply", "--auto-approve", "--lock-timeout", "30"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("No changes."), "{}", text(&again));
}

#[test]
fn a_lock_left_by_a_killed_apply_is_forced_open_by_its_id() {
    let Some(site) = demo("lockkill") else {
        return;
    };
    let (mut first, _) = apply_until(&site, "add etcd-4 as a learner");
    let _ = first.kill();
    let _ = first.wait();
    let refused = site.etcdplan(&["apply", "--auto-approve"]);
    let t = text(&refused);
    assert!(t.contains("the cluster is locked by"), "{t}");
    let id = t
        .split("lock id ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(id.len(), 12, "{t}");
    let wrong = site.etcdplan(&["force-unlock", "000000000000"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    let forced = site.etcdplan(&["force-unlock", &id]);
    assert!(forced.status.success(), "{}", text(&forced));
    let out = site.apply_ok();
    assert!(text(&out).contains("2 added"), "{}", text(&out));
}

#[test]
fn sigterm_finishes_the_current_step_and_the_next_plan_shows_the_rest() {
    let Some(site) = demo("sigterm") else {
        return;
    };
    let (mut first, _) = apply_until(&site, "added etcd-4 as learner");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .output();
    let status = first.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(1), "it did not stop cleanly");
    harness::assert_join_continued(&text(&site.etcdplan(&["plan"])), "etcd-4");
    // The lock was released on the way out.
    site.apply_ok();
    let out = site.etcdplan(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
