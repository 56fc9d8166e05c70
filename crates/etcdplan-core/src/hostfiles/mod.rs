//! The files etcdplan owns on a host, rendered deterministically from `Desired`.
//!
//! etcd reads one YAML file (`--config-file`); with it set, etcd ignores every other
//! flag and `ETCD_*` variable, so a setting can never be given twice (which kills
//! etcd at start). The same bytes are rendered on every run, so `plan` can show a
//! real diff against what `observe` read back from the host.

/// The second line of every file etcdplan owns on a host; a file without it
/// (a unit someone else wrote at the same path) is not etcdplan's.
pub const OWNED_HEADER: &str =
    "# Written by etcdplan from the etcdfile; edits here show up as drift in `etcdplan plan`.";

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::config::etcd_keys;
use crate::config::{Auth, Desired, DesiredMember, MemberSettings, ServiceKind, TokenKind};
use crate::model::{Address, Endpoint, MinorVersion, Port, Scheme};

pub mod systemd_unit;

/// A file etcdplan writes on a host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostFile {
    /// Absolute path on the host.
    pub path: PathBuf,
    /// Unix mode (private keys 0600).
    pub mode: u32,
    /// The whole content.
    pub contents: String,
}

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// The member bootstraps a new cluster with the others in `initial-cluster`.
    New,
    /// The member joins a running cluster.
    Existing,
}

/// The `initial-*` settings, read by etcd only when the data dir is empty.
///
/// They are kept as they were first written for a member that already has data,
/// so that a later plan shows no change in settings etcd ignores anyway.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Initial {
    /// new or existing.
    pub state: ClusterState,
    /// `name=url,…` as etcd reads it.
    pub cluster: String,
    /// `--initial-cluster-token`: the etcdfile's token, or the one a restore
    /// gave the cluster it made (`<token>-restored-<time>`), kept from then on.
    pub token: String,
}

impl Initial {
    /// The bootstrap of every member in the file.
    pub fn bootstrap(d: &Desired) -> Self {
        let cluster = d
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url(&d.tls)))
            .collect::<Vec<_>>()
            .join(",");
        Self {
            state: ClusterState::New,
            cluster,
            token: d.token.clone(),
        }
    }

    /// Reads the initial-* values back from a config file etcdplan wrote earlier.
    pub fn read_back(contents: &str) -> Option<Self> {
        let value = |key: &str| read_value(contents, key);
        let state = match value("initial-cluster-state")?.as_str() {
            "new" => ClusterState::New,
            "existing" => ClusterState::Existing,
            _ => return None,
        };
        Some(Self {
            state,
            cluster: value("initial-cluster")?,
            token: value("initial-cluster-token")?,
        })
    }
}

/// The cluster token written in a config file, to tell our data dirs from foreign ones.
pub fn read_token(contents: &str) -> Option<String> {
    read_value(contents, "initial-cluster-token")
}

/// Whether a token read on a host is this cluster's: the etcdfile's, or one
/// a restore of it gave ([`restored_token`]).
pub fn is_own_token(d: &Desired, token: &str) -> bool {
    token == d.token
        || token
            .strip_prefix(d.token.as_str())
            .is_some_and(|rest| rest.starts_with("-restored-"))
}

/// The token of a cluster rebuilt from a snapshot at `stamp` (a restore
/// makes a new cluster, and etcd wants a new token for it).
pub fn restored_token(d: &Desired, stamp: &str) -> String {
    format!("{}-restored-{stamp}", d.token)
}

/// A top-level value of a config file etcdplan wrote.
pub fn read_value(contents: &str, key: &str) -> Option<String> {
    contents.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| unquote(v.trim()))
    })
}

fn unquote(v: &str) -> String {
    v.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .map_or_else(|| v.to_owned(), |r| r.replace("''", "'"))
}

/// A YAML single-quoted scalar: safe for any path or URL.
pub(crate) fn yaml_quote(s: &str) -> String {
    q(s)
}

/// A YAML single-quoted scalar: safe for any path or URL.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// What a member listens on: its own IP, or every IPv4 address for a DNS name
/// (etcd refuses host names in listen URLs).
pub(crate) fn listen_host(a: &Address) -> String {
    match a {
        Address::Ip(_) => a.to_string(),
        Address::Dns(_) => "0.0.0.0".to_owned(),
    }
}

/// How a member's peer side is wired: the listeners, the advertised URL, and
/// whether it has peer certificates.
///
/// It is the etcdfile's (one listener, advertised) except while peers move
/// between http and https: then a member listens on its advertised URL and on
/// the next one, on two ports, because one port cannot serve both schemes
/// (etcd-ops R3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerWire {
    /// Listeners, in order.
    pub listen: Vec<(Scheme, Port)>,
    /// The URL written as `initial-advertise-peer-urls`.
    pub advertise: Endpoint,
    /// Peer certificates and a trusted CA are configured.
    pub tls: bool,
}

impl PeerWire {
    /// The wiring the etcdfile asks for.
    pub fn desired(d: &Desired, m: &DesiredMember) -> Self {
        let url = m.peer_url(&d.tls);
        Self {
            listen: vec![(url.scheme, url.port)],
            advertise: url,
            tls: d.tls.peer,
        }
    }

    /// Reads the wiring back from a config file etcdplan wrote.
    pub fn read_back(contents: &str) -> Option<Self> {
        let listen = read_value(contents, "listen-peer-urls")?
            .split(',')
            .map(|u| Endpoint::parse(u.trim()).map(|e| (e.scheme, e.port)))
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            listen,
            advertise: Endpoint::parse(&read_value(contents, "initial-advertise-peer-urls")?)?,
            tls: contents
                .lines()
                .any(|l| l.starts_with("peer-transport-security:")),
        })
    }
}

/// etcd's YAML config for one member, for the release it runs at the start
/// that reads it (`release`): not the cluster's version, since during a
/// version change members run different releases, and each refuses or
/// ignores keys the other needs.
pub fn etcd_config(
    d: &Desired,
    m: &DesiredMember,
    initial: &Initial,
    release: MinorVersion,
) -> String {
    etcd_config_wired(d, m, initial, &PeerWire::desired(d, m), release)
}

/// etcd's YAML config for one member with the peer side wired as given.
pub fn etcd_config_wired(
    d: &Desired,
    m: &DesiredMember,
    initial: &Initial,
    wire: &PeerWire,
    release: MinorVersion,
) -> String {
    let client = m.client_url(&d.tls);
    let listen = listen_host(&m.address);
    let mut s = String::new();
    let _ = writeln!(s, "# etcd member {} of cluster {}.", m.name, d.cluster);
    let _ = writeln!(s, "{OWNED_HEADER}");
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(s, "{k}: {v}");
    };
    kv("name", q(m.name.as_str()));
    kv("data-dir", q(&m.data_dir.display().to_string()));
    if let Some(wal) = &m.wal_dir {
        kv("wal-dir", q(&wal.display().to_string()));
    }
    let listen_clients: Vec<String> = std::iter::once(listen.clone())
        .chain(
            m.settings
                .extra_listen_addresses
                .iter()
                .map(|ip| Address::Ip(*ip).to_string()),
        )
        .map(|host| format!("{}://{host}:{}", client.scheme, client.port))
        .collect();
    kv("listen-client-urls", q(&listen_clients.join(",")));
    kv("advertise-client-urls", q(&client.to_string()));
    let peers: Vec<String> = wire
        .listen
        .iter()
        .map(|(scheme, port)| format!("{scheme}://{listen}:{port}"))
        .collect();
    kv("listen-peer-urls", q(&peers.join(",")));
    kv(
        "initial-advertise-peer-urls",
        q(&wire.advertise.to_string()),
    );
    kv("initial-cluster", q(&initial.cluster));
    kv(
        "initial-cluster-state",
        q(match initial.state {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }),
    );
    kv("initial-cluster-token", q(&initial.token));
    kv(
        "quota-backend-bytes",
        d.etcd.quota_backend_bytes.bytes().to_string(),
    );
    kv(
        "auto-compaction-mode",
        q(&d.etcd.compaction.mode.to_string()),
    );
    kv(
        "auto-compaction-retention",
        q(&d.etcd.compaction.retention_value()),
    );
    // Settings left unset are not written: etcd's defaults apply, and the
    // file stays as it was before etcdplan knew these settings.
    if let Some(h) = d.etcd.heartbeat_interval {
        kv("heartbeat-interval", h.0.to_string());
    }
    if let Some(e) = d.etcd.election_timeout {
        kv("election-timeout", e.0.to_string());
    }
    let set = &m.settings;
    if let Some(n) = set.snapshot_count {
        kv("snapshot-count", n.to_string());
    }
    if let Some(b) = d.etcd.max_request_bytes {
        kv("max-request-bytes", b.bytes().to_string());
    }
    if !set.listen_metrics_urls.is_empty() {
        kv("listen-metrics-urls", q(&set.listen_metrics_urls.join(",")));
    }
    if let Some(l) = set.log_level {
        kv("log-level", q(l.as_str()));
    }
    let paths = m.tls_paths(&d.tls);
    let path = |p: &std::path::Path| q(&p.display().to_string());
    if d.tls.client {
        // A trusted CA makes etcd demand client certificates whatever
        // client-cert-auth says, so it is only given when that is asked for.
        let mut block = format!(
            "\n  cert-file: {}\n  key-file: {}\n  client-cert-auth: {}",
            path(&paths.server_cert),
            path(&paths.server_key),
            d.tls.client_cert_auth
        );
        if d.tls.client_cert_auth {
            block.push_str(&format!("\n  trusted-ca-file: {}", path(&paths.ca)));
        }
        kv("client-transport-security", block);
    }
    if let (true, Some(_)) = (d.tls.client, &d.tls.crl_file) {
        // etcd's securityConfig has no CRL key and a config file makes etcd
        // ignore every flag, so the CRL goes into the untagged
        // `ClientTLSInfo` field etcd's JSON decoder fills by its Go name
        // (3.4 to 3.7; checked on 3.4.23: a revoked client is refused).
        let crl = auth_paths(m).crl;
        kv(CRL_KEY, format!("\n  CRLFile: {}", path(&crl)));
    }
    if let Some(a) = &d.auth {
        for (k, v) in auth_token(a, m) {
            kv(k, v);
        }
    }
    if wire.tls {
        kv(
            "peer-transport-security",
            format!(
                "\n  cert-file: {}\n  key-file: {}\n  client-cert-auth: true\n  trusted-ca-file: {}",
                path(&paths.peer_cert),
                path(&paths.peer_key),
                path(&paths.ca)
            ),
        );
    }
    kv("strict-reconfig-check", "true".into());
    // 3.6 removed the v2 API and the key with it.
    if etcd_keys::has_key(release, "enable-v2") {
        kv("enable-v2", "false".into());
    }
    kv("logger", q("zap"));
    kv("log-outputs", "[stderr]".into());
    for (k, v) in extra_for(&m.settings, release).0 {
        kv(&k, v);
    }
    s
}

/// The top-level key of etcd's config file that carries the client CRL: the
/// Go field `embed.Config.ClientTLSInfo` (no JSON tag), whose `CRLFile` is
/// what `--client-crl-file` sets; no documented key exists for it.
pub const CRL_KEY: &str = "ClientTLSInfo";

/// Where etcdplan places a member's auth and revocation files on its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPaths {
    /// The JWT signing key's public half (PKIX PEM, 0644).
    pub jwt_pub: PathBuf,
    /// The JWT signing key (PKCS#8 PEM, 0600).
    pub jwt_key: PathBuf,
    /// The client certificate revocation list (`[tls] crl_file`, 0644).
    pub crl: PathBuf,
}

/// The member's auth files, beside its config in `config_dir` (a folder of
/// their own, so the key's 0700 folder holds nothing else).
pub fn auth_paths(m: &DesiredMember) -> AuthPaths {
    let dir = m.config_dir.join("auth");
    AuthPaths {
        jwt_pub: dir.join("jwt.pub"),
        jwt_key: dir.join("jwt.key"),
        crl: m.config_dir.join("pki").join("crl.pem"),
    }
}

/// etcd's `auth-token-ttl` default, seconds (`etcd --help` of 3.4.23 and
/// 3.5.30: `--auth-token-ttl 300`).
const SIMPLE_TOKEN_TTL: u64 = 300;

/// `auth-token` (and `auth-token-ttl` for simple tokens) as etcd reads them;
/// nothing for etcd's defaults.
///
/// JWT options are etcd's `server/auth/options.go`: `pub-key`, `priv-key`,
/// `sign-method`, `ttl` (a Go duration); `auth-token-ttl` (seconds) only
/// governs simple tokens. etcd splits the options at `,` and `=`, so the
/// paths must not hold either ([`auth_path_problem`]).
fn auth_token(a: &Auth, m: &DesiredMember) -> Vec<(&'static str, String)> {
    match &a.token {
        // etcd's own defaults (`simple`, 300 s) stay unwritten, so that
        // declaring [auth] on a running cluster restarts no member.
        TokenKind::Simple => {
            let ttl = a.token_ttl.as_secs().max(1);
            if ttl == SIMPLE_TOKEN_TTL {
                Vec::new()
            } else {
                vec![("auth-token-ttl", ttl.to_string())]
            }
        }
        TokenKind::Jwt { .. } => {
            let p = auth_paths(m);
            vec![(
                "auth-token",
                q(&format!(
                    "jwt,pub-key={},priv-key={},sign-method=ES256,ttl={}",
                    p.jwt_pub.display(),
                    p.jwt_key.display(),
                    go_duration(a.token_ttl)
                )),
            )]
        }
    }
}

/// A duration as Go's `time.ParseDuration` reads it: whole seconds, or
/// milliseconds when it has a fraction.
fn go_duration(d: std::time::Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis().max(1))
    }
}

/// Why a member's JWT key paths cannot be written into `auth-token`: etcd
/// splits its options at `,` and `=`, so a `config_dir` with either breaks
/// them.
pub fn auth_path_problem(d: &Desired, m: &DesiredMember) -> Option<String> {
    let a = d.auth.as_ref()?;
    if !matches!(a.token, TokenKind::Jwt { .. }) {
        return None;
    }
    let p = auth_paths(m);
    [p.jwt_pub, p.jwt_key]
        .iter()
        .map(|x| x.display().to_string())
        .find(|x| x.contains(',') || x.contains('='))
        .map(|x| format!("{x} holds ',' or '=', which etcd's auth-token options cannot carry"))
}

/// Whether etcd `version` skips the client CRL on its gRPC listener: with a
/// separate `listen-client-http-urls`, before 3.5.32, 3.6.13 and 3.7.0
/// (GHSA-3wh4-j44w-pg92). A member with a CRL and such a listener on such a
/// release would accept revoked certificates.
pub fn crl_bypassed(d: &Desired, m: &DesiredMember, version: crate::model::EtcdVersion) -> bool {
    let split = m.settings.extra.contains_key("listen-client-http-urls");
    let fixed = match (version.major, version.minor) {
        (3, 5) => version.patch >= 32,
        (3, 6) => version.patch >= 13,
        (0..=2, _) | (3, ..=4) => false,
        _ => true,
    };
    d.tls.crl_file.is_some() && d.tls.client && split && !fixed
}

/// A setting of `extra` that a member's release has no key or gate for,
/// so its file leaves it out (the plan says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The key, or `feature-gates: Gate`.
    pub key: String,
    /// The release that does not know it.
    pub release: MinorVersion,
}

/// The settings of the member's `extra` its file for `release` leaves out.
pub fn left_out(m: &DesiredMember, release: MinorVersion) -> Vec<LeftOut> {
    extra_for(&m.settings, release).1
}

/// `extra` as `release` spells it, sorted by key: each renamed experimental
/// setting under the one name that release knows (3.6's when it knows both),
/// the gates as one `feature-gates` line from 3.6 on or as the experimental
/// booleans before, with etcdplan's default gates ([`etcd_keys::DEFAULT_GATES`])
/// where the etcdfile does not set them, and what the release has no name for
/// left out. One
/// setting never gets two names: etcd refuses to start with both.
fn extra_for(
    set: &MemberSettings,
    release: MinorVersion,
) -> (BTreeMap<String, String>, Vec<LeftOut>) {
    let mut out = BTreeMap::new();
    let mut dropped = Vec::new();
    let knows = |k: &str| etcd_keys::has_key(release, k);
    for (k, v) in &set.extra {
        let old = etcd_keys::migration_to(k).map(|mg| mg.old);
        match std::iter::once(k.as_str()).chain(old).find(|n| knows(n)) {
            Some(name) => {
                out.insert(name.to_owned(), v.clone());
            }
            None => dropped.push(LeftOut {
                key: k.clone(),
                release,
            }),
        }
    }
    // etcdplan's defaults (the corruption checks), then the etcdfile's
    // gates over them one by one: the operator's setting wins for that gate.
    let mut all: BTreeMap<&str, (bool, bool)> = etcd_keys::DEFAULT_GATES
        .iter()
        .map(|&(g, on)| (g, (on, false)))
        .collect();
    for (g, on) in &set.feature_gates {
        all.insert(g, (*on, true));
    }
    let mut gates = Vec::new();
    for (g, (on, explicit)) in all {
        let old = etcd_keys::migration_to(g).map(|mg| mg.old);
        if etcd_keys::gate_known_in(release, g) {
            gates.push(format!("{g}={on}"));
        } else if let Some(old) = old.filter(|o| knows(o)) {
            out.insert(old.to_owned(), on.to_string());
        } else if explicit {
            dropped.push(LeftOut {
                key: format!("feature-gates: {g}"),
                release,
            });
        }
        // A default a release has no name for (3.4's compact-hash check) is
        // simply not there: nothing the operator asked for is left out.
    }
    if !gates.is_empty() {
        out.insert("feature-gates".to_owned(), q(&gates.join(",")));
    }
    (out, dropped)
}

/// The names a member's certificates must be valid for: its address, its
/// name, and loopback when it listens on every address.
pub fn member_sans(m: &DesiredMember) -> Vec<crate::cert::San> {
    use crate::cert::San;
    let mut sans = vec![San::Dns(m.name.as_str().to_owned())];
    match &m.address {
        Address::Ip(ip) => {
            sans.push(San::Ip(*ip));
            // Dials between loopback addresses come from 127.0.0.1 (or ::1), and
            // peers check the dialling address against the certificate.
            if ip.is_loopback() {
                sans.push(San::Ip(if ip.is_ipv4() {
                    std::net::IpAddr::from([127, 0, 0, 1])
                } else {
                    std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                }));
            }
        }
        Address::Dns(n) => {
            sans.push(San::Dns(n.clone()));
            sans.push(San::Dns("localhost".into()));
            sans.push(San::Ip(std::net::IpAddr::from([127, 0, 0, 1])));
        }
    }
    // Clients may dial the extra listeners (127.0.0.1 on the host itself).
    sans.extend(
        m.settings
            .extra_listen_addresses
            .iter()
            .map(|ip| San::Ip(*ip)),
    );
    sans.sort();
    sans.dedup();
    sans
}

/// Every file etcdplan owns for this member: the etcd config (for the
/// release it runs at the start that reads it), and the unit under systemd.
pub fn member_files(
    d: &Desired,
    m: &DesiredMember,
    initial: &Initial,
    release: MinorVersion,
) -> Vec<HostFile> {
    member_files_wired(d, m, initial, &PeerWire::desired(d, m), release)
}

/// [`member_files`] with the peer side wired as given (a TLS migration phase).
pub fn member_files_wired(
    d: &Desired,
    m: &DesiredMember,
    initial: &Initial,
    wire: &PeerWire,
    release: MinorVersion,
) -> Vec<HostFile> {
    let mut files = vec![HostFile {
        path: m.config_file(),
        mode: 0o644,
        contents: etcd_config_wired(d, m, initial, wire, release),
    }];
    // Exhaustive, so a new service manager must say which files it owns.
    match d.hosts.service {
        ServiceKind::Systemd => files.push(HostFile {
            path: systemd_unit::unit_path(),
            mode: 0o644,
            contents: systemd_unit::unit(d, m),
        }),
        ServiceKind::Process => {}
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Context, Level, Problem};

    const V35: MinorVersion = MinorVersion { major: 3, minor: 5 };

    fn parse(text: &str) -> Result<Desired, Vec<Problem>> {
        let ctx = Context {
            base_dir: std::path::PathBuf::from("/srv"),
            home: None,
            file_hash: config::hash(text),
            ..Default::default()
        };
        match config::parse("etcdfile.toml", text.to_owned(), &ctx) {
            Ok(l) => Ok(l.desired),
            Err(config::ConfigError::Invalid { problems, .. }) => Err(problems),
            Err(e) => panic!("{e}"),
        }
    }

    fn file(etcd: &str, member_extra: &str) -> String {
        format!(
            "[cluster]\nname = \"main\"\nversion = \"3.5\"\n[etcd]\n{etcd}\n[hosts]\nservice = \"process\"\n\
[[member]]\nname = \"a\"\naddress = \"10.0.0.1\"\n{member_extra}\n\
[[member]]\nname = \"b\"\naddress = \"10.0.0.2\"\n"
        )
    }

    fn rendered(etcd: &str, member_extra: &str) -> Vec<String> {
        let d = match parse(&file(etcd, member_extra)) {
            Ok(d) => d,
            Err(p) => panic!("{}", config::render_plain(&p, 100)),
        };
        d.members
            .iter()
            .map(|m| etcd_config(&d, m, &Initial::bootstrap(&d), V35))
            .collect()
    }

    fn errors(etcd: &str, member_extra: &str) -> String {
        match parse(&file(etcd, member_extra)) {
            Ok(_) => panic!("accepted: {etcd} / {member_extra}"),
            Err(p) => {
                assert!(p.iter().any(|p| p.level == Level::Error));
                config::render_plain(&p, 200)
            }
        }
    }

    #[test]
    fn unset_settings_render_nothing_new() {
        let [a, _] = rendered("", "").try_into().unwrap_or_else(|_| panic!());
        for key in [
            "heartbeat-interval",
            "election-timeout",
            "snapshot-count",
            "max-request-bytes",
            "listen-metrics-urls",
            "log-level",
            "wal-dir",
        ] {
            assert!(!a.contains(key), "{key} in\n{a}");
        }
        assert!(a.contains("initial-cluster-token: 'main'\n"));
        assert!(a.contains("listen-client-urls: 'http://10.0.0.1:2379'\n"));
    }

    #[test]
    fn set_settings_render_as_etcd_reads_them() {
        let out = rendered(
            "heartbeat_interval = \"250ms\"\nelection_timeout = \"2s\"\nsnapshot_count = 50000\n\
max_request_bytes = \"2MiB\"\nlisten_metrics_urls = [\"http://{address}:2381\"]\n\
extra_listen_addresses = [\"127.0.0.1\"]\nlog_level = \"warn\"\nwal_dir = \"/wal/{name}\"\n\
extra = { experimental-initial-corrupt-check = true, cipher-suites = [\"TLS_AES_128_GCM_SHA256\"] }\n",
            "snapshot_count = 7\nlog_level = \"debug\"\nextra = { pre-vote = false }",
        );
        let a = &out[0];
        for line in [
            "wal-dir: '/wal/a'\n",
            "listen-client-urls: 'http://10.0.0.1:2379,http://127.0.0.1:2379'\n",
            "heartbeat-interval: 250\n",
            "election-timeout: 2000\n",
            "snapshot-count: 7\n",
            "max-request-bytes: 2097152\n",
            "listen-metrics-urls: 'http://10.0.0.1:2381'\n",
            "log-level: 'debug'\n",
            "experimental-initial-corrupt-check: true\n",
            "cipher-suites: ['TLS_AES_128_GCM_SHA256']\n",
            "pre-vote: false\n",
        ] {
            assert!(a.contains(line), "{line:?} missing in\n{a}");
        }
        let b = &out[1];
        for line in [
            "snapshot-count: 50000\n",
            "log-level: 'warn'\n",
            "wal-dir: '/wal/b'\n",
        ] {
            assert!(b.contains(line), "{line:?} missing in\n{b}");
        }
        assert!(!b.contains("pre-vote"), "a member's extra is its own");
    }

    #[test]
    fn bare_integers_are_milliseconds() {
        let out = rendered("heartbeat_interval = 150\nelection_timeout = \"1500\"", "");
        assert!(out[0].contains("heartbeat-interval: 150\n"));
        assert!(out[0].contains("election-timeout: 1500\n"));
    }

    #[test]
    fn cluster_token_defaults_to_the_name() {
        let text = file("", "").replace(
            "version = \"3.5\"",
            "version = \"3.5\"\ninitial_cluster_token = \"etcd-cluster-1\"",
        );
        let d = parse(&text).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(d.token, "etcd-cluster-1");
        let a = etcd_config(&d, &d.members[0], &Initial::bootstrap(&d), V35);
        assert!(a.contains("initial-cluster-token: 'etcd-cluster-1'\n"));
    }

    #[test]
    fn raft_timings_follow_etcds_rules() {
        let e = errors("heartbeat_interval = \"300ms\"", "");
        assert!(
            e.contains("at least 5 times heartbeat_interval (300ms)"),
            "{e}"
        );
        assert!(e.contains("election_timeout defaults to 1000ms"), "{e}");
        let e = errors("election_timeout = \"60s\"", "");
        assert!(e.contains("longer than etcd allows"), "{e}");
        let e = errors("heartbeat_interval = \"100us\"", "");
        assert!(e.contains("invalid heartbeat_interval"), "{e}");
        let e = errors("heartbeat_interval = \"1s500us\"", "");
        assert!(e.contains("invalid heartbeat_interval"), "{e}");
        let e = errors("heartbeat_interval = 0", "");
        assert!(e.contains("at least 1ms"), "{e}");
        // Exactly five heartbeats is what etcd accepts.
        assert_eq!(
            rendered("heartbeat_interval = 200\nelection_timeout = 1000", "").len(),
            2
        );
    }

    #[test]
    fn member_overrides_only_where_etcd_allows() {
        let e = errors("", "heartbeat_interval = \"200ms\"");
        assert!(e.contains("cannot differ between members"), "{e}");
        let e = errors("", "max_request_bytes = 1024");
        assert!(e.contains("cannot differ between members"), "{e}");
    }

    #[test]
    fn extra_is_checked() {
        let e = errors("extra = { quota-backend-bytes = 1 }", "");
        assert!(e.contains("use `quota_backend_bytes` in [etcd]"), "{e}");
        let e = errors("extra = { experimental-inital-corrupt-check = true }", "");
        assert!(e.contains("etcd 3.5 has no config-file key"), "{e}");
        assert!(
            e.contains("did you mean `experimental-initial-corrupt-check`"),
            "{e}"
        );
        let e = errors(
            "extra = { feature-gates = \"InitialCorruptCheck=true\" }",
            "",
        );
        assert!(e.contains("new in 3.6"), "{e}");
        let e = errors("extra = { pre-vote = { a = 1 } }", "");
        assert!(e.contains("pre-vote"), "{e}");
    }

    /// Member `a`'s file for each of 3.4 to 3.7, the etcdfile pinning no version.
    fn per_release(etcd: &str, member_extra: &str) -> Vec<(u32, String, Vec<String>)> {
        let text = file(etcd, member_extra).replace("version = \"3.5\"\n", "");
        let d = parse(&text).unwrap_or_else(|p| panic!("{}", config::render_plain(&p, 100)));
        (4..=7)
            .map(|minor| {
                let v = MinorVersion { major: 3, minor };
                let m = &d.members[0];
                let left = left_out(m, v).into_iter().map(|l| l.key).collect();
                (minor, etcd_config(&d, m, &Initial::bootstrap(&d), v), left)
            })
            .collect()
    }

    fn corrupt_lines(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| {
                l.contains("orrupt") || l.contains("ompact-hash") || l.contains("feature-gates")
            })
            .collect()
    }

    #[test]
    fn corruption_checks_are_on_by_default_under_each_releases_name() {
        let files = per_release("", "");
        let lines: Vec<_> = files.iter().map(|(_, t, _)| corrupt_lines(t)).collect();
        assert_eq!(lines[0], ["experimental-initial-corrupt-check: true"]);
        assert_eq!(
            lines[1],
            [
                "experimental-compact-hash-check-enabled: true",
                "experimental-initial-corrupt-check: true"
            ]
        );
        for l in &lines[2..] {
            assert_eq!(
                *l,
                ["feature-gates: 'CompactHashCheck=true,InitialCorruptCheck=true'"]
            );
        }
        // A default is never reported as a setting left out (3.4 has no
        // compact-hash check; the operator did not ask for one).
        assert!(
            files.iter().all(|(_, _, left)| left.is_empty()),
            "{files:?}"
        );
    }

    #[test]
    fn the_operators_setting_wins_for_that_check_only() {
        // Off by its gate name, in [etcd.extra].
        let files = per_release("extra = { feature-gates = \"CompactHashCheck=false\" }", "");
        let lines: Vec<_> = files.iter().map(|(_, t, _)| corrupt_lines(t)).collect();
        assert_eq!(lines[0], ["experimental-initial-corrupt-check: true"]);
        assert_eq!(
            lines[1],
            [
                "experimental-compact-hash-check-enabled: false",
                "experimental-initial-corrupt-check: true"
            ]
        );
        assert_eq!(
            lines[2],
            ["feature-gates: 'CompactHashCheck=false,InitialCorruptCheck=true'"]
        );
        // 3.4 has no name for the operator's setting: that one is said.
        assert_eq!(files[0].2, ["feature-gates: CompactHashCheck"]);
        // Off by the experimental name, for one member: the other keeps it.
        let text = file("", "extra = { experimental-initial-corrupt-check = false }")
            .replace("version = \"3.5\"\n", "");
        let d = parse(&text).unwrap_or_else(|p| panic!("{}", config::render_plain(&p, 100)));
        let v36 = MinorVersion { major: 3, minor: 6 };
        let a = etcd_config(&d, &d.members[0], &Initial::bootstrap(&d), v36);
        let b = etcd_config(&d, &d.members[1], &Initial::bootstrap(&d), v36);
        assert_eq!(
            corrupt_lines(&a),
            ["feature-gates: 'CompactHashCheck=true,InitialCorruptCheck=false'"]
        );
        assert_eq!(
            corrupt_lines(&b),
            ["feature-gates: 'CompactHashCheck=true,InitialCorruptCheck=true'"]
        );
        let a35 = etcd_config(&d, &d.members[0], &Initial::bootstrap(&d), V35);
        assert_eq!(
            corrupt_lines(&a35),
            [
                "experimental-compact-hash-check-enabled: true",
                "experimental-initial-corrupt-check: false"
            ]
        );
    }

    /// The problems of an etcdfile pinning `version`.
    fn errors_at(version: &str, etcd: &str, member_extra: &str) -> String {
        let text = file(etcd, member_extra)
            .replace("version = \"3.5\"", &format!("version = \"{version}\""));
        match parse(&text) {
            Ok(_) => panic!("accepted: {etcd} / {member_extra}"),
            Err(p) => config::render_plain(&p, 200),
        }
    }

    #[test]
    fn feature_gates_are_checked_for_the_pinned_version() {
        let e = errors_at(
            "3.6",
            "extra = { feature-gates = \"FastLeaseKeepAlive=true\" }",
            "",
        );
        assert!(
            e.contains("etcd 3.6 has no feature gate `FastLeaseKeepAlive`"),
            "{e}"
        );
        assert!(
            e.contains("new in 3.7") && e.contains("unrecognized feature gate"),
            "{e}"
        );
        let e = errors_at(
            "3.7",
            "extra = { feature-gates = \"InitalCorruptCheck=true\" }",
            "",
        );
        assert!(e.contains("did you mean `InitialCorruptCheck`"), "{e}");
        let e = errors_at(
            "3.6",
            "extra = { feature-gates = \"InitialCorruptCheck=yes\" }",
            "",
        );
        assert!(e.contains("is not Gate=true or Gate=false"), "{e}");
        let e = errors_at("3.6", "extra = { feature-gates = true }", "");
        assert!(e.contains("expected a string"), "{e}");
        let e = errors_at(
            "3.5",
            "extra = { experimental-initial-corrupt-check = \"yes\" }",
            "",
        );
        assert!(e.contains("takes true or false"), "{e}");
        // The gates a release knows pass, merged with the booleans.
        let text = file(
            "extra = { feature-gates = \"SetMemberLocalAddr=true\", experimental-initial-corrupt-check = true }",
            "extra = { feature-gates = \"InitialCorruptCheck=false\" }",
        )
        .replace("version = \"3.5\"", "version = \"3.6\"");
        let d = parse(&text).unwrap_or_else(|p| panic!("{}", config::render_plain(&p, 100)));
        let gates = |i: usize| {
            d.members[i]
                .settings
                .feature_gates
                .clone()
                .into_iter()
                .collect::<Vec<_>>()
        };
        // The member's own table overrides [etcd.extra] whichever name it uses.
        assert_eq!(
            gates(0),
            [
                ("InitialCorruptCheck".into(), false),
                ("SetMemberLocalAddr".into(), true)
            ]
        );
        assert_eq!(
            gates(1),
            [
                ("InitialCorruptCheck".into(), true),
                ("SetMemberLocalAddr".into(), true)
            ]
        );
    }

    #[test]
    fn two_names_of_one_setting_are_refused() {
        let e = errors_at(
            "3.6",
            "extra = { experimental-compaction-batch-limit = 1, compaction-batch-limit = 2 }",
            "",
        );
        assert!(
            e.contains("extra sets `compaction-batch-limit` twice: as `compaction-batch-limit` and as `experimental-compaction-batch-limit`"),
            "{e}"
        );
        assert!(e.contains("etcd refuses to start with both"), "{e}");
        let e = errors_at(
            "3.6",
            "extra = { experimental-initial-corrupt-check = true, feature-gates = \"InitialCorruptCheck=true\" }",
            "",
        );
        assert!(e.contains("extra sets `InitialCorruptCheck` twice"), "{e}");
        // A member may override [etcd.extra] under the other name.
        let text = file(
            "extra = { experimental-compaction-batch-limit = 1 }",
            "extra = { compaction-batch-limit = 2 }",
        )
        .replace("version = \"3.5\"", "version = \"3.6\"");
        let d = parse(&text).unwrap_or_else(|p| panic!("{}", config::render_plain(&p, 100)));
        let a = etcd_config(&d, &d.members[0], &Initial::bootstrap(&d), minor(6));
        assert!(
            a.contains("compaction-batch-limit: 2\n") && !a.contains("experimental-"),
            "{a}"
        );
        let a = etcd_config(&d, &d.members[0], &Initial::bootstrap(&d), V35);
        assert!(
            a.contains("experimental-compaction-batch-limit: 2\n"),
            "{a}"
        );
        assert!(!a.contains("\ncompaction-batch-limit"), "{a}");
    }

    #[test]
    fn listeners_are_checked() {
        let e = errors("listen_metrics_urls = [\"http://{address}:2379\"]", "");
        assert!(e.contains("client or peer port"), "{e}");
        let e = errors(
            "listen_metrics_urls = [\"http://metrics.example:2381\"]",
            "",
        );
        assert!(e.contains("binds only IP"), "{e}");
        let e = errors("listen_metrics_urls = [\"https://{address}:2381\"]", "");
        assert!(e.contains("client = true"), "{e}");
        let e = errors("extra_listen_addresses = [\"10.0.0.1\"]", "");
        assert!(e.contains("own address"), "{e}");
        let e = errors("extra_listen_addresses = [\"localhost\"]", "");
        assert!(e.contains("not an IP address"), "{e}");
        // Two members on one machine cannot share a WAL folder.
        let text = file("wal_dir = \"/wal\"\ndata_dir = \"/d/{name}\"", "").replace(
            "service = \"process\"",
            "service = \"process\"\ntransport = \"local\"",
        );
        let e = match parse(&text) {
            Ok(_) => panic!("accepted"),
            Err(p) => config::render_plain(&p, 200),
        };
        assert!(e.contains("b's wal_dir /wal is also a's wal_dir"), "{e}");
    }

    #[test]
    fn extra_listen_addresses_are_in_the_certificate() {
        let d = parse(&file("extra_listen_addresses = [\"127.0.0.1\"]", ""))
            .unwrap_or_else(|p| panic!("{p:?}"));
        let sans = member_sans(&d.members[0]);
        assert!(sans.contains(&crate::cert::San::Ip([127, 0, 0, 1].into())));
    }

    #[test]
    fn a_restored_token_is_still_this_clusters_and_is_rendered() {
        let d = parse(&file("", "")).unwrap_or_else(|p| panic!("{p:?}"));
        let t = restored_token(&d, "20261202-101500");
        assert_eq!(t, "main-restored-20261202-101500");
        assert!(is_own_token(&d, &t));
        assert!(is_own_token(&d, "main"));
        assert!(!is_own_token(&d, "mainframe"));
        assert!(!is_own_token(&d, "other-restored-20261202-101500"));
        let initial = Initial {
            token: t.clone(),
            ..Initial::bootstrap(&d)
        };
        let text = etcd_config(&d, &d.members[0], &initial, V35);
        assert!(
            text.contains(&format!("initial-cluster-token: '{t}'\n")),
            "{text}"
        );
        assert_eq!(Initial::read_back(&text), Some(initial));
    }

    #[test]
    fn initial_reads_back_what_was_written() {
        let text = "initial-cluster: 'a=http://10.0.0.1:2380,b=http://10.0.0.2:2380'\ninitial-cluster-state: 'existing'\ninitial-cluster-token: 'it''s'\n";
        let i = Initial::read_back(text);
        assert_eq!(
            i,
            Some(Initial {
                state: ClusterState::Existing,
                cluster: "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380".into(),
                token: "it's".into(),
            })
        );
        assert_eq!(read_token(text).as_deref(), Some("it's"));
    }

    fn minor(minor: u32) -> MinorVersion {
        MinorVersion { major: 3, minor }
    }

    /// The etcdfile with every setting (`testdata/every_setting.toml`).
    fn every_setting() -> Desired {
        let text = include_str!("testdata/every_setting.toml")
            .replace("@DIR@", "/srv/render")
            .replace("@CLIENT@", "2379")
            .replace("@PEER@", "2380")
            .replace("@METRICS@", "2381");
        parse(&text).unwrap_or_else(|p| panic!("{}", config::render_plain(&p, 100)))
    }

    /// The rendering for `release`, and its top-level keys with the keys
    /// under each of them, as a YAML reader sees them.
    fn rendered_for(release: MinorVersion) -> (String, Vec<(String, Vec<String>)>) {
        use yaml_rust2::{Yaml, YamlLoader};
        let d = every_setting();
        let text = etcd_config(&d, &d.members[0], &Initial::bootstrap(&d), release);
        let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let Some(Yaml::Hash(top)) = docs.first() else {
            panic!("not a mapping:\n{text}");
        };
        let keys = top
            .iter()
            .map(|(k, v)| {
                let nested = match v {
                    Yaml::Hash(h) => h
                        .keys()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                (k.as_str().unwrap_or_default().to_owned(), nested)
            })
            .collect();
        (text, keys)
    }

    #[test]
    fn every_key_rendered_is_one_the_release_knows() {
        for m in 4..=7 {
            let v = minor(m);
            let (text, keys) = rendered_for(v);
            let table = etcd_keys::keys(v).unwrap_or_else(|| panic!("no table for {v}"));
            for (k, nested) in &keys {
                assert!(
                    table.contains(&k.as_str()),
                    "etcd {v} has no key {k}:\n{text}"
                );
                for n in nested {
                    assert!(
                        etcd_keys::tls_keys(v).contains(&n.as_str()),
                        "etcd {v} has no {k}.{n}:\n{text}"
                    );
                }
            }
            // Never two names of one setting: etcd 3.6 refuses to start.
            let has = |k: &str| keys.iter().any(|(x, _)| x == k);
            for mg in etcd_keys::MIGRATIONS {
                let new = match mg.new {
                    etcd_keys::Successor::Renamed(n) => n,
                    etcd_keys::Successor::Gate(_) => "feature-gates",
                };
                let gate_in_line = match mg.new {
                    etcd_keys::Successor::Gate(g) => text.contains(&format!("{g}=")),
                    etcd_keys::Successor::Renamed(_) => has(new),
                };
                assert!(
                    !(has(mg.old) && gate_in_line),
                    "{} twice for {v}:\n{text}",
                    mg.old
                );
            }
            // Every setting of the etcdfile is there, pinned, in every release.
            for line in [
                "snapshot-count: 50000\n",
                "quota-backend-bytes: 3221225472\n",
                "heartbeat-interval: 150\n",
                "election-timeout: 1500\n",
                "max-request-bytes: 2097152\n",
                "pre-vote: true\n",
                "log-level: 'info'\n",
            ] {
                assert!(text.contains(line), "{line:?} missing for {v}:\n{text}");
            }
            assert_eq!(has("enable-v2"), m <= 5, "{v}");
            assert_eq!(has("feature-gates"), m >= 6, "{v}");
        }
        let (v34, _) = rendered_for(minor(4));
        let (v35, _) = rendered_for(minor(5));
        let (v36, _) = rendered_for(minor(6));
        let (v37, _) = rendered_for(minor(7));
        assert!(v34.contains("experimental-compaction-batch-limit: 1000\n"));
        assert!(
            !v34.contains("snapshot-catch"),
            "3.4 has no such setting:\n{v34}"
        );
        assert!(!v34.contains("txn-mode"), "3.4 has no such setting:\n{v34}");
        assert!(v35.contains("experimental-snapshot-catch-up-entries: 5000\n"));
        assert!(v35.contains("experimental-txn-mode-write-with-shared-buffer: false\n"));
        assert!(v35.contains("experimental-initial-corrupt-check: true\n"));
        assert!(v35.contains("experimental-compact-hash-check-enabled: true\n"));
        assert!(v34.contains("experimental-initial-corrupt-check: true\n"));
        assert!(
            !v34.contains("compact-hash"),
            "3.4 has no such check:\n{v34}"
        );
        assert!(!v35.contains("max-learners"), "{v35}");
        for text in [&v36, &v37] {
            assert!(text.contains("compaction-batch-limit: 1000\n"));
            assert!(!text.contains("experimental-"), "{text}");
            assert!(text.contains("snapshot-catchup-entries: 5000\n"));
            assert!(text.contains("max-learners: 2\n"));
        }
        assert!(v36.contains(
            "feature-gates: 'CompactHashCheck=true,InitialCorruptCheck=true,SetMemberLocalAddr=false,TxnModeWriteWithSharedBuffer=false'\n"
        ), "{v36}");
        assert!(v37.contains(
            "feature-gates: 'CompactHashCheck=true,FastLeaseKeepAlive=true,InitialCorruptCheck=true,SetMemberLocalAddr=false,TxnModeWriteWithSharedBuffer=false'\n"
        ), "{v37}");
    }

    #[test]
    fn what_a_release_has_no_name_for_is_left_out_and_said() {
        let d = every_setting();
        let m = &d.members[0];
        let said =
            |v| -> Vec<String> { left_out(m, minor(v)).into_iter().map(|l| l.key).collect() };
        assert_eq!(
            said(4),
            [
                "max-learners",
                "snapshot-catchup-entries",
                "feature-gates: FastLeaseKeepAlive",
                "feature-gates: SetMemberLocalAddr",
                "feature-gates: TxnModeWriteWithSharedBuffer"
            ]
        );
        assert_eq!(
            said(5),
            [
                "max-learners",
                "feature-gates: FastLeaseKeepAlive",
                "feature-gates: SetMemberLocalAddr"
            ]
        );
        assert_eq!(said(6), ["feature-gates: FastLeaseKeepAlive"]);
        assert!(said(7).is_empty());
        // A release newer than the tables is rendered with the newest.
        assert_eq!(
            etcd_config(&d, m, &Initial::bootstrap(&d), minor(8)),
            etcd_config(&d, m, &Initial::bootstrap(&d), minor(7))
        );
    }

    #[test]
    fn keys_a_release_removed_are_left_out_of_its_file() {
        let text = file(
            "extra = { proxy = \"off\", discovery = \"https://discovery.example/x\" }",
            "",
        )
        .replace("version = \"3.5\"\n", "");
        let d = parse(&text).unwrap_or_else(|p| panic!("{}", config::render_plain(&p, 100)));
        let m = &d.members[0];
        let at = |v| etcd_config(&d, m, &Initial::bootstrap(&d), minor(v));
        let gone =
            |v| -> Vec<String> { left_out(m, minor(v)).into_iter().map(|l| l.key).collect() };
        assert!(at(5).contains("proxy: 'off'\n") && at(5).contains("discovery: "));
        // The proxy went in 3.6, v2 discovery in 3.7.
        assert!(!at(6).contains("proxy") && at(6).contains("discovery: "));
        assert_eq!(gone(6), ["proxy"]);
        assert!(!at(7).contains("proxy") && !at(7).contains("discovery"));
        assert_eq!(gone(7), ["discovery", "proxy"]);
    }

    #[test]
    fn renderings_per_release() {
        for v in 4..=7 {
            let (text, _) = rendered_for(minor(v));
            insta::assert_snapshot!(format!("every_setting_3_{v}"), text);
        }
    }

    /// `every_setting` with `[auth]` (this token kind, a 10 minute TTL) and
    /// a client CRL, set in code until the etcdfile has the keys.
    fn with_auth(token: config::TokenKind) -> Desired {
        let mut d = every_setting();
        d.auth = Some(config::Auth {
            enabled: true,
            root: config::Login::Password(config::SecretSource::Env("ETCD_ROOT_PASSWORD".into())),
            token,
            token_ttl: std::time::Duration::from_secs(600),
            prune: false,
            roles: Vec::new(),
            users: Vec::new(),
        });
        d.tls.crl_file = Some(PathBuf::from("/home/op/ca/crl.pem"));
        d
    }

    fn jwt() -> config::TokenKind {
        config::TokenKind::Jwt {
            key_dir: PathBuf::from("/home/op/jwt"),
        }
    }

    /// The lines of a rendering about auth and the CRL.
    fn auth_lines(text: &str) -> String {
        let mut out = String::new();
        let mut nested = false;
        for l in text.lines() {
            if l.starts_with("auth-token") || l.starts_with(CRL_KEY) {
                nested = l.starts_with(CRL_KEY);
                out.push_str(l);
                out.push('\n');
            } else if nested && l.starts_with("  ") {
                out.push_str(l);
                out.push('\n');
            } else {
                nested = false;
            }
        }
        out
    }

    #[test]
    fn simple_tokens_with_etcds_default_ttl_render_nothing() {
        let mut d = with_auth(config::TokenKind::Simple);
        if let Some(a) = d.auth.as_mut() {
            a.token_ttl = std::time::Duration::from_secs(300);
        }
        let text = etcd_config(&d, &d.members[0], &Initial::bootstrap(&d), minor(5));
        assert!(!text.contains("auth-token"), "{text}");
    }

    #[test]
    fn auth_token_and_crl_renderings_per_release() {
        for (name, token) in [("jwt", jwt()), ("simple", config::TokenKind::Simple)] {
            let d = with_auth(token);
            for v in 4..=7 {
                let text = etcd_config(&d, &d.members[0], &Initial::bootstrap(&d), minor(v));
                let (_, keys) = rendered_for(minor(v));
                let lines = auth_lines(&text);
                insta::assert_snapshot!(format!("auth_{name}_3_{v}"), lines);
                // auth-token(-ttl) are keys of every release; the CRL's key
                // is the Go field name, the same in each.
                for k in ["auth-token", "auth-token-ttl"] {
                    assert!(etcd_keys::has_key(minor(v), k), "{k} in {v}");
                }
                assert!(!etcd_keys::known_anywhere(CRL_KEY));
                // Nothing else moved: without [auth] and crl_file the file is
                // the plain rendering.
                assert!(
                    !keys
                        .iter()
                        .any(|(k, _)| k.starts_with("auth-token") || k == CRL_KEY)
                );
            }
        }
    }

    #[test]
    fn the_jwt_line_is_what_etcd_parses() {
        let d = with_auth(jwt());
        let m = &d.members[0];
        let text = etcd_config(&d, m, &Initial::bootstrap(&d), V35);
        let line = read_value(&text, "auth-token").unwrap_or_default();
        let opts: BTreeMap<&str, &str> = line
            .split(',')
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .collect();
        assert!(line.starts_with("jwt,"), "{line}");
        let p = auth_paths(m);
        assert_eq!(opts.get("pub-key").copied(), p.jwt_pub.to_str());
        assert_eq!(opts.get("priv-key").copied(), p.jwt_key.to_str());
        assert_eq!(opts.get("sign-method").copied(), Some("ES256"));
        assert_eq!(opts.get("ttl").copied(), Some("600s"));
        // auth-token-ttl governs simple tokens only.
        assert!(!text.contains("auth-token-ttl"), "{text}");
        let mut short = d.clone();
        if let Some(a) = short.auth.as_mut() {
            a.token_ttl = std::time::Duration::from_millis(1500);
        }
        let text = etcd_config(&short, m, &Initial::bootstrap(&short), V35);
        assert!(text.contains(",ttl=1500ms'"), "{text}");
        // Without [auth], nothing about tokens: etcd's own defaults stay.
        let mut none = d.clone();
        none.auth = None;
        let text = etcd_config(&none, m, &Initial::bootstrap(&none), V35);
        assert!(!text.contains("auth-token"), "{text}");
    }

    #[test]
    fn the_crl_goes_with_client_tls_only() {
        let mut d = with_auth(config::TokenKind::Simple);
        let m = d.members[0].clone();
        let at = |d: &Desired| etcd_config(d, &m, &Initial::bootstrap(d), V35);
        assert!(at(&d).contains(&format!(
            "{CRL_KEY}: \n  CRLFile: '{}'\n",
            auth_paths(&m).crl.display()
        )));
        d.tls.client = false;
        assert!(!at(&d).contains(CRL_KEY));
    }

    #[test]
    fn paths_etcd_cannot_split_and_the_crl_bypass_are_found() {
        let mut d = with_auth(jwt());
        let mut m = d.members[0].clone();
        assert_eq!(auth_path_problem(&d, &m), None);
        m.config_dir = PathBuf::from("/etc/etcd,x");
        assert!(auth_path_problem(&d, &m).is_some());
        let v = |s: &str| crate::model::EtcdVersion::parse(s).unwrap_or_else(|| panic!("{s}"));
        let m = d.members[0].clone();
        assert!(!crl_bypassed(&d, &m, v("3.5.16")), "no split listener");
        d.members[0].settings.extra.insert(
            "listen-client-http-urls".into(),
            "'http://127.0.0.1:2382'".into(),
        );
        let m = d.members[0].clone();
        for (ver, bypassed) in [
            ("3.4.23", true),
            ("3.5.31", true),
            ("3.5.32", false),
            ("3.6.12", true),
            ("3.6.13", false),
            ("3.7.0", false),
        ] {
            assert_eq!(crl_bypassed(&d, &m, v(ver)), bypassed, "{ver}");
        }
        d.tls.crl_file = None;
        assert!(!crl_bypassed(&d, &m, v("3.5.16")));
    }
}
