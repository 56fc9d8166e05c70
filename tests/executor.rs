//! The executor against the in-memory fakes (`etcdplan::io::fake`): plans
//! built by the real planner from what `observe` reads over the fakes, then
//! walked by `execute::apply` while the fake cluster changes under it. No
//! root, no network, no etcd: the whole file runs in about a second.
//!
//! Each failure test covers one check of the executor and fails when that
//! check is removed: the health gate, the quorum re-check before a
//! disruption, the exit-code check and recap of a failed step, and the stop
//! flag between steps.

mod common;

use common::fakes::apply_with as apply;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::desired_with;
use common::plans::{QUOTA_STEPS, kinds};
use etcdplan::config::Desired;
use etcdplan::execute::{Event, GateError, StepError};
use etcdplan::io::fake::FakeCluster;
use etcdplan::io::{EtcdApi, HostMap};
use etcdplan::live::{fingerprint, fingerprint_changes};
use etcdplan::plan::{self, Plan, Step};
use etcdplan::{diff, observe};

/// A running 3-member cluster made from the default etcdfile (etcd-2 leads),
/// and the etcdfile that changes its quota: a rolling restart of all three.
fn quota_change() -> (Desired, FakeCluster, HostMap) {
    let old = desired_with(3, "");
    let d = desired_with(3, "quota_backend_bytes = \"4GiB\"\n");
    let fake = FakeCluster::running(&old, "3.4.23", 1);
    let hosts = fake.hosts(&d);
    (d, fake, hosts)
}

/// The plan the real planner makes from what `observe` reads over the fakes.
async fn plan_now(d: &Desired, hosts: &HostMap, fake: &FakeCluster) -> Plan {
    let live = observe::observe(d, hosts, fake, &Default::default()).await;
    plan::build(d, &live, diff::diff(d, &live))
}

/// The log lines after the mark `text`.
fn after_mark(fake: &FakeCluster, text: &str) -> Vec<String> {
    let calls = fake.calls();
    let at = calls.iter().position(|c| *c == format!("mark {text}"));
    match at {
        Some(i) => calls[i + 1..].to_vec(),
        None => panic!("no mark {text:?} in {calls:#?}"),
    }
}

#[tokio::test]
async fn observe_over_the_fakes_plans_a_rolling_restart_that_applies_and_settles() {
    let t = Instant::now();
    let (d, fake, hosts) = quota_change();
    let p = plan_now(&d, &hosts, &fake).await;
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert_eq!(kinds(&p), QUOTA_STEPS);
    let stop = AtomicBool::new(false);
    let report = apply(&d, &hosts, &fake, &p, &stop, &mut |_| {}).await;
    assert!(report.is_ok(), "{report:?}");
    // Every member restarted with the new config, leader last, and nothing is left.
    let starts: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.contains(": start "))
        .collect();
    assert_eq!(
        starts,
        [
            "host 10.0.0.11: start etcd-1",
            "host 10.0.0.13: start etcd-3",
            "host 10.0.0.12: start etcd-2"
        ]
    );
    assert_eq!(fake.leader().as_deref(), Some("etcd-1"));
    let again = plan_now(&d, &hosts, &fake).await;
    assert!(again.is_empty(), "{:?}", kinds(&again));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

/// A leader's restart transfers nothing itself (etcd's graceful stop hands
/// leadership over) and says who leads after it: the one the plan expected
/// (etcd-2), and one found leading at run time (etcd-1, after an election
/// the plan did not see), whose restart was planned as a follower's.
#[tokio::test]
async fn a_leader_restart_moves_no_leader_itself_and_says_who_leads_after() {
    let (d, fake, hosts) = quota_change();
    let p = plan_now(&d, &hosts, &fake).await;
    assert_eq!(kinds(&p), QUOTA_STEPS);
    let etcd_1 = fake.members()[0].id;
    fake.move_leader(&d.members[1].client_url(&d.tls), etcd_1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    fake.mark("apply");
    let mut said = Vec::new();
    let stop = AtomicBool::new(false);
    let r = apply(&d, &hosts, &fake, &p, &stop, &mut |ev| {
        if let Event::StepFinished { outcome, .. } = ev {
            said.extend(outcome.detail.clone());
        }
    })
    .await;
    assert!(r.is_ok(), "{r:?}");
    let moves: Vec<String> = after_mark(&fake, "apply")
        .into_iter()
        .filter(|c| c.contains("move_leader"))
        .collect();
    assert!(moves.is_empty(), "{moves:?}");
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[0].starts_with("etcd-1 led; "), "{said:?}");
    assert!(said[1].starts_with("etcd-2 led; "), "{said:?}");
}

#[tokio::test]
async fn the_live_fingerprint_over_the_fakes_sees_a_change() {
    // What a stale saved plan check needs: the same observe twice gives the
    // same fingerprint, and a change in between shows.
    let (d, fake, hosts) = quota_change();
    let before = fingerprint(&observe::observe(&d, &hosts, &fake, &Default::default()).await);
    let same = fingerprint(&observe::observe(&d, &hosts, &fake, &Default::default()).await);
    assert_eq!(before, same);
    fake.kill("etcd-3");
    let after = fingerprint(&observe::observe(&d, &hosts, &fake, &Default::default()).await);
    let changes = fingerprint_changes(&before, &after);
    assert!(
        changes.iter().any(|c| c.starts_with("host of etcd-3")),
        "{changes:?}"
    );
}

#[tokio::test]
async fn a_gate_that_times_out_stops_the_walk_and_names_the_member() {
    let (d, fake, hosts) = quota_change();
    let p = plan_now(&d, &hosts, &fake).await;
    // etcd-1 restarts but its etcd never answers.
    fake.stall_on_start("etcd-1");
    let stop = AtomicBool::new(false);
    let r = apply(&d, &hosts, &fake, &p, &stop, &mut |_| {}).await;
    let Err(e) = r else {
        panic!("the apply went through a member that never became healthy");
    };
    assert_eq!(e.index, 1, "{e}");
    assert_eq!(e.description, "wait until etcd-1 healthy");
    match &e.error {
        StepError::Gate(GateError::Timeout { last, .. }) => {
            assert!(last.starts_with("etcd-1: "), "{last}");
        }
        other => panic!("not a gate timeout: {other}"),
    }
    assert_eq!(e.done, QUOTA_STEPS[..1]);
    assert_eq!(e.remaining, QUOTA_STEPS[2..]);
    // Nothing was done to the other members.
    let touched: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("host 10.0.0.12") || c.starts_with("host 10.0.0.13"))
        .filter(|c| !c.contains(": probe ") && !c.contains(": check "))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
}

#[tokio::test]
async fn a_member_that_dies_between_steps_makes_the_quorum_check_refuse() {
    let (d, fake, hosts) = quota_change();
    let p = plan_now(&d, &hosts, &fake).await;
    let killer = fake.clone();
    let stop = AtomicBool::new(false);
    let r = apply(&d, &hosts, &fake, &p, &stop, &mut |ev| {
        // etcd-1 is back and healthy: now it dies.
        if let Event::StepFinished { index: 1, .. } = ev {
            killer.kill("etcd-1");
            killer.mark("etcd-1 died");
        }
    })
    .await;
    let Err(e) = r else {
        panic!("restarted etcd-3 with etcd-1 down");
    };
    assert_eq!(
        (e.index, e.description.as_str()),
        (2, "write 1 file and restart etcd-3")
    );
    match &e.error {
        StepError::Unsafe { why, .. } => assert!(why.contains("etcd-1"), "{why}"),
        other => panic!("not a quorum refusal: {other}"),
    }
    // etcd-3 was neither stopped nor asked to hand over anything, and its
    // new file was not written (the write comes after the quorum check).
    let after = after_mark(&fake, "etcd-1 died");
    let acted: Vec<&String> = after
        .iter()
        .filter(|c| c.starts_with("host ") || c.starts_with("etcd move_leader"))
        .collect();
    assert!(acted.is_empty(), "{acted:?}");
    assert!(fake.disk("10.0.0.13").is_some_and(|h| h.running));
}

#[tokio::test]
async fn a_step_that_fails_half_way_is_reported_with_what_is_done_and_what_remains() {
    let (d, fake, hosts) = quota_change();
    let p = plan_now(&d, &hosts, &fake).await;
    // The second restart's start fails: etcd-3 is stopped, not started again.
    fake.fail_script("start", 2);
    let stop = AtomicBool::new(false);
    let r = apply(&d, &hosts, &fake, &p, &stop, &mut |_| {}).await;
    let Err(e) = r else {
        panic!("a failed start went unnoticed");
    };
    assert_eq!((e.index, e.total), (2, 6));
    assert_eq!(e.description, "write 1 file and restart etcd-3");
    match &e.error {
        StepError::Command { what, code, .. } => {
            assert_eq!((what.as_str(), *code), ("start etcd-3", 1));
        }
        other => panic!("not the failed command: {other}"),
    }
    assert_eq!(e.done, QUOTA_STEPS[..2]);
    assert_eq!(e.remaining, QUOTA_STEPS[3..]);
    assert!(
        e.to_string()
            .starts_with("step 3 of 6 failed: write 1 file and restart etcd-3: "),
        "{e}"
    );
    // Half way indeed: stopped, and nothing ran after the failed start.
    assert!(fake.disk("10.0.0.13").is_some_and(|h| !h.running));
    let calls = fake.calls();
    let failed = calls
        .iter()
        .position(|c| c.ends_with("start etcd-3 failed (test hook)"));
    assert!(
        failed.is_some_and(|i| calls[i + 1..].iter().all(|c| !c.starts_with("host "))),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn a_signal_between_steps_stops_the_walk_before_the_next_one() {
    let (d, fake, hosts) = quota_change();
    let p = plan_now(&d, &hosts, &fake).await;
    let stop = AtomicBool::new(false);
    let marker = fake.clone();
    let r = apply(&d, &hosts, &fake, &p, &stop, &mut |ev| {
        if let Event::StepFinished { index: 2, .. } = ev {
            stop.store(true, Ordering::SeqCst);
            marker.mark("signal");
        }
    })
    .await;
    let Err(e) = r else {
        panic!("the walk went on after the signal");
    };
    assert!(matches!(e.error, StepError::Interrupted), "{e}");
    assert_eq!(e.index, 3);
    assert_eq!(e.done, QUOTA_STEPS[..3]);
    assert_eq!(e.remaining, QUOTA_STEPS[4..]);
    let after = after_mark(&fake, "signal");
    assert!(after.is_empty(), "ran after the signal: {after:?}");
}

#[tokio::test]
async fn a_new_member_joins_as_a_learner_and_is_promoted() {
    let old = desired_with(3, "");
    let d = desired_with(4, "");
    let fake = FakeCluster::running(&old, "3.4.23", 0);
    fake.empty_host("10.0.0.14", "3.4.23");
    let hosts = fake.hosts(&d);
    let live = observe::observe(&d, &hosts, &fake, &Default::default()).await;
    let snapshots = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = plan::Options {
        snapshot_dir: snapshots.path().to_owned(),
        ..plan::Options::default()
    };
    let p = plan::build_with(&d, &live, diff::diff(&d, &live), &opts);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert_eq!(
        kinds(&p)[1..],
        [
            "add etcd-4 as a learner (http://10.0.0.14:2380)",
            "write etcd-4's config (initial-cluster from the member list)",
            "start etcd-4",
            "wait until learner etcd-4 has caught up",
            "promote etcd-4 to voter",
            "wait until etcd-4 healthy",
        ]
    );
    assert!(matches!(p.steps[0].step, Step::Snapshot { .. }));
    let stop = AtomicBool::new(false);
    let learner_seen = std::sync::Arc::new(AtomicBool::new(false));
    let (watch, seen) = (fake.clone(), learner_seen.clone());
    let r = apply(&d, &hosts, &fake, &p, &stop, &mut |ev| {
        if let Event::StepFinished { .. } = ev
            && watch
                .members()
                .iter()
                .any(|m| m.name == "etcd-4" && m.learner)
        {
            seen.store(true, Ordering::SeqCst);
        }
    })
    .await;
    assert!(r.is_ok(), "{r:?}\nplan: {:?}", kinds(&p));
    assert!(
        learner_seen.load(Ordering::SeqCst),
        "etcd-4 was never a learner"
    );
    let members = fake.members();
    assert_eq!(members.len(), 4);
    assert!(members.iter().all(|m| !m.learner && !m.name.is_empty()));
    let again = plan_now(&d, &hosts, &fake).await;
    assert!(again.is_empty(), "{:?}", kinds(&again));
}

#[tokio::test]
async fn a_saved_plan_runs_as_saved_and_a_stale_one_is_refused() {
    use etcdplan::plan::file::StaleError;
    let (d, fake, hosts) = quota_change();
    let p = plan_now(&d, &hosts, &fake).await;
    // What `plan --out` writes and `apply FILE` reads back.
    let text = serde_json::to_string(&p).unwrap_or_else(|e| panic!("{e}"));
    let saved: Plan = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));

    // Stale: a member went down after the plan was saved. Refused, naming it.
    fake.kill("etcd-3");
    let now = observe::observe(&d, &hosts, &fake, &Default::default()).await;
    match saved.check_saved(&d.file_hash, &fingerprint(&now)) {
        Err(StaleError::Live(what)) => {
            assert!(what.iter().any(|w| w.contains("etcd-3")), "{what:?}");
        }
        other => panic!("a stale plan was not refused: {other:?}"),
    }

    // Fresh: the same saved plan on an unchanged cluster runs its own steps.
    let (d, fake, hosts) = quota_change();
    let now = observe::observe(&d, &hosts, &fake, &Default::default()).await;
    assert_eq!(saved.check_saved(&d.file_hash, &fingerprint(&now)), Ok(()));
    let mut seen = Vec::new();
    let stop = AtomicBool::new(false);
    let r = apply(&d, &hosts, &fake, &saved, &stop, &mut |ev| {
        if let Event::StepStarted { description, .. } = ev {
            seen.push(description);
        }
    })
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(seen, QUOTA_STEPS);
}

/// A running 3-member cluster (etcd-2 leads) whose every etcd was started by
/// hand: the etcdfile describes it as it runs, so only takeovers remain.
fn hand_built() -> (Desired, FakeCluster, HostMap) {
    let d = desired_with(3, "");
    let fake = FakeCluster::running(&d, "3.4.23", 1);
    for n in ["etcd-1", "etcd-2", "etcd-3"] {
        fake.foreign(n);
    }
    let hosts = fake.hosts(&d);
    (d, fake, hosts)
}

#[tokio::test]
async fn a_hand_built_cluster_is_taken_over_member_by_member_and_settles() {
    let (d, fake, hosts) = hand_built();
    let p = plan_now(&d, &hosts, &fake).await;
    assert_eq!(
        kinds(&p),
        [
            "take etcd-1 over from the etcd process 1000 (1 file, one job on its host)",
            "wait until etcd-1 healthy",
            "take etcd-3 over from the etcd process 1002 (1 file, one job on its host)",
            "wait until etcd-3 healthy",
            "move leader etcd-2 → etcd-1",
            "take etcd-2 over from the etcd process 1001 (1 file, one job on its host)",
            "wait until etcd-2 healthy",
        ]
    );
    let ids: Vec<_> = fake.members().iter().map(|m| m.id).collect();
    let stop = AtomicBool::new(false);
    let r = apply(&d, &hosts, &fake, &p, &stop, &mut |_| {}).await;
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    // The same members, each now run by etcdplan's service with its config.
    assert_eq!(fake.members().iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    for a in ["10.0.0.11", "10.0.0.12", "10.0.0.13"] {
        let disk = fake.disk(a).unwrap_or_default();
        assert!(disk.running && !disk.foreign, "{a}: {disk:?}");
        assert_eq!(disk.job_status.as_deref(), Some("done"));
    }
    let again = plan_now(&d, &hosts, &fake).await;
    assert!(again.changes.is_empty(), "{:?}", again.changes);
}

#[tokio::test]
async fn a_takeover_whose_job_cannot_start_stops_the_walk_and_the_next_plan_takes_over_again() {
    let (d, fake, hosts) = hand_built();
    let p = plan_now(&d, &hosts, &fake).await;
    fake.fail_script("takeover etcd-3 start-job", 1);
    let stop = AtomicBool::new(false);
    let r = apply(&d, &hosts, &fake, &p, &stop, &mut |_| {}).await;
    let Err(e) = r else {
        panic!("a takeover job that did not start went unnoticed");
    };
    assert_eq!(e.index, 2, "{e}");
    assert_eq!(e.done.len(), 2, "{e}");
    // etcd-3 still runs as it did; etcd-1 was taken over; etcd-2 untouched.
    assert!(
        fake.disk("10.0.0.13")
            .is_some_and(|h| h.running && h.foreign)
    );
    assert!(fake.disk("10.0.0.11").is_some_and(|h| !h.foreign));
    assert!(fake.disk("10.0.0.12").is_some_and(|h| h.foreign));
    let again = plan_now(&d, &hosts, &fake).await;
    let members: Vec<&str> = again.changes.iter().map(|c| c.member.as_str()).collect();
    assert_eq!(members, ["etcd-3", "etcd-2"], "{:?}", again.changes);
}
