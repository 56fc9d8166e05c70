//! The quorum simulator: replay plans against a model cluster with members
//! failing at random between steps, using the executor's own safety rule, and
//! check independently that no step etcdplan takes leaves the cluster below quorum.
//! The model and the check are in `tests/common/quorum_sim.rs`, shared with
//! `cargo bench --bench quorum_sim` (100,000 cases, every violation listed).

mod common;
#[path = "common/quorum_sim.rs"]
mod sim;

use common::{HostSpec, cluster, desired_with, live};
use etcdplan::diff;
use etcdplan::plan::{self, Step};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn no_step_takes_the_cluster_below_quorum(c in sim::case()) {
        match sim::check(&c) {
            sim::Verdict::Held => {}
            sim::Verdict::Rejected(why) => return Err(TestCaseError::reject(why)),
            sim::Verdict::Violation(what) => prop_assert!(false, "{}", what),
        }
    }

    #[test]
    fn restarts_put_the_leader_last_without_a_move(n in 3usize..=7, leader_pick in any::<prop::sample::Index>()) {
        let leader = leader_pick.index(n);
        let old = desired_with(n, "");
        let d = desired_with(n, "quota_backend_bytes = \"4GiB\"\n");
        let l = live(&d, &vec![HostSpec::running_from(&old); n], Some(cluster(&d, &vec![true; n], leader)));
        let p = plan::build(&d, &l, diff::diff(&d, &l));
        let restarts: Vec<String> = p.steps.iter().map(|s| &s.step).filter_map(|s| match s {
            Step::Restart { member, .. } => Some(member.to_string()),
            _ => None,
        }).collect();
        prop_assert_eq!(restarts.len(), n);
        prop_assert_eq!(restarts.last().cloned(), Some(d.members[leader].name.to_string()));
        // etcd's graceful stop hands leadership over: no move, and only the
        // leader's restart says it leads.
        let moves = p.steps.iter().filter(|s| matches!(s.step, Step::MoveLeader { .. })).count();
        prop_assert_eq!(moves, 0);
        let leads: Vec<bool> = p.steps.iter().filter_map(|s| match &s.step {
            Step::Restart { leads, .. } => Some(*leads),
            _ => None,
        }).collect();
        prop_assert_eq!(leads.iter().filter(|l| **l).count(), 1);
        prop_assert_eq!(leads.last().copied(), Some(true));
        // Every edge points forward in the order.
        prop_assert!(p.steps.iter().all(|s| s.after.iter().all(|&a| a < s.index)));
    }
}

#[test]
fn clusters_without_fault_tolerance_defer_restarts_and_say_why() {
    for n in [1, 2] {
        let old = desired_with(n, "");
        let d = desired_with(n, "quota_backend_bytes = \"4GiB\"\n");
        let l = live(
            &d,
            &vec![HostSpec::running_from(&old); n],
            Some(cluster(&d, &vec![true; n], 0)),
        );
        let p = plan::build(&d, &l, diff::diff(&d, &l));
        assert!(
            p.steps.iter().map(|s| &s.step).all(|s| !s.disruptive()),
            "n={n}"
        );
        assert_eq!(p.deferred.len(), n);
        assert!(
            p.notes.iter().any(|s| s.contains("no fault tolerance")),
            "{:?}",
            p.notes
        );
    }
}
