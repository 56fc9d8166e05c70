//! The `[[member]]` list: each member's name, address and ports, and what
//! members must not share (ports on one address, paths on one machine, a
//! per-host service unit), plus the warnings on the member count.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::{PathSide, Validator};
use crate::config::desired::{DesiredMember, ServiceKind, Transport};
use crate::config::diagnostic::Problem;
use crate::config::raw::{RawEtcdfile, RawMember};
use crate::model::{Address, MemberName, MinorVersion, Port};

const DEFAULT_CLIENT_PORT: u16 = 2379;
const DEFAULT_PEER_PORT: u16 = 2380;

impl Validator<'_> {
    pub(super) fn members(
        &mut self,
        raw: &RawEtcdfile,
        transport: Transport,
        service: ServiceKind,
        version: Option<MinorVersion>,
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
            let Some(address) = address else {
                ok = false;
                continue;
            };
            let settings =
                self.member_settings(raw, rm, &name, &address, client, peer, transport, version);
            let (Some((wal_dir, settings)), (Some(data), Some(config), Some(state))) =
                (settings, dirs)
            else {
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
                    wal_dir,
                    config_dir: config,
                    state_dir: state,
                    settings,
                },
            ));
        }
        ok &= self.collisions(&out, transport, [&data_dir, &config_dir, &state_dir]);
        ok &= self.wal_collisions(&out, transport);
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

    /// WAL folders shared by members on one machine, or one member's WAL
    /// folder being another's data dir.
    fn wal_collisions(
        &mut self,
        members: &[(&Spanned<RawMember>, DesiredMember)],
        transport: Transport,
    ) -> bool {
        let machine = |m: &DesiredMember| match transport {
            Transport::Local => String::new(),
            Transport::Ssh => m.address.to_string(),
        };
        let mut ok = true;
        for (i, (ra, a)) in members.iter().enumerate() {
            let Some(wal) = &a.wal_dir else { continue };
            for (j, (rb, b)) in members.iter().enumerate() {
                let clash = machine(a) == machine(b)
                    && ((j < i && b.wal_dir.as_ref() == Some(wal)) || &b.data_dir == wal);
                if !clash {
                    continue;
                }
                ok = false;
                let what = if &b.data_dir == wal {
                    "data dir"
                } else {
                    "wal_dir"
                };
                self.push(
                    Problem::error(
                        "etcdfile::path-clash",
                        format!(
                            "{}'s wal_dir {} is also {}'s {what}",
                            a.name,
                            wal.display(),
                            b.name
                        ),
                    )
                    .label(ra.span(), a.name.to_string())
                    .label(rb.span(), b.name.to_string())
                    .help("give each member its own wal_dir, outside every data dir: put {name} in it"),
                );
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
