//! Stage 4: changes → a graph of steps with health gates, in a deterministic order.
//!
//! Steps that disturb nothing (writing a staged config) may come early; every
//! step that disturbs a member or changes membership runs alone, followed by a
//! health gate. The order follows etcd's rules: repairs first, then dead members
//! out, then new members in (learner first, promoted once caught up), then
//! healthy members out (the leader last, after its leadership moved), then
//! rolling restarts. A small simulation of the cluster's health checks every
//! membership step against the same quorum rules the executor re-checks live;
//! a step that fails them is deferred, with the reason.

pub mod file;
mod graph;
mod safety;

use std::path::PathBuf;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::{Desired, DesiredMember};
use crate::diff::{Action, Blocker, Change, Departing, Diff, FileChange, Join, Situation};
use crate::live::{Fingerprint, HostState, Live, fingerprint};
use crate::model::{ClusterName, Endpoint, EtcdVersion, MemberId, MemberName, MinorVersion};

pub use graph::order;
pub use safety::{Voter, may_add, may_disrupt, may_promote, may_remove};

/// Operator choices that change what a plan may contain.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Allow a plan that removes a majority of the voters (still one at a time).
    pub allow_majority_removal: bool,
    /// Where the snapshot before a membership change is written.
    pub snapshot_dir: PathBuf,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Step {
    /// Take a snapshot through the Maintenance API and check it.
    Snapshot {
        /// Local folder it is written to.
        dir: PathBuf,
    },
    /// Write the member's changed files (disturbs nothing: etcd reads them at start).
    WriteFiles {
        /// The member.
        member: MemberName,
        /// The files.
        files: Vec<FileChange>,
    },
    /// Issue the member's server and peer certificates from the local CA
    /// and write them, with the CA certificate, to its host (keys 0600).
    IssueCertificates {
        /// The member.
        member: MemberName,
    },
    /// Upload an etcd release from this machine to `<binary>-<version>` on the
    /// member's host: to a temporary file, checked by sha256 and `--version`,
    /// made executable, then renamed. Disturbs nothing.
    InstallBinary {
        /// The member whose host gets it.
        member: MemberName,
        /// The release.
        version: EtcdVersion,
        /// The local file.
        source: PathBuf,
        /// Its sha256, as the plan saw it.
        sha256: String,
    },
    /// Point `binary` on the member's host at `<binary>-<version>` (a symlink
    /// swapped atomically; a plain file there is kept as `<binary>-<its
    /// version>`). A running etcd is not disturbed: its next start runs it.
    UseBinary {
        /// The member.
        member: MemberName,
        /// The release.
        version: EtcdVersion,
    },
    /// Check that the member's etcd reports this version (Status).
    CheckVersion {
        /// The member.
        member: MemberName,
        /// The version it must run.
        version: EtcdVersion,
    },
    /// Wait until the cluster version (the leader raises it once every member
    /// runs the new minor version) reaches this one.
    ClusterVersion {
        /// The minor version.
        version: MinorVersion,
    },
    /// Start the member's etcd.
    Start {
        /// The member.
        member: MemberName,
    },
    /// Stop and start the member's etcd so it reads new settings.
    Restart {
        /// The member.
        member: MemberName,
    },
    /// Hand leadership to another voter before the leader restarts or leaves.
    MoveLeader {
        /// The current leader.
        from: MemberName,
        /// The new leader.
        to: MemberName,
        /// Its id.
        to_id: MemberId,
    },
    /// Wait until these members are healthy, follow one leader and have caught up.
    WaitHealthy {
        /// The members.
        members: Vec<MemberName>,
    },
    /// MemberAdd as a learner.
    AddLearner {
        /// The member.
        member: MemberName,
        /// Its peer URL.
        peer_url: Endpoint,
    },
    /// Write a joining member's files; the initial-cluster is taken from
    /// MemberList when the step runs (`files` is what the plan predicts).
    WriteJoinFiles {
        /// The member.
        member: MemberName,
        /// The predicted files.
        files: Vec<FileChange>,
    },
    /// Wait until a learner has applied what the leader committed.
    WaitCaughtUp {
        /// The learner.
        member: MemberName,
    },
    /// MemberPromote, retried while etcd says the learner is not in sync.
    Promote {
        /// The learner.
        member: MemberName,
    },
    /// MemberUpdate of a member's advertised peer URL, through the leader.
    UpdatePeerUrl {
        /// The member.
        member: MemberName,
        /// Its new peer URL.
        peer_url: Endpoint,
    },
    /// MemberRemove, through the leader.
    RemoveMember {
        /// The member that leaves.
        departing: Departing,
    },
    /// Stop etcd where a removed member ran (it also exits by itself).
    StopDeparted {
        /// The member that left.
        departing: Departing,
    },
    /// Move a data dir and config aside (never deleted), so the member cannot
    /// come back under its old identity.
    RetireData {
        /// The member whose files move.
        member: DesiredMember,
        /// A member that left (a failure is reported, not fatal: its host may be gone).
        departed: bool,
    },
}

impl Step {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Self::Snapshot { dir } => {
                format!("take a snapshot into {} and check it", dir.display())
            }
            Self::WriteFiles { member, files } => {
                format!(
                    "write {} file{} for {member}",
                    files.len(),
                    if files.len() == 1 { "" } else { "s" }
                )
            }
            Self::IssueCertificates { member } => {
                format!("issue {member}'s server and peer certificates from the CA")
            }
            Self::InstallBinary {
                member,
                version,
                sha256,
                ..
            } => format!(
                "upload etcd {version} to {member}'s host (sha256 {})",
                &sha256[..12.min(sha256.len())]
            ),
            Self::UseBinary { member, version } => {
                format!("point {member}'s binary at etcd {version}")
            }
            Self::CheckVersion { member, version } => {
                format!("check {member} runs etcd {version}")
            }
            Self::ClusterVersion { version } => {
                format!("wait until the cluster version is {version}")
            }
            Self::Start { member } => format!("start {member}"),
            Self::Restart { member } => format!("restart {member}"),
            Self::MoveLeader { from, to, .. } => format!("move leader {from} → {to}"),
            Self::WaitHealthy { members } => {
                let names: Vec<&str> = members.iter().map(MemberName::as_str).collect();
                format!("wait until {} healthy", names.join(", "))
            }
            Self::AddLearner { member, peer_url } => {
                format!("add {member} as a learner ({peer_url})")
            }
            Self::WriteJoinFiles { member, .. } => {
                format!("write {member}'s config (initial-cluster from the member list)")
            }
            Self::WaitCaughtUp { member } => format!("wait until learner {member} has caught up"),
            Self::Promote { member } => format!("promote {member} to voter"),
            Self::UpdatePeerUrl { member, peer_url } => {
                format!("advertise {member}'s peer URL as {peer_url} (MemberUpdate)")
            }
            Self::RemoveMember { departing } => format!(
                "remove {} ({}) from the cluster",
                departing.name, departing.id
            ),
            Self::StopDeparted { departing } => {
                format!(
                    "stop etcd of {} on {}",
                    departing.name, departing.host.address
                )
            }
            Self::RetireData { member, .. } => format!(
                "move {}'s data ({}/member) and config aside on {}",
                member.name,
                member.data_dir.display(),
                member.address
            ),
        }
    }

    /// Whether the step disturbs a member or changes membership (it runs alone,
    /// then a gate).
    pub fn disruptive(&self) -> bool {
        matches!(
            self,
            Self::Restart { .. }
                | Self::MoveLeader { .. }
                | Self::AddLearner { .. }
                | Self::Promote { .. }
                | Self::UpdatePeerUrl { .. }
                | Self::RemoveMember { .. }
        )
    }
}

/// Added, changed, removed members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Members added (a replace counts here and in `remove`).
    pub add: usize,
    /// Members changed (started, restarted).
    pub change: usize,
    /// Members removed.
    pub remove: usize,
}

/// The plan document: the one product of planning. The human renderer draws
/// from it, `plan --json` is its serde form, `plan --out` saves it, and
/// `apply FILE` executes its steps as saved once the etcdfile's hash and the
/// live state's fingerprint still match.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// The document's format; [`FORMAT_VERSION`] when written by this etcdplan.
    pub format_version: String,
    /// The cluster's name.
    pub cluster: ClusterName,
    /// The situation the plan was made in.
    pub situation: Situation,
    /// sha256 of the etcdfile the plan was made from.
    #[serde(rename = "etcdfile_sha256")]
    pub file_hash: String,
    /// The live state the plan was made from, as the facts it depends on.
    pub live_fingerprint: Fingerprint,
    /// Per-member changes.
    pub changes: Vec<Change>,
    /// Steps in execution order, each with what it waits for.
    pub steps: Vec<PlannedStep>,
    /// Why the plan cannot be applied as it is.
    pub blockers: Vec<Blocker>,
    /// Things the operator should know (deferred changes, degraded cluster).
    pub notes: Vec<String>,
    /// Changes found but not planned now.
    pub deferred: Vec<Change>,
    /// Counts for the summary line.
    pub summary: Summary,
    /// Whether nothing blocks it.
    pub applicable: bool,
}

/// The plan document's format. "2": typed steps that apply as saved (with
/// whole file contents), the live fingerprint, and changes as their types
/// serialize; "1" had a hand-assembled shape.
pub const FORMAT_VERSION: &str = "2";

/// A step in the plan document, with what people and scripts read about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlannedStep {
    /// Its place in the order (from 0).
    pub index: usize,
    /// What it does.
    #[serde(flatten)]
    pub step: Step,
    /// One line for people ([`Step::describe`]).
    pub description: String,
    /// Whether it disturbs a member or the membership ([`Step::disruptive`]).
    pub disruptive: bool,
    /// The steps it waits for (indices of earlier steps).
    pub after: Vec<usize>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.blockers.is_empty() && self.deferred.is_empty()
    }

    /// How many members the plan changes or defers, each counted once (a TLS
    /// migration changes a member in several phases).
    #[must_use]
    pub fn changed_members(&self) -> usize {
        distinct_members(self.changes.iter().chain(&self.deferred))
    }

    /// Why this non-empty plan cannot be applied now (its first blocker, or
    /// why every change is deferred), or `None` when it can.
    #[must_use]
    pub fn cannot_apply(&self) -> Option<String> {
        if let Some(b) = self.blockers.first() {
            return Some(b.message.clone());
        }
        if self.steps.is_empty() {
            return Some(
                self.notes
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "nothing can be done now".into()),
            );
        }
        None
    }

    /// The step graph, for `plan --graph`.
    pub fn graph(&self) -> DiGraph<String, ()> {
        let mut g = DiGraph::new();
        let nodes: Vec<NodeIndex> = self
            .steps
            .iter()
            .map(|s| g.add_node(s.description.clone()))
            .collect();
        for s in &self.steps {
            for &a in &s.after {
                g.add_edge(nodes[a], nodes[s.index], ());
            }
        }
        g
    }
}

/// How many members these changes concern, each counted once.
fn distinct_members<'a>(changes: impl Iterator<Item = &'a Change>) -> usize {
    changes
        .map(|c| &c.member)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// The steps that write a change's certificates and files, if it has any;
/// returns the last of them.
fn write_step(b: &mut graph::Builder, c: &Change) -> Option<NodeIndex> {
    let certs = c.certificates.then(|| {
        b.add(Step::IssueCertificates {
            member: c.member.clone(),
        })
    });
    let write = if c.files.is_empty() {
        certs
    } else {
        let write = b.add(Step::WriteFiles {
            member: c.member.clone(),
            files: c.files.clone(),
        });
        b.edge_opt(certs, write);
        Some(write)
    };
    match c.binary.as_ref().filter(|mv| mv.link) {
        Some(mv) => {
            let link = b.add(Step::UseBinary {
                member: c.member.clone(),
                version: mv.to,
            });
            b.edge_opt(write, link);
            Some(link)
        }
        None => write,
    }
}

/// Uploads of the releases the changes need, one per host and release.
fn install_steps(d: &Desired, changes: &[Change]) -> Vec<Step> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for c in changes {
        let Some(r) = c.binary.as_ref().and_then(|mv| mv.install.as_ref()) else {
            continue;
        };
        let Some(m) = d.member(&c.member) else {
            continue;
        };
        if seen.insert((m.address.clone(), r.version)) {
            out.push(Step::InstallBinary {
                member: c.member.clone(),
                version: r.version,
                source: r.path.clone(),
                sha256: r.sha256.clone(),
            });
        }
    }
    out
}

/// The cluster as the plan goes: who is in it, who is healthy, and the
/// `name=url` list MemberList would show.
#[derive(Debug, Clone)]
struct Sim {
    members: Vec<SimMember>,
}

#[derive(Debug, Clone)]
struct SimMember {
    name: String,
    id: Option<MemberId>,
    peer_urls: Vec<Endpoint>,
    healthy: bool,
    learner: bool,
}

impl Sim {
    fn from_live(d: &Desired, live: &Live) -> Self {
        let members = live
            .cluster
            .as_ref()
            .map(|c| {
                c.members
                    .iter()
                    .map(|m| SimMember {
                        // A learner added but never started has no name yet; the
                        // etcdfile member with its peer URL is who it will be.
                        name: if m.started() {
                            m.name.clone()
                        } else {
                            d.members
                                .iter()
                                .find(|dm| m.peer_urls.contains(&dm.peer_url(&d.tls)))
                                .map_or_else(
                                    || format!("member-{}", m.id),
                                    |dm| dm.name.to_string(),
                                )
                        },
                        id: Some(m.id),
                        peer_urls: m.peer_urls.clone(),
                        healthy: m.healthy(),
                        learner: m.is_learner,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { members }
    }

    fn voters(&self) -> Vec<Voter> {
        self.members
            .iter()
            .map(|m| Voter {
                name: m.name.clone(),
                healthy: m.healthy,
                learner: m.learner,
            })
            .collect()
    }

    fn set_healthy(&mut self, name: &str, healthy: bool) {
        if let Some(m) = self.members.iter_mut().find(|m| m.name == name) {
            m.healthy = healthy;
        }
    }

    fn remove(&mut self, name: &str) {
        self.members.retain(|m| m.name != name);
    }

    /// The initial-cluster a member joining now gets.
    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .flat_map(|m| m.peer_urls.iter().map(move |u| format!("{}={u}", m.name)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Healthy voters, by name, in the etcdfile's order.
    fn healthy_voters(&self, d: &Desired) -> Vec<MemberName> {
        d.members
            .iter()
            .filter(|dm| {
                self.members
                    .iter()
                    .any(|m| m.name == dm.name.as_str() && !m.learner && m.healthy)
            })
            .map(|dm| dm.name.clone())
            .collect()
    }

    fn id_of(&self, name: &str) -> Option<MemberId> {
        self.members
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.id)
    }
}

/// Members whose etcd runs another version than the binary on their host: a
/// restart, for any reason, moves them to the binary's version.
fn binary_notes(live: &Live) -> Vec<String> {
    let Some(c) = &live.cluster else {
        return Vec::new();
    };
    c.members
        .iter()
        .filter_map(|m| {
            let running = m.version()?;
            let on_disk = live.facts_of(&m.name)?.binary.version()?;
            (on_disk != running).then(|| {
                format!(
                    "{} runs etcd {running}, but the binary on its host is {on_disk}: its next restart runs {on_disk}",
                    m.name
                )
            })
        })
        .collect()
}

/// A member that is down on a newer release than the others run (an upgrade
/// that stopped at it): while the cluster runs at the older version, the
/// member can still go back to the release the others run.
fn rollback_notes(d: &Desired, live: &Live) -> Vec<String> {
    let Some(c) = &live.cluster else {
        return Vec::new();
    };
    let running = c.running_versions();
    let (Some(&low), Some(&high)) = (running.iter().min(), running.iter().max()) else {
        return Vec::new();
    };
    c.members
        .iter()
        .filter(|m| m.status.is_err())
        .filter_map(|m| {
            let facts = live.facts_of(&m.name)?;
            let on_disk = facts.binary.version()?;
            if on_disk <= high || matches!(facts.service, crate::live::ServiceState::Running(_)) {
                return None;
            }
            let kept = if facts.installed.contains_key(&low) {
                format!(
                    " (etcd {low} is kept on its host at {})",
                    d.etcd.installed_path(low).display()
                )
            } else {
                String::new()
            };
            Some(format!(
                "{} is down, and the binary on its host is etcd {on_disk}, while the running members run {low}{}: the cluster still runs at {}, so {} can go back to {low}: set [cluster] version = \"{low}\"{kept} and apply; or fix what stops it on {on_disk} (its log: `etcdplan status`) and apply again to retry",
                m.name,
                if high == low { String::new() } else { format!("–{high}") },
                low.minor(),
                m.name,
            ))
        })
        .collect()
}

/// Builds the plan from a diff and the live state it came from.
pub fn build(d: &Desired, live: &Live, diff: Diff) -> Plan {
    build_with(d, live, diff, &Options::default())
}

/// Builds the plan with operator options.
pub fn build_with(d: &Desired, live: &Live, diff: Diff, opts: &Options) -> Plan {
    let mut notes = diff.notes;
    let mut deferred = Vec::new();
    let mut blockers = diff.blockers;
    let mut changes = diff.changes;
    let mut b = graph::Builder::default();

    match diff.situation {
        Situation::Bootstrap | Situation::Down => {
            // Without a quorum nothing can be disturbed; members must all start
            // before any of them can become healthy, so the gate comes last.
            let mut last_start = None;
            for s in install_steps(d, &changes) {
                let n = b.add(s);
                b.edge_opt(last_start, n);
                last_start = Some(n);
            }
            let mut started = Vec::new();
            for c in &changes {
                let write = write_step(&mut b, c);
                let step = match c.action {
                    Action::Restart => Step::Restart {
                        member: c.member.clone(),
                    },
                    _ => Step::Start {
                        member: c.member.clone(),
                    },
                };
                let s = b.add(step);
                b.edge_opt(write, s);
                b.edge_opt(last_start, s);
                last_start = Some(s);
                started.push(s);
            }
            if !started.is_empty() {
                let gate = b.add(Step::WaitHealthy {
                    members: d.members.iter().map(|m| m.name.clone()).collect(),
                });
                for s in started {
                    b.edge(s, gate);
                }
            }
        }
        Situation::Running => {
            // A first pass finds out whether any membership step survives the
            // quorum rules; only then does the plan start with a snapshot.
            let membership = {
                let mut dry = graph::Builder::default();
                let (mut n, mut bl) = (Vec::new(), Vec::new());
                let mut r = Running {
                    d,
                    live,
                    opts,
                    b: &mut dry,
                    sim: Sim::from_live(d, live),
                    prev: None,
                    notes: &mut n,
                    snapshot: false,
                };
                let (planned, _) = r.plan(changes.clone(), &mut bl);
                planned
                    .iter()
                    .any(|c| matches!(c.action, Action::Add | Action::Remove | Action::Replace))
            };
            let mut r = Running {
                d,
                live,
                opts,
                b: &mut b,
                sim: Sim::from_live(d, live),
                prev: None,
                notes: &mut notes,
                snapshot: membership
                    || changes
                        .iter()
                        .any(|c| c.phase.is_some() && c.binary.is_some()),
            };
            let (planned, later) = r.plan(changes, &mut blockers);
            changes = planned;
            deferred = later;
        }
    }

    notes.extend(binary_notes(live));
    notes.extend(rollback_notes(d, live));
    let (steps, edges) = b.finish();
    let steps = steps
        .into_iter()
        .enumerate()
        .map(|(index, step)| PlannedStep {
            index,
            description: step.describe(),
            disruptive: step.disruptive(),
            after: edges
                .iter()
                .filter(|(_, b)| *b == index)
                .map(|(a, _)| *a)
                .collect(),
            step,
        })
        .collect();
    // A member changed in several phases counts once.
    let count =
        |f: &dyn Fn(Action) -> bool| distinct_members(changes.iter().filter(|c| f(c.action)));
    let summary = Summary {
        add: count(&|a| matches!(a, Action::Create | Action::Add | Action::Replace)),
        change: count(&|a| matches!(a, Action::Start | Action::Restart | Action::Update)),
        remove: count(&|a| matches!(a, Action::Remove | Action::Replace)),
    };
    Plan {
        format_version: FORMAT_VERSION.into(),
        cluster: d.cluster.clone(),
        situation: diff.situation,
        file_hash: d.file_hash.clone(),
        live_fingerprint: fingerprint(live),
        changes,
        steps,
        applicable: blockers.is_empty(),
        blockers,
        notes,
        deferred,
        summary,
    }
}

/// Planning against a running cluster: one chain of steps, each checked
/// against the simulated cluster.
struct Running<'a> {
    d: &'a Desired,
    live: &'a Live,
    opts: &'a Options,
    b: &'a mut graph::Builder,
    sim: Sim,
    prev: Option<NodeIndex>,
    notes: &'a mut Vec<String>,
    /// Start with a snapshot (some membership change will be made).
    snapshot: bool,
}

impl Running<'_> {
    /// Adds a step after the previous one.
    fn then(&mut self, s: Step) -> NodeIndex {
        let n = self.b.add(s);
        self.b.edge_opt(self.prev, n);
        self.prev = Some(n);
        n
    }

    fn defer(&mut self, c: Change, why: String, deferred: &mut Vec<Change>) {
        self.notes.push(format!(
            "{} of {} is deferred: {why}",
            verb(c.action),
            c.member
        ));
        deferred.push(c);
    }

    fn plan(
        &mut self,
        changes: Vec<Change>,
        blockers: &mut Vec<Blocker>,
    ) -> (Vec<Change>, Vec<Change>) {
        let mut planned = Vec::new();
        let mut deferred = Vec::new();
        let by_action = |a: Action| {
            changes
                .iter()
                .filter(move |c| c.action == a && c.phase.is_none())
                .cloned()
        };

        // A majority removed in one file change is refused unless asked for.
        let voters = self.sim.voters().iter().filter(|v| !v.learner).count();
        let leaving = changes
            .iter()
            .filter(|c| {
                c.action == Action::Remove && c.departing.as_ref().is_some_and(|dep| !dep.learner)
            })
            .count();
        if voters > 0 && leaving * 2 > voters && !self.opts.allow_majority_removal {
            blockers.push(Blocker {
                member: None,
                message: format!("the etcdfile removes {leaving} of {voters} voters, a majority of the cluster"),
                help: "if that is what you want, pass --allow-majority-removal; members still leave one at a time".into(),
            });
        }

        // Releases uploaded before anything else: a bad upload stops the apply
        // before any member is touched.
        for s in install_steps(self.d, &changes) {
            self.then(s);
        }
        if self.snapshot {
            self.then(Step::Snapshot {
                dir: self.opts.snapshot_dir.clone(),
            });
        }

        // 1. Repairs: members of the cluster whose etcd is not running.
        for c in by_action(Action::Start) {
            let write = write_step(self.b, &c);
            let s = self.then(Step::Start {
                member: c.member.clone(),
            });
            self.b.edge_opt(write, s);
            self.then(Step::WaitHealthy {
                members: vec![c.member.clone()],
            });
            self.sim.set_healthy(c.member.as_str(), true);
            planned.push(c);
        }

        // Advertised peer URLs brought in line with what members listen on, and
        // certificates renewed in place.
        for c in by_action(Action::Update) {
            self.update(c, &mut planned);
        }
        // 2. Dead members out (a replacement follows its removal at once).
        let dead = |c: &Change| c.departing.as_ref().is_some_and(|dep| !dep.healthy);
        for c in changes
            .iter()
            .filter(|c| matches!(c.action, Action::Remove | Action::Replace) && dead(c))
        {
            self.departure(c.clone(), &mut planned, &mut deferred);
        }
        // 3. New members in, one at a time, in file order.
        for c in by_action(Action::Add) {
            self.arrival(c, &mut planned, &mut deferred);
        }
        // 4. Healthy members replaced, then 5. healthy members out, the leader last.
        for c in changes
            .iter()
            .filter(|c| c.action == Action::Replace && !dead(c))
        {
            self.departure(c.clone(), &mut planned, &mut deferred);
        }
        let mut leaving: Vec<Change> = changes
            .iter()
            .filter(|c| c.action == Action::Remove && !dead(c))
            .cloned()
            .collect();
        leaving.sort_by_key(|c| c.leader);
        for c in leaving {
            self.departure(c, &mut planned, &mut deferred);
        }

        // 6. Rolling restarts: followers in file order, the leader last.
        self.restarts(
            by_action(Action::Restart).collect(),
            &mut planned,
            &mut deferred,
        );

        // 7. A TLS migration: its phases in order, each rolling over its members.
        let mut phases: Vec<u32> = changes.iter().filter_map(|c| c.phase).collect();
        phases.sort_unstable();
        phases.dedup();
        for p in phases {
            let group: Vec<Change> = changes
                .iter()
                .filter(|c| c.phase == Some(p))
                .cloned()
                .collect();
            if !deferred.is_empty() {
                // A phase never runs once an earlier one could not.
                deferred.extend(group);
                continue;
            }
            let (updates, restarts): (Vec<Change>, Vec<Change>) =
                group.into_iter().partition(|c| c.action == Action::Update);
            for c in updates {
                self.update(c, &mut planned);
            }
            let before = deferred.len();
            self.restarts(restarts, &mut planned, &mut deferred);
            if deferred.len() == before
                && let Some(version) = crate::diff::pass_minor(&changes, p)
            {
                self.then(Step::ClusterVersion { version });
            }
        }
        (planned, deferred)
    }

    /// An update in place: a MemberUpdate, new certificates, or both; each
    /// followed by a health gate.
    fn update(&mut self, c: Change, planned: &mut Vec<Change>) {
        if c.certificates {
            self.then(Step::IssueCertificates {
                member: c.member.clone(),
            });
        }
        if let Some(url) = &c.peer_update {
            self.then(Step::UpdatePeerUrl {
                member: c.member.clone(),
                peer_url: url.clone(),
            });
        }
        if c.certificates || c.peer_update.is_some() {
            self.then(Step::WaitHealthy {
                members: vec![c.member.clone()],
            });
        }
        planned.push(c);
    }

    /// Removal (and, for a replace, the fresh add that follows).
    fn departure(&mut self, c: Change, planned: &mut Vec<Change>, deferred: &mut Vec<Change>) {
        let Some(dep) = c.departing.clone() else {
            return;
        };
        let name = dep.name.as_str().to_owned();
        if let Err(why) = may_remove(&self.sim.voters(), &name) {
            self.defer(c, why, deferred);
            return;
        }
        if dep.leader && dep.healthy {
            let target = self
                .sim
                .members
                .iter()
                .find(|m| m.name != name && !m.learner && m.healthy)
                .and_then(|m| Some((MemberName::parse(&m.name).ok()?, m.id?)));
            if let Some((to, to_id)) = target {
                self.then(Step::MoveLeader {
                    from: dep.name.clone(),
                    to,
                    to_id,
                });
            }
        }
        self.then(Step::RemoveMember {
            departing: dep.clone(),
        });
        self.sim.remove(&name);
        let remaining = self.sim.healthy_voters(self.d);
        if !remaining.is_empty() {
            self.then(Step::WaitHealthy { members: remaining });
        }
        // A host that lost its data has nothing to stop or move aside.
        let lost_data = c.action == Action::Replace
            && self
                .d
                .member(&c.member)
                .is_some_and(|m| m.address == dep.host.address)
            && self
                .live
                .hosts
                .get(&c.member)
                .and_then(HostState::facts)
                .is_some_and(|f| {
                    matches!(
                        f.data,
                        crate::live::DataDir::Absent | crate::live::DataDir::Empty
                    )
                });
        if !lost_data {
            self.then(Step::StopDeparted {
                departing: dep.clone(),
            });
            self.then(Step::RetireData {
                member: dep.host.clone(),
                departed: true,
            });
        }
        if c.action == Action::Replace {
            self.join_steps(&c, planned, deferred);
        } else {
            planned.push(c);
        }
    }

    /// A member joining (new, or resuming an earlier join).
    fn arrival(&mut self, c: Change, planned: &mut Vec<Change>, deferred: &mut Vec<Change>) {
        self.join_steps(&c, planned, deferred);
    }

    fn join_steps(&mut self, c: &Change, planned: &mut Vec<Change>, deferred: &mut Vec<Change>) {
        let Some(m) = self.d.member(&c.member).cloned() else {
            return;
        };
        let join = c.join.unwrap_or(Join::New);
        let name = m.name.as_str().to_owned();
        let mut voters = self.sim.voters();
        // A learner of our own in progress is the one this join continues.
        voters.retain(|v| !(v.learner && v.name == name));
        if let Err(why) = may_add(&voters) {
            self.defer(c.clone(), why, deferred);
            return;
        }
        let facts = self.live.hosts.get(&m.name).and_then(HostState::facts);
        let running = self.live.hosts.get(&m.name).is_some_and(HostState::running);
        if join == Join::New && facts.is_some_and(|f| crate::diff::stale_data(self.d, &m, f)) {
            self.then(Step::RetireData {
                member: m.clone(),
                departed: false,
            });
        }
        let peer = m.peer_url(&self.d.tls);
        if join == Join::New {
            self.then(Step::AddLearner {
                member: m.name.clone(),
                peer_url: peer.clone(),
            });
            self.sim.members.push(SimMember {
                name: name.clone(),
                id: None,
                peer_urls: vec![peer],
                healthy: false,
                learner: true,
            });
        }
        let mut change = c.clone();
        if !running || join == Join::New {
            if c.certificates {
                self.then(Step::IssueCertificates {
                    member: m.name.clone(),
                });
            }
            let files = crate::diff::join_files(self.d, &m, facts, self.sim.initial_cluster());
            change.files = files.clone();
            self.then(Step::WriteJoinFiles {
                member: m.name.clone(),
                files,
            });
            if let Some(mv) = c.binary.as_ref().filter(|mv| mv.link) {
                self.then(Step::UseBinary {
                    member: m.name.clone(),
                    version: mv.to,
                });
            }
            self.then(Step::Start {
                member: m.name.clone(),
            });
        }
        self.then(Step::WaitCaughtUp {
            member: m.name.clone(),
        });
        self.sim.set_healthy(&name, true);
        if let Err(why) = may_promote(&self.sim.voters(), &name) {
            self.notes
                .push(format!("{name} stays a learner for now: {why}"));
            planned.push(change);
            return;
        }
        self.then(Step::Promote {
            member: m.name.clone(),
        });
        if let Some(sm) = self.sim.members.iter_mut().find(|x| x.name == name) {
            sm.learner = false;
            if sm.id.is_none() {
                sm.id = c.id;
            }
        }
        self.then(Step::WaitHealthy {
            members: vec![m.name.clone()],
        });
        planned.push(change);
    }

    fn restarts(
        &mut self,
        restarts: Vec<Change>,
        planned: &mut Vec<Change>,
        deferred: &mut Vec<Change>,
    ) {
        if restarts.is_empty() {
            return;
        }
        let voters = self.sim.voters();
        let blocked = restarts
            .iter()
            .find_map(|c| may_disrupt(&voters, c.member.as_str()).err());
        if let Some(why) = blocked {
            let n = voters.iter().filter(|v| !v.learner).count();
            let none_down = voters.iter().filter(|v| !v.learner).all(|v| v.healthy);
            self.notes.push(if none_down {
                format!(
                    "restarts are deferred: a cluster of {n} voter{} has no fault tolerance, so restarting any member stops writes until it is back; grow the cluster to 3 members to change settings without downtime",
                    if n == 1 { "" } else { "s" }
                )
            } else {
                format!("restarts are deferred: {why}; this plan only repairs")
            });
            deferred.extend(restarts);
            return;
        }
        let mut ordered = restarts;
        ordered.sort_by_key(|c| c.leader);
        let mut first_restarted: Option<(MemberName, MemberId)> = None;
        for c in ordered {
            let write = write_step(self.b, &c);
            if c.leader {
                // Prefer a member that already runs the new settings.
                let target = first_restarted.clone().or_else(|| {
                    self.sim
                        .members
                        .iter()
                        .find(|m| m.name != c.member.as_str() && !m.learner && m.healthy)
                        .and_then(|m| Some((MemberName::parse(&m.name).ok()?, m.id?)))
                });
                if let Some((to, to_id)) = target {
                    self.then(Step::MoveLeader {
                        from: c.member.clone(),
                        to,
                        to_id,
                    });
                }
            }
            if let Some(url) = &c.peer_update {
                self.then(Step::UpdatePeerUrl {
                    member: c.member.clone(),
                    peer_url: url.clone(),
                });
            }
            let r = self.then(Step::Restart {
                member: c.member.clone(),
            });
            self.b.edge_opt(write, r);
            self.then(Step::WaitHealthy {
                members: vec![c.member.clone()],
            });
            if let Some(mv) = &c.binary {
                self.then(Step::CheckVersion {
                    member: c.member.clone(),
                    version: mv.to,
                });
            }
            if first_restarted.is_none() {
                first_restarted = self
                    .sim
                    .id_of(c.member.as_str())
                    .map(|id| (c.member.clone(), id));
            }
            planned.push(c);
        }
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "the bootstrap",
        Action::Start => "the start",
        Action::Restart => "the restart",
        Action::Add => "the add",
        Action::Remove => "the removal",
        Action::Replace => "the replacement",
        Action::Update => "the update",
    }
}
