//! The live state as data: the etcd API's answers and what each host shows.
//!
//! `observe` (on the edge) fills these in; `diff`, `plan` and `render` read
//! them. Observing never fails as a whole: an unreachable host or member is a
//! fact of the live state, recorded for the planner.

mod api;
mod auth;
mod db;
mod fingerprint;
mod hash;
mod host;
mod listener;
mod unit;
mod wal;

use std::collections::BTreeMap;

use crate::model::{ClusterId, Endpoint, MemberId, MemberName};

pub use api::{ApiAlarm, ApiMember, ApiStatus, CATCH_UP_MARGIN, DowngradeInfo};
pub use auth::{AuthStore, LiveAuth, LivePermission, LiveRole, LiveUser, PasswordCheck};
pub use db::{
    DbState, METRIC_DEFRAG_INFLIGHT, METRIC_QUOTA, MetricsFigures, QuotaSource, config_quota,
    db_state, metric_value,
};
pub use fingerprint::{Fingerprint, changes as fingerprint_changes, fingerprint};
pub use hash::{ApiHashKv, HashCheck, HashVerdict, MemberHash};
pub use host::{
    Binary, DataDir, HostAuthFiles, HostCerts, HostFacts, ListenAddr, ListenAddrError,
    LocalAuthFiles, ProbeProblem, ServiceState,
};
pub use listener::{Listener, ListenerUnit};
pub use unit::{ActiveState, UnitFileState, UnitState};
pub use wal::wal_owner;

/// The marker a restore leaves in each member's state dir from the moment
/// its data is moved aside until the restored cluster is verified: the
/// restore's time and token, so `plan` can tell a restore that stopped half
/// way from a cluster that is merely down.
pub const RESTORE_PENDING: &str = "etcdplan.restore-pending";

/// Everything etcdplan knows about the live cluster and its hosts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Live {
    /// The cluster as the etcd API shows it; `None` when no member answered.
    pub cluster: Option<LiveCluster>,
    /// What each desired member's host shows.
    pub hosts: BTreeMap<MemberName, HostState>,
    /// Endpoints that did not answer MemberList, with why.
    pub unreachable: Vec<(Endpoint, String)>,
    /// The operator's CA certificate (PEM) in `ca_dir`, when there is one
    /// (`ca_file` with an external issuer): member certificates are checked
    /// against it.
    pub local_ca: Option<String>,
    /// The CA a rotation replaces (`ca_dir/previous/ca.crt`), while it is kept:
    /// members trust it next to `local_ca` until it is retired.
    pub previous_ca: Option<String>,
    /// When this was observed (unix seconds); certificate expiry is judged from it.
    pub observed_at: i64,
    /// etcd's authentication: None when no member answered.
    pub auth: Option<LiveAuth>,
    /// etcd answered but refused etcdplan's calls for want of a login it
    /// accepts (auth is on and etcdplan has no root login): what it said.
    /// Nothing about the members can be judged from such an observation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_refused: Option<String>,
    /// The JWT key pair and CRL on this machine, as digests: what members
    /// should have.
    pub local_auth: LocalAuthFiles,
}

/// The cluster as the etcd API reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveCluster {
    /// The cluster id.
    pub id: ClusterId,
    /// The endpoint that answered MemberList.
    pub answered_by: Endpoint,
    /// Members, as MemberList lists them.
    pub members: Vec<LiveMember>,
    /// Active alarms.
    pub alarms: Vec<ApiAlarm>,
    /// The voters' HashKV compared at one revision; None when it was not
    /// tried (no voter answered Status).
    pub hash_check: Option<HashCheck>,
}

/// One member of the live cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveMember {
    /// Member id.
    pub id: MemberId,
    /// Its name, once it has started and published one.
    pub name: LiveName,
    /// Advertised peer URLs.
    pub peer_urls: Vec<Endpoint>,
    /// Advertised client URLs.
    pub client_urls: Vec<Endpoint>,
    /// Learner or voter.
    pub is_learner: bool,
    /// Its own Status, or why it could not be read.
    pub status: Result<MemberStatus, String>,
    /// Its backend: sizes, quota and where it came from, defragmentation;
    /// None when it did not answer Status.
    pub db: Option<DbState>,
}

/// What a live member is called. etcd publishes a member's name when it first
/// starts: a member added but never started has none, and MemberList shows an
/// empty string for it. Names are etcd's, so they need not be names the
/// etcdfile could use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LiveName {
    /// Added to the cluster but never started.
    NotStarted,
    /// Started under this name.
    Started(String),
}

impl LiveName {
    /// From MemberList's name field (empty: never started).
    pub fn from_api(name: &str) -> Self {
        if name.is_empty() {
            Self::NotStarted
        } else {
            Self::Started(name.to_owned())
        }
    }

    /// Whether this is the etcdfile's member `name`.
    pub fn is(&self, name: &MemberName) -> bool {
        matches!(self, Self::Started(n) if n == name.as_str())
    }

    /// The name as the etcdfile would write it, when it started under one
    /// the etcdfile could use.
    pub fn member_name(&self) -> Option<MemberName> {
        match self {
            Self::Started(n) => MemberName::parse(n).ok(),
            Self::NotStarted => None,
        }
    }

    /// The name etcd knows, `None` before the first start.
    pub fn as_started(&self) -> Option<&str> {
        match self {
            Self::Started(n) => Some(n),
            Self::NotStarted => None,
        }
    }
}

impl std::fmt::Display for LiveName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Started(n) => f.write_str(n),
            Self::NotStarted => f.write_str("(not started)"),
        }
    }
}

/// As JSON: the name, or `null` before the first start.
impl serde::Serialize for LiveName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_started().serialize(s)
    }
}

/// What the member reports about itself, plus a quorum read through it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberStatus {
    /// The member's own Status answer.
    #[serde(flatten)]
    pub reported: ApiStatus,
    /// Whether a linearizable read through it succeeded.
    pub quorum_read: Result<(), String>,
}

impl MemberStatus {
    /// Healthy: has a leader, reports no errors, and serves a quorum read.
    /// The one definition; the execute gates use it too.
    pub fn healthy(&self) -> bool {
        self.problem().is_none()
    }

    /// Why it is not [healthy](Self::healthy), or `None` when it is.
    pub fn problem(&self) -> Option<String> {
        Self::report_problem(&self.reported).or_else(|| {
            self.quorum_read
                .as_ref()
                .err()
                .map(|e| format!("quorum read failed: {e}"))
        })
    }

    /// The part of [`problem`](Self::problem) a Status answer alone shows:
    /// no leader, or errors the member reports. A caller may skip the quorum
    /// read when this is already a reason.
    pub fn report_problem(reported: &ApiStatus) -> Option<String> {
        if reported.leader.is_none() {
            Some("no leader yet".into())
        } else {
            let own: Vec<&str> = reported
                .errors
                .iter()
                .map(String::as_str)
                .filter(|e| !others_alarm(e, reported.member_id))
                .collect();
            (!own.is_empty()).then(|| own.join("; "))
        }
    }
}

/// Whether an error in a member's Status is an alarm that says nothing of
/// that member's own health: NOSPACE (raised cluster-wide; the member still
/// serves reads, and the plan repairs it) or another member's CORRUPT. etcd
/// lists each raised alarm as `memberID:<id> alarm:<KIND>` on every member.
fn others_alarm(error: &str, member: MemberId) -> bool {
    let field = |name: &str| {
        error
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_owned)
    };
    match field("alarm:").as_deref() {
        Some("NOSPACE") => true,
        Some("CORRUPT") => field("memberID:").and_then(|i| i.parse::<u64>().ok()) != Some(member.0),
        _ => false,
    }
}

impl Live {
    /// What the host of the member named `name` (as MemberList names it) showed.
    pub fn facts_of(&self, name: &LiveName) -> Option<&HostFacts> {
        self.hosts
            .get(&name.member_name()?)
            .and_then(HostState::facts)
    }
}

impl LiveMember {
    /// Started: it has published its name (a member added but never started has none).
    pub fn started(&self) -> bool {
        matches!(self.name, LiveName::Started(_))
    }

    /// Healthy per [`MemberStatus::healthy`].
    pub fn healthy(&self) -> bool {
        self.status.as_ref().is_ok_and(MemberStatus::healthy)
    }

    /// Its backend figures (sizes and the quota it enforces), when it
    /// answered Status: what the defragmentation rule reads.
    pub fn db_figures(&self) -> Option<crate::model::DbFigures> {
        self.status.as_ref().ok()?;
        self.db.map(|d| d.figures)
    }

    /// The version it runs, as its Status reports it.
    pub fn version(&self) -> Option<crate::model::EtcdVersion> {
        self.status.as_ref().ok()?.reported.version
    }
}

impl LiveCluster {
    /// The versions the members that answer run.
    pub fn running_versions(&self) -> Vec<crate::model::EtcdVersion> {
        self.members
            .iter()
            .filter_map(LiveMember::version)
            .collect()
    }

    /// The target of a downgrade in progress, as any member that answers
    /// reports it (etcd 3.6+; the state is the cluster's, replicated).
    pub fn downgrade_in_progress(&self) -> Option<crate::model::MinorVersion> {
        self.members
            .iter()
            .filter_map(|m| m.status.as_ref().ok()?.reported.downgrade)
            .find_map(|d| d.in_progress())
    }

    /// The storage versions the members that answer report (none from 3.5
    /// members, which do not report one).
    pub fn storage_versions(&self) -> Vec<crate::model::MinorVersion> {
        self.members
            .iter()
            .filter_map(|m| m.status.as_ref().ok()?.reported.storage_version)
            .collect()
    }
}

impl LiveCluster {
    /// The leader, as the healthy members agree on it.
    pub fn leader(&self) -> Option<MemberId> {
        self.members
            .iter()
            .filter_map(|m| m.status.as_ref().ok())
            .find_map(|s| s.reported.leader)
    }

    /// Whether the learner that published this name had, when observed,
    /// applied what the leader had committed ([`ApiStatus::caught_up_with`]):
    /// a join continued from there need not wait for it again.
    pub fn learner_caught_up(&self, name: &MemberName) -> bool {
        fn status(m: &LiveMember) -> Option<&ApiStatus> {
            m.status.as_ref().ok().map(|s| &s.reported)
        }
        let Some(learner) = self
            .members
            .iter()
            .find(|m| m.is_learner && m.name.is(name))
            .and_then(status)
        else {
            return false;
        };
        let Some(leader) = self
            .leader()
            .and_then(|id| self.members.iter().find(|m| m.id == id))
            .and_then(status)
        else {
            return false;
        };
        learner.caught_up_with(leader)
    }

    /// The voting member that published this name (a learner is not one).
    pub fn voter(&self, name: &MemberName) -> Option<&LiveMember> {
        self.members
            .iter()
            .find(|m| m.name.is(name))
            .filter(|m| !m.is_learner)
    }

    /// The live member carrying this desired name, or (never started) this peer URL.
    pub fn find(&self, name: &MemberName, peer: &Endpoint) -> Option<&LiveMember> {
        self.members.iter().find(|m| m.name.is(name)).or_else(|| {
            self.members
                .iter()
                .find(|m| !m.started() && m.peer_urls.contains(peer))
        })
    }
}

/// A host as observed.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "state")]
// One per member and run: boxing the facts would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum HostState {
    /// The host answered the probe.
    Reached(HostFacts),
    /// The probe failed: one line saying why, and what to do.
    Unreachable {
        /// Why.
        reason: String,
        /// What to do.
        advice: String,
    },
}

impl HostState {
    /// The facts, when the host was reached.
    pub fn facts(&self) -> Option<&HostFacts> {
        match self {
            Self::Reached(f) => Some(f),
            Self::Unreachable { .. } => None,
        }
    }

    /// Whether etcd runs there.
    pub fn running(&self) -> bool {
        self.facts()
            .is_some_and(|f| matches!(f.service, ServiceState::Running(_)))
    }
}

#[cfg(test)]
mod alarm_tests {
    use super::*;

    #[test]
    fn nospace_and_another_members_corrupt_alarm_are_not_a_members_own_problem() {
        let me = MemberId(7);
        assert!(others_alarm("memberID:9 alarm:NOSPACE ", me));
        assert!(others_alarm("memberID:7 alarm:NOSPACE ", me));
        assert!(others_alarm("memberID:9 alarm:CORRUPT ", me));
        assert!(!others_alarm("memberID:7 alarm:CORRUPT ", me));
        assert!(!others_alarm("etcdserver: no leader", me));
    }
}
