//! The quorum simulator's model and check, shared by the proptest
//! (`tests/quorum_sim.rs`, a few thousand cases in every test run) and the
//! bench (`benches/quorum_sim.rs`, 100,000 cases, every violation listed):
//! both include this file by `#[path]`, next to `tests/common/mod.rs`.
//!
//! A [`Case`] is a generated live cluster (members healthy, unhealthy or
//! stopped), a desired one (members kept, replaced, added, settings drifted)
//! and members failing between steps. [`check`] plans the change, replays the
//! plan against a model cluster using the executor's own safety rules, and
//! checks independently that no step etcdplan takes leaves it below quorum.

use etcdplan::diff;
use etcdplan::model::quorum;
use etcdplan::plan::{self, Step, Voter, may_add, may_disrupt, may_promote, may_remove};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::common::{HostSpec, cluster, desired_from, live};

/// What a member is doing in the generated live state.
#[derive(Debug, Clone, Copy)]
pub enum Member {
    /// Up and answering.
    Healthy,
    /// Running but not answering (partitioned, overloaded).
    Unhealthy,
    /// Process not running.
    Stopped,
}

fn member() -> impl Strategy<Value = Member> {
    prop_oneof![6 => Just(Member::Healthy), 1 => Just(Member::Unhealthy), 1 => Just(Member::Stopped)]
}

/// One generated case: the live cluster, the desired one, and the failures.
#[derive(Debug, Clone)]
pub struct Case {
    /// The live members, `etcd-1` on.
    pub members: Vec<Member>,
    /// Whether each live member stays in the desired cluster.
    pub keep: Vec<bool>,
    /// How many members are added.
    pub new: usize,
    /// A kept member given a new address (a replace).
    pub moved: Option<Index>,
    /// Whether a setting changes too (restarts to interleave).
    pub drift: bool,
    /// The leader among the healthy members.
    pub leader_pick: Index,
    /// Before each step, maybe one member fails.
    pub failures: Vec<Option<Index>>,
}

/// The strategy for [`Case`]s.
pub fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(member(), 1..=7),
        prop::collection::vec(prop::bool::weighted(0.8), 7),
        0usize..=3,
        prop::option::of(any::<Index>()),
        any::<bool>(),
        any::<Index>(),
        prop::collection::vec(prop::option::weighted(0.1, any::<Index>()), 0..60),
    )
        .prop_map(
            |(members, keep, new, moved, drift, leader_pick, failures)| Case {
                members,
                keep,
                new,
                moved,
                drift,
                leader_pick,
                failures,
            },
        )
}

/// What [`check`] made of a case.
#[derive(Debug)]
pub enum Verdict {
    /// Not a case to check (no quorum to begin with, nothing desired); why.
    Rejected(&'static str),
    /// Every step kept the properties.
    Held,
    /// A property broke: what, and the plan's steps.
    Violation(String),
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

/// Plans the case and replays the plan against the model, stopping where the
/// executor would (a safety rule refuses, a gate times out).
pub fn check(c: &Case) -> Verdict {
    let n = c.members.len();
    let healthy: Vec<bool> = c
        .members
        .iter()
        .map(|m| matches!(m, Member::Healthy))
        .collect();
    // A running cluster needs a quorum of healthy members to answer at all.
    if healthy.iter().filter(|h| **h).count() < quorum(n) {
        return Verdict::Rejected("no healthy quorum to begin with");
    }
    let healthy_idx: Vec<usize> = (0..n).filter(|i| healthy[*i]).collect();
    let leader = healthy_idx[c.leader_pick.index(healthy_idx.len())];

    let current: Vec<(String, u8)> = (0..n)
        .map(|i| (format!("etcd-{}", i + 1), 11 + i as u8))
        .collect();
    let mut wanted: Vec<(String, u8)> = current
        .iter()
        .enumerate()
        .filter(|(i, _)| c.keep[*i])
        .map(|(_, m)| m.clone())
        .collect();
    if let Some(ix) = c.moved
        && !wanted.is_empty()
    {
        let i = ix.index(wanted.len());
        wanted[i].1 += 100; // a new address: a replace
    }
    for k in 0..c.new {
        wanted.push((format!("etcd-{}", n + k + 1), 50 + k as u8));
    }
    if wanted.is_empty() {
        return Verdict::Rejected("no member desired");
    }

    let old = desired_from(&text_for(&current, ""));
    let extra = if c.drift {
        "quota_backend_bytes = \"4GiB\"\n"
    } else {
        ""
    };
    let d = desired_from(&text_for(&wanted, extra));
    let specs: Vec<HostSpec> = wanted
        .iter()
        .map(
            |(name, addr)| match current.iter().position(|(c, a)| c == name && a == addr) {
                Some(i) => {
                    // Its config file is absent: the plan restarts it too, which
                    // gives the simulator restarts to interleave with membership.
                    let mut s = HostSpec::running_from(&old);
                    s.config_from = None;
                    s.running = !matches!(c.members[i], Member::Stopped);
                    s
                }
                None => HostSpec::empty(),
            },
        )
        .collect();
    let l = live(&d, &specs, Some(cluster(&old, &healthy, leader)));
    let p = plan::build_with(
        &d,
        &l,
        diff::diff(&d, &l),
        &plan::Options {
            allow_majority_removal: true,
            snapshot_dir: "/tmp".into(),
        },
    );
    let trace = || {
        p.steps
            .iter()
            .map(|s| s.step.describe())
            .collect::<Vec<_>>()
    };
    if !p.steps.iter().all(|s| s.after.iter().all(|&a| a < s.index)) {
        return Verdict::Violation(format!("an edge points backwards: {:?}", trace()));
    }

    let mut model: Vec<M> = (0..n)
        .map(|i| M {
            name: current[i].0.clone(),
            up: healthy[i],
            learner: false,
        })
        .collect();
    let mut failures = c.failures.iter();
    let find = |ms: &[M], name: &str| ms.iter().position(|m| m.name == name);

    for step in p.steps.iter().map(|s| &s.step) {
        if let Some(Some(pick)) = failures.next()
            && !model.is_empty()
        {
            let i = pick.index(model.len());
            model[i].up = false;
        }
        let before = has_quorum(&model);
        let live_view = voters(&model);
        match step {
            Step::Start { member } => {
                if let Some(i) = find(&model, member.as_str()) {
                    model[i].up = true;
                }
            }
            Step::Restart { member, .. } => {
                if may_disrupt(&live_view, member.as_str()).is_err() {
                    break;
                }
                let Some(i) = find(&model, member.as_str()) else {
                    continue;
                };
                let others_up = model
                    .iter()
                    .enumerate()
                    .filter(|(j, m)| *j != i && m.up && !m.learner)
                    .count();
                let voters_n = model.iter().filter(|m| !m.learner).count();
                if others_up < quorum(voters_n) {
                    return Verdict::Violation(format!(
                        "restart of {member} with {others_up} others up of {voters_n}: {:?}",
                        trace()
                    ));
                }
                model[i].up = true;
            }
            Step::AddLearner { member, .. } => {
                if may_add(&live_view).is_err() {
                    break;
                }
                model.push(M {
                    name: member.to_string(),
                    up: false,
                    learner: true,
                });
            }
            // A gate on a member that is down times out: the executor stops.
            Step::WaitCaughtUp { member }
                if find(&model, member.as_str()).is_none_or(|i| !model[i].up) =>
            {
                break;
            }
            Step::Promote { member } => {
                if may_promote(&live_view, member.as_str()).is_err() {
                    break;
                }
                if let Some(i) = find(&model, member.as_str()) {
                    model[i].learner = false;
                }
            }
            Step::RemoveMember { departing } => {
                if may_remove(&live_view, departing.name.as_str()).is_err() {
                    break;
                }
                model.retain(|m| m.name != departing.name.as_str());
            }
            Step::WaitHealthy { members } => {
                let down = members
                    .iter()
                    .any(|m| find(&model, m.as_str()).is_none_or(|i| !model[i].up));
                if down {
                    break;
                }
            }
            _ => {}
        }
        if before && !has_quorum(&model) {
            return Verdict::Violation(format!(
                "{} left the cluster without quorum: {model:?} in {:?}",
                step.describe(),
                trace()
            ));
        }
    }
    Verdict::Held
}
