//! The quorum simulator: replay plans against a model cluster with members
//! failing at random between steps, using the executor's own safety rule, and
//! check independently that no step etcdplan takes leaves the cluster below quorum.

mod common;

use common::{HostSpec, cluster, desired_with, live};
use etcdplan::diff;
use etcdplan::model::quorum;
use etcdplan::plan::{self, Step, Voter, may_add, may_disrupt, may_promote, may_remove};
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

/// Etcdfile text for these members (name, last address byte).
fn text_for(members: &[(String, u8)], extra: &str) -> String {
    let mut t = format!(
        "[cluster]\nname = \"main\"\n\n[etcd]\ndata_dir = \"/var/lib/etcd\"\n{extra}\n[hosts]\ntransport = \"ssh\"\nservice = \"process\"\n"
    );
    for (n, a) in members {
        t.push_str(&format!(
            "\n[[member]]\nname = \"{n}\"\naddress = \"10.0.0.{a}\"\n"
        ));
    }
    t
}

/// The model: who is in the cluster, up, a learner.
#[derive(Debug, Clone)]
struct M {
    name: String,
    up: bool,
    learner: bool,
}

fn voters(ms: &[M]) -> Vec<Voter> {
    ms.iter()
        .map(|m| Voter {
            name: m.name.clone(),
            healthy: m.up,
            learner: m.learner,
        })
        .collect()
}

fn has_quorum(ms: &[M]) -> bool {
    let v: Vec<&M> = ms.iter().filter(|m| !m.learner).collect();
    !v.is_empty() && v.iter().filter(|m| m.up).count() >= quorum(v.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn no_step_takes_the_cluster_below_quorum(
        members in prop::collection::vec(member(), 1..=7),
        keep in prop::collection::vec(prop::bool::weighted(0.8), 7),
        new in 0usize..=3,
        moved in prop::option::of(any::<prop::sample::Index>()),
        drift in any::<bool>(),
        leader_pick in any::<prop::sample::Index>(),
        failures in prop::collection::vec(prop::option::weighted(0.1, any::<prop::sample::Index>()), 0..60),
    ) {
        let n = members.len();
        let healthy: Vec<bool> = members.iter().map(|m| matches!(m, Member::Healthy)).collect();
        // A running cluster needs a quorum of healthy members to answer at all.
        prop_assume!(healthy.iter().filter(|h| **h).count() >= quorum(n));
        let healthy_idx: Vec<usize> = (0..n).filter(|i| healthy[*i]).collect();
        let leader = healthy_idx[leader_pick.index(healthy_idx.len())];

        let current: Vec<(String, u8)> = (0..n).map(|i| (format!("etcd-{}", i + 1), 11 + i as u8)).collect();
        let mut wanted: Vec<(String, u8)> = current.iter().enumerate().filter(|(i, _)| keep[*i]).map(|(_, m)| m.clone()).collect();
        if let Some(ix) = moved && !wanted.is_empty() {
            let i = ix.index(wanted.len());
            wanted[i].1 += 100; // a new address: a replace
        }
        for k in 0..new {
            wanted.push((format!("etcd-{}", n + k + 1), 50 + k as u8));
        }
        prop_assume!(!wanted.is_empty());

        let old = common::desired_from(&text_for(&current, ""));
        let d = common::desired_from(&text_for(&wanted, if drift { "quota_backend_bytes = \"4GiB\"\n" } else { "" }));
        let specs: Vec<HostSpec> = wanted
            .iter()
            .map(|(name, addr)| match current.iter().position(|(c, a)| c == name && a == addr) {
                Some(i) => {
                    // Its config file is absent: the plan restarts it too, which
                    // gives the simulator restarts to interleave with membership.
                    let mut s = HostSpec::running_from(&old);
                    s.config_from = None;
                    s.running = !matches!(members[i], Member::Stopped);
                    s
                }
                None => HostSpec::empty(),
            })
            .collect();
        let l = live(&d, &specs, Some(cluster(&old, &healthy, leader)));
        let p = plan::build_with(&d, &l, diff::diff(&d, &l), &plan::Options {
            allow_majority_removal: true,
            snapshot_dir: "/tmp".into(),
        });
        prop_assert!(p.steps.iter().all(|s| s.after.iter().all(|&a| a < s.index)));

        let mut model: Vec<M> = (0..n)
            .map(|i| M { name: current[i].0.clone(), up: healthy[i], learner: false })
            .collect();
        let mut failures = failures.into_iter();
        let trace = || p.steps.iter().map(|s| &s.step).map(Step::describe).collect::<Vec<_>>();

        for step in p.steps.iter().map(|s| &s.step) {
            if let Some(Some(pick)) = failures.next() && !model.is_empty() {
                let i = pick.index(model.len());
                model[i].up = false;
            }
            let before = has_quorum(&model);
            let live_view = voters(&model);
            let find = |ms: &mut Vec<M>, name: &str| ms.iter().position(|m| m.name == name);
            match step {
                Step::Start { member } => {
                    if let Some(i) = find(&mut model, member.as_str()) { model[i].up = true; }
                }
                Step::Restart { member } => {
                    if may_disrupt(&live_view, member.as_str()).is_err() { break; }
                    let Some(i) = find(&mut model, member.as_str()) else { continue };
                    let others_up = model.iter().enumerate().filter(|(j, m)| *j != i && m.up && !m.learner).count();
                    let voters_n = model.iter().filter(|m| !m.learner).count();
                    prop_assert!(others_up >= quorum(voters_n), "restart of {member} with {others_up} others up of {voters_n}: {:?}", trace());
                    model[i].up = true;
                }
                Step::AddLearner { member, .. } => {
                    if may_add(&live_view).is_err() { break; }
                    model.push(M { name: member.to_string(), up: false, learner: true });
                }
                Step::WaitCaughtUp { member } => {
                    // A gate on a member that is down times out: the executor stops.
                    let down = find(&mut model, member.as_str()).is_none_or(|i| !model[i].up);
                    if down { break; }
                }
                Step::Promote { member } => {
                    if may_promote(&live_view, member.as_str()).is_err() { break; }
                    if let Some(i) = find(&mut model, member.as_str()) { model[i].learner = false; }
                }
                Step::RemoveMember { departing } => {
                    if may_remove(&live_view, departing.name.as_str()).is_err() { break; }
                    model.retain(|m| m.name != departing.name.as_str());
                }
                Step::WaitHealthy { members } => {
                    let down = members.iter().any(|m| find(&mut model, m.as_str()).is_none_or(|i| !model[i].up));
                    if down { break; }
                }
                _ => {}
            }
            if before {
                prop_assert!(has_quorum(&model), "{} left the cluster without quorum: {:?} in {:?}", step.describe(), model, trace());
            }
        }
    }

    #[test]
    fn restarts_put_the_leader_last_after_a_move(n in 3usize..=7, leader_pick in any::<prop::sample::Index>()) {
        let leader = leader_pick.index(n);
        let old = desired_with(n, "");
        let d = desired_with(n, "quota_backend_bytes = \"4GiB\"\n");
        let l = live(&d, &vec![HostSpec::running_from(&old); n], Some(cluster(&d, &vec![true; n], leader)));
        let p = plan::build(&d, &l, diff::diff(&d, &l));
        let restarts: Vec<String> = p.steps.iter().map(|s| &s.step).filter_map(|s| match s {
            Step::Restart { member } => Some(member.to_string()),
            _ => None,
        }).collect();
        prop_assert_eq!(restarts.len(), n);
        prop_assert_eq!(restarts.last().cloned(), Some(d.members[leader].name.to_string()));
        let mv = p.steps.iter().map(|s| &s.step).position(|s| matches!(s, Step::MoveLeader { .. }));
        let last = p.steps.iter().map(|s| &s.step).rposition(|s| matches!(s, Step::Restart { .. }));
        prop_assert!(mv.is_some() && mv < last);
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
