//! The etcd v3 API, one member endpoint per call, every call under a deadline.
//!
//! The trait and its deadlines live here; the typed errors in [`error`], the
//! client identity for https members in [`tls`], and the etcd-client
//! implementation in [`client`].

mod client;
mod error;
mod tls;

use std::time::Duration;

use async_trait::async_trait;

use crate::model::{Endpoint, MemberId, MinorVersion};

pub use client::EtcdClient;
pub use error::{EtcdError, EtcdErrorKind};
pub use etcdplan_core::live::{ApiAlarm, ApiHashKv, ApiMember, ApiStatus};
use etcdplan_core::live::{LivePermission, LiveRole};
pub use tls::{ClientIdentity, ClientTls};

/// Per-call deadlines; etcd-client has none by default and would hang forever
/// on a host that accepts TCP but never answers.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// One request.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
        }
    }
}

/// One page of a range read: its pairs, whether more follow, and the
/// revision the store was at when it answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangePage {
    /// The keys and values, in key order.
    pub kvs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether keys beyond this page exist.
    pub more: bool,
    /// The store's revision in the response header.
    pub header_revision: i64,
}

/// What a `Downgrade` call asks (etcd 3.6+ Maintenance API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DowngradeAction {
    /// Whether the cluster can downgrade to the target; changes nothing.
    Validate,
    /// Start the downgrade: the cluster version drops to the target.
    Enable,
    /// Stop a downgrade in progress.
    Cancel,
}

impl DowngradeAction {
    /// The word etcdctl uses for it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Enable => "enable",
            Self::Cancel => "cancel",
        }
    }
}

/// The etcd API as etcdplan uses it: every call names the member it goes to.
#[async_trait]
pub trait EtcdApi: Send + Sync {
    /// MemberList, answered by the member at `endpoint`.
    async fn member_list(&self, endpoint: &Endpoint) -> Result<Vec<ApiMember>, EtcdError>;
    /// Status of the member at `endpoint`.
    async fn status(&self, endpoint: &Endpoint) -> Result<ApiStatus, EtcdError>;
    /// Active alarms, as the member at `endpoint` knows them.
    async fn alarms(&self, endpoint: &Endpoint) -> Result<Vec<ApiAlarm>, EtcdError>;
    /// A linearizable read through this member: it succeeds only while the member
    /// is part of a working quorum (what `/health` checks).
    async fn quorum_read(&self, endpoint: &Endpoint) -> Result<(), EtcdError>;
    /// MoveLeader; `endpoint` must be the current leader's.
    async fn move_leader(&self, endpoint: &Endpoint, to: MemberId) -> Result<(), EtcdError>;
    /// MemberAdd as a learner; returns the new member's id.
    async fn add_learner(
        &self,
        endpoint: &Endpoint,
        peer_url: &Endpoint,
    ) -> Result<MemberId, EtcdError>;
    /// MemberPromote.
    async fn promote(&self, endpoint: &Endpoint, id: MemberId) -> Result<(), EtcdError>;
    /// MemberRemove.
    async fn remove(&self, endpoint: &Endpoint, id: MemberId) -> Result<(), EtcdError>;
    /// MemberUpdate: the member's advertised peer URLs.
    async fn update_peer(
        &self,
        endpoint: &Endpoint,
        id: MemberId,
        peer_url: &Endpoint,
    ) -> Result<(), EtcdError>;
    /// Creates `key` = `value` on a new lease of `ttl`, unless the key exists:
    /// `Ok(lease)` when taken, `Err(current value)` when someone holds it.
    async fn create_leased(
        &self,
        endpoint: &Endpoint,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Result<i64, String>, EtcdError>;
    /// Refreshes a lease once.
    async fn keep_alive(&self, endpoint: &Endpoint, lease: i64) -> Result<(), EtcdError>;
    /// Deletes `key` if it still holds `value`, then revokes `lease`; whether it was deleted.
    async fn delete_if(
        &self,
        endpoint: &Endpoint,
        key: &str,
        value: &str,
        lease: Option<i64>,
    ) -> Result<bool, EtcdError>;
    /// One page of every key and value at `revision` (0: the current one), in
    /// key order from `from` (inclusive), at most `limit` pairs: a range read
    /// through raft, so it is what the cluster committed.
    async fn range_page(
        &self,
        endpoint: &Endpoint,
        from: &[u8],
        revision: i64,
        limit: i64,
    ) -> Result<RangePage, EtcdError>;
    /// The value of `key`, if any.
    async fn get_value(&self, endpoint: &Endpoint, key: &str) -> Result<Option<String>, EtcdError>;
    /// The member's whole backend through the Maintenance Snapshot stream,
    /// trailing sha256 included, under its own (long) deadline.
    async fn snapshot(&self, endpoint: &Endpoint, deadline: Duration)
    -> Result<Vec<u8>, EtcdError>;
    /// The same, reporting the bytes received (and the total, once the member
    /// says how much remains) as the stream arrives. By default it reports
    /// only the end, so a test double need not implement it.
    async fn snapshot_with_progress(
        &self,
        endpoint: &Endpoint,
        deadline: Duration,
        progress: &crate::io::Progress,
    ) -> Result<Vec<u8>, EtcdError> {
        let data = self.snapshot(endpoint, deadline).await?;
        let n = data.len() as u64;
        progress.report(n, Some(n));
        Ok(data)
    }
    /// A `Downgrade` call (`downgrade validate|enable|cancel`) for `target`
    /// (ignored by cancel); returns the cluster version the member answers
    /// with. etcd's refusals are typed: `InvalidDowngradeTarget`,
    /// `DowngradeInProgress`, `NoDowngradeInProgress`.
    async fn downgrade(
        &self,
        endpoint: &Endpoint,
        action: DowngradeAction,
        target: MinorVersion,
    ) -> Result<Option<MinorVersion>, EtcdError>;
    /// The cluster version as the member at `endpoint` knows it (`GET
    /// /version`, `etcdcluster`; the v3 gRPC API does not carry it); none
    /// while the cluster has not decided one.
    async fn cluster_version(&self, endpoint: &Endpoint)
    -> Result<Option<MinorVersion>, EtcdError>;
    /// Compacts the key-value history up to `revision`, physically: the call
    /// returns once the backend has dropped it, so a defragmentation after it
    /// gives the space back. Compaction is replicated (any voter takes it).
    /// `Compacted` when the history is already compacted past `revision`.
    async fn compact(
        &self,
        endpoint: &Endpoint,
        revision: i64,
        deadline: Duration,
    ) -> Result<(), EtcdError>;
    /// Defragments the backend of the member at `endpoint` (local to it, not
    /// replicated; it serves nothing meanwhile), on a connection of its own
    /// under `deadline`.
    async fn defragment(&self, endpoint: &Endpoint, deadline: Duration) -> Result<(), EtcdError>;
    /// Disarms one raised alarm (`Alarm DEACTIVATE` for its member and kind).
    async fn alarm_disarm(&self, endpoint: &Endpoint, alarm: &ApiAlarm) -> Result<(), EtcdError>;
    /// Puts a key with no lease (the test write after a NOSPACE repair);
    /// `NoSpace` while the alarm holds.
    async fn put(&self, endpoint: &Endpoint, key: &str, value: &str) -> Result<(), EtcdError>;
    /// Every key under `prefix` with its value (text), in key order, at most
    /// `limit`: etcdplan's own records (`etcdplan/history/`).
    async fn prefix_values(
        &self,
        endpoint: &Endpoint,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, EtcdError>;
    /// Deletes `key`; a key already gone is no error.
    async fn delete_key(&self, endpoint: &Endpoint, key: &str) -> Result<(), EtcdError>;
    /// HashKV of the member at `endpoint` at `revision` (etcd-ops R7.5):
    /// the hash of its keys and values up to there, with its compact
    /// revision. A unary call: learners refuse it.
    async fn hash_kv(&self, endpoint: &Endpoint, revision: i64) -> Result<ApiHashKv, EtcdError>;
    /// The body of `GET /metrics` at `endpoint` (a client URL with the client
    /// TLS it needs, or a plain `listen-metrics-urls` one), under the request
    /// deadline.
    async fn metrics(&self, endpoint: &Endpoint) -> Result<String, EtcdError>;

    // etcd auth (issue 20). Reads and changes of the auth store need the
    // root role while auth is on; the client logs in as configured.

    /// Whether auth is on (a login as a user no one has: "not enabled"
    /// answers off, on every release; etcd-client lacks `AuthStatus`).
    async fn auth_enabled(&self, endpoint: &Endpoint) -> Result<bool, EtcdError>;
    /// Every user with its roles (sorted), sorted by name.
    async fn auth_users(
        &self,
        endpoint: &Endpoint,
    ) -> Result<Vec<(String, Vec<String>)>, EtcdError>;
    /// Every role with its grants, sorted by name.
    async fn auth_roles(&self, endpoint: &Endpoint) -> Result<Vec<LiveRole>, EtcdError>;
    /// Whether etcd accepts `password` for `user`: a login on a connection of
    /// its own (Ok(false) when refused; `AuthNotEnabled` while auth is off).
    async fn login_accepted(
        &self,
        endpoint: &Endpoint,
        user: &str,
        password: &str,
    ) -> Result<bool, EtcdError>;
    /// One change of the auth store, or auth enabled or disabled.
    async fn auth_change(&self, endpoint: &Endpoint, call: &AuthCall<'_>) -> Result<(), EtcdError>;
}

/// One change of etcd's auth store (etcdctl's `user …`, `role …`, `auth …`).
/// Its `Debug` never shows a password.
#[derive(Clone, Copy)]
pub enum AuthCall<'a> {
    /// `user add`; no password: a user that logs in by certificate CN.
    UserAdd {
        /// The user.
        user: &'a str,
        /// Its password, or None.
        password: Option<&'a str>,
    },
    /// `user delete`.
    UserDelete {
        /// The user.
        user: &'a str,
    },
    /// `user passwd`.
    UserPassword {
        /// The user.
        user: &'a str,
        /// The new password.
        password: &'a str,
    },
    /// `user grant-role`.
    UserGrant {
        /// The user.
        user: &'a str,
        /// The role.
        role: &'a str,
    },
    /// `user revoke-role`.
    UserRevoke {
        /// The user.
        user: &'a str,
        /// The role.
        role: &'a str,
    },
    /// `role add`.
    RoleAdd {
        /// The role.
        role: &'a str,
    },
    /// `role delete`.
    RoleDelete {
        /// The role.
        role: &'a str,
    },
    /// `role grant-permission`.
    RoleGrant {
        /// The role.
        role: &'a str,
        /// The grant.
        permission: &'a LivePermission,
    },
    /// `role revoke-permission` (by key and range end).
    RoleRevoke {
        /// The role.
        role: &'a str,
        /// The grant.
        permission: &'a LivePermission,
    },
    /// `auth enable`: root with the root role must exist.
    Enable,
    /// `auth disable`.
    Disable,
}

impl std::fmt::Debug for AuthCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UserAdd { user, password } => write!(
                f,
                "user add {user}{}",
                if password.is_some() {
                    " (password)"
                } else {
                    " (no password)"
                }
            ),
            Self::UserDelete { user } => write!(f, "user delete {user}"),
            Self::UserPassword { user, .. } => write!(f, "user passwd {user}"),
            Self::UserGrant { user, role } => write!(f, "user grant-role {user} {role}"),
            Self::UserRevoke { user, role } => write!(f, "user revoke-role {user} {role}"),
            Self::RoleAdd { role } => write!(f, "role add {role}"),
            Self::RoleDelete { role } => write!(f, "role delete {role}"),
            Self::RoleGrant { role, permission } => {
                write!(f, "role grant-permission {role} {permission:?}")
            }
            Self::RoleRevoke { role, permission } => {
                write!(f, "role revoke-permission {role} {permission:?}")
            }
            Self::Enable => f.write_str("auth enable"),
            Self::Disable => f.write_str("auth disable"),
        }
    }
}
