//! Stage 4: changes → a graph of steps with health gates, in a deterministic order.
//!
//! Steps that disturb nothing (writing a staged config) may come early; every
//! step that disturbs a member or changes membership runs alone, followed by a
//! health gate. The order follows etcd's rules: repairs first, then dead members
//! out, then new members in (learner first, promoted once caught up), then
//! healthy members out (the leader last, after its leadership moved), then
//! rolling restarts. A small simulation of the cluster's health checks every
//! membership step against the same quorum rules the executor re-checks live;
//! a step that fails them is deferred, with the reason.

//!
//! Layout: [`Step`] (step.rs) and the [`Plan`] document (document.rs) are the
//! vocabulary; bootstrap.rs and running.rs are the two planners, sharing the
//! preparation steps (prepare.rs) and, for a running cluster, the simulated
//! cluster (sim.rs); notes.rs adds what the operator should know about
//! releases and systemd units.

mod bootstrap;
mod document;
pub mod file;
mod graph;
mod notes;
mod prepare;
pub mod recover;
pub mod restart;
pub mod restore;
mod running;
mod safety;
mod sim;
mod step;

use std::path::PathBuf;

use crate::config::Desired;
use crate::diff::{Action, Blocker, Change, Diff, Situation};
use crate::live::{Live, fingerprint};

pub use document::{FORMAT_VERSION, Plan, PlannedStep, Summary, Tolerates};
pub use graph::order;
pub use running::defrag_timeout;
pub use safety::{Voter, may_add, may_disrupt, may_promote, may_remove};
pub use step::{LEADER_RESTART, Step};

use document::distinct_members;
pub use notes::end_of_life_note;
use notes::{binary_notes, rollback_notes, unit_notes};

/// Operator choices that change what a plan may contain.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Allow a plan that removes a majority of the voters (still one at a time).
    pub allow_majority_removal: bool,
    /// Where the snapshot before a membership change is written.
    pub snapshot_dir: PathBuf,
}

/// Builds the plan from a diff and the live state it came from.
pub fn build(d: &Desired, live: &Live, diff: Diff) -> Plan {
    build_with(d, live, diff, &Options::default())
}

/// Builds the plan with operator options.
pub fn build_with(d: &Desired, live: &Live, diff: Diff, opts: &Options) -> Plan {
    let mut notes = diff.notes;
    let mut deferred = Vec::new();
    let mut blockers = diff.blockers;
    blockers.extend(restore::unfinished(d, live));
    let mut changes = diff.changes;
    let mut b = graph::Builder::default();

    match diff.situation {
        Situation::Bootstrap | Situation::Down => bootstrap::plan(d, &changes, &mut b),
        Situation::Running => {
            let (planned, later) =
                running::plan(d, live, opts, changes, &mut b, &mut notes, &mut blockers);
            changes = planned;
            deferred = later;
        }
    }

    notes.extend(binary_notes(live));
    notes.extend(end_of_life_note(live));
    notes.extend(rollback_notes(d, live));
    notes.extend(unit_notes(d, live, &changes));
    auth_steps(&diff.auth, &mut b);
    let (steps, edges) = b.finish();
    let (steps, edges) = prepare::fold_writes(steps, edges);
    let steps = numbered(steps, &edges);
    let mut plan = assemble(
        d,
        live,
        diff.situation,
        Parts {
            changes,
            steps,
            blockers,
            notes,
            deferred,
        },
    );
    plan.auth = diff.auth;
    plan
}

/// The auth changes as one chain after every other step: they need no
/// restart and disturb nothing, so they wait until the members are settled
/// (a bootstrapped cluster exists, a rolling change is done). The chain keeps
/// the diff's order: `auth disable` first; root, roles, grants and users
/// before `auth enable`, which comes last, so a failure on the way leaves
/// auth off.
fn auth_steps(auth: &[crate::diff::AuthChange], b: &mut graph::Builder) {
    let mut prev = b.sinks();
    for c in auth {
        let n = b.add(Step::Auth {
            change: c.op.clone(),
        });
        for p in prev {
            b.edge(p, n);
        }
        prev = vec![n];
    }
}

/// Steps with their places and the edges between them (`(a, b)`: b runs
/// after a).
fn numbered(steps: Vec<Step>, edges: &[(usize, usize)]) -> Vec<PlannedStep> {
    steps
        .into_iter()
        .enumerate()
        .map(|(index, step)| PlannedStep {
            index,
            description: step.describe(),
            disruptive: step.disruptive(),
            after: edges
                .iter()
                .filter(|(_, b)| *b == index)
                .map(|(a, _)| *a)
                .collect(),
            step,
        })
        .collect()
}

/// Steps in a chain, each after the one before (the restore and recovery
/// plans, which run strictly in order).
pub(crate) fn chained(steps: Vec<Step>) -> Vec<PlannedStep> {
    let edges: Vec<(usize, usize)> = (1..steps.len()).map(|i| (i - 1, i)).collect();
    numbered(steps, &edges)
}

/// What a plan is made of, besides where it came from.
pub(crate) struct Parts {
    /// The changes, in the order shown.
    pub changes: Vec<Change>,
    /// The steps.
    pub steps: Vec<PlannedStep>,
    /// Why it cannot run, if it cannot.
    pub blockers: Vec<Blocker>,
    /// Notes for the reader.
    pub notes: Vec<String>,
    /// Changes left for a later plan.
    pub deferred: Vec<Change>,
}

/// The plan document of every planner (running, bootstrap, restore,
/// recovery): the summary counted one way (a member changed in several
/// phases counts once), the fingerprint of the live state it was made from.
pub(crate) fn assemble(d: &Desired, live: &Live, situation: Situation, parts: Parts) -> Plan {
    let changes = parts.changes;
    let count =
        |f: &dyn Fn(Action) -> bool| distinct_members(changes.iter().filter(|c| f(c.action())));
    let summary = Summary {
        add: count(&|a| matches!(a, Action::Create | Action::Add | Action::Replace)),
        change: count(&|a| {
            matches!(
                a,
                Action::Start
                    | Action::Restart
                    | Action::Update
                    | Action::Adopt
                    | Action::Restore
                    | Action::Defragment
            )
        }),
        remove: count(&|a| matches!(a, Action::Remove | Action::Replace)),
    };
    Plan {
        format_version: FORMAT_VERSION.into(),
        cluster: d.cluster.clone(),
        situation,
        file_hash: d.file_hash.clone(),
        live_fingerprint: fingerprint(live),
        changes,
        steps: parts.steps,
        applicable: parts.blockers.is_empty(),
        blockers: parts.blockers,
        notes: parts.notes,
        deferred: parts.deferred,
        auth: Vec::new(),
        summary,
    }
}
