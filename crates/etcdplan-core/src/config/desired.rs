//! The desired cluster: the validated, typed form of an etcdfile.

use std::path::PathBuf;

use crate::model::{
    Address, ByteSize, ClusterName, Compaction, Endpoint, EtcdVersion, MemberName, Port, Scheme,
    UserName, VersionSpec,
};

/// The cluster the operator asked for. Built only by [`validate`](super::validate).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Desired {
    /// The cluster's name.
    pub cluster: ClusterName,
    /// etcd's initial-cluster-token: `[cluster] initial_cluster_token`, else
    /// the cluster's name. It also tells this cluster's data dirs from others.
    pub token: String,
    /// The version every member must run, when pinned.
    pub version: Option<VersionSpec>,
    /// Settings every member gets.
    pub etcd: EtcdSettings,
    /// TLS switches and the local CA folder.
    pub tls: Tls,
    /// How hosts are reached and how etcd runs on them.
    pub hosts: Hosts,
    /// The files etcdplan presents to members (`[client]`), on this machine.
    pub client: ClientFiles,
    /// `[backup]`, when the file has it.
    pub backup: Option<Backup>,
    /// `[maintenance]`: upkeep planned by rule (the defragmentation rule).
    pub maintenance: super::Maintenance,
    /// `[auth]`: None when the file has none (auth is left as found).
    pub auth: Option<super::Auth>,
    /// The members in file order (the bootstrap order).
    pub members: Vec<DesiredMember>,
    /// The path settings with `{name}` unresolved, to locate members the file
    /// no longer names (to stop them and move their data aside).
    pub templates: PathTemplates,
    /// sha256 of the etcdfile's text, recorded in plans.
    pub file_hash: String,
}

/// data_dir, config_dir and state_dir as written, `{name}` unresolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PathTemplates {
    /// data_dir.
    pub data_dir: String,
    /// config_dir.
    pub config_dir: String,
    /// state_dir.
    pub state_dir: String,
    /// `[etcd] wal_dir`, when set.
    pub wal_dir: Option<String>,
}

/// `[etcd]`, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EtcdSettings {
    /// Backend quota.
    pub quota_backend_bytes: ByteSize,
    /// Auto-compaction mode and retention.
    pub compaction: Compaction,
    /// Path of the etcd binary on the hosts.
    pub binary: PathBuf,
    /// The local releases etcdplan uploads, when `binary_source` is set.
    pub binary_source: Option<BinarySource>,
    /// Raft heartbeat; None leaves etcd's default (100ms) and the rendered
    /// file as it was before the setting existed.
    pub heartbeat_interval: Option<Millis>,
    /// Raft election timeout; None is etcd's default (1000ms).
    pub election_timeout: Option<Millis>,
    /// Largest client request; None is etcd's default (1.5MiB).
    pub max_request_bytes: Option<ByteSize>,
}

impl EtcdSettings {
    /// The longest etcd's graceful stop may take: `Etcd.Close` waits up to
    /// the request timeout (5 s + 2 election timeouts) for client RPCs to
    /// drain, then a leader hands leadership over for up to the same again;
    /// 2 s more for the rest. Whatever stops etcd (etcdplan's stop script,
    /// systemd's `TimeoutStopSec`) must wait this long before a SIGKILL,
    /// which inside the handover would cost an election.
    pub fn graceful_stop(&self) -> std::time::Duration {
        let election =
            std::time::Duration::from_millis(self.election_timeout.as_ref().map_or(1000, |m| m.0));
        let request = std::time::Duration::from_secs(5) + 2 * election;
        2 * request + std::time::Duration::from_secs(2)
    }
}

/// A whole number of milliseconds: how etcd takes its raft timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Millis(pub u64);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// etcd's `log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// debug.
    Debug,
    /// info (etcd's default).
    Info,
    /// warn.
    Warn,
    /// error.
    Error,
    /// panic.
    Panic,
    /// fatal.
    Fatal,
}

impl LogLevel {
    /// The name etcd reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Panic => "panic",
            Self::Fatal => "fatal",
        }
    }
}

/// The settings etcd lets members differ in, resolved for one member
/// (`[[member]]` over `[etcd]`). Unset ones are not rendered, so an etcdfile
/// that sets none renders the same file as before they existed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberSettings {
    /// `snapshot-count`.
    pub snapshot_count: Option<u64>,
    /// `log-level`.
    pub log_level: Option<LogLevel>,
    /// `listen-metrics-urls`, `{address}` resolved.
    pub listen_metrics_urls: Vec<String>,
    /// More addresses `listen-client-urls` binds on the client port.
    pub extra_listen_addresses: Vec<std::net::IpAddr>,
    /// `[etcd.extra]` and the member's `extra`: config-file key → the value
    /// as YAML, in key order. A renamed experimental key is held under its
    /// 3.6 name (`compaction-batch-limit`), so that each setting has one
    /// entry and the renderer writes the name the member's release knows.
    pub extra: std::collections::BTreeMap<String, String>,
    /// Feature gates (3.6's names) → on or off: from `feature-gates` and from
    /// the experimental booleans that became gates
    /// (`experimental-initial-corrupt-check` is `InitialCorruptCheck`).
    #[serde(default)]
    pub feature_gates: std::collections::BTreeMap<String, bool>,
}

impl MemberSettings {
    /// Whether none is set.
    #[must_use]
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

/// `binary_source`: where it points, and the etcd releases found there (filled
/// in by [`load`](super::load), which runs each binary's `--version`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BinarySource {
    /// The path as resolved on this machine.
    pub path: PathBuf,
    /// Where `binary_source` is written in the etcdfile, for diagnostics.
    #[serde(skip)]
    pub span: std::ops::Range<usize>,
    /// The releases found, newest first.
    pub releases: Vec<Release>,
}

/// One etcd binary on the operator's machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Release {
    /// The `etcd` file.
    pub path: PathBuf,
    /// What its `--version` says.
    pub version: EtcdVersion,
    /// sha256 of the file, hex: what the copy on each host is checked against.
    pub sha256: String,
    /// The release's `etcdutl` beside it, when its `version` is the same
    /// release: uploaded with etcd, so the steps that need the offline tool of
    /// the member's release (the v2 store check before 3.6, a restore) find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcdutl: Option<ReleaseTool>,
}

/// A tool file of a release on this machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseTool {
    /// The file.
    pub path: PathBuf,
    /// sha256 of the file, hex.
    pub sha256: String,
}

impl EtcdSettings {
    /// Where release `v` lives on a host when etcdplan installs it.
    pub fn installed_path(&self, v: EtcdVersion) -> PathBuf {
        let mut p = self.binary.clone().into_os_string();
        p.push(format!("-{v}"));
        PathBuf::from(p)
    }

    /// Where a tool of release `v` (`etcdutl`) lives on a host when etcdplan
    /// installs it: beside `<binary>-<version>`, as `<tool>-<version>`.
    pub fn installed_tool_path(&self, tool: &str, v: EtcdVersion) -> PathBuf {
        self.binary
            .parent()
            .unwrap_or(std::path::Path::new("/"))
            .join(format!("{tool}-{v}"))
    }
}

/// `[tls]`, validated (client-cert auth implies client TLS).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tls {
    /// https for client traffic.
    pub client: bool,
    /// https for peer traffic.
    pub peer: bool,
    /// Clients must present a CA-signed certificate.
    pub client_cert_auth: bool,
    /// Local CA folder (absolute).
    pub ca_dir: PathBuf,
    /// Validity of member certificates, days.
    pub cert_days: i64,
    /// Renew member certificates expiring within this many days (warn
    /// about them with an external issuer).
    pub renew_before_days: i64,
    /// Who issues the members' certificates.
    pub issuer: Issuer,
    /// `crl_file`: a certificate revocation list on this machine (absolute),
    /// placed on every member and rendered as etcd's `client-crl-file`.
    pub crl_file: Option<PathBuf>,
}

impl Tls {
    /// Whether any TLS is asked for.
    pub fn any(&self) -> bool {
        self.client || self.peer
    }

    /// The operator's own PKI, when the certificates come from it.
    pub fn external(&self) -> Option<&ExternalPki> {
        match &self.issuer {
            Issuer::External(x) => Some(x),
            Issuer::Etcdplan => None,
        }
    }
}

/// `issuer`: who makes the members' certificates.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Issuer {
    /// etcdplan's CA in `ca_dir` issues, places and renews them.
    Etcdplan,
    /// The operator's CA: the files are placed by the operator; etcdplan only
    /// reads them.
    External(ExternalPki),
}

/// The operator's PKI: the CA certificate here, and where each host keeps
/// its files (templates with `{name}` and `{address}` unresolved). A file
/// the enabled TLS does not need may be unset.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExternalPki {
    /// The CA certificate on this machine (absolute).
    pub ca_file: PathBuf,
    /// Server certificate (client TLS).
    pub server_cert: Option<String>,
    /// Its key.
    pub server_key: Option<String>,
    /// Peer certificate (peer TLS).
    pub peer_cert: Option<String>,
    /// Its key.
    pub peer_key: Option<String>,
    /// The CA bundle members trust (peer TLS, client-cert auth).
    pub trusted_ca: Option<String>,
}

/// `[client]`, resolved on this machine: what etcdplan presents to members
/// when the command line does not say (`--cacert`, `--cert`, `--key`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientFiles {
    /// CA bundle that verifies the members.
    pub cacert: Option<PathBuf>,
    /// Client certificate and its key (both or neither).
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
}

/// `[backup]`, validated: snapshots on this machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Backup {
    /// The folder of snapshots and manifests (absolute).
    pub dir: PathBuf,
    /// Time between scheduled snapshots; None: no schedule.
    pub interval: Option<std::time::Duration>,
    /// How many snapshots to keep; None: all.
    pub keep: Option<u32>,
    /// The copy command as written, with `{path}` and `{manifest}`.
    pub copy_command: Option<String>,
    /// The age recipient snapshots are encrypted to before the copy.
    pub encrypt_to: Option<String>,
}

/// How etcdplan reaches hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// OpenSSH.
    Ssh,
    /// This machine.
    Local,
}

/// How etcd runs on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// A systemd unit.
    Systemd,
    /// A detached process with pid and log files.
    Process,
}

impl ServiceKind {
    /// Its name in the etcdfile (`service = "…"` in `[hosts]`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Systemd => "systemd",
            Self::Process => "process",
        }
    }

    /// The one unit every member on a host would share, when this manager
    /// names etcd's unit after the service alone: such a host runs one member
    /// at most. None when members on one host are kept apart (the process
    /// manager keeps a pid file per member).
    pub fn shared_unit(self) -> Option<&'static str> {
        match self {
            Self::Systemd => Some(crate::hostfiles::systemd_unit::UNIT),
            Self::Process => None,
        }
    }
}

/// `[hosts]`, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hosts {
    /// ssh or local.
    pub transport: Transport,
    /// systemd or process.
    pub service: ServiceKind,
    /// The user etcd runs as (`root` unless the etcdfile says otherwise),
    /// with that user's primary group.
    pub run_as: UserName,
    /// ssh settings (used with the ssh transport).
    pub ssh: Ssh,
}

/// ssh settings, with `~` expanded and relative paths resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ssh {
    /// Remote user.
    pub user: String,
    /// Remote port.
    pub port: Port,
    /// Private key file.
    pub identity: PathBuf,
    /// known_hosts file, checked strictly.
    pub known_hosts: PathBuf,
}

/// One member as the file describes it, with ports and paths resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DesiredMember {
    /// `--name`.
    pub name: MemberName,
    /// Advertised host, and the ssh target.
    pub address: Address,
    /// Client port.
    pub client_port: Port,
    /// Peer port.
    pub peer_port: Port,
    /// Data dir on the host ({name} resolved).
    pub data_dir: PathBuf,
    /// The separate WAL folder on the host ({name} resolved), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_dir: Option<PathBuf>,
    /// etcdplan's config folder on the host ({name} resolved).
    pub config_dir: PathBuf,
    /// pid and log folder of the process service ({name} resolved).
    pub state_dir: PathBuf,
    /// The other settings etcd lets members differ in (left out of a saved
    /// plan when none is set, as before they existed).
    #[serde(default, skip_serializing_if = "MemberSettings::is_unset")]
    pub settings: MemberSettings,
}

impl DesiredMember {
    /// The client URL this member advertises.
    pub fn client_url(&self, tls: &Tls) -> Endpoint {
        Endpoint {
            scheme: Scheme::tls(tls.client),
            host: self.address.clone(),
            port: self.client_port,
        }
    }

    /// The peer URL this member advertises.
    pub fn peer_url(&self, tls: &Tls) -> Endpoint {
        Endpoint {
            scheme: Scheme::tls(tls.peer),
            host: self.address.clone(),
            port: self.peer_port,
        }
    }

    /// The etcd YAML config file etcdplan owns on the host.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("etcd.conf.yml")
    }

    /// Where the member's certificates live on its host: in `config_dir/pki`
    /// when etcdplan issues them, where the etcdfile says with an external
    /// issuer (a file it leaves unset, not needed, keeps etcdplan's place).
    pub fn tls_paths(&self, tls: &Tls) -> TlsPaths {
        let dir = self.config_dir.join("pki");
        let ours = TlsPaths {
            ca: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            peer_cert: dir.join("peer.crt"),
            peer_key: dir.join("peer.key"),
        };
        let Some(x) = tls.external() else {
            return ours;
        };
        let at = |t: &Option<String>, or: PathBuf| t.as_deref().map_or(or, |t| self.fill(t));
        TlsPaths {
            ca: at(&x.trusted_ca, ours.ca),
            server_cert: at(&x.server_cert, ours.server_cert),
            server_key: at(&x.server_key, ours.server_key),
            peer_cert: at(&x.peer_cert, ours.peer_cert),
            peer_key: at(&x.peer_key, ours.peer_key),
        }
    }

    /// A host path template with `{name}` and `{address}` filled in (an
    /// IPv6 address without brackets).
    pub fn fill(&self, template: &str) -> PathBuf {
        let address = match &self.address {
            Address::Ip(ip) => ip.to_string(),
            Address::Dns(n) => n.clone(),
        };
        PathBuf::from(
            template
                .replace("{name}", self.name.as_str())
                .replace("{address}", &address),
        )
    }

    /// The pid file of the process service.
    pub fn pid_file(&self) -> PathBuf {
        self.state_dir.join("etcd.pid")
    }

    /// The log file of the process service.
    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("etcd.log")
    }
}

/// A member's certificate files on its host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsPaths {
    /// The CA certificate members trust.
    pub ca: PathBuf,
    /// Client-facing certificate.
    pub server_cert: PathBuf,
    /// Its key (0600).
    pub server_key: PathBuf,
    /// Peer certificate.
    pub peer_cert: PathBuf,
    /// Its key (0600).
    pub peer_key: PathBuf,
}

impl Desired {
    /// The member with this name.
    pub fn member(&self, name: &MemberName) -> Option<&DesiredMember> {
        self.members.iter().find(|m| &m.name == name)
    }

    /// A member the file does not name, laid out as the file would lay it out
    /// (the paths etcdplan used when it created it).
    pub fn member_at(
        &self,
        name: MemberName,
        address: Address,
        client_port: Port,
        peer_port: Port,
    ) -> DesiredMember {
        let fill = |t: &str| PathBuf::from(t.replace("{name}", name.as_str()));
        DesiredMember {
            data_dir: fill(&self.templates.data_dir),
            config_dir: fill(&self.templates.config_dir),
            state_dir: fill(&self.templates.state_dir),
            wal_dir: self.templates.wal_dir.as_deref().map(fill),
            settings: MemberSettings::default(),
            name,
            address,
            client_port,
            peer_port,
        }
    }

    /// Client URLs of every member, in file order.
    pub fn client_urls(&self) -> Vec<Endpoint> {
        self.members
            .iter()
            .map(|m| m.client_url(&self.tls))
            .collect()
    }
}
