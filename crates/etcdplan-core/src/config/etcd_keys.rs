//! The keys etcd's YAML config file knows, per minor version, so that
//! `[etcd.extra]` is checked before a member is restarted with a key its etcd
//! would silently ignore (etcd reads the file with a non-strict YAML decoder).
//!
//! Generated from the `json:"…"` tags of `embed.Config` and `configJSON`
//! (`embed/config.go` in 3.4, `server/embed/config.go` from 3.5 on) and of
//! `configProxy` (`etcdmain/config.go`, up to 3.5), at tags v3.4.45, v3.5.33,
//! v3.6.14 and v3.7.1. The TLS keys nested under `client-transport-security`
//! and `peer-transport-security` are in [`tls_keys`]. What 3.6 made of the
//! experimental keys (a new name, or a feature gate) is [`MIGRATIONS`], and
//! the gates each release accepts [`FEATURE_GATES`]: the renderer writes a
//! setting under the name the member's release knows, from one table.

use crate::model::MinorVersion;

/// Top-level config-file keys of etcd 3.4 (v3.4.45).
const V3_4: &[&str] = &[
    "advertise-client-urls",
    "auth-token",
    "auth-token-ttl",
    "auto-compaction-mode",
    "auto-compaction-retention",
    "backend-batch-interval",
    "backend-batch-limit",
    "bcrypt-cost",
    "cipher-suites",
    "client-transport-security",
    "cors",
    "data-dir",
    "debug",
    "discovery",
    "discovery-fallback",
    "discovery-proxy",
    "discovery-srv",
    "discovery-srv-name",
    "election-timeout",
    "enable-grpc-gateway",
    "enable-pprof",
    "enable-v2",
    "experimental-backend-bbolt-freelist-type",
    "experimental-compaction-batch-limit",
    "experimental-corrupt-check-time",
    "experimental-enable-lease-checkpoint",
    "experimental-enable-lease-checkpoint-persist",
    "experimental-enable-v2v3",
    "experimental-initial-corrupt-check",
    "experimental-warning-apply-duration",
    "experimental-watch-progress-notify-interval",
    "force-new-cluster",
    "grpc-keepalive-interval",
    "grpc-keepalive-min-time",
    "grpc-keepalive-timeout",
    "heartbeat-interval",
    "host-whitelist",
    "initial-advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "initial-election-tick-advance",
    "listen-client-http-urls",
    "listen-client-urls",
    "listen-metrics-urls",
    "listen-peer-urls",
    "log-level",
    "log-output",
    "log-outputs",
    "log-package-levels",
    "logger",
    "max-concurrent-streams",
    "max-request-bytes",
    "max-snapshots",
    "max-txn-ops",
    "max-wals",
    "metrics",
    "name",
    "next-cluster-version-compatible",
    "peer-transport-security",
    "pre-vote",
    "proxy",
    "proxy-dial-timeout",
    "proxy-failure-wait",
    "proxy-read-timeout",
    "proxy-refresh-interval",
    "proxy-write-timeout",
    "quota-backend-bytes",
    "snapshot-count",
    "strict-reconfig-check",
    "tls-max-version",
    "tls-min-version",
    "unsafe-no-fsync",
    "wal-dir",
];

/// Top-level config-file keys of etcd 3.5 (v3.5.33).
const V3_5: &[&str] = &[
    "advertise-client-urls",
    "auth-token",
    "auth-token-ttl",
    "auto-compaction-mode",
    "auto-compaction-retention",
    "backend-batch-interval",
    "backend-batch-limit",
    "backend-bbolt-freelist-type",
    "bcrypt-cost",
    "cipher-suites",
    "client-transport-security",
    "cors",
    "data-dir",
    "discovery",
    "discovery-fallback",
    "discovery-proxy",
    "discovery-srv",
    "discovery-srv-name",
    "election-timeout",
    "enable-grpc-gateway",
    "enable-log-rotation",
    "enable-pprof",
    "enable-v2",
    "experimental-bootstrap-defrag-threshold-megabytes",
    "experimental-compact-hash-check-enabled",
    "experimental-compact-hash-check-time",
    "experimental-compaction-batch-limit",
    "experimental-compaction-sleep-interval",
    "experimental-corrupt-check-time",
    "experimental-distributed-tracing-address",
    "experimental-distributed-tracing-instance-id",
    "experimental-distributed-tracing-sampling-rate",
    "experimental-distributed-tracing-service-name",
    "experimental-downgrade-check-time",
    "experimental-enable-distributed-tracing",
    "experimental-enable-lease-checkpoint",
    "experimental-enable-lease-checkpoint-persist",
    "experimental-enable-v2v3",
    "experimental-initial-corrupt-check",
    "experimental-memory-mlock",
    "experimental-snapshot-catch-up-entries",
    "experimental-stop-grpc-service-on-defrag",
    "experimental-txn-mode-write-with-shared-buffer",
    "experimental-warning-apply-duration",
    "experimental-watch-progress-notify-interval",
    "force-new-cluster",
    "grpc-keepalive-interval",
    "grpc-keepalive-min-time",
    "grpc-keepalive-timeout",
    "heartbeat-interval",
    "host-whitelist",
    "initial-advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "initial-election-tick-advance",
    "listen-client-http-urls",
    "listen-client-urls",
    "listen-metrics-urls",
    "listen-peer-urls",
    "log-level",
    "log-outputs",
    "log-rotation-config-json",
    "logger",
    "max-concurrent-streams",
    "max-request-bytes",
    "max-snapshots",
    "max-txn-ops",
    "max-wals",
    "metrics",
    "name",
    "peer-transport-security",
    "pre-vote",
    "proxy",
    "proxy-dial-timeout",
    "proxy-failure-wait",
    "proxy-read-timeout",
    "proxy-refresh-interval",
    "proxy-write-timeout",
    "quota-backend-bytes",
    "self-signed-cert-validity",
    "snapshot-count",
    "socket-options",
    "strict-reconfig-check",
    "tls-max-version",
    "tls-min-version",
    "unsafe-no-fsync",
    "v2-deprecation",
    "wal-dir",
];

/// Top-level config-file keys of etcd 3.6 (v3.6.14).
const V3_6: &[&str] = &[
    "advertise-client-urls",
    "auth-token",
    "auth-token-ttl",
    "auto-compaction-mode",
    "auto-compaction-retention",
    "backend-batch-interval",
    "backend-batch-limit",
    "backend-bbolt-freelist-type",
    "bcrypt-cost",
    "bootstrap-defrag-threshold-megabytes",
    "cipher-suites",
    "client-transport-security",
    "compact-hash-check-time",
    "compaction-batch-limit",
    "compaction-sleep-interval",
    "corrupt-check-time",
    "cors",
    "data-dir",
    "discovery",
    "discovery-config",
    "discovery-proxy",
    "discovery-srv",
    "discovery-srv-name",
    "distributed-tracing-address",
    "distributed-tracing-instance-id",
    "distributed-tracing-sampling-rate",
    "distributed-tracing-service-name",
    "downgrade-check-time",
    "election-timeout",
    "enable-distributed-tracing",
    "enable-grpc-gateway",
    "enable-log-rotation",
    "enable-pprof",
    "experimental-bootstrap-defrag-threshold-megabytes",
    "experimental-compact-hash-check-enabled",
    "experimental-compact-hash-check-time",
    "experimental-compaction-batch-limit",
    "experimental-compaction-sleep-interval",
    "experimental-corrupt-check-time",
    "experimental-distributed-tracing-address",
    "experimental-distributed-tracing-instance-id",
    "experimental-distributed-tracing-sampling-rate",
    "experimental-distributed-tracing-service-name",
    "experimental-downgrade-check-time",
    "experimental-enable-distributed-tracing",
    "experimental-enable-lease-checkpoint",
    "experimental-enable-lease-checkpoint-persist",
    "experimental-initial-corrupt-check",
    "experimental-memory-mlock",
    "experimental-peer-skip-client-san-verification",
    "experimental-snapshot-catch-up-entries",
    "experimental-stop-grpc-service-on-defrag",
    "experimental-txn-mode-write-with-shared-buffer",
    "experimental-warning-apply-duration",
    "experimental-warning-unary-request-duration",
    "experimental-watch-progress-notify-interval",
    "feature-gates",
    "force-new-cluster",
    "grpc-additional-server-options",
    "grpc-keepalive-interval",
    "grpc-keepalive-min-time",
    "grpc-keepalive-timeout",
    "heartbeat-interval",
    "host-whitelist",
    "initial-advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "initial-election-tick-advance",
    "listen-client-http-urls",
    "listen-client-urls",
    "listen-metrics-urls",
    "listen-peer-urls",
    "log-format",
    "log-level",
    "log-outputs",
    "log-rotation-config-json",
    "logger",
    "max-concurrent-streams",
    "max-learners",
    "max-request-bytes",
    "max-snapshots",
    "max-txn-ops",
    "max-wals",
    "memory-mlock",
    "metrics",
    "name",
    "peer-transport-security",
    "pre-vote",
    "quota-backend-bytes",
    "self-signed-cert-validity",
    "snapshot-catchup-entries",
    "snapshot-count",
    "socket-options",
    "strict-reconfig-check",
    "tls-max-version",
    "tls-min-version",
    "unsafe-no-fsync",
    "v2-deprecation",
    "wal-dir",
    "warning-apply-duration",
    "warning-unary-request-duration",
    "watch-progress-notify-interval",
];

/// Top-level config-file keys of etcd 3.7 (v3.7.1).
const V3_7: &[&str] = &[
    "advertise-client-urls",
    "auth-token",
    "auth-token-ttl",
    "auto-compaction-mode",
    "auto-compaction-retention",
    "backend-batch-interval",
    "backend-batch-limit",
    "backend-bbolt-freelist-type",
    "bcrypt-cost",
    "bootstrap-defrag-threshold-megabytes",
    "cipher-suites",
    "client-transport-security",
    "compact-hash-check-time",
    "compaction-batch-limit",
    "compaction-sleep-interval",
    "corrupt-check-time",
    "cors",
    "data-dir",
    "discovery-config",
    "discovery-srv",
    "discovery-srv-name",
    "distributed-tracing-address",
    "distributed-tracing-instance-id",
    "distributed-tracing-sampling-rate",
    "distributed-tracing-service-name",
    "downgrade-check-time",
    "election-timeout",
    "enable-distributed-tracing",
    "enable-grpc-gateway",
    "enable-log-rotation",
    "enable-pprof",
    "feature-gates",
    "force-new-cluster",
    "grpc-additional-server-options",
    "grpc-keepalive-interval",
    "grpc-keepalive-min-time",
    "grpc-keepalive-timeout",
    "heartbeat-interval",
    "host-whitelist",
    "initial-advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "initial-election-tick-advance",
    "listen-client-http-urls",
    "listen-client-urls",
    "listen-metrics-urls",
    "listen-peer-urls",
    "log-format",
    "log-level",
    "log-outputs",
    "log-rotation-config-json",
    "logger",
    "max-concurrent-streams",
    "max-learners",
    "max-request-bytes",
    "max-snapshots",
    "max-txn-ops",
    "max-wals",
    "memory-mlock",
    "metrics",
    "name",
    "peer-transport-security",
    "pre-vote",
    "quota-backend-bytes",
    "self-signed-cert-validity",
    "snapshot-catchup-entries",
    "snapshot-count",
    "socket-options",
    "strict-reconfig-check",
    "tls-max-version",
    "tls-min-version",
    "unsafe-no-fsync",
    "v2-deprecation",
    "wal-dir",
    "warning-apply-duration",
    "warning-unary-request-duration",
    "watch-progress-notify-interval",
];
/// The minor versions whose keys are known, oldest first.
pub const KNOWN_MINORS: &[(u32, u32)] = &[(3, 4), (3, 5), (3, 6), (3, 7)];

/// The config-file keys etcd `v` knows; None for a version not in the table.
pub fn keys(v: MinorVersion) -> Option<&'static [&'static str]> {
    match (v.major, v.minor) {
        (3, 4) => Some(V3_4),
        (3, 5) => Some(V3_5),
        (3, 6) => Some(V3_6),
        (3, 7) => Some(V3_7),
        _ => None,
    }
}

/// Whether any known etcd version has `key`.
pub fn known_anywhere(key: &str) -> bool {
    [V3_4, V3_5, V3_6, V3_7].iter().any(|ks| ks.contains(&key))
}

/// The last minor version that knows `key`, when a known version has it.
pub fn last_known_in(key: &str) -> Option<MinorVersion> {
    KNOWN_MINORS
        .iter()
        .rev()
        .map(|&(major, minor)| MinorVersion { major, minor })
        .find(|&v| keys(v).is_some_and(|ks| ks.contains(&key)))
}

/// The first minor version that knows `key`.
pub fn first_known_in(key: &str) -> Option<MinorVersion> {
    KNOWN_MINORS
        .iter()
        .map(|&(major, minor)| MinorVersion { major, minor })
        .find(|&v| keys(v).is_some_and(|ks| ks.contains(&key)))
}

/// What 3.6 made of an experimental setting of 3.4/3.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Successor {
    /// The same setting under a new top-level key; the value is unchanged.
    Renamed(&'static str),
    /// A boolean that became a feature gate: `old: x` is `feature-gates: "Gate=x"`
    /// (etcd sets the gate to the flag's value, whatever the gate's default).
    Gate(&'static str),
}

/// One experimental config-file key and its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The key as 3.4/3.5's YAML spells it (the JSON tag, which for
    /// `experimental-snapshot-catch-up-entries` is not the flag's name).
    pub old: &'static str,
    /// What replaces it from 3.6 on.
    pub new: Successor,
}

/// The experimental keys 3.6 renamed or made feature gates: etcd v3.6.14
/// `server/embed/config.go` `experimentalFlagMigrationMap` (renames; plus
/// `experimental-warning-unary-request-duration` from
/// `server/etcdmain/config.go` `deprecatedFlags`) and
/// `server/features/etcd_features.go` `ExperimentalFlagToFeatureMap` (gates).
/// `experimental-peer-skip-client-san-verification` is not here: its
/// successor is nested under `peer-transport-security`, which `[tls]` writes.
pub const MIGRATIONS: &[Migration] = &[
    rename(
        "experimental-bootstrap-defrag-threshold-megabytes",
        "bootstrap-defrag-threshold-megabytes",
    ),
    rename(
        "experimental-compact-hash-check-time",
        "compact-hash-check-time",
    ),
    rename(
        "experimental-compaction-batch-limit",
        "compaction-batch-limit",
    ),
    rename(
        "experimental-compaction-sleep-interval",
        "compaction-sleep-interval",
    ),
    rename("experimental-corrupt-check-time", "corrupt-check-time"),
    rename(
        "experimental-distributed-tracing-address",
        "distributed-tracing-address",
    ),
    rename(
        "experimental-distributed-tracing-instance-id",
        "distributed-tracing-instance-id",
    ),
    rename(
        "experimental-distributed-tracing-sampling-rate",
        "distributed-tracing-sampling-rate",
    ),
    rename(
        "experimental-distributed-tracing-service-name",
        "distributed-tracing-service-name",
    ),
    rename("experimental-downgrade-check-time", "downgrade-check-time"),
    rename(
        "experimental-enable-distributed-tracing",
        "enable-distributed-tracing",
    ),
    rename("experimental-memory-mlock", "memory-mlock"),
    rename(
        "experimental-snapshot-catch-up-entries",
        "snapshot-catchup-entries",
    ),
    rename(
        "experimental-warning-apply-duration",
        "warning-apply-duration",
    ),
    rename(
        "experimental-warning-unary-request-duration",
        "warning-unary-request-duration",
    ),
    rename(
        "experimental-watch-progress-notify-interval",
        "watch-progress-notify-interval",
    ),
    gate(
        "experimental-compact-hash-check-enabled",
        "CompactHashCheck",
    ),
    gate("experimental-enable-lease-checkpoint", "LeaseCheckpoint"),
    gate(
        "experimental-enable-lease-checkpoint-persist",
        "LeaseCheckpointPersist",
    ),
    gate("experimental-initial-corrupt-check", "InitialCorruptCheck"),
    gate(
        "experimental-stop-grpc-service-on-defrag",
        "StopGRPCServiceOnDefrag",
    ),
    gate(
        "experimental-txn-mode-write-with-shared-buffer",
        "TxnModeWriteWithSharedBuffer",
    ),
];

const fn rename(old: &'static str, new: &'static str) -> Migration {
    Migration {
        old,
        new: Successor::Renamed(new),
    }
}

const fn gate(old: &'static str, gate: &'static str) -> Migration {
    Migration {
        old,
        new: Successor::Gate(gate),
    }
}

/// A feature gate etcd's `feature-gates` key accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureGate {
    /// Its name, as `feature-gates` spells it.
    pub name: &'static str,
    /// The first minor version that knows it (an older one refuses the
    /// whole key: "unrecognized feature gate").
    pub since: MinorVersion,
    /// Its default: `TxnModeWriteWithSharedBuffer` and `FastLeaseKeepAlive`
    /// are on unless turned off.
    pub default: bool,
}

const V36: MinorVersion = MinorVersion { major: 3, minor: 6 };
const V37: MinorVersion = MinorVersion { major: 3, minor: 7 };

/// The feature gates of etcd v3.6.14 and v3.7.1
/// (`server/features/etcd_features.go` `DefaultEtcdServerFeatureGates`).
pub const FEATURE_GATES: &[FeatureGate] = &[
    fg("CompactHashCheck", V36, false),
    fg("FastLeaseKeepAlive", V37, true),
    fg("InitialCorruptCheck", V36, false),
    fg("LeaseCheckpoint", V36, false),
    fg("LeaseCheckpointPersist", V36, false),
    fg("PriorityRequest", V37, false),
    fg("SetMemberLocalAddr", V36, false),
    fg("StopGRPCServiceOnDefrag", V36, false),
    fg("TxnModeWriteWithSharedBuffer", V36, true),
];

/// The corruption checks etcdplan turns on in every member's file unless the
/// etcdfile sets them (either name: `feature-gates = "CompactHashCheck=false"`
/// or `experimental-compact-hash-check-enabled = false`): etcd raises the
/// CORRUPT alarm only when a check runs, and both are off by default in every
/// release. They travel as 3.6's gate names through [`MIGRATIONS`], so each
/// release gets the one name it knows:
/// - 3.6 and 3.7: `feature-gates: "CompactHashCheck=true,InitialCorruptCheck=true"`.
/// - 3.5: `experimental-initial-corrupt-check` and
///   `experimental-compact-hash-check-enabled`. The second came in v3.5.5;
///   v3.5.0 to v3.5.4 read the file with `sigs.k8s.io/yaml`'s non-strict
///   `Unmarshal` (`server/embed/config.go` `configFromFile`), so they ignore it
///   and start as before.
/// - 3.4: `experimental-initial-corrupt-check` only. 3.4 has no compact-hash
///   check; its one periodic check (`experimental-corrupt-check-time`) hashes
///   the whole keyspace on every member at each period, which etcd's 3.4 guide
///   calls a high performance cost (a period of hours at best): left to the
///   operator's `[etcd.extra]`, not a default.
///
/// A member that starts on fresh data skips the initial check (etcd runs it
/// only for an initialized member), so a bootstrap is not slowed by it.
pub const DEFAULT_GATES: &[(&str, bool)] =
    &[("CompactHashCheck", true), ("InitialCorruptCheck", true)];

const fn fg(name: &'static str, since: MinorVersion, default: bool) -> FeatureGate {
    FeatureGate {
        name,
        since,
        default,
    }
}

/// The migration of an old experimental key.
pub fn migration_of(old: &str) -> Option<&'static Migration> {
    MIGRATIONS.iter().find(|m| m.old == old)
}

/// The migration whose successor is `new` (a 3.6 key or a gate's name).
pub fn migration_to(new: &str) -> Option<&'static Migration> {
    MIGRATIONS.iter().find(|m| match m.new {
        Successor::Renamed(n) | Successor::Gate(n) => n == new,
    })
}

/// The gate called `name`, in any known version.
pub fn feature_gate(name: &str) -> Option<&'static FeatureGate> {
    FEATURE_GATES.iter().find(|g| g.name == name)
}

/// Whether etcd `v` knows gate `name` (no version before 3.6 knows any).
pub fn gate_known_in(v: MinorVersion, name: &str) -> bool {
    feature_gate(name).is_some_and(|g| g.since <= v && has_key(v, "feature-gates"))
}

/// The known version whose keys a renderer uses for `v`: `v` itself, else
/// the nearest known one (3.7's for a newer etcd, 3.4's for an older one).
pub fn nearest_known(v: MinorVersion) -> MinorVersion {
    let known = KNOWN_MINORS
        .iter()
        .map(|&(major, minor)| MinorVersion { major, minor });
    known
        .clone()
        .rev()
        .find(|k| *k <= v)
        .or_else(|| known.clone().next())
        .unwrap_or(v)
}

/// Whether etcd `v` (or the nearest known version) has the top-level key.
pub fn has_key(v: MinorVersion, key: &str) -> bool {
    keys(nearest_known(v)).is_some_and(|ks| ks.contains(&key))
}

/// The keys nested under `client-transport-security` and
/// `peer-transport-security` in etcd `v`: the JSON tags of `securityConfig`
/// in etcd v3.4.45 `embed/config.go` (the first five) and v3.5.33 (adds the
/// client certificate of the member's own dials and the CN/host allow-lists),
/// v3.6.14 and v3.7.1 (add `skip-client-san-verification`) in
/// `server/embed/config.go`.
pub fn tls_keys(v: MinorVersion) -> &'static [&'static str] {
    const ALL: &[&str] = &[
        "cert-file",
        "key-file",
        "client-cert-auth",
        "trusted-ca-file",
        "auto-tls",
        "client-cert-file",
        "client-key-file",
        "allowed-cn",
        "allowed-hostname",
        "skip-client-san-verification",
    ];
    match nearest_known(v).minor {
        ..=4 => &ALL[..5],
        5 => &ALL[..9],
        _ => ALL,
    }
}

/// What replaced an `experimental-*` key in 3.6 (deprecated there, removed in
/// 3.7), said for a help message: from [`MIGRATIONS`] (a gate is shown set
/// against its default, the reason to set it), plus the two keys whose
/// successor is not a top-level key or whose flag is spelled otherwise.
pub fn replacement(key: &str) -> Option<String> {
    match key {
        "experimental-peer-skip-client-san-verification" => {
            return Some(
                "skip-client-san-verification under peer-transport-security (which [tls] decides)"
                    .into(),
            );
        }
        // The flag's spelling, for whoever copies it from a command line.
        "experimental-snapshot-catchup-entries" => return Some("snapshot-catchup-entries".into()),
        _ => {}
    }
    Some(match migration_of(key)?.new {
        Successor::Renamed(new) => new.to_owned(),
        Successor::Gate(gate) => {
            let on = feature_gate(gate).is_none_or(|g| !g.default);
            format!("feature-gates: \"{gate}={on}\"")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u32) -> MinorVersion {
        MinorVersion { major: 3, minor }
    }

    #[test]
    fn tables_follow_etcds_history() {
        let has = |m, k| keys(v(m)).is_some_and(|ks| ks.contains(&k));
        // Kept everywhere.
        for m in 4..=7 {
            assert!(has(m, "heartbeat-interval"), "3.{m}");
            assert!(has(m, "listen-metrics-urls"), "3.{m}");
        }
        // v2 and the proxy went in 3.6; experimental names in 3.7.
        assert!(has(5, "enable-v2") && !has(6, "enable-v2"));
        assert!(has(5, "proxy") && !has(6, "proxy"));
        assert!(has(6, "experimental-initial-corrupt-check"));
        assert!(!has(7, "experimental-initial-corrupt-check"));
        assert!(!has(5, "feature-gates") && has(6, "feature-gates"));
        assert!(has(4, "log-package-levels") && !has(5, "log-package-levels"));
        assert_eq!(last_known_in("enable-v2"), Some(v(5)));
        assert_eq!(first_known_in("feature-gates"), Some(v(6)));
        assert!(!known_anywhere("no-such-key"));
        assert_eq!(keys(v(8)), None);
        // Every migration goes from a name 3.5 or 3.4 had to one 3.6 and
        // 3.7 have, and gives the help text the old rule of thumb gave.
        for mg in MIGRATIONS {
            assert!(
                has(4, mg.old) || has(5, mg.old) || has(6, mg.old),
                "{}",
                mg.old
            );
            assert!(!has(7, mg.old), "{}", mg.old);
            match mg.new {
                Successor::Renamed(n) => assert!(has(6, n) && has(7, n), "{n}"),
                Successor::Gate(g) => {
                    assert!(gate_known_in(v(6), g) && gate_known_in(v(7), g), "{g}");
                    assert!(!gate_known_in(v(5), g), "{g}");
                }
            }
        }
        assert_eq!(
            replacement("experimental-txn-mode-write-with-shared-buffer").as_deref(),
            Some("feature-gates: \"TxnModeWriteWithSharedBuffer=false\"")
        );
        assert_eq!(
            replacement("experimental-initial-corrupt-check").as_deref(),
            Some("feature-gates: \"InitialCorruptCheck=true\"")
        );
        assert_eq!(
            replacement("experimental-snapshot-catch-up-entries").as_deref(),
            Some("snapshot-catchup-entries")
        );
        assert!(gate_known_in(v(7), "PriorityRequest") && !gate_known_in(v(6), "PriorityRequest"));
        assert!(gate_known_in(v(6), "SetMemberLocalAddr"));
        assert_eq!(nearest_known(v(9)), v(7));
        assert_eq!(nearest_known(v(3)), v(4));
        assert_eq!(tls_keys(v(4)).len(), 5);
        assert!(tls_keys(v(6)).contains(&"skip-client-san-verification"));
        // Every renamed experimental key is one etcd had.
        for m in 4..=6 {
            for k in keys(v(m)).unwrap_or_default() {
                if let Some(r) = replacement(k)
                    && !r.contains(' ')
                {
                    assert!(
                        keys(v(6)).is_some_and(|ks| ks.iter().any(|x| *x == r)),
                        "{k} -> {r}"
                    );
                }
            }
        }
    }
}
