//! Why an etcd call failed, as a kind callers can match on: read once from
//! the gRPC code and etcd's exact error description.

use std::time::Duration;

use crate::model::Endpoint;

/// Why an etcd call failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The deadline passed.
    #[error("{endpoint}: no answer within {}s", timeout.as_secs_f32())]
    Timeout {
        /// The member endpoint.
        endpoint: String,
        /// The deadline.
        timeout: Duration,
    },
    /// etcd answered with an error, or the connection failed.
    #[error("{endpoint}: {message}")]
    Call {
        /// The member endpoint.
        endpoint: String,
        /// What kind of failure it is, for callers to decide on.
        kind: EtcdErrorKind,
        /// etcd's or the transport's message, for people.
        message: String,
    },
}

/// The failures etcdplan tells apart, read once from the gRPC code and etcd's
/// exact error description (etcd's `api/v3rpc/rpctypes/error.go`), so that
/// callers match on a kind instead of on prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdErrorKind {
    /// "etcdserver: unhealthy cluster": a membership change refused while a
    /// member is not yet connected (about 5 s after a restart).
    Unhealthy,
    /// "etcdserver: no leader": an election is under way.
    NoLeader,
    /// "etcdserver: not leader": the call must go to the leader.
    NotLeader,
    /// "etcdserver: leader changed" while the request was in flight.
    LeaderChanged,
    /// "etcdserver: can only promote a learner member which is in sync with
    /// leader": the learner is still catching up.
    LearnerNotReady,
    /// "etcdserver: can only promote a learner member": it is not a learner
    /// (an earlier promote whose answer was lost, for one).
    MemberNotLearner,
    /// "etcdserver: member not found".
    MemberNotFound,
    /// "etcdserver: too many learner members in cluster".
    TooManyLearners,
    /// "etcdserver: mvcc: database space exceeded" (the NOSPACE alarm).
    NoSpace,
    /// "etcdserver: permission denied", or gRPC PermissionDenied.
    PermissionDenied,
    /// "etcdserver: authentication failed, invalid user ID or password" (a
    /// password login refused; also a user that has no password), or gRPC
    /// Unauthenticated without a description listed here.
    AuthFailed,
    /// "etcdserver: authentication is not enabled".
    AuthNotEnabled,
    /// "etcdserver: invalid auth token": the token expired or was made
    /// before a restart (simple tokens live in memory). Refused before
    /// apply: a fresh login and a resend are safe (clientv3 does it).
    InvalidAuthToken,
    /// "etcdserver: user name is empty": a request without a token while
    /// auth is on (auth enabled after the connection was made). Refused
    /// before apply, retried after a login as clientv3 does.
    UserEmpty,
    /// "etcdserver: revision of auth store is old": the auth store changed
    /// between the token check and apply; refused, safe to resend.
    AuthOldRevision,
    /// "etcdserver: user name already exists".
    UserAlreadyExists,
    /// "etcdserver: user name not found".
    UserNotFound,
    /// "etcdserver: role name already exists".
    RoleAlreadyExists,
    /// "etcdserver: role name not found".
    RoleNotFound,
    /// "etcdserver: role name is empty".
    RoleEmpty,
    /// "etcdserver: root user does not exist": `auth enable` without root.
    RootUserMissing,
    /// "etcdserver: root user does not have root role": `auth enable` with a
    /// root that lacks it.
    RootRoleMissing,
    /// "etcdserver: role is not granted to the user": revoking a role the
    /// user does not have.
    RoleNotGranted,
    /// "etcdserver: permission is not granted to the role": revoking a grant
    /// the role does not have.
    PermissionNotGranted,
    /// "etcdserver: permission not given": a grant without a permission.
    PermissionNotGiven,
    /// "etcdserver: invalid auth management": deleting root, or revoking
    /// root's root role, while auth is on.
    InvalidAuthManagement,
    /// No answer in time: our deadline, gRPC DeadlineExceeded, or etcd's own
    /// "etcdserver: request timed out…".
    DeadlineExceeded,
    /// The member cannot be reached or is not serving: a transport failure,
    /// or gRPC Unavailable without a description listed above.
    Unavailable,
    /// Anything else; the message says what.
    Other,
    /// "etcdserver: mvcc: required revision has been compacted": a read at a
    /// revision older than the last compaction.
    Compacted,
    /// "etcdserver: invalid downgrade target version": not one minor version
    /// below the cluster version.
    InvalidDowngradeTarget,
    /// "etcdserver: cluster has a downgrade job in progress".
    DowngradeInProgress,
    /// "etcdserver: no inflight downgrade job": nothing to cancel.
    NoDowngradeInProgress,
}

/// etcd's error descriptions (`rpctypes.ErrGRPC*`) and their kinds. etcd's
/// own client recognises its errors by these exact strings, whatever the code.
const DESCRIPTIONS: &[(&str, EtcdErrorKind)] = &[
    ("etcdserver: unhealthy cluster", EtcdErrorKind::Unhealthy),
    ("etcdserver: no leader", EtcdErrorKind::NoLeader),
    ("etcdserver: not leader", EtcdErrorKind::NotLeader),
    ("etcdserver: leader changed", EtcdErrorKind::LeaderChanged),
    (
        "etcdserver: can only promote a learner member which is in sync with leader",
        EtcdErrorKind::LearnerNotReady,
    ),
    (
        "etcdserver: can only promote a learner member",
        EtcdErrorKind::MemberNotLearner,
    ),
    (
        "etcdserver: member not found",
        EtcdErrorKind::MemberNotFound,
    ),
    (
        "etcdserver: too many learner members in cluster",
        EtcdErrorKind::TooManyLearners,
    ),
    (
        "etcdserver: mvcc: database space exceeded",
        EtcdErrorKind::NoSpace,
    ),
    (
        "etcdserver: permission denied",
        EtcdErrorKind::PermissionDenied,
    ),
    (
        "etcdserver: invalid auth token",
        EtcdErrorKind::InvalidAuthToken,
    ),
    ("etcdserver: user name is empty", EtcdErrorKind::UserEmpty),
    (
        "etcdserver: revision of auth store is old",
        EtcdErrorKind::AuthOldRevision,
    ),
    (
        "etcdserver: user name already exists",
        EtcdErrorKind::UserAlreadyExists,
    ),
    (
        "etcdserver: user name not found",
        EtcdErrorKind::UserNotFound,
    ),
    (
        "etcdserver: role name already exists",
        EtcdErrorKind::RoleAlreadyExists,
    ),
    (
        "etcdserver: role name not found",
        EtcdErrorKind::RoleNotFound,
    ),
    ("etcdserver: role name is empty", EtcdErrorKind::RoleEmpty),
    (
        "etcdserver: root user does not exist",
        EtcdErrorKind::RootUserMissing,
    ),
    (
        "etcdserver: root user does not have root role",
        EtcdErrorKind::RootRoleMissing,
    ),
    (
        "etcdserver: role is not granted to the user",
        EtcdErrorKind::RoleNotGranted,
    ),
    (
        "etcdserver: permission is not granted to the role",
        EtcdErrorKind::PermissionNotGranted,
    ),
    (
        "etcdserver: permission not given",
        EtcdErrorKind::PermissionNotGiven,
    ),
    (
        "etcdserver: invalid auth management",
        EtcdErrorKind::InvalidAuthManagement,
    ),
    (
        "etcdserver: authentication failed, invalid user ID or password",
        EtcdErrorKind::AuthFailed,
    ),
    // etcd maps no gRPC error to its `ErrNoPasswordUser` (3.4 to 3.6): a
    // login as a user that has no password comes back with the store's text.
    (
        "auth: authentication failed, password was given for no password user",
        EtcdErrorKind::AuthFailed,
    ),
    (
        "etcdserver: authentication is not enabled",
        EtcdErrorKind::AuthNotEnabled,
    ),
    (
        "etcdserver: request timed out",
        EtcdErrorKind::DeadlineExceeded,
    ),
    (
        "etcdserver: request timed out, possibly due to previous leader failure",
        EtcdErrorKind::DeadlineExceeded,
    ),
    (
        "etcdserver: request timed out, possibly due to connection lost",
        EtcdErrorKind::DeadlineExceeded,
    ),
    (
        "etcdserver: mvcc: required revision has been compacted",
        EtcdErrorKind::Compacted,
    ),
    (
        "etcdserver: invalid downgrade target version",
        EtcdErrorKind::InvalidDowngradeTarget,
    ),
    (
        "etcdserver: cluster has a downgrade job in progress",
        EtcdErrorKind::DowngradeInProgress,
    ),
    (
        "etcdserver: no inflight downgrade job",
        EtcdErrorKind::NoDowngradeInProgress,
    ),
];

impl EtcdErrorKind {
    /// Whether etcd refused the call for its token before applying it, so a
    /// fresh login and one resend are safe: clientv3's `shouldRefreshToken`
    /// (`client/v3/retry_interceptor.go`) resends exactly these.
    pub fn wants_fresh_login(self) -> bool {
        matches!(
            self,
            Self::UserEmpty | Self::InvalidAuthToken | Self::AuthOldRevision
        )
    }

    /// Whether etcd answered but refused the call for want of a login it
    /// accepts (auth is on): no token, a bad one, a refused login, or a user
    /// without the role the call needs. The member is up; what it would have
    /// said is unknown.
    pub fn is_auth_refusal(self) -> bool {
        matches!(
            self,
            Self::UserEmpty
                | Self::InvalidAuthToken
                | Self::AuthOldRevision
                | Self::AuthFailed
                | Self::PermissionDenied
        )
    }

    /// The kind of a gRPC status: etcd's description first, then the code.
    pub fn classify(code: tonic::Code, message: &str) -> Self {
        let message = message.trim();
        if let Some((_, kind)) = DESCRIPTIONS.iter().find(|(d, _)| *d == message) {
            return *kind;
        }
        match code {
            tonic::Code::Unavailable => Self::Unavailable,
            tonic::Code::DeadlineExceeded => Self::DeadlineExceeded,
            tonic::Code::PermissionDenied => Self::PermissionDenied,
            tonic::Code::Unauthenticated => Self::AuthFailed,
            _ => Self::Other,
        }
    }
}

impl EtcdError {
    /// What kind of failure this is.
    pub fn kind(&self) -> EtcdErrorKind {
        match self {
            Self::Timeout { .. } => EtcdErrorKind::DeadlineExceeded,
            Self::Call { kind, .. } => *kind,
        }
    }

    /// A failure etcdplan itself detects in an answer, or one outside gRPC.
    pub(super) fn other(ep: &Endpoint, message: String) -> Self {
        Self::Call {
            endpoint: ep.to_string(),
            kind: EtcdErrorKind::Other,
            message,
        }
    }
}

/// The typed error of a failed etcd-client call.
pub(super) fn call_error(ep: &Endpoint, e: &etcd_client::Error) -> EtcdError {
    let (kind, message) = match e {
        etcd_client::Error::GRpcStatus(s) => (
            EtcdErrorKind::classify(s.code(), s.message()),
            s.message().to_owned(),
        ),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
            (EtcdErrorKind::Unavailable, e.to_string())
        }
        other => (EtcdErrorKind::Other, other.to_string()),
    };
    EtcdError::Call {
        endpoint: ep.to_string(),
        kind,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn ep() -> Endpoint {
        Endpoint::parse("https://10.0.0.1:2379").unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn etcd_descriptions_are_read_whatever_the_code() {
        let cases = [
            (
                Code::Unavailable,
                "etcdserver: unhealthy cluster",
                EtcdErrorKind::Unhealthy,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: not leader",
                EtcdErrorKind::NotLeader,
            ),
            (
                Code::Unavailable,
                "etcdserver: no leader",
                EtcdErrorKind::NoLeader,
            ),
            (
                Code::Unavailable,
                "etcdserver: leader changed",
                EtcdErrorKind::LeaderChanged,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member which is in sync with leader",
                EtcdErrorKind::LearnerNotReady,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member",
                EtcdErrorKind::MemberNotLearner,
            ),
            (
                Code::NotFound,
                "etcdserver: member not found",
                EtcdErrorKind::MemberNotFound,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: too many learner members in cluster",
                EtcdErrorKind::TooManyLearners,
            ),
            (
                Code::InvalidArgument,
                "etcdserver: invalid downgrade target version",
                EtcdErrorKind::InvalidDowngradeTarget,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: cluster has a downgrade job in progress",
                EtcdErrorKind::DowngradeInProgress,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: no inflight downgrade job",
                EtcdErrorKind::NoDowngradeInProgress,
            ),
            (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
                EtcdErrorKind::NoSpace,
            ),
            (
                Code::PermissionDenied,
                "etcdserver: permission denied",
                EtcdErrorKind::PermissionDenied,
            ),
            (
                Code::Unauthenticated,
                "etcdserver: invalid auth token",
                EtcdErrorKind::InvalidAuthToken,
            ),
            (
                Code::InvalidArgument,
                "etcdserver: user name is empty",
                EtcdErrorKind::UserEmpty,
            ),
            (
                Code::InvalidArgument,
                "etcdserver: revision of auth store is old",
                EtcdErrorKind::AuthOldRevision,
            ),
            (
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
                EtcdErrorKind::AuthFailed,
            ),
            (
                Code::Unknown,
                "auth: authentication failed, password was given for no password user",
                EtcdErrorKind::AuthFailed,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: root user does not exist",
                EtcdErrorKind::RootUserMissing,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: root user does not have root role",
                EtcdErrorKind::RootRoleMissing,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: user name already exists",
                EtcdErrorKind::UserAlreadyExists,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: role name not found",
                EtcdErrorKind::RoleNotFound,
            ),
            (
                Code::FailedPrecondition,
                "etcdserver: authentication is not enabled",
                EtcdErrorKind::AuthNotEnabled,
            ),
            (
                Code::Unavailable,
                "etcdserver: request timed out, possibly due to previous leader failure",
                EtcdErrorKind::DeadlineExceeded,
            ),
            // etcd's own client matches descriptions alone; so does this.
            (
                Code::Unknown,
                "etcdserver: unhealthy cluster",
                EtcdErrorKind::Unhealthy,
            ),
        ];
        for (code, msg, want) in cases {
            assert_eq!(EtcdErrorKind::classify(code, msg), want, "{code:?} {msg}");
        }
    }

    #[test]
    fn other_messages_fall_back_to_the_code() {
        let cases = [
            (
                Code::Unavailable,
                "tcp connect error: Connection refused",
                EtcdErrorKind::Unavailable,
            ),
            (
                Code::DeadlineExceeded,
                "timeout expired",
                EtcdErrorKind::DeadlineExceeded,
            ),
            (
                Code::PermissionDenied,
                "no",
                EtcdErrorKind::PermissionDenied,
            ),
            (Code::Unauthenticated, "who", EtcdErrorKind::AuthFailed),
            (
                Code::InvalidArgument,
                "etcdserver: key is not provided",
                EtcdErrorKind::Other,
            ),
            // A description is matched whole, not as a substring: the two
            // promote refusals and "no leader"/"not leader" stay apart.
            (
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member, really",
                EtcdErrorKind::Other,
            ),
            (Code::Internal, "not leader", EtcdErrorKind::Other),
        ];
        for (code, msg, want) in cases {
            assert_eq!(EtcdErrorKind::classify(code, msg), want, "{code:?} {msg}");
        }
    }

    #[test]
    fn a_grpc_status_keeps_etcds_message_for_display() {
        let e = call_error(
            &ep(),
            &etcd_client::Error::GRpcStatus(tonic::Status::new(
                Code::FailedPrecondition,
                "etcdserver: can only promote a learner member which is in sync with leader",
            )),
        );
        assert_eq!(e.kind(), EtcdErrorKind::LearnerNotReady);
        assert_eq!(
            e.to_string(),
            "https://10.0.0.1:2379: etcdserver: can only promote a learner member which is in sync with leader"
        );
    }

    #[test]
    fn transport_failures_and_deadlines_have_their_kinds() {
        let io = call_error(
            &ep(),
            &etcd_client::Error::IoError(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )),
        );
        assert_eq!(io.kind(), EtcdErrorKind::Unavailable);
        let args = call_error(&ep(), &etcd_client::Error::InvalidArgs("x".into()));
        assert_eq!(args.kind(), EtcdErrorKind::Other);
        let t = EtcdError::Timeout {
            endpoint: ep().to_string(),
            timeout: Duration::from_secs(7),
        };
        assert_eq!(t.kind(), EtcdErrorKind::DeadlineExceeded);
    }
}
