//! The quorum simulator: replay plans against a model cluster with members
//! failing at random between steps, using the executor's own safety rule, and
//! check independently that no step etcdplan takes leaves the cluster below quorum.

mod common;

use common::{HostSpec, cluster, desired_with, live};
use etcdplan::diff;
use etcdplan::model::quorum;
use etcdplan::plan::{self, Step, Voter, may_disrupt};
use proptest::prelude::*;

/// What a member is doing in the generated live state.
#[derive(Debug, Clone, Copy)]
enum Member {
    Healthy,
    /// Running but not answering (partitioned, overloaded).
    Unhealthy,
    /// Process not running.
    Stopped,
}

fn member() -> impl Strategy<Value = Member> {
    prop_oneof![6 => Just(Member::Healthy), 1 => Just(Member::Unhealthy), 1 => Just(Member::Stopped)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_step_takes_the_cluster_below_quorum(
        members in prop::collection::vec(member(), 1..=7),
        drift in any::<bool>(),
        leader_pick in any::<prop::sample::Index>(),
        failures in prop::collection::vec(prop::option::weighted(0.15, any::<prop::sample::Index>()), 0..40),
    ) {
        let n = members.len();
        let healthy: Vec<bool> = members.iter().map(|m| matches!(m, Member::Healthy)).collect();
        // A running cluster needs a quorum of healthy members to answer at all.
        prop_assume!(healthy.iter().filter(|h| **h).count() >= quorum(n));
        let healthy_idx: Vec<usize> = (0..n).filter(|i| healthy[*i]).collect();
        let leader = healthy_idx[leader_pick.index(healthy_idx.len())];

        let old = desired_with(n, "");
        let d = if drift { desired_with(n, "quota_backend_bytes = \"4GiB\"\n") } else { old.clone() };
        let specs: Vec<HostSpec> = members
            .iter()
            .map(|m| {
                let mut s = HostSpec::running_from(&old);
                s.running = !matches!(m, Member::Stopped);
                s
            })
            .collect();
        let l = live(&d, &specs, Some(cluster(&d, &healthy, leader)));
        let p = plan::build(&d, &l, diff::diff(&d, &l));

        // The model: which members are up. Stopped and unhealthy ones are down.
        let mut up = healthy.clone();
        let name = |i: usize| d.members[i].name.to_string();
        let index = |m: &etcdplan::model::MemberName| d.members.iter().position(|x| &x.name == m);
        let mut failures = failures.into_iter();

        for step in &p.steps {
            // The world moves between steps: sometimes a member fails.
            if let Some(Some(pick)) = failures.next() {
                up[pick.index(n)] = false;
            }
            let voters: Vec<Voter> = (0..n)
                .map(|i| Voter { name: name(i), healthy: up[i], learner: false })
                .collect();
            match step {
                Step::Start { member } => {
                    if let Some(i) = index(member) { up[i] = true; }
                }
                Step::Restart { member } => {
                    let Some(i) = index(member) else { continue };
                    // The executor re-checks with this rule and stops on refusal.
                    if may_disrupt(&voters, member.as_str()).is_err() {
                        break;
                    }
                    let others_up = (0..n).filter(|j| *j != i && up[*j]).count();
                    prop_assert!(
                        others_up >= quorum(n),
                        "restart of {member} with {others_up} other members up of {n}: {:?}",
                        p.steps.iter().map(Step::describe).collect::<Vec<_>>()
                    );
                    up[i] = true;
                }
                Step::WaitHealthy { members } => {
                    // A gate on a member that is down would time out: the executor stops.
                    if members.iter().filter_map(&index).any(|i| !up[i]) {
                        break;
                    }
                }
                Step::MoveLeader { .. } | Step::WriteFiles { .. } => {}
            }
        }

        // Without failures, a degraded cluster's plan contains no disruption.
        let down_now = (0..n).filter(|i| !healthy[*i] && !matches!(members[*i], Member::Stopped)).count();
        let q = etcdplan::model::Quorum { voters: n, down: down_now };
        if down_now > 0 && !q.may_take_one_down() {
            prop_assert!(p.steps.iter().all(|s| !s.disruptive()));
        }
    }

    #[test]
    fn restarts_put_the_leader_last_after_a_move(n in 3usize..=7, leader_pick in any::<prop::sample::Index>()) {
        let leader = leader_pick.index(n);
        let old = desired_with(n, "");
        let d = desired_with(n, "quota_backend_bytes = \"4GiB\"\n");
        let l = live(&d, &vec![HostSpec::running_from(&old); n], Some(cluster(&d, &vec![true; n], leader)));
        let p = plan::build(&d, &l, diff::diff(&d, &l));
        let restarts: Vec<String> = p.steps.iter().filter_map(|s| match s {
            Step::Restart { member } => Some(member.to_string()),
            _ => None,
        }).collect();
        prop_assert_eq!(restarts.len(), n);
        prop_assert_eq!(restarts.last().cloned(), Some(d.members[leader].name.to_string()));
        let mv = p.steps.iter().position(|s| matches!(s, Step::MoveLeader { .. }));
        let last = p.steps.iter().rposition(|s| matches!(s, Step::Restart { .. }));
        prop_assert!(mv.is_some() && mv < last);
        // Every edge points forward in the order.
        prop_assert!(p.edges.iter().all(|(a, b)| a < b));
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
        assert!(p.steps.iter().all(|s| !s.disruptive()), "n={n}");
        assert_eq!(p.deferred.len(), n);
        assert!(
            p.notes.iter().any(|s| s.contains("no fault tolerance")),
            "{:?}",
            p.notes
        );
    }
}
