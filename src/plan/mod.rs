//! Stage 4: changes → a graph of steps with health gates, in a deterministic order.
//!
//! Steps that disturb nothing (writing a staged config) may come early; every
//! step that disturbs a member (start, restart, leader move) is followed by a
//! health gate, and restarts go followers first, the leader last after its
//! leadership moved to a member that already restarted.

mod graph;
mod safety;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::Desired;
use crate::diff::{Action, Blocker, Change, Diff, FileChange, Situation};
use crate::model::{MemberId, MemberName, Quorum};
use crate::observe::Live;

pub use graph::order;
pub use safety::{Voter, may_disrupt};

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Step {
    /// Write the member's changed files (disturbs nothing: etcd reads them at start).
    WriteFiles {
        /// The member.
        member: MemberName,
        /// The files.
        files: Vec<FileChange>,
    },
    /// Start the member's etcd.
    Start {
        /// The member.
        member: MemberName,
    },
    /// Stop and start the member's etcd so it reads new settings.
    Restart {
        /// The member.
        member: MemberName,
    },
    /// Hand leadership to another voter before the leader restarts.
    MoveLeader {
        /// The current leader.
        from: MemberName,
        /// The new leader.
        to: MemberName,
        /// Its id.
        to_id: MemberId,
    },
    /// Wait until these members are healthy, follow one leader and have caught up.
    WaitHealthy {
        /// The members.
        members: Vec<MemberName>,
    },
}

impl Step {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Self::WriteFiles { member, files } => {
                format!(
                    "write {} file{} for {member}",
                    files.len(),
                    if files.len() == 1 { "" } else { "s" }
                )
            }
            Self::Start { member } => format!("start {member}"),
            Self::Restart { member } => format!("restart {member}"),
            Self::MoveLeader { from, to, .. } => format!("move leader {from} → {to}"),
            Self::WaitHealthy { members } => {
                let names: Vec<&str> = members.iter().map(MemberName::as_str).collect();
                format!("wait until {} healthy", names.join(", "))
            }
        }
    }

    /// Whether the step disturbs a member (and so runs alone, then a gate).
    pub fn disruptive(&self) -> bool {
        matches!(self, Self::Restart { .. } | Self::MoveLeader { .. })
    }
}

/// Added, changed, removed members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Members added.
    pub add: usize,
    /// Members changed (started, restarted).
    pub change: usize,
    /// Members removed.
    pub remove: usize,
}

/// A plan: the changes, the ordered steps, and what blocks it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    /// The situation the plan was made in.
    pub situation: Situation,
    /// Per-member changes.
    pub changes: Vec<Change>,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Edges of the step graph as (before, after) indices into `steps`.
    pub edges: Vec<(usize, usize)>,
    /// Why the plan cannot be applied as it is.
    pub blockers: Vec<Blocker>,
    /// Things the operator should know (deferred changes, degraded cluster).
    pub notes: Vec<String>,
    /// Changes found but not planned now (restarts while voters are down).
    pub deferred: Vec<Change>,
    /// Counts for the summary line.
    pub summary: Summary,
    /// sha256 of the etcdfile the plan was made from.
    pub file_hash: String,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.blockers.is_empty() && self.deferred.is_empty()
    }

    /// The step graph, for `plan --graph`.
    pub fn graph(&self) -> DiGraph<String, ()> {
        let mut g = DiGraph::new();
        let nodes: Vec<NodeIndex> = self
            .steps
            .iter()
            .map(|s| g.add_node(s.describe()))
            .collect();
        for &(a, b) in &self.edges {
            g.add_edge(nodes[a], nodes[b], ());
        }
        g
    }
}

/// The step that writes a change's files, if it has any.
fn write_step(b: &mut graph::Builder, c: &Change) -> Option<NodeIndex> {
    (!c.files.is_empty()).then(|| {
        b.add(Step::WriteFiles {
            member: c.member.clone(),
            files: c.files.clone(),
        })
    })
}

/// Builds the plan from a diff and the live state it came from.
pub fn build(d: &Desired, live: &Live, diff: Diff) -> Plan {
    let mut notes = Vec::new();
    let mut deferred = Vec::new();
    let mut changes = diff.changes;
    let mut b = graph::Builder::default();

    match diff.situation {
        Situation::Bootstrap | Situation::Down => {
            // Without a quorum nothing can be disturbed; members must all start
            // before any of them can become healthy, so the gate comes last.
            let mut last_start = None;
            let mut started = Vec::new();
            for c in &changes {
                let write = write_step(&mut b, c);
                let step = match c.action {
                    Action::Restart => Step::Restart {
                        member: c.member.clone(),
                    },
                    _ => Step::Start {
                        member: c.member.clone(),
                    },
                };
                let s = b.add(step);
                b.edge_opt(write, s);
                b.edge_opt(last_start, s);
                last_start = Some(s);
                started.push(s);
            }
            if !started.is_empty() {
                let gate = b.add(Step::WaitHealthy {
                    members: d.members.iter().map(|m| m.name.clone()).collect(),
                });
                for s in started {
                    b.edge(s, gate);
                }
            }
        }
        Situation::Running => {
            let cluster = live.cluster.as_ref();
            let voters: Vec<_> = cluster
                .map(|c| c.members.iter().filter(|m| !m.is_learner).collect())
                .unwrap_or_default();
            let repairs: Vec<&Change> = changes
                .iter()
                .filter(|c| c.action == Action::Start)
                .collect();
            let down_after_repairs = voters
                .iter()
                .filter(|v| !v.healthy() && !repairs.iter().any(|r| Some(v.id) == r.id))
                .count();
            let q = Quorum {
                voters: voters.len(),
                down: down_after_repairs,
            };
            let has_restarts = changes.iter().any(|c| c.action == Action::Restart);
            if has_restarts && !q.may_take_one_down() {
                let down: Vec<&str> = voters
                    .iter()
                    .filter(|v| !v.healthy() && !repairs.iter().any(|r| Some(v.id) == r.id))
                    .map(|v| {
                        if v.name.is_empty() {
                            "(unstarted)"
                        } else {
                            v.name.as_str()
                        }
                    })
                    .collect();
                notes.push(if q.down == 0 {
                    format!(
                        "restarts are deferred: a cluster of {} voter{} has no fault tolerance, so restarting any member stops writes until it is back; grow the cluster to 3 members to change settings without downtime",
                        q.voters,
                        if q.voters == 1 { "" } else { "s" }
                    )
                } else {
                    format!(
                        "restarts are deferred: {} of {} voters are unhealthy ({}), and one more member down would risk quorum; this plan only repairs",
                        q.down,
                        q.voters,
                        down.join(", ")
                    )
                });
                let (later, now): (Vec<Change>, Vec<Change>) = changes
                    .into_iter()
                    .partition(|c| c.action == Action::Restart);
                changes = now;
                deferred = later;
            }
            let mut prev: Option<NodeIndex> = None;
            // Repairs first, one member at a time, each gated.
            for c in changes.iter().filter(|c| c.action == Action::Start) {
                let write = write_step(&mut b, c);
                let s = b.add(Step::Start {
                    member: c.member.clone(),
                });
                let g = b.add(Step::WaitHealthy {
                    members: vec![c.member.clone()],
                });
                b.edge_opt(write, s);
                b.edge_opt(prev, s);
                b.edge(s, g);
                prev = Some(g);
            }
            // Then rolling restarts: followers in file order, the leader last.
            let mut restarts: Vec<&Change> = changes
                .iter()
                .filter(|c| c.action == Action::Restart)
                .collect();
            restarts.sort_by_key(|c| c.leader);
            let mut first_restarted: Option<&Change> = None;
            for c in restarts {
                let write = write_step(&mut b, c);
                if c.leader {
                    // Prefer a member that already runs the new settings.
                    let target = first_restarted
                        .and_then(|f| f.id.map(|id| (f.member.clone(), id)))
                        .or_else(|| {
                            voters
                                .iter()
                                .find(|v| Some(v.id) != c.id && v.healthy())
                                .and_then(|v| MemberName::parse(&v.name).ok().map(|n| (n, v.id)))
                        });
                    if let Some((to, to_id)) = target {
                        let mv = b.add(Step::MoveLeader {
                            from: c.member.clone(),
                            to,
                            to_id,
                        });
                        b.edge_opt(prev, mv);
                        prev = Some(mv);
                    }
                }
                let r = b.add(Step::Restart {
                    member: c.member.clone(),
                });
                let g = b.add(Step::WaitHealthy {
                    members: vec![c.member.clone()],
                });
                b.edge_opt(write, r);
                b.edge_opt(prev, r);
                b.edge(r, g);
                prev = Some(g);
                if first_restarted.is_none() {
                    first_restarted = Some(c);
                }
            }
        }
    }

    let (steps, edges) = b.finish();
    let summary = Summary {
        add: changes
            .iter()
            .filter(|c| matches!(c.action, Action::Create | Action::Add))
            .count(),
        change: changes
            .iter()
            .filter(|c| matches!(c.action, Action::Start | Action::Restart))
            .count(),
        remove: changes
            .iter()
            .filter(|c| c.action == Action::Remove)
            .count(),
    };
    Plan {
        situation: diff.situation,
        changes,
        steps,
        edges,
        blockers: diff.blockers,
        notes,
        deferred,
        summary,
        file_hash: d.file_hash.clone(),
    }
}
