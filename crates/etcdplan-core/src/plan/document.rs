//! The plan document: what planning produces, what `plan --json` prints and
//! `plan --out` saves, and the counts for the summary line.

use petgraph::graph::{DiGraph, NodeIndex};

use super::Step;
use crate::diff::{Blocker, Change, Situation};
use crate::live::Fingerprint;
use crate::model::ClusterName;

/// Added, changed, removed members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Members added (a replace counts here and in `remove`).
    pub add: usize,
    /// Members changed (started, restarted).
    pub change: usize,
    /// Members removed.
    pub remove: usize,
}

/// The plan document: the one product of planning. The human renderer draws
/// from it, `plan --json` is its serde form, `plan --out` saves it, and
/// `apply FILE` executes its steps as saved once the etcdfile's hash and the
/// live state's fingerprint still match.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// The document's format; [`FORMAT_VERSION`] when written by this etcdplan.
    pub format_version: String,
    /// The cluster's name.
    pub cluster: ClusterName,
    /// The situation the plan was made in.
    pub situation: Situation,
    /// sha256 of the etcdfile the plan was made from.
    #[serde(rename = "etcdfile_sha256")]
    pub file_hash: String,
    /// The live state the plan was made from, as the facts it depends on.
    pub live_fingerprint: Fingerprint,
    /// Per-member changes.
    pub changes: Vec<Change>,
    /// Steps in execution order, each with what it waits for.
    pub steps: Vec<PlannedStep>,
    /// Why the plan cannot be applied as it is.
    pub blockers: Vec<Blocker>,
    /// Things the operator should know (deferred changes, degraded cluster).
    pub notes: Vec<String>,
    /// Changes found but not planned now.
    pub deferred: Vec<Change>,
    /// Changes of etcd's authentication (`[auth]`), in the order they run
    /// (absent when there are none, so plans without `[auth]` keep their
    /// shape, and in plans saved before auth was managed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth: Vec<crate::diff::AuthChange>,
    /// Counts for the summary line.
    pub summary: Summary,
    /// Whether nothing blocks it.
    pub applicable: bool,
}

/// The plan document's format. "2": typed steps that apply as saved (with
/// whole file contents), the live fingerprint, and changes as their types
/// serialize; "1" had a hand-assembled shape.
pub const FORMAT_VERSION: &str = "2";

/// A step in the plan document, with what people and scripts read about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlannedStep {
    /// Its place in the order (from 0).
    pub index: usize,
    /// What it does.
    #[serde(flatten)]
    pub step: Step,
    /// One line for people ([`Step::describe`]).
    pub description: String,
    /// Whether it disturbs a member or the membership ([`Step::disruptive`]).
    pub disruptive: bool,
    /// The steps it waits for (indices of earlier steps).
    pub after: Vec<usize>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.blockers.is_empty()
            && self.deferred.is_empty()
            && self.auth.is_empty()
    }

    /// How many members the plan changes or defers, each counted once (a TLS
    /// migration changes a member in several phases).
    #[must_use]
    pub fn changed_members(&self) -> usize {
        distinct_members(self.changes.iter().chain(&self.deferred))
    }

    /// Why this non-empty plan cannot be applied now (its first blocker, or
    /// why every change is deferred), or `None` when it can.
    #[must_use]
    pub fn cannot_apply(&self) -> Option<String> {
        if let Some(b) = self.blockers.first() {
            return Some(b.message.clone());
        }
        if self.steps.is_empty() {
            return Some(
                self.notes
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "nothing can be done now".into()),
            );
        }
        None
    }

    /// The alarms this plan runs with, its gates passing while they are
    /// raised: NOSPACE in the repair that disarms it, CORRUPT of a member it
    /// removes (etcd keeps that alarm; an operator disarms it).
    #[must_use]
    pub fn tolerates(&self) -> Tolerates {
        Tolerates {
            nospace: self
                .steps
                .iter()
                .any(|s| matches!(s.step, Step::DisarmNoSpace { .. })),
            corrupt_of: self
                .steps
                .iter()
                .filter_map(|s| match &s.step {
                    Step::RemoveMember { departing } => Some(departing.id),
                    _ => None,
                })
                .collect(),
        }
    }

    /// Leaves out the plan's first snapshot, because `kept` (the snapshot an
    /// earlier run of this etcdfile took before its changes, see
    /// [`crate::backup::restore_point`]) is the restore point: a run stopped
    /// right after its snapshot must not plan a new one first every time.
    /// The steps after it are renumbered and wait for what it waited for;
    /// a note names `kept`. Returns whether a snapshot was left out.
    pub fn keep_restore_point(&mut self, kept: &str) -> bool {
        let Some(k) = self
            .steps
            .iter()
            .position(|s| matches!(s.step, Step::Snapshot { .. }))
        else {
            return false;
        };
        let removed = self.steps.remove(k);
        for s in &mut self.steps {
            let mut after: Vec<usize> = Vec::new();
            for &a in &s.after {
                let through = if a == k {
                    removed.after.clone()
                } else {
                    vec![a]
                };
                for x in through {
                    let x = if x > k { x - 1 } else { x };
                    if !after.contains(&x) {
                        after.push(x);
                    }
                }
            }
            after.sort_unstable();
            s.after = after;
            if s.index > k {
                s.index -= 1;
            }
        }
        self.notes.push(format!(
            "no new snapshot before the changes: {kept}, taken by an earlier run of this etcdfile, is the restore point"
        ));
        true
    }

    /// The step graph, for `plan --graph`.
    pub fn graph(&self) -> DiGraph<String, ()> {
        let mut g = DiGraph::new();
        let nodes: Vec<NodeIndex> = self
            .steps
            .iter()
            .map(|s| g.add_node(s.description.clone()))
            .collect();
        for s in &self.steps {
            for &a in &s.after {
                g.add_edge(nodes[a], nodes[s.index], ());
            }
        }
        g
    }
}

/// How many members these changes concern, each counted once.
pub(super) fn distinct_members<'a>(changes: impl Iterator<Item = &'a Change>) -> usize {
    changes
        .map(|c| &c.member)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Alarms a walk lives with (see [`Plan::tolerates`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tolerates {
    /// The NOSPACE alarm, raised until the repair disarms it.
    pub nospace: bool,
    /// Members whose CORRUPT alarm stays raised while they are replaced.
    pub corrupt_of: Vec<crate::model::MemberId>,
}

impl Tolerates {
    /// Whether `alarm` leaves the walk's gates open.
    #[must_use]
    pub fn allows(&self, alarm: &crate::live::ApiAlarm) -> bool {
        match alarm.kind.as_str() {
            "NOSPACE" => self.nospace,
            "CORRUPT" => self.corrupt_of.contains(&alarm.member),
            _ => false,
        }
    }
}
