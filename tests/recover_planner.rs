//! Quorum-loss detection and the recovery plan (`--recover-from`), on live
//! states written by hand: what `plan` says without the flag, what it plans
//! with it, what it refuses, and how it finishes a recovery stopped after its
//! forced start.

#[macro_use]
mod common;

use common::plans::{kinds, plan_for};
use common::{HostSpec, cluster, desired_with, live};
use etcdplan::config::Desired;
use etcdplan::model::MemberId;
use etcdplan::observe::{DataDir, Listener, Live, LiveCluster};
use etcdplan::plan::recover::{self, Recovery};
use etcdplan::plan::{Options, Plan, Step};

/// Members `down` (0-based) are lost; the others answer Status with these
/// raft indexes but have no leader and no quorum.
fn lost(d: &Desired, down: &[usize], indexes: &[u64]) -> LiveCluster {
    let healthy: Vec<bool> = (0..d.members.len()).map(|i| !down.contains(&i)).collect();
    let mut c = cluster(d, &healthy, 0);
    for (i, m) in c.members.iter_mut().enumerate() {
        if let Ok(s) = &mut m.status {
            s.reported.leader = None;
            s.reported.raft_index = indexes[i];
            s.reported.raft_applied_index = indexes[i];
            s.reported.errors = vec!["etcdserver: no leader".into()];
            s.quorum_read = Err("context deadline exceeded".into());
        }
    }
    c
}

/// Hosts: the survivors run; the lost members' etcd is stopped and their
/// data dirs are gone.
fn hosts(d: &Desired, down: &[usize]) -> Vec<HostSpec> {
    (0..d.members.len())
        .map(|i| {
            if down.contains(&i) {
                HostSpec::empty()
            } else {
                HostSpec::running_from(d)
            }
        })
        .collect()
}

fn three_lost_two() -> (Desired, Live) {
    let d = desired_with(3, "");
    let l = live(
        &d,
        &hosts(&d, &[1, 2]),
        Some(lost(&d, &[1, 2], &[57, 0, 0])),
    );
    (d, l)
}

fn recover_plan(d: &Desired, l: &Live, from: &str, allow_data_loss: bool) -> Plan {
    let opts = Options {
        snapshot_dir: "/srv/etcdplan/snapshots".into(),
        ..Options::default()
    };
    let r = Recovery {
        from: from.into(),
        allow_data_loss,
    };
    recover::build(d, l, &r, &opts)
}

fn blocked_by(p: &Plan) -> String {
    p.blockers
        .iter()
        .map(|b| format!("{} / {}", b.message, b.help))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_lost_quorum_is_explained_in_one_paragraph_and_nothing_is_planned() {
    let (d, l) = three_lost_two();
    let p = plan_for(&d, &l);
    assert!(
        p.steps.is_empty() && p.changes.is_empty(),
        "{:?}",
        kinds(&p)
    );
    assert_eq!(p.blockers.len(), 1, "{}", blocked_by(&p));
    let b = &p.blockers[0];
    for needle in [
        "lost its quorum: 1 of its 3 voters answers, 2 are needed. Down: etcd-2, etcd-3.",
        "etcd-1 answers (raft index 57, applied 57, revision 40); its host 10.0.0.11 answers: etcd runs, its data dir /var/lib/etcd holds member data.",
        "etcd-2 does not answer; its host 10.0.0.12 answers: etcd is stopped, its data dir /var/lib/etcd is gone.",
        "The most up-to-date member that answers is etcd-1 (raft index 57).",
    ] {
        assert!(b.message.contains(needle), "{needle}\n{}", b.message);
    }
    assert!(!b.message.contains('\n'), "one paragraph: {}", b.message);
    assert!(b.help.contains("--recover-from etcd-1"), "{}", b.help);
    assert!(p.cannot_apply().is_some());
}

#[test]
fn the_recovery_copies_fences_forces_once_restarts_verifies_then_adds_learner_first() {
    let (d, l) = three_lost_two();
    let p = recover_plan(&d, &l, "etcd-1", false);
    assert!(p.blockers.is_empty(), "{}", blocked_by(&p));
    let k = kinds(&p);
    let at = |needle: &str| {
        k.iter()
            .position(|s| s.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle}: {k:#?}"))
    };
    assert_eq!(at("stop etcd-1 and copy its data"), 0);
    assert!(at("fence etcd-2") < at("start etcd-1 once with --force-new-cluster"));
    assert!(at("fence etcd-3") < at("start etcd-1 once with --force-new-cluster"));
    assert!(
        at("start etcd-1 once with --force-new-cluster")
            < at("stop the forced start of etcd-1 and start it normally")
    );
    assert!(at("stop the forced start of etcd-1") < at("check etcd-1 is a healthy one-member"));
    // Then a scale-up's own steps: a snapshot, each member learner first.
    let verified = at("check etcd-1 is a healthy one-member");
    assert!(verified < at("take a snapshot"));
    assert!(verified < at("add etcd-2 as a learner"));
    assert!(at("add etcd-2 as a learner") < at("promote etcd-2 to voter"));
    assert!(at("promote etcd-2 to voter") < at("add etcd-3 as a learner"));
    assert!(at("add etcd-3 as a learner") < at("promote etcd-3 to voter"));
    // Only one forced start, and every step waits for the one before.
    let forced = p
        .steps
        .iter()
        .filter(|s| matches!(s.step, Step::ForceNewCluster { .. }))
        .count();
    assert_eq!(forced, 1);
    for s in p.steps.iter().skip(1) {
        assert!(!s.after.is_empty(), "step {} waits for nothing", s.index);
        assert!(s.after.iter().all(|a| *a < s.index));
    }
    assert_eq!(recover::survivor_of(&p).map(|m| m.as_str()), Some("etcd-1"));
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("lock file on every host")),
        "{:?}",
        p.notes
    );
    let Some(Step::VerifyRecovered { revision, id, .. }) = p
        .steps
        .iter()
        .map(|s| &s.step)
        .find(|s| matches!(s, Step::VerifyRecovered { .. }))
    else {
        panic!("no verify step: {k:#?}");
    };
    assert_eq!((*revision, *id), (40, MemberId(0x1000)));
    plan_snapshot!("recover-from-etcd-1", &p, &d);
}

#[test]
fn recovery_is_refused_for_an_unknown_member_a_silent_one_and_a_holding_quorum() {
    let (d, l) = three_lost_two();
    let p = recover_plan(&d, &l, "etcd-9", false);
    assert!(p.steps.is_empty());
    assert!(
        blocked_by(&p).contains("no member of that name"),
        "{}",
        blocked_by(&p)
    );

    let p = recover_plan(&d, &l, "etcd-2", false);
    assert!(p.steps.is_empty());
    assert!(
        blocked_by(&p).contains("etcd-2: it does not answer"),
        "{}",
        blocked_by(&p)
    );

    // One member down of three: the quorum holds, nothing to recover.
    let healthy = live(
        &d,
        &hosts(&d, &[2]),
        Some(cluster(&d, &[true, true, false], 0)),
    );
    let p = recover_plan(&d, &healthy, "etcd-1", false);
    assert!(p.steps.is_empty());
    assert!(
        blocked_by(&p).contains("the quorum is not lost: 2 of 3 voters answer (2 needed)"),
        "{}",
        blocked_by(&p)
    );
    // … and the normal plan does not mention a loss.
    assert!(
        plan_for(&d, &healthy)
            .blockers
            .iter()
            .all(|b| !b.message.contains("quorum"))
    );
}

#[test]
fn recovery_from_a_member_behind_another_needs_allow_data_loss() {
    let d = desired_with(5, "");
    let l = live(
        &d,
        &hosts(&d, &[2, 3, 4]),
        Some(lost(&d, &[2, 3, 4], &[42, 50, 0, 0, 0])),
    );
    let p = plan_for(&d, &l);
    assert!(
        blocked_by(&p)
            .contains("The most up-to-date member that answers is etcd-2 (raft index 50)"),
        "{}",
        blocked_by(&p)
    );
    let p = recover_plan(&d, &l, "etcd-1", false);
    assert!(p.steps.is_empty());
    assert!(
        blocked_by(&p).contains("etcd-2 is more up to date (raft index 50 against 42)")
            && blocked_by(&p).contains("--allow-data-loss"),
        "{}",
        blocked_by(&p)
    );
    let p = recover_plan(&d, &l, "etcd-1", true);
    assert!(p.blockers.is_empty(), "{}", blocked_by(&p));
    // The other survivor is fenced too: a forced cluster must be alone.
    assert!(kinds(&p).iter().any(|s| s.starts_with("fence etcd-2 ")));
    let p = recover_plan(&d, &l, "etcd-2", false);
    assert!(p.blockers.is_empty(), "{}", blocked_by(&p));
    assert!(kinds(&p).iter().any(|s| s.starts_with("fence etcd-1 ")));
}

#[test]
fn a_recovery_stopped_after_its_forced_start_is_finished_from_there() {
    let d = desired_with(3, "");
    // etcd-1 runs with the flag, alone; the others were fenced (data moved aside).
    let mut specs = hosts(&d, &[1, 2]);
    for s in &mut specs[1..] {
        s.data = DataDir::Empty;
    }
    specs[0].foreign = Some(Listener {
        pid: 1000,
        cmdline: vec![
            "/usr/bin/etcd".into(),
            "--config-file".into(),
            "/etc/etcd/etcd.conf.yml".into(),
            "--force-new-cluster".into(),
        ],
        unit: None,
    });
    let mut c = cluster(&d, &[true, true, true], 0);
    c.members.truncate(1);
    let l = live(&d, &specs, Some(c));
    let p = plan_for(&d, &l);
    assert!(p.steps.is_empty());
    assert!(
        blocked_by(&p).contains("etcd-1 runs with --force-new-cluster")
            && blocked_by(&p).contains("apply --recover-from etcd-1"),
        "{}",
        blocked_by(&p)
    );
    let p = recover_plan(&d, &l, "etcd-1", false);
    assert!(p.blockers.is_empty(), "{}", blocked_by(&p));
    let k = kinds(&p);
    assert!(
        k[0].starts_with("stop the forced start of etcd-1"),
        "{k:#?}"
    );
    assert!(
        k[1].starts_with("check etcd-1 is a healthy one-member"),
        "{k:#?}"
    );
    assert!(
        !k.iter()
            .any(|s| s.contains("copy") || s.starts_with("fence")),
        "{k:#?}"
    );
    assert!(
        k.iter().any(|s| s.starts_with("add etcd-2 as a learner")),
        "{k:#?}"
    );
    assert!(
        k.iter().any(|s| s.starts_with("add etcd-3 as a learner")),
        "{k:#?}"
    );
    let p = recover_plan(&d, &l, "etcd-2", false);
    assert!(blocked_by(&p).contains("finish that recovery with `--recover-from etcd-1`"));
}

#[test]
fn stopped_members_with_their_data_are_started_not_recovered() {
    let d = desired_with(3, "");
    let mut specs = hosts(&d, &[1, 2]);
    for s in &mut specs[1..] {
        s.data = DataDir::Member;
        s.config_from = Some(d.clone());
    }
    let l = live(&d, &specs, Some(lost(&d, &[1, 2], &[57, 0, 0])));
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{}", blocked_by(&p));
    assert!(
        kinds(&p).contains(&"start etcd-2".to_owned()),
        "{:?}",
        kinds(&p)
    );
    assert!(p.notes.iter().any(|n| n.contains("brings the quorum back")));
}

#[test]
fn with_no_member_answering_the_only_member_with_data_is_recovered_from() {
    let d = desired_with(3, "");
    // etcd-1 was stopped by a recovery (or restarted without a quorum: it
    // then answers nothing); the others lost their data.
    let mut specs = hosts(&d, &[1, 2]);
    specs[0].running = false;
    specs[0].data_owner_id = Some((MemberId(0x1000), etcdplan::model::ClusterId(0xc1)));
    for s in &mut specs[1..] {
        s.data = DataDir::Empty;
    }
    let l = live(&d, &specs, None);
    let p = recover_plan(&d, &l, "etcd-1", false);
    assert!(p.blockers.is_empty(), "{}", blocked_by(&p));
    let k = kinds(&p);
    assert!(k[0].starts_with("stop etcd-1 and copy its data"), "{k:#?}");
    assert!(k.iter().any(|s| s.starts_with("fence etcd-2")), "{k:#?}");
    assert!(
        k.iter()
            .any(|s| s.starts_with("start etcd-1 once with --force-new-cluster"))
    );
    assert!(
        k.iter().any(|s| s.starts_with("add etcd-3 as a learner")),
        "{k:#?}"
    );
    assert!(
        p.notes[0].starts_with("No member answers the etcd API"),
        "{:?}",
        p.notes
    );

    // Another member with data: which is newer cannot be told.
    specs[1].data = DataDir::Member;
    let l = live(&d, &specs, None);
    let p = recover_plan(&d, &l, "etcd-1", false);
    assert!(p.steps.is_empty());
    assert!(
        blocked_by(&p).contains("etcd-2 also holds member data"),
        "{}",
        blocked_by(&p)
    );
    let p = recover_plan(&d, &l, "etcd-1", true);
    assert!(p.blockers.is_empty(), "{}", blocked_by(&p));
    // A member whose data the WAL does not name is not a survivor.
    let p = recover_plan(&d, &l, "etcd-2", true);
    assert!(blocked_by(&p).contains("does not show member data whose WAL names its id"));
}

#[test]
fn watch_never_recovers() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("etcdfile.toml");
    std::fs::write(&file, common::text_with(3, "")).map_err(|e| e.to_string())?;
    let out = assert_cmd::Command::cargo_bin("etcdplan")
        .map_err(|e| e.to_string())?
        .args(["watch", "--auto-approve", "--recover-from", "etcd-1", "-f"])
        .arg(&file)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .map_err(|e| e.to_string())?;
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("watch never recovers a lost quorum"),
        "{said}"
    );
    Ok(())
}

#[test]
fn a_survivor_marked_by_an_unfinished_recovery_is_not_started_by_a_plain_plan() {
    let d = desired_with(3, "");
    let mut specs = hosts(&d, &[1, 2]);
    specs[0].running = false;
    specs[0].data_owner_id = Some((MemberId(0x1000), etcdplan::model::ClusterId(0xc1)));
    // What the probe reports while the recovery mark is on the host.
    specs[0].problems = vec![etcdplan::observe::ProbeProblem {
        message: "a quorum-loss recovery from etcd-1 started here and has not finished".into(),
        help: "finish it with `etcdplan apply --recover-from etcd-1`".into(),
    }];
    for s in &mut specs[1..] {
        s.data = DataDir::Empty;
    }
    let l = live(&d, &specs, None);
    let p = plan_for(&d, &l);
    assert!(
        blocked_by(&p).contains("a quorum-loss recovery from etcd-1 started here"),
        "{}",
        blocked_by(&p)
    );
    assert!(p.cannot_apply().is_some());
    // The recovery itself goes on, and its re-adds are planned.
    let p = recover_plan(&d, &l, "etcd-1", false);
    assert!(p.blockers.is_empty(), "{}", blocked_by(&p));
    assert!(kinds(&p).iter().any(|s| s.starts_with("promote etcd-3")));
}

#[test]
fn with_no_member_answering_a_plain_plan_warns_against_bootstrapping_the_lost_afresh() {
    // etcd-1 restarted without a quorum (it then answers nothing); the
    // others lost their data: the plain plan starts etcd-1 and creates the
    // others, right only for a bootstrap that stopped half way.
    let d = desired_with(3, "");
    let mut specs = hosts(&d, &[1, 2]);
    specs[0].running = false;
    let l = live(&d, &specs, None);
    let p = plan_for(&d, &l);
    assert!(
        p.notes.iter().any(|n| n
            .contains("etcd-1 starts on its data while etcd-2, etcd-3 are created empty")
            && n.contains("--recover-from etcd-1")),
        "{:?}",
        p.notes
    );
}
