//! Checks that a member can be started or join on its host: the probe's
//! problems, a masked unit, the binary, busy ports, and whose data its data
//! dir holds.

use super::Blocker;
use crate::config::{Desired, DesiredMember};
use crate::hostfiles::{self, systemd_unit::UNIT};
use crate::live::{Binary, DataDir, HostFacts, ServiceState};

/// Checks that a member can be started here: binary, ports, data dir.
pub(super) fn preflight(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
    blockers: &mut Vec<Blocker>,
) {
    problems(m, facts, blockers);
    if let Some(u) = facts.unit.as_ref().filter(|u| u.enabled.masked()) {
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!(
                "{}: {UNIT} is {} on {}: systemd refuses to start it",
                m.name, u.enabled, m.address
            ),
            help: format!(
                "if etcd should run there, run `systemctl unmask {UNIT}` on {}, then plan again; nothing was changed",
                m.address
            ),
        });
    }
    // With binary_source, etcdplan puts the binary there itself.
    if facts.binary == Binary::Missing && d.etcd.binary_source.is_none() {
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!(
                "{}: the etcd binary {} is missing on {}",
                m.name,
                d.etcd.binary.display(),
                m.address
            ),
            help:
                "install etcd there (Debian: apt-get install etcd-server), set `binary` in [etcd], or set `binary_source` in [etcd] for etcdplan to upload it"
                    .into(),
        });
    }
    if facts.service == ServiceState::Stopped
        && let Some(listening) = &facts.listening
    {
        for port in [m.client_port, m.peer_port] {
            let busy = listening.iter().any(|a| a.takes(&m.address, port));
            if busy {
                blockers.push(Blocker {
                    member: Some(m.name.clone()),
                    message: format!(
                        "{}: port {port} on {} is already in use by another process",
                        m.name, m.address
                    ),
                    help: format!(
                        "stop that process (`ss -ltnp 'sport = :{port}'` names it) or give {} another port in the etcdfile",
                        m.name
                    ),
                });
            }
        }
    }
    match facts.data {
        DataDir::Other => blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!(
                "{}: data dir {} is not empty and holds no etcd member",
                m.name,
                m.data_dir.display()
            ),
            help: "empty it or choose another data_dir; etcdplan never deletes files".into(),
        }),
        DataDir::Member => {
            let token = facts.file(&m.config_file()).and_then(hostfiles::read_token);
            if !token
                .as_deref()
                .is_some_and(|t| hostfiles::is_own_token(d, t))
            {
                let whose = match token {
                    Some(t) => format!("cluster {t:?}"),
                    None => "a cluster etcdplan did not create".into(),
                };
                blockers.push(Blocker {
                    member: Some(m.name.clone()),
                    message: format!(
                        "{}: data dir {} belongs to {whose}, not to {:?}",
                        m.name,
                        m.data_dir.display(),
                        d.token.as_str()
                    ),
                    help: format!(
                        "if that data is not needed, move it aside: mv {0} {0}.old (etcdplan never deletes data)",
                        m.data_dir.display()
                    ),
                });
            }
        }
        DataDir::Absent | DataDir::Empty => {}
    }
}

/// The probe's problems (what stops etcd from starting on the host) as
/// blockers naming the member and its host.
pub(super) fn problems(m: &DesiredMember, facts: &HostFacts, blockers: &mut Vec<Blocker>) {
    for p in &facts.problems {
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!("{}: {} on {}", m.name, p.message, m.address),
            help: p.help.clone(),
        });
    }
}

/// Checks a member that is about to join: the preflight of a start, except
/// that old data of this very cluster is moved aside by the plan, not refused.
pub(super) fn preflight_join(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
    blockers: &mut Vec<Blocker>,
) {
    let ours = facts
        .file(&m.config_file())
        .and_then(hostfiles::read_token)
        .is_some_and(|t| hostfiles::is_own_token(d, &t));
    let mut probe = facts.clone();
    if ours && probe.data == DataDir::Member {
        probe.data = DataDir::Absent;
    }
    preflight(d, m, &probe, blockers);
}

/// Whether a joining member's data dir holds old data of this cluster, to be moved aside first.
pub fn stale_data(d: &Desired, m: &DesiredMember, facts: &HostFacts) -> bool {
    facts.data == DataDir::Member
        && facts
            .file(&m.config_file())
            .and_then(hostfiles::read_token)
            .is_some_and(|t| hostfiles::is_own_token(d, &t))
}
