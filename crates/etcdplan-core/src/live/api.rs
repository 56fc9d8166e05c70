//! What the etcd v3 API reports, as plain data: the edge that calls etcd
//! fills these in, and the pure stages read them.

use super::LiveName;
use crate::model::{ClusterId, Endpoint, EtcdVersion, MemberId, MinorVersion};

/// A member as MemberList reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiMember {
    /// Member id.
    pub id: MemberId,
    /// Its name, once it has started (MemberList's empty name is read as
    /// [`LiveName::NotStarted`] where the API is called).
    pub name: LiveName,
    /// Advertised peer URLs (unparsable ones are dropped).
    pub peer_urls: Vec<Endpoint>,
    /// Advertised client URLs; empty until the member first starts.
    pub client_urls: Vec<Endpoint>,
    /// A learner does not vote.
    pub is_learner: bool,
}

/// One member's Status answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiStatus {
    /// Cluster id from the response header.
    pub cluster_id: ClusterId,
    /// The member that answered.
    pub member_id: MemberId,
    /// The member's binary version.
    pub version: Option<EtcdVersion>,
    /// Backend file size.
    pub db_size: u64,
    /// Bytes in use inside the backend file.
    pub db_size_in_use: u64,
    /// The backend quota the member enforces (etcd 3.6+ `dbSizeQuota`); None
    /// where Status does not carry it (3.4, 3.5: the member's metrics or
    /// config say it then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_quota: Option<u64>,
    /// The leader this member follows (None: no leader).
    pub leader: Option<MemberId>,
    /// Committed raft index.
    pub raft_index: u64,
    /// Applied raft index.
    pub raft_applied_index: u64,
    /// Raft term.
    pub raft_term: u64,
    /// The key-value store's revision in the response header, as this member
    /// has applied it (Status is local: a member without quorum answers too).
    pub revision: i64,
    /// Whether the member is a learner.
    pub is_learner: bool,
    /// Errors the member reports (alarms, "no leader").
    pub errors: Vec<String>,
    /// The version of the member's data (etcd 3.6+ `storageVersion`): a
    /// downgrade lowers it before any binary may change. None on 3.5, which
    /// does not report it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_version: Option<MinorVersion>,
    /// The downgrade state as this member knows it (etcd 3.6+); None where
    /// Status does not carry it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downgrade: Option<DowngradeInfo>,
}

/// How many entries a member may trail the leader's committed index and
/// still count as caught up: the leader keeps committing while we look.
pub const CATCH_UP_MARGIN: u64 = 5;

impl ApiStatus {
    /// Whether this member has applied what `leader` (its Status) has
    /// committed, within [`CATCH_UP_MARGIN`] entries. The one definition:
    /// the gates, the learner's wait and the planner use it.
    #[must_use]
    pub fn caught_up_with(&self, leader: &ApiStatus) -> bool {
        self.raft_applied_index + CATCH_UP_MARGIN >= leader.raft_index
    }

    /// A Status of `member_id` in `cluster_id` that says nothing else: no
    /// leader, an empty backend, index and revision 0 (what is known of a
    /// member that did not answer, and a base for tests).
    #[must_use]
    pub fn blank(cluster_id: ClusterId, member_id: MemberId) -> Self {
        Self {
            cluster_id,
            member_id,
            version: None,
            db_size: 0,
            db_size_in_use: 0,
            db_quota: None,
            leader: None,
            raft_index: 0,
            raft_applied_index: 0,
            raft_term: 0,
            revision: 0,
            is_learner: false,
            errors: Vec::new(),
            storage_version: None,
            downgrade: None,
        }
    }
}

/// The downgrade state of the cluster (etcd 3.6+ Status `downgradeInfo`): a
/// plan that finds a downgrade enabled continues it, or cancels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DowngradeInfo {
    /// `downgrade enable` was sent and the downgrade has not completed or
    /// been cancelled.
    pub enabled: bool,
    /// The minor version it goes to (None when not enabled).
    pub target: Option<MinorVersion>,
}

impl DowngradeInfo {
    /// The target of a downgrade in progress, if one is.
    #[must_use]
    pub fn in_progress(&self) -> Option<MinorVersion> {
        self.target.filter(|_| self.enabled)
    }
}

/// An active alarm.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiAlarm {
    /// The member that raised it.
    pub member: MemberId,
    /// NOSPACE, CORRUPT, …
    pub kind: String,
}
