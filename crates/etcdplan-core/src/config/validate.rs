//! From the raw file to the typed [`Desired`] model, collecting every problem.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::desired::{
    BinarySource, Desired, DesiredMember, EtcdSettings, Hosts, PathTemplates, ServiceKind, Ssh,
    Tls, Transport,
};
use super::diagnostic::{Level, Problem};
use super::raw::{RawCompactionMode, RawEtcdfile, RawMember, RawService, RawTransport, SizeValue};
use crate::model::{
    Address, ByteSize, ClusterName, Compaction, CompactionMode, MemberName, Port, VersionSpec,
};

/// What validation needs from outside the file, passed in so it stays pure.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The etcdfile's folder (absolute): relative paths are relative to it.
    pub base_dir: PathBuf,
    /// The operator's home, for `~` in local paths.
    pub home: Option<PathBuf>,
    /// sha256 of the file's text.
    pub file_hash: String,
    /// The etcd releases found on this machine at the paths `binary_source`
    /// names (see [`super::release_paths`]), or why none could be read. A path
    /// not in the map was not looked at: its releases stay empty.
    pub releases: BTreeMap<PathBuf, Result<Vec<super::Release>, String>>,
}

const DEFAULT_CLIENT_PORT: u16 = 2379;
const DEFAULT_PEER_PORT: u16 = 2380;
const DEFAULT_QUOTA: u64 = 2 << 30;
const QUOTA_WARN: u64 = 8 << 30;

/// Validates the raw file. Returns the model when there is no error, and all
/// problems (errors and warnings) either way.
pub fn validate(raw: &RawEtcdfile, ctx: &Context) -> (Option<Desired>, Vec<Problem>) {
    let mut v = Validator {
        ctx,
        problems: Vec::new(),
    };
    let desired = v.run(raw);
    // A template shared by all members reports its problem once.
    let mut seen = Vec::new();
    v.problems.retain(|p| {
        let key = (p.code, p.message.clone(), p.labels.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    let has_error = v.problems.iter().any(|p| p.level == Level::Error);
    (if has_error { None } else { desired }, v.problems)
}

struct Validator<'a> {
    ctx: &'a Context,
    problems: Vec<Problem>,
}

/// Where a path lives, which decides how relative paths and `~` are read.
#[derive(Clone, Copy, PartialEq)]
enum PathSide {
    /// On the operator's machine (CA folder, ssh key).
    Local,
    /// On a member's host.
    Host(Transport),
}

impl Validator<'_> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn run(&mut self, raw: &RawEtcdfile) -> Option<Desired> {
        let cluster_raw = raw.cluster.get_ref();
        let cluster = match ClusterName::parse(cluster_raw.name.get_ref()) {
            Ok(n) => Some(n),
            Err(e) => {
                self.push(
                    Problem::error("etcdfile::bad-name", format!("invalid cluster name: {e}"))
                        .label(cluster_raw.name.span(), "this name"),
                );
                None
            }
        };
        let version = cluster_raw.version.as_ref().and_then(|v| {
            VersionSpec::parse(v.get_ref())
                .map_err(|e| {
                    self.push(
                        Problem::error("etcdfile::bad-version", e.to_string())
                            .label(v.span(), "expected major.minor or major.minor.patch")
                            .help("write the version every member must run: a minor version such as \"3.5\", or a release such as \"3.5.16\""),
                    );
                })
                .ok()
        });

        let transport = match raw.hosts.transport.as_ref().map(|t| *t.get_ref()) {
            Some(RawTransport::Local) => Transport::Local,
            Some(RawTransport::Ssh) | None => Transport::Ssh,
        };
        let service = match raw.hosts.service.as_ref().map(|s| *s.get_ref()) {
            Some(RawService::Process) => ServiceKind::Process,
            Some(RawService::Systemd) | None => ServiceKind::Systemd,
        };

        let etcd = self.etcd(raw, transport);
        let tls = self.tls(raw);
        let hosts = self.hosts(raw, transport, service);
        let members = self.members(raw, transport, service);
        let templates = self.templates(raw, transport);

        Some(Desired {
            cluster: cluster?,
            version,
            etcd: etcd?,
            tls: tls?,
            hosts: hosts?,
            members: members?,
            templates: templates?,
            file_hash: self.ctx.file_hash.clone(),
        })
    }

    fn etcd(&mut self, raw: &RawEtcdfile, transport: Transport) -> Option<EtcdSettings> {
        let e = &raw.etcd;
        let quota = match &e.quota_backend_bytes {
            None => Some(ByteSize(DEFAULT_QUOTA)),
            Some(q) => self.size(q),
        };
        if let (Some(q), Some(span)) = (quota, e.quota_backend_bytes.as_ref().map(Spanned::span)) {
            if q.bytes() > QUOTA_WARN {
                self.push(
                    Problem::warning(
                        "etcdfile::large-quota",
                        format!("quota_backend_bytes = {q} is above 8GiB"),
                    )
                    .label(span, "above etcd's suggested maximum")
                    .help("etcd warns above 8GiB: large databases make snapshots, restarts and defragmentation slow"),
                );
            } else if q.bytes() == 0 {
                self.push(
                    Problem::warning(
                        "etcdfile::zero-quota",
                        "quota_backend_bytes = 0 means etcd's default of 2GiB",
                    )
                    .label(span, "0 bytes"),
                );
            }
        }
        let mode = match e.auto_compaction_mode.as_ref().map(|m| *m.get_ref()) {
            Some(RawCompactionMode::Periodic) => CompactionMode::Periodic,
            Some(RawCompactionMode::Revision) | None => CompactionMode::Revision,
        };
        let compaction = match &e.auto_compaction_retention {
            None => Compaction::new(
                mode,
                match mode {
                    CompactionMode::Revision => "1000",
                    CompactionMode::Periodic => "1h",
                },
            )
            .ok(),
            Some(r) => match Compaction::new(mode, &r.get_ref().text()) {
                Ok(c) => Some(c),
                Err(msg) => {
                    let mut p = Problem::error(
                        "etcdfile::bad-retention",
                        "auto_compaction_retention does not fit auto_compaction_mode",
                    )
                    .label(r.span(), msg);
                    match &e.auto_compaction_mode {
                        Some(m) => p = p.label(m.span(), format!("the mode is {mode}")),
                        None => {
                            p = p.help(format!(
                                "auto_compaction_mode defaults to \"revision\"; set auto_compaction_mode = \"{}\" for a duration",
                                "periodic"
                            ));
                        }
                    }
                    self.push(p);
                    None
                }
            },
        };
        let binary = match &e.binary {
            None => Some(PathBuf::from("/usr/bin/etcd")),
            Some(b) => self.path(b, None, PathSide::Host(transport), false),
        };
        let binary_source = match &e.binary_source {
            None => Some(None),
            Some(b) => self.path(b, None, PathSide::Local, false).map(|path| {
                Some(BinarySource {
                    path,
                    span: b.span(),
                    releases: Vec::new(),
                })
            }),
        };
        Some(EtcdSettings {
            quota_backend_bytes: quota?,
            compaction: compaction?,
            binary: binary?,
            binary_source: binary_source?,
        })
    }

    fn size(&mut self, v: &Spanned<SizeValue>) -> Option<ByteSize> {
        let text = v.get_ref().text();
        match ByteSize::parse(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                let fix = match &e {
                    crate::model::SizeError::DecimalUnit(u) => {
                        let b = u.trim_end_matches(['B', 'b']).to_ascii_uppercase();
                        format!(
                            " (did you mean \"{}{b}iB\"?)",
                            text.trim_end_matches(u.as_str())
                        )
                    }
                    crate::model::SizeError::Space => format!(" (\"{}\")", text.replace(' ', "")),
                    _ => String::new(),
                };
                self.push(
                    Problem::error("etcdfile::bad-size", format!("invalid size {text:?}: {e}"))
                        .label(v.span(), "not a size etcdplan accepts")
                        .help(format!(
                            "write an integer number of bytes or a whole number with KiB, MiB, GiB or TiB, no space{fix}"
                        )),
                );
                None
            }
        }
    }

    fn tls(&mut self, raw: &RawEtcdfile) -> Option<Tls> {
        let t = &raw.tls;
        let flag = |f: &Option<Spanned<bool>>| f.as_ref().is_some_and(|b| *b.get_ref());
        let (client, peer, cca) = (flag(&t.client), flag(&t.peer), flag(&t.client_cert_auth));
        let mut ok = true;
        if cca && !client {
            ok = false;
            let mut p = Problem::error(
                "etcdfile::cert-auth-without-tls",
                "client_cert_auth needs client TLS",
            );
            if let Some(c) = &t.client_cert_auth {
                p = p.label(c.span(), "client certificates are asked for here");
            }
            if let Some(c) = &t.client {
                p = p.label(c.span(), "but client traffic is plain http");
            }
            self.push(p.help("set client = true in [tls], or drop client_cert_auth"));
        }
        let ca_dir = match &t.ca_dir {
            None => Some(self.ctx.base_dir.join("pki")),
            Some(d) => self.path(d, None, PathSide::Local, false),
        };
        let num = |v: &Option<Spanned<u32>>, default: i64| {
            v.as_ref().map_or(default, |n| i64::from(*n.get_ref()))
        };
        let cert_days = num(&t.cert_days, 365);
        let renew_before_days = num(&t.renew_before_days, 30);
        if renew_before_days >= cert_days {
            ok = false;
            let mut p = Problem::error(
                "etcdfile::renewal-window",
                format!(
                    "renew_before_days ({renew_before_days}) must be less than cert_days ({cert_days})"
                ),
            );
            if let Some(r) = &t.renew_before_days {
                p = p.label(
                    r.span(),
                    "every certificate would be renewed at every apply",
                );
            }
            self.push(p.help("shorten renew_before_days or lengthen cert_days"));
        }
        ok.then_some(())?;
        Some(Tls {
            client,
            peer,
            client_cert_auth: cca,
            ca_dir: ca_dir?,
            cert_days,
            renew_before_days,
        })
    }

    fn hosts(
        &mut self,
        raw: &RawEtcdfile,
        transport: Transport,
        service: ServiceKind,
    ) -> Option<Hosts> {
        let h = &raw.hosts;
        let user = h
            .ssh_user
            .as_ref()
            .map_or("root".to_owned(), |u| u.get_ref().clone());
        if let Some(u) = &h.ssh_user
            && (u.get_ref().is_empty()
                || u.get_ref()
                    .contains(|c: char| c.is_whitespace() || c == '@'))
        {
            self.push(
                Problem::error(
                    "etcdfile::bad-ssh-user",
                    format!("invalid ssh_user {:?}", u.get_ref()),
                )
                .label(u.span(), "not a user name"),
            );
        }
        let port = h
            .ssh_port
            .as_ref()
            .map_or(Port::new(22), |p| Port::new(*p.get_ref()));
        let identity = match &h.ssh_identity {
            None => self.expand_home("~/.ssh/id_ed25519"),
            Some(p) => self.path(p, None, PathSide::Local, false),
        };
        let known_hosts = match &h.ssh_known_hosts {
            None => self.expand_home("~/.ssh/known_hosts"),
            Some(p) => self.path(p, None, PathSide::Local, false),
        };
        Some(Hosts {
            transport,
            service,
            ssh: Ssh {
                user,
                port: port?,
                identity: identity?,
                known_hosts: known_hosts?,
            },
        })
    }

    fn expand_home(&self, p: &str) -> Option<PathBuf> {
        match (p.strip_prefix("~/"), &self.ctx.home) {
            (Some(rest), Some(home)) => Some(home.join(rest)),
            _ => Some(PathBuf::from(p)),
        }
    }

    /// Resolves a path template: `{name}`, `~`, and relative paths.
    fn path(
        &mut self,
        v: &Spanned<String>,
        name: Option<&MemberName>,
        side: PathSide,
        allow_name: bool,
    ) -> Option<PathBuf> {
        let s = v.get_ref();
        if s.is_empty() {
            self.push(
                Problem::error("etcdfile::bad-path", "the path is empty").label(v.span(), "empty"),
            );
            return None;
        }
        let mut rest = s.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map(|c| open + c);
            let ph = close.map(|c| &rest[open..=c]);
            if ph != Some("{name}") || !allow_name {
                let msg = match ph {
                    Some("{name}") => {
                        "{name} is only allowed in data_dir, config_dir and state_dir".to_owned()
                    }
                    Some(p) => format!("unknown placeholder {p}"),
                    None => "unclosed '{' in path".to_owned(),
                };
                self.push(
                    Problem::error("etcdfile::bad-path", msg)
                        .label(v.span(), "in this path")
                        .help("the only placeholder is {name}, the member's name"),
                );
                return None;
            }
            rest = &rest[close.map_or(rest.len(), |c| c + 1)..];
        }
        let s = match name {
            Some(n) => s.replace("{name}", n.as_str()),
            None => s.clone(),
        };
        let local = matches!(side, PathSide::Local | PathSide::Host(Transport::Local));
        let p = if let Some(r) = s.strip_prefix("~/").filter(|_| local) {
            match &self.ctx.home {
                Some(h) => h.join(r),
                None => PathBuf::from(&s),
            }
        } else {
            PathBuf::from(&s)
        };
        if p.is_absolute() {
            return Some(p);
        }
        if local {
            return Some(self.ctx.base_dir.join(p));
        }
        self.push(
            Problem::error(
                "etcdfile::relative-remote-path",
                format!("{:?} is relative, but it is a path on remote hosts", v.get_ref()),
            )
                .label(v.span(), "must be absolute with transport = \"ssh\"")
                .help("relative paths are read from the etcdfile's folder, which only makes sense with transport = \"local\""),
        );
        None
    }

    /// The three path settings resolved but for `{name}`; their problems are
    /// reported (once) while resolving the members.
    fn templates(&mut self, raw: &RawEtcdfile, transport: Transport) -> Option<PathTemplates> {
        let side = PathSide::Host(transport);
        let mut quiet = Validator {
            ctx: self.ctx,
            problems: Vec::new(),
        };
        let mut one = |v: &Option<Spanned<String>>, d: &str| {
            let v = v
                .clone()
                .unwrap_or_else(|| Spanned::new(0..0, d.to_owned()));
            quiet
                .path(&v, None, side, true)
                .map(|p| p.display().to_string())
        };
        Some(PathTemplates {
            data_dir: one(&raw.etcd.data_dir, "/var/lib/etcd")?,
            config_dir: one(&raw.hosts.config_dir, "/etc/etcd")?,
            state_dir: one(&raw.hosts.state_dir, "/var/lib/etcdplan")?,
        })
    }

    fn members(
        &mut self,
        raw: &RawEtcdfile,
        transport: Transport,
        service: ServiceKind,
    ) -> Option<Vec<DesiredMember>> {
        let e = &raw.etcd;
        let h = &raw.hosts;
        if raw.member.is_empty() {
            let end = raw.cluster.span();
            self.push(
                Problem::error("etcdfile::no-members", "the etcdfile has no members")
                    .label(end, "this cluster has no [[member]]")
                    .help("add at least one [[member]] table with a name and an address"),
            );
            return None;
        }
        let default_client = e
            .client_port
            .as_ref()
            .map_or(DEFAULT_CLIENT_PORT, |p| *p.get_ref());
        let default_peer = e
            .peer_port
            .as_ref()
            .map_or(DEFAULT_PEER_PORT, |p| *p.get_ref());
        let host_side = PathSide::Host(transport);
        let default_dir = |v: &Option<Spanned<String>>, d: &str| {
            v.clone()
                .unwrap_or_else(|| Spanned::new(0..0, d.to_owned()))
        };
        let data_dir = default_dir(&e.data_dir, "/var/lib/etcd");
        let config_dir = default_dir(&h.config_dir, "/etc/etcd");
        let state_dir = default_dir(&h.state_dir, "/var/lib/etcdplan");

        let mut out = Vec::new();
        let mut ok = true;
        let mut by_name: BTreeMap<String, Range<usize>> = BTreeMap::new();
        for m in &raw.member {
            let rm: &RawMember = m.get_ref();
            let name = match MemberName::parse(rm.name.get_ref()) {
                Ok(n) => Some(n),
                Err(err) => {
                    self.push(
                        Problem::error("etcdfile::bad-name", format!("invalid member name {:?}: {err}", rm.name.get_ref()))
                            .label(rm.name.span(), "etcd cannot use this name")
                            .help("names go into --initial-cluster (split on ',' and '=') and certificate SANs"),
                    );
                    None
                }
            };
            if let Some(prev) = by_name.get(rm.name.get_ref()) {
                self.push(
                    Problem::error(
                        "etcdfile::duplicate-member",
                        format!("two members are named {:?}", rm.name.get_ref()),
                    )
                    .label(prev.clone(), "first here")
                    .label(rm.name.span(), "again here")
                    .help("member names must be unique"),
                );
                ok = false;
            } else {
                by_name.insert(rm.name.get_ref().clone(), rm.name.span());
            }
            let address = match Address::parse(rm.address.get_ref()) {
                Ok(a) => Some(a),
                Err(err) => {
                    self.push(
                        Problem::error(
                            "etcdfile::bad-address",
                            format!("invalid address {:?}", rm.address.get_ref()),
                        )
                        .label(rm.address.span(), err.to_string()),
                    );
                    None
                }
            };
            let client = rm
                .client_port
                .as_ref()
                .map_or(default_client, |p| *p.get_ref());
            let peer = rm.peer_port.as_ref().map_or(default_peer, |p| *p.get_ref());
            if client == peer {
                let mut p = Problem::error(
                    "etcdfile::same-port",
                    format!(
                        "member {:?} would use port {client} for both client and peer traffic",
                        rm.name.get_ref()
                    ),
                );
                for s in [&rm.client_port, &rm.peer_port, &e.client_port, &e.peer_port]
                    .into_iter()
                    .flatten()
                {
                    p = p.label(s.span(), format!("port {}", s.get_ref()));
                }
                if p.labels.is_empty() {
                    p = p.label(m.span(), "this member");
                }
                self.push(p.help("client and peer listeners need different ports"));
                ok = false;
            }
            let Some(name) = name else {
                ok = false;
                continue;
            };
            let dirs = (
                self.path(&data_dir, Some(&name), host_side, true),
                self.path(&config_dir, Some(&name), host_side, true),
                self.path(&state_dir, Some(&name), host_side, true),
            );
            let (Some(address), (Some(data), Some(config), Some(state))) = (address, dirs) else {
                ok = false;
                continue;
            };
            out.push((
                m,
                DesiredMember {
                    name,
                    address,
                    client_port: Port::new(client)?,
                    peer_port: Port::new(peer)?,
                    data_dir: data,
                    config_dir: config,
                    state_dir: state,
                },
            ));
        }
        ok &= self.collisions(&out, transport, [&data_dir, &config_dir, &state_dir]);
        ok &= self.one_unit_per_host(&out, raw, transport, service);
        self.size_warnings(&raw.member);
        ok.then(|| out.into_iter().map(|(_, m)| m).collect())
    }

    /// Port clashes on one address, and paths shared by members on one machine.
    fn collisions(
        &mut self,
        members: &[(&Spanned<RawMember>, DesiredMember)],
        transport: Transport,
        dirs: [&Spanned<String>; 3],
    ) -> bool {
        let mut ok = true;
        for (i, (ra, a)) in members.iter().enumerate() {
            for (rb, b) in &members[..i] {
                if a.address == b.address {
                    let a_ports = [a.client_port, a.peer_port];
                    if let Some(port) = [b.client_port, b.peer_port]
                        .into_iter()
                        .find(|p| a_ports.contains(p))
                    {
                        ok = false;
                        self.push(
                            Problem::error(
                                "etcdfile::port-clash",
                                format!("members {:?} and {:?} both use {}:{port}", b.name.as_str(), a.name.as_str(), a.address),
                            )
                            .label(rb.get_ref().address.span(), format!("{} listens on {}:{port}", b.name, a.address))
                            .label(ra.get_ref().address.span(), format!("{} too", a.name))
                            .help("give one of them its own client_port/peer_port, or another address"),
                        );
                    }
                }
            }
        }
        // Paths shared by members on one machine: one problem per shared path.
        let keys = ["data_dir", "config_dir", "state_dir"];
        for (k, key) in keys.iter().enumerate() {
            let mut groups: BTreeMap<(String, PathBuf), Vec<usize>> = BTreeMap::new();
            for (i, (_, m)) in members.iter().enumerate() {
                let machine = match transport {
                    Transport::Local => String::new(),
                    Transport::Ssh => m.address.to_string(),
                };
                let path = [&m.data_dir, &m.config_dir, &m.state_dir][k].clone();
                groups.entry((machine, path)).or_default().push(i);
            }
            let mut clashes: Vec<(PathBuf, Vec<usize>)> = groups
                .into_iter()
                .filter(|(_, v)| v.len() > 1)
                .map(|((_, p), v)| (p, v))
                .collect();
            clashes.sort_by_key(|(_, v)| v[0]);
            for (path, idx) in clashes {
                ok = false;
                let names: Vec<&str> = idx.iter().map(|&i| members[i].1.name.as_str()).collect();
                let mut p = Problem::error(
                    "etcdfile::path-clash",
                    format!(
                        "{} run on one machine and would share {key} {}",
                        names.join(", "),
                        path.display()
                    ),
                );
                if dirs[k].span() != (0..0) {
                    p = p.label(dirs[k].span(), "one path for all of them");
                }
                for &i in &idx {
                    p = p.label(members[i].0.span(), members[i].1.name.to_string());
                }
                let hint = if dirs[k].span() == (0..0) {
                    format!(
                        "set {key} with {{name}} in it, e.g. \"{}\"",
                        suggest_name_path(&path)
                    )
                } else {
                    format!(
                        "put {{name}} in {key}, e.g. \"{}\"",
                        suggest_name_path(&path)
                    )
                };
                self.push(p.help(hint));
            }
        }
        ok
    }

    /// A manager whose unit is named after the service alone (systemd's
    /// `etcd.service`) runs one member per machine.
    fn one_unit_per_host(
        &mut self,
        members: &[(&Spanned<RawMember>, DesiredMember)],
        raw: &RawEtcdfile,
        transport: Transport,
        service: ServiceKind,
    ) -> bool {
        let Some(unit) = service.shared_unit() else {
            return true;
        };
        let mut by_machine: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, (_, m)) in members.iter().enumerate() {
            let machine = match transport {
                Transport::Local => "this machine".to_owned(),
                Transport::Ssh => m.address.to_string(),
            };
            by_machine.entry(machine).or_default().push(i);
        }
        let mut ok = true;
        for (machine, idx) in by_machine.into_iter().filter(|(_, v)| v.len() > 1) {
            ok = false;
            let names: Vec<&str> = idx.iter().map(|&i| members[i].1.name.as_str()).collect();
            let mut p = Problem::error(
                "etcdfile::one-unit-per-host",
                format!(
                    "{} share {machine}, but the {} service runs one {unit} per host",
                    names.join(", "),
                    service.name()
                ),
            );
            if let Some(svc) = &raw.hosts.service {
                p = p.label(svc.span(), service.name());
            }
            for &i in &idx {
                p = p.label(members[i].0.span(), members[i].1.name.to_string());
            }
            self.push(
                p.help("give each member its own host, or set service = \"process\" in [hosts]"),
            );
        }
        ok
    }

    fn size_warnings(&mut self, members: &[Spanned<RawMember>]) {
        let n = members.len();
        let Some(last) = members.last() else { return };
        if n.is_multiple_of(2) {
            self.push(
                Problem::warning("etcdfile::even-members", format!("{n} members tolerate no more failures than {}", n - 1))
                    .label(last.span(), format!("member #{n}"))
                    .help(format!(
                        "an even count raises the quorum without adding fault tolerance: {n} members need {} for quorum",
                        crate::model::quorum(n)
                    )),
            );
        }
        if n > 7 {
            self.push(
                Problem::warning("etcdfile::many-members", format!("{n} members is more than etcd recommends"))
                    .label(last.span(), format!("member #{n}"))
                    .help("etcd recommends at most 7 voting members: each one adds replication work to every write"),
            );
        }
    }
}

fn suggest_name_path(p: &Path) -> String {
    format!("{}/{{name}}", p.display())
}
