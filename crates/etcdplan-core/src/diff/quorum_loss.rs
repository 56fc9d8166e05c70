//! Quorum loss: fewer voters answer than a quorum needs, so no membership
//! change, lock or write can go through etcd. Detected here from what the
//! API answered and what each host says about its etcd; the way out
//! (`--recover-from MEMBER`) is a human decision (DESIGN rule 9), planned by
//! `plan::recover`. A recovery interrupted after its forced start is
//! recognised too: a member that runs with `--force-new-cluster`.

use crate::config::{Desired, DesiredMember};
use crate::live::{DataDir, HostState, Listener, Live, ServiceState};
use crate::model::{MemberId, MemberName, quorum};

use super::member::departing;

/// etcd's flag that rewrites the membership to the one member started with it.
pub const FORCE_FLAG: &str = "--force-new-cluster";

/// The file name of the config a forced start reads: etcd ignores every
/// command-line flag once `--config-file` is given, so the flag goes in a
/// copy of the member's config (`force-new-cluster: true` added) that only
/// that start reads, beside the config (so etcd run as `run_as` reads it as
/// it reads the config), removed when that start stops.
pub const FORCED_CONFIG: &str = "etcd.force-new-cluster.yml";

/// The mark a recovery leaves on the survivor's host from the copy of its
/// data until it is verified: while it is there the probe reports a
/// problem, so no plain plan starts the survivor (with its old membership,
/// beside members that would bootstrap afresh) in the middle of a recovery.
pub fn recovery_mark(m: &DesiredMember) -> std::path::PathBuf {
    m.state_dir.join("etcd.recovery-under-way")
}

/// Where a member's forced-start config is ([`FORCED_CONFIG`]).
pub fn forced_config_file(m: &DesiredMember) -> std::path::PathBuf {
    m.config_dir.join(FORCED_CONFIG)
}

/// What was found: the quorum lost, or a recovery that got as far as the
/// forced start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "member")]
pub enum LossState {
    /// Fewer voters answer than a quorum needs.
    Lost,
    /// This member runs with `--force-new-cluster`: a recovery stopped
    /// between its forced start and its normal restart.
    Forced(MemberName),
    /// No member answers the etcd API (a recovery stopped after it stopped
    /// the survivor, or a survivor restarted without a quorum: etcd then
    /// serves nothing), and some hosts still hold member data. Looked for
    /// only when the operator names a survivor.
    Silent,
}

/// One voter of the cluster as MemberList lists it, with what it and its
/// host said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VoterFinding {
    /// Its id.
    pub id: MemberId,
    /// Its name as etcd knows it.
    pub name: String,
    /// Its host and paths: the etcdfile's member of that name, else where its
    /// peer URL points with the etcdfile's layout.
    pub member: DesiredMember,
    /// Whether the etcdfile names it.
    pub in_etcdfile: bool,
    /// Its Status, when it answered: committed and applied raft index, revision.
    pub answer: Option<Answer>,
    /// What its host says about its etcd.
    pub host: HostSays,
}

/// A Status answer, in the terms a recovery compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Answer {
    /// Committed raft index.
    pub raft_index: u64,
    /// Applied raft index.
    pub applied: u64,
    /// Key-value revision.
    pub revision: i64,
}

/// What a voter's host says about its etcd.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum HostSays {
    /// The etcdfile does not name it: its host was not probed.
    NotProbed,
    /// The host did not answer.
    Unreachable {
        /// Why.
        reason: String,
    },
    /// The host answered.
    Reached {
        /// etcd runs.
        running: bool,
        /// What the data dir holds.
        data: DataDir,
        /// It runs with `--force-new-cluster`.
        forced: bool,
    },
}

/// A lost (or half-recovered) quorum, as [`detect`] found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuorumLoss {
    /// Lost, or a forced start found running.
    pub state: LossState,
    /// Every voter, in MemberList order.
    pub voters: Vec<VoterFinding>,
}

/// Whether this etcd was started with `--force-new-cluster`.
pub fn forced(l: &Listener) -> bool {
    l.cmdline
        .iter()
        .any(|a| a == FORCE_FLAG || a.ends_with(&format!("/{FORCED_CONFIG}")))
}

/// Finds a lost quorum (fewer voters answer Status than a quorum of the
/// voters MemberList lists) or a member that runs with `--force-new-cluster`.
/// `None` while a majority answers and nothing runs forced.
pub fn detect(d: &Desired, live: &Live) -> Option<QuorumLoss> {
    let forced_member = d.members.iter().find(|m| {
        live.hosts
            .get(&m.name)
            .and_then(HostState::facts)
            .and_then(|f| f.listener.as_ref())
            .is_some_and(forced)
    });
    let voters: Vec<VoterFinding> = live
        .cluster
        .iter()
        .flat_map(|c| c.members.iter().filter(|m| !m.is_learner))
        .map(|lm| {
            let dep = departing(d, lm, None);
            let desired = d.member(&dep.name).filter(|_| lm.started());
            let member = desired.cloned().unwrap_or(dep.host);
            let host = match desired.map(|m| live.hosts.get(&m.name)) {
                None | Some(None) => HostSays::NotProbed,
                Some(Some(HostState::Unreachable { reason, .. })) => HostSays::Unreachable {
                    reason: reason.clone(),
                },
                Some(Some(HostState::Reached(f))) => HostSays::Reached {
                    running: matches!(f.service, ServiceState::Running(_)) || f.listener.is_some(),
                    data: f.data,
                    forced: f.listener.as_ref().is_some_and(forced),
                },
            };
            VoterFinding {
                id: lm.id,
                name: lm.name.to_string(),
                member,
                in_etcdfile: desired.is_some(),
                answer: lm.status.as_ref().ok().map(|s| Answer {
                    raft_index: s.reported.raft_index,
                    applied: s.reported.raft_applied_index,
                    revision: s.reported.revision,
                }),
                host,
            }
        })
        .collect();
    let mut voters = voters;
    voters.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(m) = forced_member {
        return Some(QuorumLoss {
            state: LossState::Forced(m.name.clone()),
            voters,
        });
    }
    let answering = voters.iter().filter(|v| v.answer.is_some()).count();
    (!voters.is_empty() && answering < quorum(voters.len())).then_some(QuorumLoss {
        state: LossState::Lost,
        voters,
    })
}

/// The etcdfile's members as their hosts show them, when no member answers
/// the etcd API and at least one host holds member data: what a recovery can
/// still go on from, with the member and cluster ids the WAL names.
pub fn silent(d: &Desired, live: &Live) -> Option<QuorumLoss> {
    if live.cluster.is_some() {
        return None;
    }
    let voters: Vec<VoterFinding> = d
        .members
        .iter()
        .map(|m| {
            let facts = live.hosts.get(&m.name).and_then(HostState::facts);
            let host = match live.hosts.get(&m.name) {
                None => HostSays::NotProbed,
                Some(HostState::Unreachable { reason, .. }) => HostSays::Unreachable {
                    reason: reason.clone(),
                },
                Some(HostState::Reached(f)) => HostSays::Reached {
                    running: matches!(f.service, ServiceState::Running(_)),
                    data: f.data,
                    forced: f.listener.as_ref().is_some_and(forced),
                },
            };
            VoterFinding {
                id: facts
                    .and_then(|f| f.data_owner_id)
                    .map_or(MemberId(0), |(id, _)| id),
                name: m.name.to_string(),
                member: m.clone(),
                in_etcdfile: true,
                answer: None,
                host,
            }
        })
        .collect();
    let any_data = voters.iter().any(|v| {
        matches!(
            v.host,
            HostSays::Reached {
                data: DataDir::Member,
                ..
            }
        )
    });
    any_data.then_some(QuorumLoss {
        state: LossState::Silent,
        voters,
    })
}

impl QuorumLoss {
    /// The voters that answer Status.
    pub fn answering(&self) -> impl Iterator<Item = &VoterFinding> {
        self.voters.iter().filter(|v| v.answer.is_some())
    }

    /// The voters that do not.
    pub fn down(&self) -> impl Iterator<Item = &VoterFinding> {
        self.voters.iter().filter(|v| v.answer.is_none())
    }

    /// The answering voter with the highest committed raft index (the first
    /// in MemberList order on a tie).
    pub fn most_recent(&self) -> Option<&VoterFinding> {
        self.answering()
            .fold(None, |best: Option<&VoterFinding>, v| {
                let idx = |x: &VoterFinding| x.answer.map_or(0, |a| a.raft_index);
                match best {
                    Some(b) if idx(b) >= idx(v) => Some(b),
                    _ => Some(v),
                }
            })
    }

    /// Whether starting the stopped voters that still have their data would
    /// bring the quorum back: then the loss is not permanent, and the normal
    /// plan (start them) is the repair.
    pub fn start_repairs(&self) -> bool {
        let startable = self
            .down()
            .filter(|v| {
                matches!(
                    v.host,
                    HostSays::Reached {
                        running: false,
                        data: DataDir::Member,
                        ..
                    }
                )
            })
            .count();
        self.state == LossState::Lost
            && self.answering().count() + startable >= quorum(self.voters.len())
    }

    /// The one paragraph `plan` shows: which members are down, what each
    /// host says about its etcd, and which survivor is the most up to date.
    pub fn paragraph(&self) -> String {
        let n = self.voters.len();
        let answering: Vec<&VoterFinding> = self.answering().collect();
        let down: Vec<&VoterFinding> = self.down().collect();
        let names = |v: &[&VoterFinding]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let mut out = match &self.state {
            LossState::Lost => format!(
                "The cluster has lost its quorum: {} of its {n} voters answer{}, {} are needed. Down: {}.",
                answering.len(),
                if answering.len() == 1 { "s" } else { "" },
                quorum(n),
                names(&down)
            ),
            LossState::Silent => format!(
                "No member answers the etcd API (a member restarted without a quorum serves nothing), so raft indexes cannot be compared; the etcdfile names {n} member{}.",
                if n == 1 { "" } else { "s" }
            ),
            LossState::Forced(m) => format!(
                "A quorum-loss recovery stopped half way: {m} runs with {FORCE_FLAG} (started once by a recovery, not yet restarted normally); the cluster lists {n} voter{}: {}.",
                if n == 1 { "" } else { "s" },
                names(&self.voters.iter().collect::<Vec<_>>())
            ),
        };
        for v in &self.voters {
            out.push(' ');
            out.push_str(&v.describe());
        }
        if let Some(best) = self.most_recent() {
            let a = best.answer.map_or(0, |a| a.raft_index);
            out.push_str(&format!(
                " The most up-to-date member that answers is {} (raft index {a}).",
                best.name
            ));
        }
        out
    }
}

impl VoterFinding {
    /// One sentence: how it answered, and what its host says.
    pub fn describe(&self) -> String {
        let api = match self.answer {
            Some(a) => format!(
                "{} answers (raft index {}, applied {}, revision {})",
                self.name, a.raft_index, a.applied, a.revision
            ),
            None => format!("{} does not answer", self.name),
        };
        let m = &self.member;
        let host = match &self.host {
            HostSays::NotProbed => format!(
                "it is not in the etcdfile, so its host {} was not asked",
                m.address
            ),
            HostSays::Unreachable { reason } => {
                format!("its host {} does not answer ({reason})", m.address)
            }
            HostSays::Reached {
                running,
                data,
                forced,
            } => {
                let etcd = match (running, forced) {
                    (_, true) => format!("etcd runs with {FORCE_FLAG}"),
                    (true, false) => "etcd runs".to_owned(),
                    (false, false) => "etcd is stopped".to_owned(),
                };
                let data = match data {
                    DataDir::Member => "holds member data",
                    DataDir::Absent => "is gone",
                    DataDir::Empty => "is empty",
                    DataDir::Other => "holds something other than etcd data",
                };
                format!(
                    "its host {} answers: {etcd}, its data dir {} {data}",
                    m.address,
                    m.data_dir.display()
                )
            }
        };
        format!("{api}; {host}.")
    }
}
