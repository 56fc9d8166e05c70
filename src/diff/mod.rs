//! Stage 3: `Desired × Live → Diff`, a pure function.
//!
//! The diff says what differs and why, per member, and what stops etcdplan from
//! acting (blockers: a missing binary, a busy port, foreign data). It never
//! decides order; that is the planner's job.

use std::path::PathBuf;

use crate::config::{Desired, DesiredMember};
use crate::hostfiles::{self, Initial};
use crate::model::{MemberId, MemberName};
use crate::observe::{Binary, DataDir, HostFacts, HostState, Live, LiveCluster};
use crate::service::ServiceState;

/// What will happen to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new member bootstraps with the cluster (`+`).
    Create,
    /// A stopped member is started again (`~`).
    Start,
    /// A running member gets new settings and restarts (`~`).
    Restart,
    /// A member joins a running cluster (`+`).
    Add,
    /// A member leaves the cluster (`-`).
    Remove,
}

impl Action {
    /// Terraform-style symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Create | Self::Add => "+",
            Self::Start | Self::Restart => "~",
            Self::Remove => "-",
        }
    }
}

/// A host file that changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileChange {
    /// Path on the host.
    pub path: PathBuf,
    /// Mode it is written with.
    pub mode: u32,
    /// The host, as shown to people.
    pub host: String,
    /// Content now (None: absent).
    pub before: Option<String>,
    /// Content wanted.
    pub after: String,
}

/// One member's change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The member.
    pub member: MemberName,
    /// What happens.
    pub action: Action,
    /// Why, in one line.
    pub reason: String,
    /// Host files that change.
    pub files: Vec<FileChange>,
    /// The member's id, when the cluster knows it.
    pub id: Option<MemberId>,
    /// Whether it leads the cluster now.
    pub leader: bool,
}

/// Something that stops the plan from being applied, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Blocker {
    /// The member concerned, if any.
    pub member: Option<MemberName>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: String,
}

/// In what state the cluster was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Situation {
    /// No member answers and no member has data: a new cluster.
    Bootstrap,
    /// No member answers, but members have data: the cluster is down.
    Down,
    /// The cluster answers.
    Running,
}

/// The whole difference.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diff {
    /// The situation found.
    pub situation: Situation,
    /// Per-member changes, in file order.
    pub changes: Vec<Change>,
    /// What stops the plan.
    pub blockers: Vec<Blocker>,
}

/// Computes the diff.
pub fn diff(d: &Desired, live: &Live) -> Diff {
    let mut blockers = Vec::new();
    if d.tls.any() {
        blockers.push(Blocker {
            member: None,
            message: "TLS is asked for in [tls], but this version of etcdplan cannot issue certificates yet".into(),
            help: "set client, peer and client_cert_auth to false in [tls] for now".into(),
        });
    }
    for (name, h) in &live.hosts {
        if let HostState::Unreachable { reason, advice } = h {
            blockers.push(Blocker {
                member: Some(name.clone()),
                message: format!("{name}: {reason}"),
                help: advice.clone(),
            });
        }
    }
    let any_data = live
        .hosts
        .values()
        .filter_map(HostState::facts)
        .any(|f| f.data == DataDir::Member);
    let situation = match (&live.cluster, any_data) {
        (Some(_), _) => Situation::Running,
        (None, true) => Situation::Down,
        (None, false) => Situation::Bootstrap,
    };
    let mut changes = Vec::new();
    for m in &d.members {
        let Some(facts) = live.hosts.get(&m.name).and_then(HostState::facts) else {
            continue;
        };
        match &live.cluster {
            Some(c) => running_member(d, c, m, facts, &mut changes, &mut blockers),
            None => down_member(d, m, facts, &mut changes, &mut blockers),
        }
    }
    if let Some(c) = &live.cluster {
        for lm in &c.members {
            let known = d.members.iter().any(|m| {
                lm.name == m.name.as_str()
                    || (!lm.started() && lm.peer_urls.contains(&m.peer_url(&d.tls)))
            });
            if !known {
                let shown = if lm.name.is_empty() {
                    format!("(unstarted {})", lm.id)
                } else {
                    lm.name.clone()
                };
                blockers.push(Blocker {
                    member: MemberName::parse(&lm.name).ok(),
                    message: format!(
                        "member {shown} ({}) is in cluster {} but not in the etcdfile; removing members is not supported by this version of etcdplan",
                        lm.id, c.id
                    ),
                    help: "add it to the etcdfile to keep it, or remove it with `etcdctl member remove` yourself".into(),
                });
            }
        }
    }
    Diff {
        situation,
        changes,
        blockers,
    }
}

/// The files a member should have, and which of them differ from the host.
fn file_changes(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
    initial: &Initial,
) -> Vec<FileChange> {
    hostfiles::member_files(d, m, initial)
        .into_iter()
        .filter_map(|f| {
            let before = facts.file(&f.path).map(str::to_owned);
            (before.as_deref() != Some(f.contents.as_str())).then(|| FileChange {
                path: f.path,
                mode: f.mode,
                host: m.address.to_string(),
                before,
                after: f.contents,
            })
        })
        .collect()
}

/// Whether the running etcd was started with another config than the desired one.
fn stale_process(d: &Desired, m: &DesiredMember, facts: &HostFacts, initial: &Initial) -> bool {
    let Some(started) = &facts.started_config else {
        return false;
    };
    let desired = hostfiles::etcd_config(d, m, initial);
    crate::config::hash(&desired) != *started
}

/// The initial-* settings: kept from the live file once the member has data.
fn initial_for(d: &Desired, m: &DesiredMember, facts: &HostFacts) -> Initial {
    let kept = (facts.data == DataDir::Member)
        .then(|| facts.file(&m.config_file()).and_then(Initial::read_back))
        .flatten();
    kept.unwrap_or_else(|| Initial::bootstrap(d))
}

/// Checks that a member can be started here: binary, ports, data dir.
fn preflight(d: &Desired, m: &DesiredMember, facts: &HostFacts, blockers: &mut Vec<Blocker>) {
    for p in &facts.problems {
        let (what, help) = p
            .split_once(": ")
            .unwrap_or((p.as_str(), "fix the host, then run plan again"));
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!("{}: {what} on {}", m.name, m.address),
            help: help.to_owned(),
        });
    }
    if facts.binary == Binary::Missing {
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!(
                "{}: the etcd binary {} is missing on {}",
                m.name,
                d.etcd.binary.display(),
                m.address
            ),
            help:
                "install etcd there (Debian: apt-get install etcd-server) or set `binary` in [etcd]"
                    .into(),
        });
    }
    if facts.service == ServiceState::Stopped
        && let Some(listening) = &facts.listening
    {
        for port in [m.client_port, m.peer_port] {
            let busy = listening.iter().any(|a| {
                a.rsplit_once(':').is_some_and(|(host, p)| {
                    p == port.to_string()
                        && [
                            m.address.to_string(),
                            "0.0.0.0".into(),
                            "*".into(),
                            "[::]".into(),
                        ]
                        .contains(&host.to_owned())
                })
            });
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
            if token.as_deref() != Some(d.cluster.as_str()) {
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
                        d.cluster.as_str()
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

fn down_member(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
    changes: &mut Vec<Change>,
    blockers: &mut Vec<Blocker>,
) {
    let initial = initial_for(d, m, facts);
    let files = file_changes(d, m, facts, &initial);
    let running = matches!(facts.service, ServiceState::Running(_));
    let (action, reason) = match (running, facts.data) {
        (true, _) if files.is_empty() => return,
        (true, _) => (
            Action::Restart,
            "running with other settings while the cluster has no quorum".to_owned(),
        ),
        (false, DataDir::Member) => (
            Action::Start,
            "stopped; its data is kept and it starts again".to_owned(),
        ),
        (false, _) => (
            Action::Create,
            format!("bootstraps with the new cluster {:?}", d.cluster.as_str()),
        ),
    };
    if !running {
        preflight(d, m, facts, blockers);
    }
    changes.push(Change {
        member: m.name.clone(),
        action,
        reason,
        files,
        id: None,
        leader: false,
    });
}

fn running_member(
    d: &Desired,
    c: &LiveCluster,
    m: &DesiredMember,
    facts: &HostFacts,
    changes: &mut Vec<Change>,
    blockers: &mut Vec<Blocker>,
) {
    let peer = m.peer_url(&d.tls);
    let Some(lm) = c.find(&m.name, &peer) else {
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!(
                "{} is in the etcdfile but not in cluster {}; adding members to a running cluster is not supported by this version of etcdplan",
                m.name, c.id
            ),
            help: format!("add it yourself with `etcdctl member add {} --peer-urls={peer} --learner`, or remove it from the etcdfile", m.name),
        });
        return;
    };
    if lm.peer_urls != [peer.clone()] {
        let now: Vec<String> = lm.peer_urls.iter().map(ToString::to_string).collect();
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!(
                "{} advertises peer URL {} but the etcdfile asks for {peer}; changing peer URLs is not supported by this version of etcdplan",
                m.name,
                now.join(",")
            ),
            help: "put the member's current address and peer_port back in the etcdfile".into(),
        });
        return;
    }
    let initial = initial_for(d, m, facts);
    let files = file_changes(d, m, facts, &initial);
    let running = matches!(facts.service, ServiceState::Running(_));
    let leader = c.leader() == Some(lm.id);
    let (action, reason) = if !running {
        preflight(d, m, facts, blockers);
        let why = if lm.started() {
            "member of the cluster, but its etcd is not running"
        } else {
            "in the cluster's membership, but never started"
        };
        (Action::Start, why.to_owned())
    } else if !files.is_empty() {
        (
            Action::Restart,
            "settings change; etcd reads them at start".to_owned(),
        )
    } else if stale_process(d, m, facts, &initial) {
        (
            Action::Restart,
            "its config file changed, but etcd has not restarted since (an interrupted apply?)"
                .to_owned(),
        )
    } else {
        return;
    };
    changes.push(Change {
        member: m.name.clone(),
        action,
        reason,
        files,
        id: Some(lm.id),
        leader,
    });
}
