//! The restart plan (`etcdplan restart MEMBER`) against described live
//! states: the leader hands over first, a follower and a learner just
//! restart, and a restart that would put the quorum at risk, or of a member
//! that is not there or not running, is refused with the reason and no step.

mod common;

use common::plans::kinds;
use common::{HostSpec, cluster, desired_with, live};
use etcdplan::config::Desired;
use etcdplan::model::MemberName;
use etcdplan::observe::{HostState, Live};
use etcdplan::plan::{Plan, Step, restart};

/// The plan's goldens, named after this file.
fn snapshot(name: &str, p: &Plan, d: &Desired) {
    crate::plan_snapshot!(name, p, d);
}

fn name(s: &str) -> MemberName {
    MemberName::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// `n` members, all running as the etcdfile says; `healthy[i]` per member
/// (an unhealthy one's etcd is stopped), led by member `leader`.
fn running(n: usize, healthy: &[bool], leader: usize) -> (Desired, Live) {
    let d = desired_with(n, "");
    let specs: Vec<HostSpec> = (0..n)
        .map(|i| {
            let mut s = HostSpec::running_from(&d);
            s.running = healthy[i];
            s
        })
        .collect();
    let l = live(&d, &specs, Some(cluster(&d, healthy, leader)));
    (d, l)
}

fn blocker(p: &Plan) -> String {
    assert!(!p.applicable, "{p:#?}");
    assert!(p.steps.is_empty(), "a refused restart has no step: {p:#?}");
    p.blockers
        .first()
        .map(|b| format!("{} → {}", b.message, b.help))
        .unwrap_or_default()
}

#[test]
fn the_leader_restarts_without_a_move_and_says_etcd_hands_over() {
    let (d, l) = running(3, &[true; 3], 0);
    let p = restart::build(&d, &l, &name("etcd-1"));
    assert!(p.applicable, "{:?}", p.blockers);
    assert_eq!(
        kinds(&p),
        [
            "restart etcd-1 (leader: etcd hands leadership over as it stops)",
            "wait until etcd-1 healthy"
        ]
    );
    assert!(matches!(
        &p.steps[0].step,
        Step::Restart { leads: true, .. }
    ));
    assert_eq!(p.steps[1].after, [0]);
    assert_eq!(
        (p.summary.add, p.summary.change, p.summary.remove),
        (0, 1, 0)
    );
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    snapshot("leader", &p, &d);
}

#[test]
fn a_follower_restarts_without_moving_leadership() {
    let (d, l) = running(3, &[true; 3], 0);
    let p = restart::build(&d, &l, &name("etcd-2"));
    assert!(p.applicable, "{:?}", p.blockers);
    assert_eq!(kinds(&p), ["restart etcd-2", "wait until etcd-2 healthy"]);
    snapshot("follower", &p, &d);
}

#[test]
fn a_learner_restarts_without_moving_leadership() {
    let (d, mut l) = running(4, &[true; 4], 0);
    if let Some(c) = l.cluster.as_mut() {
        c.members[3].is_learner = true;
        if let Ok(s) = c.members[3].status.as_mut() {
            s.reported.is_learner = true;
        }
    }
    let p = restart::build(&d, &l, &name("etcd-4"));
    assert!(p.applicable, "{:?}", p.blockers);
    assert_eq!(kinds(&p), ["restart etcd-4", "wait until etcd-4 healthy"]);
    snapshot("learner", &p, &d);
}

#[test]
fn a_restart_that_would_lose_the_quorum_is_refused_with_the_figures() {
    let (d, l) = running(3, &[true, true, false], 0);
    let p = restart::build(&d, &l, &name("etcd-1"));
    assert_eq!(
        blocker(&p),
        "etcd-3 is down: restarting etcd-1 now would leave 1 of 3 voters up, below the quorum of 2 → bring etcd-3 back first (`etcdplan apply` starts a stopped member), then restart etcd-1; nothing was changed"
    );
    assert_eq!(
        p.cannot_apply().as_deref(),
        Some(p.blockers[0].message.as_str())
    );
    // Shown as deferred: the summary counts no change.
    assert!(p.changes.is_empty() && p.deferred.len() == 1);
    assert_eq!(p.summary.change, 0);
    snapshot("refused", &p, &d);

    // Five voters, two down: a third would be one too many.
    let (d, l) = running(5, &[true, false, true, false, true], 0);
    let p = restart::build(&d, &l, &name("etcd-5"));
    assert!(
        blocker(&p).starts_with(
            "etcd-2, etcd-4 are down: restarting etcd-5 now would leave 2 of 5 voters up, below the quorum of 3"
        ),
        "{}",
        blocker(&p)
    );
    // One down of five: still within the fault tolerance.
    let (d, l) = running(5, &[true, false, true, true, true], 0);
    assert!(restart::build(&d, &l, &name("etcd-1")).applicable);
}

#[test]
fn a_cluster_without_fault_tolerance_refuses_every_restart() {
    for n in [1, 2] {
        let (d, l) = running(n, &vec![true; n], 0);
        let p = restart::build(&d, &l, &name("etcd-1"));
        let b = blocker(&p);
        assert!(
            b.contains(&format!(
                "tolerates no member down: restarting etcd-1 now would leave {} of {n}",
                n - 1
            )),
            "{b}"
        );
        assert!(b.contains("grow the cluster to 3 members"), "{b}");
    }
}

#[test]
fn a_stopped_member_is_started_by_apply_not_restarted() {
    let (d, l) = running(3, &[true, true, false], 0);
    let p = restart::build(&d, &l, &name("etcd-3"));
    let b = blocker(&p);
    assert!(
        b.starts_with("etcd-3 is not running → `etcdplan apply` starts it"),
        "{b}"
    );
    assert!(p.changes.is_empty() && p.deferred.is_empty());
    snapshot("stopped", &p, &d);
}

#[test]
fn members_the_command_cannot_find_are_refused() {
    let (d, l) = running(3, &[true; 3], 0);
    let b = blocker(&restart::build(&d, &l, &name("etcd-9")));
    assert!(
        b.starts_with(
            "etcd-9 is not a member of the etcdfile (its members: etcd-1, etcd-2, etcd-3)"
        ),
        "{b}"
    );

    // In the etcdfile, but not in the cluster.
    let (d, mut l) = running(3, &[true; 3], 0);
    if let Some(c) = l.cluster.as_mut() {
        c.members.remove(2);
    }
    let b = blocker(&restart::build(&d, &l, &name("etcd-3")));
    assert!(
        b.starts_with("etcd-3 is not a member of the running cluster → `etcdplan apply` adds it"),
        "{b}"
    );

    // A cluster that does not answer.
    let (d, mut l) = running(3, &[true; 3], 0);
    l.cluster = None;
    let b = blocker(&restart::build(&d, &l, &name("etcd-1")));
    assert!(b.contains("does not answer"), "{b}");

    // A host that does not answer.
    let (d, mut l) = running(3, &[true; 3], 0);
    l.hosts.insert(
        name("etcd-2"),
        HostState::Unreachable {
            reason: "ssh: connection timed out".into(),
            advice: "check the host".into(),
        },
    );
    let b = blocker(&restart::build(&d, &l, &name("etcd-2")));
    assert!(
        b.starts_with("etcd-2's host 10.0.0.12 does not answer: ssh: connection timed out"),
        "{b}"
    );
}

#[test]
fn a_pending_change_is_named_and_left_to_apply() {
    let old = desired_with(3, "");
    let d = desired_with(3, "quota_backend_bytes = \"4GiB\"\n");
    let l = live(
        &d,
        &vec![HostSpec::running_from(&old); 3],
        Some(cluster(&d, &[true; 3], 0)),
    );
    let p = restart::build(&d, &l, &name("etcd-2"));
    assert!(p.applicable, "{:?}", p.blockers);
    assert_eq!(kinds(&p), ["restart etcd-2", "wait until etcd-2 healthy"]);
    assert!(
        p.notes
            .iter()
            .any(|n| n.starts_with("etcd-2 has a change pending in the etcdfile")),
        "{:?}",
        p.notes
    );
    // The restart writes nothing: etcd reads the files on its host now.
    assert!(p.changes.iter().all(|c| c.files.is_empty()));
}
