//! The planner's membership changes against described live states: members
//! added, removed, moved or replaced, one at a time and without losing quorum.

mod common;

use common::plans::kinds;
use common::{HostSpec, cluster, desired_with, live};

use etcdplan::diff::{self, Action, ChangeKind};
use etcdplan::live::LiveName;
use etcdplan::plan::{self, Plan, Step};

/// The plan's goldens, named after this file.
fn snapshot(name: &str, p: &Plan, d: &etcdplan::config::Desired) {
    crate::plan_snapshot!(name, p, d);
}

fn plan_opts(d: &etcdplan::config::Desired, l: &etcdplan::observe::Live, allow: bool) -> Plan {
    let opts = plan::Options {
        allow_majority_removal: allow,
        snapshot_dir: "/srv/etcdplan/snapshots".into(),
    };
    plan::build_with(d, l, diff::diff(d, l), &opts)
}

/// What is left of etcd-4's join once it runs as a learner that has not
/// caught up yet.
const CATCH_UP_THEN_PROMOTE: [&str; 3] = [
    "wait until learner etcd-4 has caught up",
    "promote etcd-4 to voter",
    "wait until etcd-4 healthy",
];

/// The steps planned for `d` over `specs` and cluster `c`, after the first
/// (the snapshot a membership change starts with).
fn after_the_snapshot(
    d: &etcdplan::config::Desired,
    specs: &[HostSpec],
    c: etcdplan::observe::LiveCluster,
) -> Vec<String> {
    kinds(&plan_opts(d, &live(d, specs, Some(c)), false))[1..].to_vec()
}

#[test]
fn members_unknown_to_the_file_are_named_and_removed_one_at_a_time() {
    let d2 = desired_with(2, "");
    let d3 = desired_with(3, "");
    let l = live(
        &d2,
        &vec![HostSpec::running_from(&d2); 2],
        Some(cluster(&d3, &[true; 3], 0)),
    );
    let p = plan_opts(&d2, &l, false);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let c = &p.changes[0];
    assert_eq!(c.action(), Action::Remove);
    assert!(
        c.reason.contains("etcd-3") && c.reason.contains("not in the etcdfile"),
        "{}",
        c.reason
    );
    assert_eq!(
        kinds(&p),
        [
            "take a snapshot into /srv/etcdplan/snapshots and check it",
            "remove etcd-3 (1002) from the cluster",
            "wait until etcd-1, etcd-2 healthy",
            "stop etcd of etcd-3 on 10.0.0.13",
            "move etcd-3's data (/var/lib/etcd/member) and config aside on 10.0.0.13",
        ]
    );
    snapshot("scale-down-3-to-2", &p, &d2);
}

#[test]
fn scale_up_adds_learners_one_at_a_time() {
    let d3 = desired_with(3, "");
    let d5 = desired_with(5, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    specs.extend(vec![HostSpec::empty(); 2]);
    let l = live(&d5, &specs, Some(cluster(&d3, &[true; 3], 1)));
    let p = plan_opts(&d5, &l, false);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert_eq!(
        (p.summary.add, p.summary.change, p.summary.remove),
        (2, 0, 0)
    );
    assert_eq!(
        kinds(&p),
        [
            "take a snapshot into /srv/etcdplan/snapshots and check it",
            "add etcd-4 as a learner (http://10.0.0.14:2380)",
            "write etcd-4's config (initial-cluster from the member list)",
            "start etcd-4",
            "wait until learner etcd-4 has caught up",
            "promote etcd-4 to voter",
            "wait until etcd-4 healthy",
            "add etcd-5 as a learner (http://10.0.0.15:2380)",
            "write etcd-5's config (initial-cluster from the member list)",
            "start etcd-5",
            "wait until learner etcd-5 has caught up",
            "promote etcd-5 to voter",
            "wait until etcd-5 healthy",
        ]
    );
    // etcd-5's initial-cluster lists etcd-4, which joins before it.
    let five = p.changes[1].files[0].after.clone();
    assert!(
        five.contains("etcd-4=http://10.0.0.14:2380,etcd-5=http://10.0.0.15:2380"),
        "{five}"
    );
    assert!(five.contains("initial-cluster-state: 'existing'"));
    snapshot("scale-up-3-to-5", &p, &d5);
}

#[test]
fn scale_down_removes_the_leader_last_after_moving_leadership() {
    let d3 = desired_with(3, "");
    let d5 = desired_with(5, "");
    // etcd-4 leads; etcd-4 and etcd-5 leave.
    let l = live(
        &d3,
        &vec![HostSpec::running_from(&d3); 3],
        Some(cluster(&d5, &[true; 5], 3)),
    );
    let p = plan_opts(&d3, &l, false);
    let k = kinds(&p);
    let rm5 = k.iter().position(|s| s.starts_with("remove etcd-5"));
    let mv = k.iter().position(|s| s.starts_with("move leader etcd-4"));
    let rm4 = k.iter().position(|s| s.starts_with("remove etcd-4"));
    assert!(rm5 < mv && mv < rm4 && rm5.is_some(), "{k:?}");
}

#[test]
fn removing_a_majority_needs_the_flag_and_still_goes_one_at_a_time() {
    let d1 = desired_with(1, "");
    let d3 = desired_with(3, "");
    let l = live(
        &d1,
        &[HostSpec::running_from(&d1)],
        Some(cluster(&d3, &[true; 3], 0)),
    );
    let p = plan_opts(&d1, &l, false);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.message.contains("removes 2 of 3 voters")),
        "{:?}",
        p.blockers
    );
    assert!(
        p.blockers
            .iter()
            .any(|b| b.help.contains("--allow-majority-removal"))
    );
    let p = plan_opts(&d1, &l, true);
    assert!(p.blockers.is_empty());
    let removes = p
        .steps
        .iter()
        .filter(|s| matches!(s.step, Step::RemoveMember { .. }))
        .count();
    assert_eq!(removes, 2);
    snapshot("scale-down-3-to-1", &p, &d1);
}

#[test]
fn one_member_grows_to_three() {
    let d1 = desired_with(1, "");
    let d3 = desired_with(3, "");
    let mut specs = vec![HostSpec::running_from(&d1)];
    specs.extend(vec![HostSpec::empty(); 2]);
    let l = live(&d3, &specs, Some(cluster(&d1, &[true], 0)));
    let p = plan_opts(&d3, &l, false);
    assert!(
        p.blockers.is_empty() && p.deferred.is_empty(),
        "{:?} {:?}",
        p.blockers,
        p.notes
    );
    assert_eq!(
        p.steps
            .iter()
            .filter(|s| matches!(s.step, Step::Promote { .. }))
            .count(),
        2
    );
}

#[test]
fn a_member_that_moves_is_replaced_remove_first() {
    let d = desired_with(3, "");
    let moved = common::desired_from(&common::text_with(3, "").replace("10.0.0.12", "10.0.0.22"));
    let mut specs = vec![HostSpec::running_from(&d); 3];
    specs[1] = HostSpec::empty();
    let l = live(&moved, &specs, Some(cluster(&d, &[true; 3], 0)));
    let p = plan_opts(&moved, &l, false);
    let c = p.changes.iter().find(|c| c.member.as_str() == "etcd-2");
    assert!(
        c.is_some_and(|c| c.action() == Action::Replace),
        "{:?}",
        p.changes
    );
    assert_eq!((p.summary.add, p.summary.remove), (1, 1));
    let k = kinds(&p);
    let rm = k.iter().position(|s| s.starts_with("remove etcd-2"));
    let stop = k
        .iter()
        .position(|s| s == "stop etcd of etcd-2 on 10.0.0.12");
    let add = k
        .iter()
        .position(|s| s.starts_with("add etcd-2 as a learner (http://10.0.0.22:2380)"));
    assert!(rm < stop && stop < add && rm.is_some(), "{k:?}");
    snapshot("replace-moved-member", &p, &moved);
}

#[test]
fn a_member_whose_host_lost_its_data_is_replaced() {
    let d = desired_with(3, "");
    let mut specs = vec![HostSpec::running_from(&d); 3];
    specs[2].running = false;
    specs[2].data = etcdplan::observe::DataDir::Absent;
    let l = live(&d, &specs, Some(cluster(&d, &[true, true, false], 0)));
    let p = plan_opts(&d, &l, false);
    let c = &p.changes[0];
    assert_eq!(c.action(), Action::Replace);
    // The old half is the dead member, moved aside where the new one lives.
    assert!(
        matches!(&c.kind, ChangeKind::Replace { departing, .. }
            if !departing.healthy && departing.host.address.to_string() == "10.0.0.13"),
        "{:?}",
        c.kind
    );
    assert!(c.reason.contains("lost its data"), "{}", c.reason);
    let k = kinds(&p);
    // Dead: removed first; nothing to stop or move aside on an empty host.
    assert!(k[1].starts_with("remove etcd-3"), "{k:?}");
    assert!(
        !k.iter()
            .any(|s| s.starts_with("stop etcd of") || s.starts_with("move etcd-3")),
        "{k:?}"
    );
    assert!(k.iter().any(|s| s.starts_with("add etcd-3 as a learner")));
}

#[test]
fn dead_members_leave_before_new_ones_join() {
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    // etcd-3 is dead and dropped from the file; etcd-4 is new.
    let wanted = common::desired_from(&common::text_with(4, "").replace(
        "name = \"etcd-3\"\naddress = \"10.0.0.13\"\n",
        "name = \"etcd-9\"\naddress = \"10.0.0.19\"\n",
    ));
    let mut specs = vec![
        HostSpec::running_from(&d3),
        HostSpec::running_from(&d3),
        HostSpec::empty(),
        HostSpec::empty(),
    ];
    specs[2] = HostSpec::empty();
    let _ = d4;
    let l = live(&wanted, &specs, Some(cluster(&d3, &[true, true, false], 0)));
    let p = plan_opts(&wanted, &l, false);
    let k = kinds(&p);
    let rm = k.iter().position(|s| s.starts_with("remove etcd-3"));
    let add = k
        .iter()
        .position(|s| s.starts_with("add etcd-9") || s.starts_with("add etcd-4"));
    assert!(rm.is_some() && rm < add, "{k:?}");
}

#[test]
fn adds_wait_for_a_healthy_cluster() {
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    specs.push(HostSpec::empty());
    // etcd-3 runs but does not answer: not something this plan can repair.
    let l = live(&d4, &specs, Some(cluster(&d3, &[true, true, false], 0)));
    let p = plan_opts(&d4, &l, false);
    assert!(
        !p.steps
            .iter()
            .map(|s| &s.step)
            .any(|s| matches!(s, Step::AddLearner { .. })),
        "{:?}",
        kinds(&p)
    );
    assert_eq!(p.deferred.len(), 1);
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("etcd-3") && n.contains("healthy cluster")),
        "{:?}",
        p.notes
    );
}

#[test]
fn an_interrupted_join_is_resumed() {
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    specs.push(HostSpec::empty());
    // Added as a learner, never started.
    let mut c = cluster(&d4, &[true, true, true, false], 0);
    c.members[3].is_learner = true;
    c.members[3].name = LiveName::NotStarted;
    c.members[3].client_urls.clear();
    let l = live(&d4, &specs, Some(c.clone()));
    let p = plan_opts(&d4, &l, false);
    assert_eq!(
        kinds(&p)[1..],
        [
            "write etcd-4's config (initial-cluster from the member list)",
            "start etcd-4",
            "wait until learner etcd-4 has caught up",
            "promote etcd-4 to voter",
            "wait until etcd-4 healthy",
        ]
    );
    // Started but not promoted: only the wait and the promotion remain.
    c.members[3].name = LiveName::Started("etcd-4".into());
    let mut specs2 = specs.clone();
    specs2[3] = HostSpec::running_from(&d4);
    assert_eq!(after_the_snapshot(&d4, &specs2, c), CATCH_UP_THEN_PROMOTE);
}

#[test]
fn old_data_of_this_cluster_is_moved_aside_before_a_rejoin() {
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    let mut stale = HostSpec::running_from(&d4);
    stale.running = false;
    specs.push(stale);
    let l = live(&d4, &specs, Some(cluster(&d3, &[true; 3], 0)));
    let p = plan_opts(&d4, &l, false);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = kinds(&p);
    assert_eq!(
        k[1],
        "move etcd-4's data (/var/lib/etcd/member) and config aside on 10.0.0.14"
    );
    assert!(k[2].starts_with("add etcd-4 as a learner"));
}

#[test]
fn a_rerun_after_the_snapshot_continues_from_it_instead_of_taking_another() {
    // Without this, an apply killed right after its snapshot plans the
    // snapshot first again, and a run stopped after each step never ends
    // (tests/kill_boundaries.rs).
    let d3 = desired_with(3, "");
    let d5 = desired_with(5, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    specs.extend(vec![HostSpec::empty(); 2]);
    let l = live(&d5, &specs, Some(cluster(&d3, &[true; 3], 1)));
    let full = plan_opts(&d5, &l, false);
    let mut p = full.clone();
    assert!(p.keep_restore_point("/srv/etcdplan/snapshots/c-1.db"));
    let k = kinds(&p);
    assert_eq!(k.len(), kinds(&full).len() - 1);
    assert!(k[0].starts_with("add etcd-4 as a learner"), "{k:?}");
    assert!(!k.iter().any(|s| s.starts_with("take a snapshot")), "{k:?}");
    for (i, s) in p.steps.iter().enumerate() {
        assert_eq!(s.index, i);
        assert!(s.after.iter().all(|a| *a < i), "{s:?}");
    }
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("/srv/etcdplan/snapshots/c-1.db") && n.contains("restore point")),
        "{:?}",
        p.notes
    );
    // Nothing left to leave out.
    assert!(!p.keep_restore_point("/srv/etcdplan/snapshots/c-1.db"));
}

#[test]
fn a_join_whose_files_were_written_goes_on_with_its_start() {
    // Killed after the write: writing them first again on every rerun, a
    // run stopped after each step never got to the start
    // (tests/kill_boundaries.rs).
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    specs.push(HostSpec::empty());
    let mut c = cluster(&d4, &[true, true, true, false], 0);
    c.members[3].is_learner = true;
    c.members[3].name = LiveName::NotStarted;
    c.members[3].client_urls.clear();
    let mut l = live(&d4, &specs, Some(c));
    let p = plan_opts(&d4, &l, false);
    let written: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.member.as_str() == "etcd-4")
        .flat_map(|c| c.files.iter())
        .map(|f| (f.path.clone(), Some(f.after.clone())))
        .collect();
    assert!(!written.is_empty(), "{:?}", kinds(&p));
    if let Some(etcdplan::observe::HostState::Reached(f)) = l.hosts.get_mut(&d4.members[3].name) {
        f.files = written;
    }
    let p = plan_opts(&d4, &l, false);
    assert_eq!(
        kinds(&p)[1..],
        [
            "start etcd-4",
            "wait until learner etcd-4 has caught up",
            "promote etcd-4 to voter",
            "wait until etcd-4 healthy",
        ]
    );
}

#[test]
fn a_started_learner_seen_caught_up_goes_on_with_its_promotion() {
    // Killed after "wait until learner etcd-4 has caught up": waiting first
    // again on every rerun, a run stopped after each step never got to the
    // promotion (tests/kill_boundaries.rs looped there 33 times).
    let d4 = desired_with(4, "");
    let specs = vec![HostSpec::running_from(&d4); 4];
    let mut c = cluster(&d4, &[true, true, true, true], 0);
    c.members[3].is_learner = true;
    let l = live(&d4, &specs, Some(c.clone()));
    let p = plan_opts(&d4, &l, false);
    assert_eq!(
        kinds(&p)[1..],
        ["promote etcd-4 to voter", "wait until etcd-4 healthy"],
        "{:?}",
        kinds(&p)
    );
    // Seen behind the leader, it is waited for first.
    if let Ok(s) = c.members[3].status.as_mut() {
        s.reported.raft_applied_index = 0;
    }
    for m in &mut c.members[..3] {
        if let Ok(s) = m.status.as_mut() {
            s.reported.raft_index = 1000;
        }
    }
    assert_eq!(after_the_snapshot(&d4, &specs, c), CATCH_UP_THEN_PROMOTE);
}
