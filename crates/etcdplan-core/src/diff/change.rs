//! What the diff says: each member's change, what stops the plan, and the
//! situation the cluster was found in.

use super::{BinaryMove, FileChange};
use crate::config::DesiredMember;
use crate::model::{Endpoint, MemberId, MemberName};

/// What will happen to a member.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new member bootstraps with the cluster (`+`).
    Create,
    /// A stopped member is started again (`~`).
    Start,
    /// A running member gets new settings and restarts (`~`).
    Restart,
    /// A member joins a running cluster (`+`).
    Add,
    /// A member leaves the cluster (`-`).
    Remove,
    /// A member is removed and added again, fresh (`-/+`).
    Replace,
    /// A member's advertised peer URL is updated to the one it already listens
    /// on (`~`); a repair that restarts nothing.
    Update,
}

impl Action {
    /// Terraform-style symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Create | Self::Add => "+",
            Self::Start | Self::Restart | Self::Update => "~",
            Self::Remove => "-",
            Self::Replace => "-/+",
        }
    }
}

/// One member's change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// The member.
    pub member: MemberName,
    /// What happens.
    pub action: Action,
    /// Why, in one line.
    pub reason: String,
    /// Host files that change.
    pub files: Vec<FileChange>,
    /// The member's id, when the cluster knows it.
    pub id: Option<MemberId>,
    /// Whether it leads the cluster now.
    pub leader: bool,
    /// For Remove and the old half of Replace: the member that leaves.
    pub departing: Option<Departing>,
    /// For Add and the new half of Replace: how far an earlier join got.
    pub join: Option<Join>,
    /// For a Restart that moves the member's peer port: the new peer URL,
    /// published with MemberUpdate before the restart.
    pub peer_update: Option<Endpoint>,
    /// Server and peer certificates are issued for it before its files are written.
    pub certificates: bool,
    /// For a change that is one phase of a TLS migration, a CA rotation or a
    /// version change: the phase (from 0); phases run in order, each rolling
    /// over the members it lists.
    pub phase: Option<u32>,
    /// The member moves to another etcd release at this (re)start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinaryMove>,
}

/// A member leaving the cluster, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Departing {
    /// Its id.
    pub id: MemberId,
    /// Its name (`member-<id>` when it never started).
    pub name: MemberName,
    /// Its host and paths, as etcdplan laid them out.
    pub host: DesiredMember,
    /// Healthy now.
    pub healthy: bool,
    /// A learner (does not vote).
    pub learner: bool,
    /// The leader now.
    pub leader: bool,
}

/// How far a member's join got before this plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "id")]
pub enum Join {
    /// Not in the cluster yet.
    New,
    /// Added as a learner, never started.
    Added(MemberId),
    /// A started learner, not yet promoted.
    Started(MemberId),
}

impl Change {
    pub(super) fn new(member: MemberName, action: Action, reason: impl Into<String>) -> Self {
        Self {
            member,
            action,
            reason: reason.into(),
            files: Vec::new(),
            id: None,
            leader: false,
            departing: None,
            join: None,
            peer_update: None,
            certificates: false,
            phase: None,
            binary: None,
        }
    }
}

/// Something that stops the plan from being applied, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Blocker {
    /// The member concerned, if any.
    pub member: Option<MemberName>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: String,
}

/// In what state the cluster was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Situation {
    /// No member answers and no member has data: a new cluster.
    Bootstrap,
    /// No member answers, but members have data: the cluster is down.
    Down,
    /// The cluster answers.
    Running,
}

/// The whole difference.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diff {
    /// The situation found.
    pub situation: Situation,
    /// Per-member changes, in file order.
    pub changes: Vec<Change>,
    /// What stops the plan.
    pub blockers: Vec<Blocker>,
    /// What the operator should know before applying (a version change's
    /// caveats).
    pub notes: Vec<String>,
}
