//! Stage 3: `Desired × Live → Diff`, a pure function.
//!
//! The diff says what differs and why, per member, and what stops etcdplan from
//! acting (blockers: a missing binary, a busy port, foreign data). It never
//! decides order; that is the planner's job.

mod ca_rotation;
mod certs;
mod file;
mod peer_tls;
mod rollout;
pub mod upgrade;

use std::collections::BTreeMap;

pub use certs::{Cas, CertNeed};
pub use file::{FileChange, LineKind};
pub use peer_tls::transitional_port;
pub use rollout::{BinaryMove, pass_minor};

use crate::config::{Desired, DesiredMember};
use crate::hostfiles::{self, ClusterState, Initial};
use crate::live::ServiceState;
use crate::live::{Binary, DataDir, HostFacts, HostState, Live, LiveCluster, LiveMember};
use crate::model::{Address, Endpoint, MemberId, MemberName, Port};

/// What will happen to a member.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
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
    /// A member is removed and added again, fresh (`-/+`).
    Replace,
    /// A member's advertised peer URL is updated to the one it already listens
    /// on (`~`); a repair that restarts nothing.
    Update,
}

impl Action {
    /// Terraform-style symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Create | Self::Add => "+",
            Self::Start | Self::Restart | Self::Update => "~",
            Self::Remove => "-",
            Self::Replace => "-/+",
        }
    }
}

/// One member's change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// For Remove and the old half of Replace: the member that leaves.
    pub departing: Option<Departing>,
    /// For Add and the new half of Replace: how far an earlier join got.
    pub join: Option<Join>,
    /// For a Restart that moves the member's peer port: the new peer URL,
    /// published with MemberUpdate before the restart.
    pub peer_update: Option<Endpoint>,
    /// Server and peer certificates are issued for it before its files are written.
    pub certificates: bool,
    /// For a change that is one phase of a TLS migration, a CA rotation or a
    /// version change: the phase (from 0); phases run in order, each rolling
    /// over the members it lists.
    pub phase: Option<u32>,
    /// The member moves to another etcd release at this (re)start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinaryMove>,
}

/// A member leaving the cluster, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Departing {
    /// Its id.
    pub id: MemberId,
    /// Its name (`member-<id>` when it never started).
    pub name: MemberName,
    /// Its host and paths, as etcdplan laid them out.
    pub host: DesiredMember,
    /// Healthy now.
    pub healthy: bool,
    /// A learner (does not vote).
    pub learner: bool,
    /// The leader now.
    pub leader: bool,
}

/// How far a member's join got before this plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "id")]
pub enum Join {
    /// Not in the cluster yet.
    New,
    /// Added as a learner, never started.
    Added(MemberId),
    /// A started learner, not yet promoted.
    Started(MemberId),
}

impl Change {
    fn new(member: MemberName, action: Action, reason: impl Into<String>) -> Self {
        Self {
            member,
            action,
            reason: reason.into(),
            files: Vec::new(),
            id: None,
            leader: false,
            departing: None,
            join: None,
            peer_update: None,
            certificates: false,
            phase: None,
            binary: None,
        }
    }
}

/// Something that stops the plan from being applied, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Blocker {
    /// The member concerned, if any.
    pub member: Option<MemberName>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: String,
}

/// In what state the cluster was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// What the operator should know before applying (a version change's
    /// caveats).
    pub notes: Vec<String>,
}

/// Computes the diff.
pub fn diff(d: &Desired, live: &Live) -> Diff {
    diff_with(d, live, false)
}

/// Computes the diff; `allow_downgrade` is the operator's explicit consent to
/// a version older than the members run.
pub fn diff_with(d: &Desired, live: &Live, allow_downgrade: bool) -> Diff {
    let mut blockers = Vec::new();
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
    // Certificates of members that have run: renewed, rotated to a new CA, or
    // the plan blocked when they come from a CA the operator does not hold.
    let cas = Cas {
        current: live.local_ca.as_deref(),
        previous: live.previous_ca.as_deref(),
    };
    let needs: BTreeMap<MemberName, CertNeed> = d
        .members
        .iter()
        .filter_map(|m| {
            let facts = live.hosts.get(&m.name).and_then(HostState::facts)?;
            (facts.data == DataDir::Member).then(|| {
                let need = certs::check(d, m, facts, cas, live.observed_at);
                (m.name.clone(), need)
            })
        })
        .collect();
    for (name, need) in &needs {
        if let CertNeed::ForeignCa(why) = need {
            blockers.push(Blocker {
                member: Some(name.clone()),
                message: format!("{why}; certificates from a CA the members do not trust would cut them off from each other"),
                help: "put the CA that issued the members' certificates back in ca_dir, then change CA with `etcdplan pki rotate-ca` (`etcdplan status` shows each certificate's issuer); nothing was changed".into(),
            });
        }
    }
    let need = |m: &DesiredMember| needs.get(&m.name).cloned().unwrap_or(CertNeed::Fine);
    let rotating = needs.values().any(|n| *n == CertNeed::Rotate);
    let migrating = live.cluster.as_ref().filter(|c| peer_tls::needed(d, c));
    // A phased change (a peer TLS move, a CA rotation) takes over the plan:
    // other changes to running members ride along its restarts or wait.
    let mut phased = migrating.is_some();
    let mut changes = Vec::new();
    let (versioned, notes) = match &live.cluster {
        Some(c) => rollout::phases(d, live, c, allow_downgrade).unwrap_or_else(|b| {
            blockers.push(b);
            (Vec::new(), Vec::new())
        }),
        None => (Vec::new(), Vec::new()),
    };
    if !versioned.is_empty() {
        if migrating.is_some() || rotating {
            blockers.push(Blocker {
                member: None,
                message: "the etcdfile changes the etcd version while the members' TLS is being changed; etcdplan does one at a time".into(),
                help: "set [cluster] version to what the members run (`etcdplan status`), apply the TLS change, then the version; nothing was changed".into(),
            });
        }
        changes = versioned;
        phased = true;
    }
    match (migrating, rotating) {
        _ if !changes.is_empty() => {}
        (Some(_), true) => blockers.push(Blocker {
            member: None,
            message: format!(
                "[tls] peer = {} moves the peers to another scheme while the members' CA is being rotated; etcdplan does one at a time",
                d.tls.peer
            ),
            help: "set [tls] peer back to what the cluster serves (`etcdplan status`), apply the rotation, then move the peers; nothing was changed".into(),
        }),
        (Some(c), false) => match peer_tls::phases(d, live, c, &need) {
            Ok(phased) => changes = phased,
            Err(b) => blockers.push(b),
        },
        (None, true) => {
            if let Some(c) = &live.cluster {
                match ca_rotation::phases(d, live, c, cas) {
                    Ok(phased) => changes = phased,
                    Err(b) => blockers.push(b),
                }
                phased = true;
            }
        }
        (None, false) => {}
    }
    for m in &d.members {
        let Some(facts) = live.hosts.get(&m.name).and_then(HostState::facts) else {
            continue;
        };
        match &live.cluster {
            _ if phased => {}
            Some(c) => running_member(d, c, m, facts, &mut changes, &mut blockers),
            None => down_member(d, m, facts, &mut changes, &mut blockers),
        }
    }
    if let Some(c) = live.cluster.as_ref().filter(|_| !phased) {
        let leader = c.leader();
        for lm in &c.members {
            let known = d.members.iter().any(|m| {
                lm.name == m.name.as_str()
                    || (!lm.started() && lm.peer_urls.contains(&m.peer_url(&d.tls)))
            });
            if known {
                continue;
            }
            let dep = departing(d, lm, leader);
            let shown = if lm.started() {
                lm.name.clone()
            } else {
                format!("(never started, {})", lm.id)
            };
            let mut ch = Change::new(
                dep.name.clone(),
                Action::Remove,
                format!(
                    "{shown} ({}) is in cluster {} but not in the etcdfile: it is removed, its etcd on {} stopped and its data dir moved aside",
                    lm.id, c.id, dep.host.address
                ),
            );
            ch.id = Some(lm.id);
            ch.leader = dep.leader;
            ch.departing = Some(dep);
            changes.push(ch);
        }
    }
    // A member that starts fresh gets its certificates first; one that has run
    // gets new ones when its own are missing, expiring or wrong.
    if d.tls.any() && !phased {
        let renew = |name: &MemberName| {
            d.member(name)
                .is_some_and(|m| matches!(need(m), CertNeed::Issue(_)))
        };
        for c in &mut changes {
            c.certificates = match c.action {
                Action::Create | Action::Add | Action::Replace => true,
                Action::Remove => false,
                Action::Start | Action::Restart | Action::Update => renew(&c.member),
            };
        }
        for m in &d.members {
            let CertNeed::Issue(why) = need(m) else {
                continue;
            };
            let in_cluster = live
                .cluster
                .as_ref()
                .and_then(|c| c.members.iter().find(|lm| lm.name == m.name.as_str()));
            let Some(lm) = in_cluster.filter(|lm| !lm.is_learner) else {
                continue;
            };
            if changes.iter().any(|c| c.member == m.name) {
                continue;
            }
            let mut ch = Change::new(
                m.name.clone(),
                Action::Update,
                format!(
                    "{why}: issued again and written in place; etcd reads certificates at each new connection, so nothing restarts"
                ),
            );
            ch.id = Some(lm.id);
            ch.certificates = true;
            changes.push(ch);
        }
    }
    // Members that start get the release the etcdfile asks for.
    for c in &mut changes {
        let starts = matches!(
            c.action,
            Action::Create | Action::Start | Action::Add | Action::Replace
        );
        if !starts || c.binary.is_some() {
            continue;
        }
        let Some(m) = d.member(&c.member) else {
            continue;
        };
        let Some(facts) = live.hosts.get(&m.name).and_then(HostState::facts) else {
            continue;
        };
        match rollout::for_start(d, m, facts) {
            Ok(mv) => c.binary = mv,
            Err(b) => blockers.push(b),
        }
    }
    Diff {
        situation,
        changes,
        blockers,
        notes,
    }
}

/// A member of a settled cluster: named in the etcdfile and in the cluster, a
/// healthy started voter whose host runs etcd.
struct Settled<'a> {
    m: &'a DesiredMember,
    lm: &'a LiveMember,
    facts: &'a HostFacts,
    leader: bool,
}

/// Every member, when the cluster is settled (the same members in the etcdfile
/// and in the cluster, all healthy voters running on their hosts): phased
/// changes (a TLS move, a CA rotation) start only from there. Otherwise, why not.
fn settled<'a>(
    d: &'a Desired,
    live: &'a Live,
    c: &'a LiveCluster,
) -> Result<Vec<Settled<'a>>, String> {
    let leader = c.leader();
    let mut out = Vec::new();
    for lm in &c.members {
        let Some(m) = d.members.iter().find(|m| m.name.as_str() == lm.name) else {
            return Err(format!(
                "member {} ({}) is not in the etcdfile",
                if lm.started() {
                    &lm.name
                } else {
                    "(never started)"
                },
                lm.id
            ));
        };
        if lm.is_learner || !lm.healthy() {
            return Err(format!(
                "{} is {}",
                m.name,
                if lm.is_learner {
                    "a learner"
                } else {
                    "not healthy"
                }
            ));
        }
        let facts = match live.hosts.get(&m.name) {
            Some(h @ HostState::Reached(f)) if h.running() => f,
            _ => return Err(format!("{}'s host shows no running etcd", m.name)),
        };
        out.push(Settled {
            m,
            lm,
            facts,
            leader: leader == Some(lm.id),
        });
    }
    if let Some(m) = d
        .members
        .iter()
        .find(|m| !c.members.iter().any(|lm| lm.name == m.name.as_str()))
    {
        return Err(format!("{} is not in the cluster yet", m.name));
    }
    Ok(out)
}

/// The files a member should have, and which of them differ from the host
/// (all of them when the host has not been read).
fn file_changes(
    d: &Desired,
    m: &DesiredMember,
    facts: Option<&HostFacts>,
    initial: &Initial,
) -> Vec<FileChange> {
    changed_files(m, hostfiles::member_files(d, m, initial), facts)
}

/// Those of `wanted` that differ from the host (all of them when the host has
/// not been read).
fn changed_files(
    m: &DesiredMember,
    wanted: Vec<hostfiles::HostFile>,
    facts: Option<&HostFacts>,
) -> Vec<FileChange> {
    wanted
        .into_iter()
        .filter_map(|f| {
            let before = facts.and_then(|x| x.file(&f.path)).map(str::to_owned);
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
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!("{}: {} on {}", m.name, p.message, m.address),
            help: p.help.clone(),
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
    let files = file_changes(d, m, Some(facts), &initial);
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
    let mut ch = Change::new(m.name.clone(), action, reason);
    ch.files = files;
    changes.push(ch);
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
    let running = matches!(facts.service, ServiceState::Running(_));
    let Some(lm) = c.find(&m.name, &peer) else {
        preflight_join(d, m, facts, blockers);
        let mut ch = Change::new(
            m.name.clone(),
            Action::Add,
            format!(
                "in the etcdfile but not in cluster {}: joins as a learner, promoted once caught up",
                c.id
            ),
        );
        ch.join = Some(Join::New);
        changes.push(ch);
        return;
    };
    if lm.is_learner {
        let (join, reason) = if lm.started() {
            (
                Join::Started(lm.id),
                "a learner from an earlier join: promoted once caught up",
            )
        } else {
            (
                Join::Added(lm.id),
                "added as a learner earlier but never started: started, then promoted",
            )
        };
        if !running {
            preflight_join(d, m, facts, blockers);
        }
        let mut ch = Change::new(m.name.clone(), Action::Add, reason);
        ch.id = Some(lm.id);
        ch.join = Some(join);
        changes.push(ch);
        return;
    }
    let moved = lm.peer_urls != [peer.clone()];
    // Same host, another peer port: published with MemberUpdate, then the member
    // restarts on the new listener. (Never on a learner: etcd < 3.5.31 would
    // promote it by accident.)
    let same_host = lm.peer_urls.len() == 1
        && lm.peer_urls[0].host == peer.host
        && lm.peer_urls[0].scheme == peer.scheme;
    if moved && same_host && !lm.is_learner && lm.started() && running {
        let initial = initial_for(d, m, facts);
        let files = file_changes(d, m, Some(facts), &initial);
        if files.is_empty() && !stale_process(d, m, facts, &initial) {
            // It already listens on the new port (an apply stopped between its
            // restart and the update): only the advertisement is left.
            let mut ch = Change::new(
                m.name.clone(),
                Action::Update,
                format!(
                    "it listens on {peer} but is advertised as {}: MemberUpdate, no restart",
                    lm.peer_urls[0]
                ),
            );
            ch.id = Some(lm.id);
            ch.peer_update = Some(peer.clone());
            changes.push(ch);
            return;
        }
        let mut ch = Change::new(
            m.name.clone(),
            Action::Restart,
            format!(
                "its peer URL moves from {} to {peer}: MemberUpdate, then a restart on the new port",
                lm.peer_urls[0]
            ),
        );
        ch.files = files;
        ch.id = Some(lm.id);
        ch.leader = c.leader() == Some(lm.id);
        ch.peer_update = Some(peer.clone());
        changes.push(ch);
        return;
    }
    // Only a member that stays where it is can have lost its data there.
    let lost_data = !moved
        && lm.started()
        && !running
        && matches!(facts.data, DataDir::Absent | DataDir::Empty);
    if moved || lost_data {
        let now: Vec<String> = lm.peer_urls.iter().map(ToString::to_string).collect();
        let reason = if lost_data {
            format!(
                "its host lost its data ({} is empty): removed, then added back fresh",
                m.data_dir.display()
            )
        } else {
            format!(
                "its peer URL moves from {} to {peer}: removed, then added back fresh",
                now.join(",")
            )
        };
        preflight_join(d, m, facts, blockers);
        let mut dep = departing(d, lm, c.leader());
        if lost_data {
            dep.host = m.clone();
        }
        let mut ch = Change::new(m.name.clone(), Action::Replace, reason);
        ch.id = Some(lm.id);
        ch.leader = dep.leader;
        ch.departing = Some(dep);
        ch.join = Some(Join::New);
        changes.push(ch);
        return;
    }
    let initial = initial_for(d, m, facts);
    let files = file_changes(d, m, Some(facts), &initial);
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
    let mut ch = Change::new(m.name.clone(), action, reason);
    ch.files = files;
    ch.id = Some(lm.id);
    ch.leader = leader;
    changes.push(ch);
}

/// The member that leaves, located where its peer URL points, with the paths
/// the etcdfile gives members of that name.
fn departing(d: &Desired, lm: &LiveMember, leader: Option<MemberId>) -> Departing {
    let name = MemberName::parse(&lm.name).unwrap_or_else(|_| {
        MemberName::parse(&format!("member-{}", lm.id)).unwrap_or_else(|_| unreachable_name())
    });
    let peer = lm.peer_urls.first();
    let client = lm.client_urls.first();
    let by_name = d.member(&name);
    let address = peer
        .map(|p| p.host.clone())
        .or_else(|| by_name.map(|m| m.address.clone()))
        .unwrap_or(Address::Dns("unknown".into()));
    let default_client = by_name.map_or(Port::new(2379), |m| Some(m.client_port));
    let default_peer = by_name.map_or(Port::new(2380), |m| Some(m.peer_port));
    let client_port = client
        .map(|c| c.port)
        .or(default_client)
        .unwrap_or_else(unreachable_port);
    let peer_port = peer
        .map(|p| p.port)
        .or(default_peer)
        .unwrap_or_else(unreachable_port);
    Departing {
        id: lm.id,
        host: d.member_at(name.clone(), address, client_port, peer_port),
        name,
        healthy: lm.healthy(),
        learner: lm.is_learner,
        leader: leader == Some(lm.id),
    }
}

fn unreachable_name() -> MemberName {
    // "member" is always a valid name; kept out of line so the fallback is explicit.
    MemberName::parse("member").unwrap_or_else(|_| unreachable!("a literal valid name"))
}

fn unreachable_port() -> Port {
    Port::new(2380).unwrap_or_else(|| unreachable!("2380 is not 0"))
}

/// Checks a member that is about to join: the preflight of a start, except
/// that old data of this very cluster is moved aside by the plan, not refused.
fn preflight_join(d: &Desired, m: &DesiredMember, facts: &HostFacts, blockers: &mut Vec<Blocker>) {
    let ours = facts
        .file(&m.config_file())
        .and_then(hostfiles::read_token)
        .is_some_and(|t| t == d.cluster.as_str());
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
            .is_some_and(|t| t == d.cluster.as_str())
}

/// The files of a member that joins a running cluster, given the membership
/// (`name=url` list, as MemberList will show it) at the time it starts.
pub fn join_files(
    d: &Desired,
    m: &DesiredMember,
    facts: Option<&HostFacts>,
    cluster: String,
) -> Vec<FileChange> {
    let initial = Initial {
        state: ClusterState::Existing,
        cluster,
    };
    file_changes(d, m, facts, &initial)
}
