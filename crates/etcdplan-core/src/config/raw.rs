//! The etcdfile as written: a serde mirror of the TOML that keeps every span.
//!
//! Nothing here is checked beyond TOML types; `validate` turns this into the typed
//! [`Desired`](super::Desired) model. The JSON Schema for editors is derived from
//! these types, and the structural check (`check`) reads that same schema, so the
//! keys and types are defined once.

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// The whole etcdfile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "etcdfile",
    description = "The etcd cluster etcdplan reconciles: etcdfile.toml"
)]
pub struct RawEtcdfile {
    /// The cluster's identity.
    #[schemars(with = "RawCluster")]
    pub cluster: Spanned<RawCluster>,
    /// Settings every member gets.
    #[serde(default)]
    pub etcd: RawEtcd,
    /// TLS for client and peer traffic.
    #[serde(default)]
    pub tls: RawTls,
    /// How etcdplan reaches the hosts and runs etcd there.
    #[serde(default)]
    pub hosts: RawHosts,
    /// etcdplan's own identity when it talks to the members (files on this
    /// machine); the flags `--cacert`, `--cert`, `--key` win over it.
    #[serde(default)]
    pub client: RawClient,
    /// Snapshots kept on this machine: where, how often, how many, and how
    /// they are copied off it.
    #[serde(default)]
    #[schemars(with = "Option<RawBackup>")]
    pub backup: Option<Spanned<RawBackup>>,
    /// Upkeep etcdplan plans by rule: when a member is defragmented.
    #[serde(default)]
    #[schemars(with = "Option<RawMaintenance>")]
    pub maintenance: Option<Spanned<RawMaintenance>>,
    /// etcd's own authentication: root, the users and roles, the token.
    /// Without it etcdplan leaves auth as it finds it.
    #[serde(default)]
    #[schemars(with = "Option<RawAuth>")]
    pub auth: Option<Spanned<RawAuth>>,
    /// The members, in the order they are bootstrapped.
    #[serde(default)]
    #[schemars(with = "Vec<RawMember>")]
    pub member: Vec<Spanned<RawMember>>,
}

/// `[cluster]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// The cluster's name; also its initial-cluster-token unless
    /// `initial_cluster_token` says otherwise.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// etcd's initial-cluster-token (default: the cluster's name). Set it to
    /// the token a cluster built by hand was bootstrapped with; etcd reads it
    /// only when a member's data dir is empty.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub initial_cluster_token: Option<Spanned<String>>,
    /// The version every member must run: a minor version such as "3.5" (any
    /// patch), or one release such as "3.5.16".
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub version: Option<Spanned<String>>,
}

/// `[etcd]`: settings every member gets.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEtcd {
    /// Port for client traffic (default 2379).
    #[serde(default)]
    #[schemars(with = "Option<u16>", range(min = 1, max = 65535))]
    pub client_port: Option<Spanned<u16>>,
    /// Port for peer traffic (default 2380).
    #[serde(default)]
    #[schemars(with = "Option<u16>", range(min = 1, max = 65535))]
    pub peer_port: Option<Spanned<u16>>,
    /// Backend quota: "2GiB", "512MiB" (binary units only) or a number of bytes (default "2GiB").
    #[serde(default)]
    #[schemars(with = "Option<SizeValue>")]
    pub quota_backend_bytes: Option<Spanned<SizeValue>>,
    /// "revision" or "periodic" (default "revision").
    #[serde(default)]
    #[schemars(with = "Option<RawCompactionMode>")]
    pub auto_compaction_mode: Option<Spanned<RawCompactionMode>>,
    /// Revisions to keep ("1000"), or a duration for periodic mode ("1h", "30m").
    /// Default: "1000" in revision mode, "1h" in periodic mode.
    #[serde(default)]
    #[schemars(with = "Option<SizeValue>")]
    pub auto_compaction_retention: Option<Spanned<SizeValue>>,
    /// Where each member keeps its data; may contain {name} (default "/var/lib/etcd").
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub data_dir: Option<Spanned<String>>,
    /// Path of the etcd binary on the host (default "/usr/bin/etcd").
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub binary: Option<Spanned<String>>,
    /// Where etcdplan takes the etcd binary from, on this machine: an etcd
    /// binary, a release folder (an unpacked etcd-v3.5.16-linux-amd64 tarball
    /// or .deb), or a folder of release folders. etcdplan uploads the release a
    /// member needs to `<binary>-<version>` on its host (checked by sha256) and
    /// points `binary` at it when the member restarts; older releases stay for
    /// rollback. Without it, etcdplan runs whatever `binary` is on each host.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub binary_source: Option<Spanned<String>>,
    /// Raft heartbeat: "100ms", "1s", or a bare integer of milliseconds as
    /// etcd takes it (default 100ms). Equal on all members.
    #[serde(default)]
    #[schemars(with = "Option<SizeValue>")]
    pub heartbeat_interval: Option<Spanned<SizeValue>>,
    /// Raft election timeout: "1s", "1500ms", or a bare integer of
    /// milliseconds (default 1s); at least 5 times heartbeat_interval and at
    /// most 50s, as etcd requires. Equal on all members.
    #[serde(default)]
    #[schemars(with = "Option<SizeValue>")]
    pub election_timeout: Option<Spanned<SizeValue>>,
    /// Applied entries between two snapshots (default: etcd's, 100000 before
    /// 3.6 and 10000 from 3.6 on). A member may override it.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1))]
    pub snapshot_count: Option<Spanned<u64>>,
    /// Largest client request etcd accepts: "1536KiB", "10MiB" or a number of
    /// bytes (default 1.5MiB). Equal on all members.
    #[serde(default)]
    #[schemars(with = "Option<SizeValue>")]
    pub max_request_bytes: Option<Spanned<SizeValue>>,
    /// Extra listeners serving /metrics and /health, such as
    /// "http://{address}:2381"; {address} stands for the member's address
    /// (0.0.0.0 for a DNS name, as etcd binds only IPs). A member may override it.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub listen_metrics_urls: Option<Spanned<Vec<Spanned<String>>>>,
    /// More IP addresses the client port also listens on, such as
    /// "127.0.0.1" (they are added to the member's server certificate). A
    /// member may override it.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub extra_listen_addresses: Option<Spanned<Vec<Spanned<String>>>>,
    /// etcd's log level (default "info"). A member may override it.
    #[serde(default)]
    #[schemars(with = "Option<RawLogLevel>")]
    pub log_level: Option<Spanned<RawLogLevel>>,
    /// A separate folder for the write-ahead log; may contain {name} (default:
    /// inside data_dir). Moved aside together with the data dir. A member
    /// may override it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub wal_dir: Option<Spanned<String>>,
    /// Any other etcd setting, keyed by etcd's config-file name
    /// (`experimental-initial-corrupt-check = true`); checked against the keys
    /// etcd knows for the version in [cluster]. Values are written as etcd's
    /// config file takes them (durations in nanoseconds).
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, ExtraValue>")]
    pub extra: Option<Spanned<std::collections::BTreeMap<Spanned<String>, Spanned<ExtraValue>>>>,
}

/// `[tls]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// https for client traffic.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub client: Option<Spanned<bool>>,
    /// https for peer traffic.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub peer: Option<Spanned<bool>>,
    /// Clients must present a certificate signed by the CA (needs client = true).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub client_cert_auth: Option<Spanned<bool>>,
    /// Local folder holding the CA; created when absent. The CA key never leaves this machine.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ca_dir: Option<Spanned<String>>,
    /// How long member certificates are valid, in days (default 365).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1, max = 3650))]
    pub cert_days: Option<Spanned<u32>>,
    /// Member certificates expiring within this many days are renewed (default 30);
    /// with issuer = "external", plan warns about them instead.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 0, max = 3650))]
    pub renew_before_days: Option<Spanned<u32>>,
    /// Who issues the members' certificates: "etcdplan" (its CA in ca_dir,
    /// the default) or "external" (the operator's own CA: etcdplan only reads
    /// the files named below, and never issues, moves or rewrites them).
    #[serde(default)]
    #[schemars(with = "Option<RawIssuer>")]
    pub issuer: Option<Spanned<RawIssuer>>,
    /// The external CA's certificate on this machine (issuer = "external"):
    /// the members' certificates must verify against it.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Spanned<String>>,
    /// Server certificate on each host (issuer = "external"); may contain {name} and {address}.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub server_cert: Option<Spanned<String>>,
    /// Its key on each host (issuer = "external"); may contain {name} and {address}.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub server_key: Option<Spanned<String>>,
    /// Peer certificate on each host (issuer = "external"); may contain {name} and {address}.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub peer_cert: Option<Spanned<String>>,
    /// Its key on each host (issuer = "external"); may contain {name} and {address}.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub peer_key: Option<Spanned<String>>,
    /// The CA bundle members trust, on each host (issuer = "external"); may
    /// contain {name} and {address}.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub trusted_ca: Option<Spanned<String>>,
    /// A certificate revocation list (PEM) on this machine: etcdplan places
    /// it on every member as etcd's client-crl-file, so a client certificate
    /// can be withdrawn. Needs client = true.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub crl_file: Option<Spanned<String>>,
}

/// `[client]`: the files etcdplan presents to the members, on this machine.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// CA bundle to verify the members with (default: the CA of [tls]).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub cacert: Option<Spanned<String>>,
    /// Client certificate (with key); default: one etcdplan issues from its CA
    /// for each run (issuer = "etcdplan"), none with issuer = "external".
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub cert: Option<Spanned<String>>,
    /// The client certificate's key.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
}

/// `[backup]`: scheduled snapshots on this machine.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    /// Folder of the snapshots and their manifests on this machine, made
    /// 0700; relative to the etcdfile's folder (default "snapshots"). The
    /// snapshots taken before membership or version changes go here too.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub dir: Option<Spanned<String>>,
    /// Time between scheduled snapshots, as etcd writes durations ("6h",
    /// "30m", "1h30m"); taken by `watch` and by `etcdplan snapshot --if-due`.
    /// Without it there is no schedule.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub interval: Option<Spanned<String>>,
    /// How many snapshots to keep in dir (default: all). The oldest beyond
    /// that are deleted, never the newest verified one, and never one whose
    /// copy has not succeeded yet.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1, max = 100000))]
    pub keep: Option<Spanned<i64>>,
    /// A shell command (`sh -c`, 10-minute deadline) that copies each
    /// snapshot off this machine; `{path}` (required) and `{manifest}` are
    /// replaced by the shell-quoted paths: "aws s3 cp {path} s3://bucket/etcd/".
    /// A failure is reported and retried at the next interval.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub copy_command: Option<Spanned<String>>,
    /// An age recipient ("age1…"): the snapshot is encrypted to it
    /// (`<file>.age`) and that file is what `{path}` names. Snapshots hold
    /// every secret the cluster stores.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub encrypt_to: Option<Spanned<String>>,
}

/// `[maintenance]`: upkeep planned by rule.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    /// When a member is defragmented (one at a time, the leader last): a
    /// boolean expression over etcd-defrag's variables `dbSize`,
    /// `dbSizeInUse`, `dbSizeFree`, `dbQuota` (bytes) and `dbQuotaUsage`
    /// (0 to 1), with `&&`, `||`, `!`, comparisons, `+ - * / %`, parentheses
    /// and sizes in binary units: "dbSizeFree > 200MiB && dbQuotaUsage > 0.5".
    /// Without it no member is defragmented by rule.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub defrag_rule: Option<Spanned<String>>,
}

/// `[auth]`: etcd's users, roles and token. Passwords are never written
/// here: each is named by an environment variable or a file on this machine.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Whether authentication is on (default true); false turns it off.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub enabled: Option<Spanned<bool>>,
    /// The environment variable holding root's password.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub root_password_env: Option<Spanned<String>>,
    /// A file on this machine whose first line is root's password.
    /// Without either, root logs in by a client certificate with CN "root"
    /// (needs client_cert_auth).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub root_password_file: Option<Spanned<String>>,
    /// The token etcd hands out after a login: "jwt" (signed, etcd's advice
    /// for production) or "simple" (the default, warned about).
    #[serde(default)]
    #[schemars(with = "Option<RawToken>")]
    pub token: Option<Spanned<RawToken>>,
    /// How long a token lives, as etcd writes durations ("5m", "1h"); whole
    /// seconds from 1s to 24h (default "5m", etcd's).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub token_ttl: Option<Spanned<String>>,
    /// Folder on this machine for the JWT signing key pair (token = "jwt"),
    /// made by etcdplan and placed on every member (key 0600). Default: the
    /// folder "auth" beside ca_dir (with the default ca_dir, beside the
    /// etcdfile).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub key_dir: Option<Spanned<String>>,
    /// Delete users and roles the file does not declare (default false:
    /// they are reported and left alone).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub prune: Option<Spanned<bool>>,
    /// The roles (root's role exists already).
    #[serde(default)]
    #[schemars(with = "Vec<RawRole>")]
    pub role: Vec<Spanned<RawRole>>,
    /// The users (root is described by root_password_env/_file).
    #[serde(default)]
    #[schemars(with = "Vec<RawUser>")]
    pub user: Vec<Spanned<RawUser>>,
}

/// `[[auth.role]]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    /// The role's name.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What it grants: { key = "/app/", prefix = true, access = "readwrite" }.
    #[serde(default)]
    #[schemars(with = "Vec<RawPermission>")]
    pub permissions: Vec<Spanned<RawPermission>>,
}

/// One grant of a role.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPermission {
    /// The key, or with prefix = true every key starting with it; not empty.
    #[schemars(with = "String")]
    pub key: Spanned<String>,
    /// Whether key is a prefix (default false).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub prefix: Option<Spanned<bool>>,
    /// "read", "write" or "readwrite".
    #[schemars(with = "RawAccess")]
    pub access: Spanned<RawAccess>,
}

/// `[[auth.user]]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    /// The user's name; with a certificate login, the CN of its certificate.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The environment variable holding its password.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub password_env: Option<Spanned<String>>,
    /// A file on this machine whose first line is its password. Without
    /// either, the user logs in by the CN of its client certificate (needs
    /// client_cert_auth; `etcdplan pki client NAME` issues it).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub password_file: Option<Spanned<String>>,
    /// Its roles: declared in [[auth.role]], or "root".
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub roles: Vec<Spanned<String>>,
}

/// `token` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawToken {
    /// Opaque tokens kept in each member's memory.
    Simple,
    /// Signed JSON Web Tokens any member verifies.
    Jwt,
}

/// `access` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawAccess {
    /// Range and watch.
    Read,
    /// Put and delete.
    Write,
    /// Both.
    Readwrite,
}

/// `issuer` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawIssuer {
    /// etcdplan's own CA in ca_dir issues and renews the certificates.
    Etcdplan,
    /// The operator's CA: certificates are placed on the hosts by the operator.
    External,
}

/// `[hosts]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHosts {
    /// How hosts are reached: "ssh" or "local" (default "ssh").
    #[serde(default)]
    #[schemars(with = "Option<RawTransport>")]
    pub transport: Option<Spanned<RawTransport>>,
    /// How etcd runs: "systemd" or "process" (default "systemd").
    #[serde(default)]
    #[schemars(with = "Option<RawService>")]
    pub service: Option<Spanned<RawService>>,
    /// The user etcd runs as on the hosts (default "root"). Another user
    /// (Debian's etcd-server package creates "etcd") must exist on every
    /// host; etcd then runs with that user's primary group, owns its data dir
    /// (mode 0700) and its TLS keys (0600), and a member whose data dir
    /// another user owns is re-owned (chown -R) when it restarts.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub run_as: Option<Spanned<String>>,
    /// ssh user (default "root"); non-root users need passwordless sudo.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ssh_user: Option<Spanned<String>>,
    /// ssh port (default 22).
    #[serde(default)]
    #[schemars(with = "Option<u16>", range(min = 1, max = 65535))]
    pub ssh_port: Option<Spanned<u16>>,
    /// Private key for ssh (default "~/.ssh/id_ed25519").
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ssh_identity: Option<Spanned<String>>,
    /// known_hosts file checked strictly (default "~/.ssh/known_hosts").
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ssh_known_hosts: Option<Spanned<String>>,
    /// Folder of etcdplan's config file and certificates on each host; may contain {name}
    /// (default "/etc/etcd").
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub config_dir: Option<Spanned<String>>,
    /// Folder of the process service's pid and log files; may contain {name}
    /// (default "/var/lib/etcdplan").
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub state_dir: Option<Spanned<String>>,
}

/// `[[member]]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    /// The member's name (etcd --name).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// IP address or host name: advertised in URLs and used as the ssh target.
    #[schemars(with = "String")]
    pub address: Spanned<String>,
    /// Overrides [etcd] client_port for this member.
    #[serde(default)]
    #[schemars(with = "Option<u16>", range(min = 1, max = 65535))]
    pub client_port: Option<Spanned<u16>>,
    /// Overrides [etcd] peer_port for this member.
    #[serde(default)]
    #[schemars(with = "Option<u16>", range(min = 1, max = 65535))]
    pub peer_port: Option<Spanned<u16>>,
    /// Overrides [etcd] snapshot_count for this member.
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1))]
    pub snapshot_count: Option<Spanned<u64>>,
    /// Overrides [etcd] listen_metrics_urls for this member.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub listen_metrics_urls: Option<Spanned<Vec<Spanned<String>>>>,
    /// Overrides [etcd] extra_listen_addresses for this member.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub extra_listen_addresses: Option<Spanned<Vec<Spanned<String>>>>,
    /// Overrides [etcd] log_level for this member.
    #[serde(default)]
    #[schemars(with = "Option<RawLogLevel>")]
    pub log_level: Option<Spanned<RawLogLevel>>,
    /// Overrides [etcd] wal_dir for this member.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub wal_dir: Option<Spanned<String>>,
    /// etcd settings for this member only, over [etcd.extra] key by key.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, ExtraValue>")]
    pub extra: Option<Spanned<std::collections::BTreeMap<Spanned<String>, Spanned<ExtraValue>>>>,
}

/// `[etcd]` keys that must be equal on all members, and why: a `[[member]]`
/// that sets one is told to set it in `[etcd]` (see `check`).
pub const CLUSTER_WIDE_ONLY: &[(&str, &str)] = &[
    (
        "heartbeat_interval",
        "raft timing must be equal on all members",
    ),
    (
        "election_timeout",
        "raft timing must be equal on all members",
    ),
    (
        "max_request_bytes",
        "a request one member accepts is replicated to all of them",
    ),
    ("quota_backend_bytes", "every member holds the same data"),
    ("auto_compaction_mode", "compaction is applied cluster-wide"),
    (
        "auto_compaction_retention",
        "compaction is applied cluster-wide",
    ),
];

/// `log_level` values: etcd's (zap's) levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawLogLevel {
    /// Everything.
    Debug,
    /// etcd's default.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
    /// Panics only.
    Panic,
    /// Fatal errors only.
    Fatal,
}

/// A value of `[etcd.extra]`: what etcd's YAML config file can hold, bar
/// nested tables.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ExtraValue {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Integer(i64),
    /// A number with a fraction.
    Float(f64),
    /// A string.
    Text(String),
    /// A list of strings.
    List(Vec<String>),
}

/// `auto_compaction_mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawCompactionMode {
    /// Keep a number of revisions.
    Revision,
    /// Keep a time window.
    Periodic,
}

/// `transport` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawTransport {
    /// OpenSSH to each member's address.
    Ssh,
    /// Commands on this machine (demo and development).
    Local,
}

/// `service` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawService {
    /// An etcd.service unit.
    Systemd,
    /// A detached process with a pid file and a log file.
    Process,
}

/// A value written either as a TOML integer or as a string (sizes, retentions).
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(untagged)]
pub enum SizeValue {
    /// A whole number.
    Integer(i64),
    /// A string such as "2GiB" or "1h".
    Text(String),
}

impl SizeValue {
    /// The value as text, as both forms are parsed the same way.
    pub fn text(&self) -> String {
        match self {
            Self::Integer(n) => n.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SizeValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SizeValue, E> {
                Ok(SizeValue::Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SizeValue, E> {
                i64::try_from(v)
                    .map(SizeValue::Integer)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SizeValue, E> {
                Ok(SizeValue::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}
