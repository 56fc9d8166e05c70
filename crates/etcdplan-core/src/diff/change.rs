//! What the diff says: each member's change, what stops the plan, and the
//! situation the cluster was found in.

use super::{BinaryMove, FileChange};
use crate::config::DesiredMember;
use crate::model::{DbFigures, Endpoint, MemberId, MemberName};

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
    /// A running member that etcdplan did not start is taken over in place
    /// (`~`): stopped under its old unit or process, started under
    /// etcdplan's service with the same data and ID.
    Adopt,
    /// Every member's data is replaced by a snapshot's, as a new cluster
    /// (`-/+`): `etcdplan restore SNAPSHOT`, the old data moved aside.
    Restore,
    /// A running member's backend is defragmented (`~`): the free pages
    /// given back, the member not serving while it runs.
    Defragment,
}

impl Action {
    /// Terraform-style symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Create | Self::Add => "+",
            Self::Start | Self::Restart | Self::Update | Self::Adopt | Self::Defragment => "~",
            Self::Remove => "-",
            Self::Replace | Self::Restore => "-/+",
        }
    }
}

/// One member's change: what every change has, and, in [`ChangeKind`], what
/// happens with only the data that kind of change carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// The member.
    pub member: MemberName,
    /// What happens (serialized as `action` and that action's fields).
    #[serde(flatten)]
    pub kind: ChangeKind,
    /// Why, in one line.
    pub reason: String,
    /// Host files that change.
    pub files: Vec<FileChange>,
    /// The member's id, when the cluster knows it.
    pub id: Option<MemberId>,
    /// Whether it leads the cluster now.
    pub leader: bool,
    /// Server and peer certificates are issued for it before its files are written.
    pub certificates: bool,
    /// The JWT key pair and the CRL of this machine are placed on its host
    /// before its files are written (never their content: the executor
    /// reads them when it places them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth_files: bool,
}

/// What happens to a member, with what that kind of change needs.
///
/// `phase` (in Restart and Update) marks one phase of a TLS migration, a CA
/// rotation or a version change (from 0); phases run in order, each rolling
/// over the members it lists. `binary` (in the kinds that start etcd) is the
/// release the member moves to at this (re)start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum ChangeKind {
    /// A new member bootstraps with the cluster.
    Create {
        /// The release it starts on, when it must be put in place.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binary: Option<BinaryMove>,
    },
    /// A stopped member of the cluster is started again.
    Start {
        /// The release it starts on, when it must be put in place.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binary: Option<BinaryMove>,
    },
    /// A running member gets new settings (or another release) and restarts.
    Restart {
        /// For a member whose peer port moves: the new peer URL, published
        /// with MemberUpdate before the restart.
        peer_update: Option<Endpoint>,
        /// The phase of a phased change it belongs to.
        phase: Option<u32>,
        /// The release it restarts on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binary: Option<BinaryMove>,
    },
    /// A member joins the running cluster (learner first).
    Add {
        /// How far an earlier join got.
        join: Join,
        /// The release it starts on, when it must be put in place.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binary: Option<BinaryMove>,
    },
    /// A member leaves the cluster.
    Remove {
        /// The member that leaves.
        departing: Departing,
    },
    /// A member is removed and joins again, fresh.
    Replace {
        /// The member that leaves (the old half).
        departing: Departing,
        /// The release the new half starts on, when it must be put in place.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binary: Option<BinaryMove>,
    },
    /// A running member that etcdplan did not start is taken over in place:
    /// its old unit or process stopped and moved aside, etcdplan's service
    /// started with the same data dir and member ID, in one job on the host.
    Adopt {
        /// The etcd that runs it now.
        foreign: crate::live::Listener,
    },
    /// A running member is changed in place, without a restart: its advertised
    /// peer URL (MemberUpdate), its certificates (see [`Change::certificates`]),
    /// or both.
    Update {
        /// The peer URL it is advertised with from now on, if that changes.
        peer_update: Option<Endpoint>,
        /// The phase of a phased change it belongs to.
        phase: Option<u32>,
    },
    /// The member's data is replaced by a snapshot's (`etcdplan restore`): it
    /// is stopped, its data moved aside, the snapshot restored into a new
    /// cluster and started again.
    Restore {
        /// The snapshot file on this machine.
        snapshot: std::path::PathBuf,
    },
    /// The member's backend is defragmented (after a compaction), one member
    /// at a time, the leader last.
    Defragment {
        /// Its backend when the plan was made.
        figures: DbFigures,
        /// Why: the etcdfile's rule holds, or the NOSPACE alarm is repaired.
        cause: DefragCause,
    },
}

/// Why a member is defragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefragCause {
    /// `[maintenance] defrag_rule` holds for it.
    Rule,
    /// The NOSPACE alarm is raised: every member is defragmented before the
    /// alarm is disarmed (disarming first only raises it again).
    NoSpace,
}

impl ChangeKind {
    /// The action, for the symbol, the words and the summary.
    #[must_use]
    pub fn action(&self) -> Action {
        match self {
            Self::Create { .. } => Action::Create,
            Self::Start { .. } => Action::Start,
            Self::Restart { .. } => Action::Restart,
            Self::Add { .. } => Action::Add,
            Self::Remove { .. } => Action::Remove,
            Self::Replace { .. } => Action::Replace,
            Self::Update { .. } => Action::Update,
            Self::Adopt { .. } => Action::Adopt,
            Self::Restore { .. } => Action::Restore,
            Self::Defragment { .. } => Action::Defragment,
        }
    }
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
    pub(super) fn new(member: MemberName, kind: ChangeKind, reason: impl Into<String>) -> Self {
        Self {
            member,
            kind,
            reason: reason.into(),
            files: Vec::new(),
            id: None,
            leader: false,
            certificates: false,
            auth_files: false,
        }
    }

    /// What happens to the member.
    #[must_use]
    pub fn action(&self) -> Action {
        self.kind.action()
    }

    /// The member that leaves, for a Remove or a Replace.
    #[must_use]
    pub fn departing(&self) -> Option<&Departing> {
        match &self.kind {
            ChangeKind::Remove { departing } | ChangeKind::Replace { departing, .. } => {
                Some(departing)
            }
            _ => None,
        }
    }

    /// The release the member moves to at this (re)start, if any.
    #[must_use]
    pub fn binary(&self) -> Option<&BinaryMove> {
        match &self.kind {
            ChangeKind::Create { binary }
            | ChangeKind::Start { binary }
            | ChangeKind::Restart { binary, .. }
            | ChangeKind::Add { binary, .. }
            | ChangeKind::Replace { binary, .. } => binary.as_ref(),
            ChangeKind::Remove { .. }
            | ChangeKind::Update { .. }
            | ChangeKind::Adopt { .. }
            | ChangeKind::Restore { .. }
            | ChangeKind::Defragment { .. } => None,
        }
    }

    /// The phase of a phased change (a TLS migration, a CA rotation, a
    /// version change) this change belongs to, if any.
    #[must_use]
    pub fn phase(&self) -> Option<u32> {
        match self.kind {
            ChangeKind::Restart { phase, .. } | ChangeKind::Update { phase, .. } => phase,
            _ => None,
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
    /// Changes of etcd's authentication (`[auth]`), in the order they run.
    pub auth: Vec<super::AuthChange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: ChangeKind) -> Change {
        let member = MemberName::parse("etcd-1").unwrap_or_else(|e| panic!("{e}"));
        Change::new(member, kind, "why")
    }

    #[test]
    fn the_action_is_a_field_next_to_only_that_actions_data() {
        let c = change(ChangeKind::Update {
            peer_update: None,
            phase: Some(2),
        });
        let v = serde_json::to_value(&c).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["action"], "update");
        assert_eq!(v["phase"], 2);
        assert!(v.get("departing").is_none() && v.get("binary").is_none());
        assert_eq!(c.action(), Action::Update);
        assert_eq!(c.phase(), Some(2));
        assert!(c.departing().is_none() && c.binary().is_none());
        let back: Change = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, c);
    }

    #[test]
    fn an_add_without_its_join_is_refused() {
        let v = serde_json::json!({
            "member": "etcd-1", "action": "add", "reason": "", "files": [],
            "id": null, "leader": false, "certificates": false
        });
        assert!(serde_json::from_value::<Change>(v).is_err());
        let c = change(ChangeKind::Start { binary: None });
        assert_eq!(c.phase(), None);
        assert_eq!(c.action(), Action::Start);
    }
}
