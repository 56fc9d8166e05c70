//! Test doubles for both edges: an in-memory etcd cluster ([`FakeCluster`],
//! an [`EtcdApi`]) and the member hosts that run it ([`FakeHost`], a
//! [`Host`]), sharing one state so that what a host script does (start,
//! stop) changes what the API answers, and the reverse (a removed member's
//! etcd exits).
//!
//! They let `observe` and `execute` run in unit tests without root, network
//! namespaces or a real etcd. Compiled only for tests and with the `fakes`
//! feature; never part of the shipped binary.
//!
//! What the fake cluster models, as etcd does, where it is cheap:
//! - membership, leader, raft index, each member's version and applied index,
//!   alarms and a small key-value store (for the lock);
//! - a member answers only while its etcd process runs on its host and is
//!   not stalled; any other endpoint is refused (`Unavailable`);
//! - a leader exists while a quorum of voters answers; when the leader stops
//!   another answering voter takes over at once (etcd hands leadership over
//!   on SIGTERM);
//! - MemberAdd adds a learner that has no name and no client URL until it is
//!   first started; it is refused while a voter does not answer
//!   (`Unhealthy`) or a learner exists already (`TooManyLearners`);
//! - MemberPromote is refused for a member that is not a learner
//!   (`MemberNotLearner`) and for a learner that has not applied the leader's
//!   index (`LearnerNotReady`); a started learner catches up after one Status;
//! - MoveLeader must go to the leader (`NotLeader`);
//! - MemberRemove of the leader elects another; the removed member's etcd exits.
//! - the cluster version (the lowest minor version the voters run, or a
//!   downgrade's target), each member's storage version (reported from 3.6
//!   on) and the downgrade state: `downgrade validate|enable` refuse a target
//!   not one minor below the cluster version (`InvalidDowngradeTarget`) or a
//!   second downgrade (`DowngradeInProgress`); enable lowers the cluster
//!   version at once and the data of every member a few Status answers later;
//!   a binary older than its data's storage version does not start; the
//!   downgrade completes once every voter runs the target; cancel
//!   (`NoDowngradeInProgress` when there is none) lets the cluster version
//!   rise again as members come back on the newer release.
//! - HashKV: a hash of the key-value store, the same on every member unless
//!   a test skews one, with each member's compact revision (0 unless a test
//!   sets it); refused by learners, and for a revision not reached yet;
//! - `/metrics`: the default quota and no defragmentation, unless a test
//!   sets a member's body or makes it refuse.
//! - etcd auth ([`FakeAuth`], `auth.rs`): the enabled flag, users (with a
//!   password or none) and their roles, roles and their grants; every
//!   [`AuthCall`](super::AuthCall) refused as etcd refuses it (`auth enable`
//!   without root: `RootUserMissing`; duplicates, unknown names, root taken
//!   apart while on: `InvalidAuthManagement`), only a root caller manages
//!   while auth is on, and a login is accepted for the right password alone
//!   (`AuthNotEnabled` while off). Tests set and read it with
//!   [`FakeCluster::set_auth`] and [`FakeCluster::auth`], read the changes
//!   sent ([`FakeCluster::auth_calls`]) and the passwords they carried
//!   ([`FakeCluster::auth_passwords`]), and make one change refused
//!   ([`FakeCluster::fail_auth`]).
//!
//! A host cannot run shell: [`FakeHost`] recognises each script by its `what`
//! label (see `Effect::of` in `host.rs`, the one table) and applies its effect to the
//! shared state. Every script and every etcd call is recorded in a log
//! ([`FakeCluster::calls`]) that tests assert on.
//!
//! The shared state and its rules live here; the test-facing controls of
//! [`FakeCluster`] in `cluster.rs`, its [`EtcdApi`] in `api.rs`, and
//! [`FakeHost`] with its script table in `host.rs`.

mod api;
mod auth;
mod cluster;
mod host;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use super::{ApiAlarm, ApiMember, EtcdError, EtcdErrorKind};
#[cfg(doc)]
use super::{EtcdApi, Host};
use crate::live::LiveName;
use crate::model::{Endpoint, EtcdVersion, MemberId, MinorVersion};

pub use auth::{FakeAuth, FakeUser};

/// One member as the cluster knows it.
#[derive(Debug, Clone)]
pub struct FakeMember {
    /// Member id.
    pub id: MemberId,
    /// Empty until first started (as MemberList reports an added member).
    pub name: String,
    /// Advertised peer URLs.
    pub peer_urls: Vec<Endpoint>,
    /// Advertised client URLs; empty until first started.
    pub client_urls: Vec<Endpoint>,
    /// A learner does not vote.
    pub learner: bool,
    /// The host (address) whose etcd process is this member, once started.
    pub host: Option<String>,
    /// The version its binary reports.
    pub version: Option<EtcdVersion>,
    /// Applied raft index.
    pub applied: u64,
    /// The version of its data (etcd 3.6+ storage version); reported by
    /// Status only while a 3.6+ binary runs it. None: not yet written.
    pub storage: Option<MinorVersion>,
}

/// One host's disk and etcd process.
#[derive(Debug, Clone, Default)]
pub struct FakeDisk {
    /// Files and their modes.
    pub files: BTreeMap<PathBuf, (String, u32)>,
    /// Whether the data dir holds a member.
    pub data: bool,
    /// The sha256 of the config the running etcd was started with.
    pub started_config: Option<String>,
    /// The version `etcd --version` prints; `None`: no binary.
    pub binary: Option<EtcdVersion>,
    /// Whether an etcd process runs.
    pub running: bool,
    /// It runs but does not answer (stuck, or listening elsewhere).
    pub stalled: bool,
    /// Its pid.
    pub pid: u32,
    /// What the process logged (shown by `check` when it is dead).
    pub log: Vec<String>,
    /// The running etcd is not etcdplan's: started by hand or by another
    /// unit (the probe shows it as a listener, not as the service).
    pub foreign: bool,
    /// A takeover job written to the host: its files (path, text, mode).
    pub job: Option<Vec<(PathBuf, String, u32)>>,
    /// What the last takeover job said (`done`, `failed: …`).
    pub job_status: Option<String>,
}

/// A test hook that makes a host script fail.
#[derive(Debug, Clone)]
struct FailHook {
    /// Scripts whose `what` starts with this.
    prefix: String,
    /// Fail the nth (1-based) such script.
    nth: usize,
    /// How many matched so far.
    seen: usize,
}

/// The whole fake world: the cluster and its hosts.
#[derive(Debug, Default)]
struct World {
    cluster_id: u64,
    members: Vec<FakeMember>,
    leader: Option<MemberId>,
    term: u64,
    index: u64,
    next_id: u64,
    alarms: Vec<ApiAlarm>,
    kv: BTreeMap<String, (String, Option<i64>)>,
    next_lease: i64,
    hosts: BTreeMap<String, FakeDisk>,
    calls: Vec<String>,
    fail: Vec<FailHook>,
    stall_on_start: BTreeSet<String>,
    /// The target of the downgrade enabled, if one is.
    downgrade: Option<MinorVersion>,
    /// How many more Status answers before the members' data is migrated
    /// to the downgrade's target (etcd does it in the background).
    storage_lag: u32,
    /// Downgrade calls refused with this kind from now on (a test hook).
    fail_downgrade: Option<(String, EtcdErrorKind)>,
    /// Each member's backend (file size, in use) where a test set one;
    /// others report 20 KiB of which 16 KiB in use.
    db: BTreeMap<MemberId, (u64, u64)>,
    /// The quota every member enforces, where a test set one (reported by
    /// Status as 3.6 does).
    quota: Option<u64>,
    /// The revision the history is compacted to.
    compacted: i64,
    /// Members whose defragmentation never ends (a test hook).
    defrag_stalls: BTreeSet<String>,
    /// Members (by name) whose HashKV differs from the others' by this
    /// (xor): a corrupt member (a test hook).
    hash_skew: BTreeMap<String, u32>,
    /// Members (by name) whose compact revision is not the cluster's one
    /// (a compaction not applied there yet; a test hook).
    compact_of: BTreeMap<String, i64>,
    /// Members (by name) whose `/metrics` body is this, or refused (None).
    metrics_of: BTreeMap<String, Option<String>>,
    /// etcd's auth store.
    auth: FakeAuth,
    /// The auth change refused from now on: the call's `Debug`, the kind
    /// and etcd's message (a test hook).
    fail_auth: Option<(String, EtcdErrorKind, String)>,
    /// Every password an auth change carried, in order, for tests that
    /// check nothing else shows one.
    auth_passwords: auth::Received,
    /// A quorum read without a leader waits (for its caller's deadline, as
    /// etcd's does) instead of failing at once (a test hook).
    reads_wait_for_a_leader: bool,
}

/// An in-memory etcd cluster and its hosts; cheap to clone (shared state).
#[derive(Debug, Clone, Default)]
pub struct FakeCluster {
    world: Arc<Mutex<World>>,
}

/// A member host of a [`FakeCluster`], by address.
#[derive(Debug, Clone)]
pub struct FakeHost {
    cluster: FakeCluster,
    address: String,
}

fn call_error(ep: &Endpoint, kind: EtcdErrorKind, message: &str) -> EtcdError {
    EtcdError::Call {
        endpoint: ep.to_string(),
        kind,
        message: message.to_owned(),
    }
}

fn refused(ep: &Endpoint) -> EtcdError {
    call_error(
        ep,
        EtcdErrorKind::Unavailable,
        "transport error: tcp connect error: Connection refused (fake)",
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    crate::model::hex(&Sha256::digest(bytes))
}

impl World {
    /// The host (address) whose etcd is member `name`, once it has started.
    fn host_of(&self, name: &str) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.host.clone())
    }

    fn quorum(&self) -> usize {
        self.members.iter().filter(|m| !m.learner).count() / 2 + 1
    }

    fn answering(&self, m: &FakeMember) -> bool {
        m.host
            .as_ref()
            .and_then(|h| self.hosts.get(h))
            .is_some_and(|d| d.running && !d.stalled)
    }

    /// Keeps or elects a leader: the current one while it answers and a
    /// quorum of voters does, else the first answering voter, else none.
    fn settle(&mut self) {
        let up: Vec<MemberId> = self
            .members
            .iter()
            .filter(|m| !m.learner && self.answering(m))
            .map(|m| m.id)
            .collect();
        if up.len() < self.quorum() {
            self.leader = None;
            return;
        }
        if self.leader.is_some_and(|l| up.contains(&l)) {
            return;
        }
        self.leader = up.first().copied();
        self.term += 1;
    }

    /// The member serving `ep`, if it answers.
    fn serving(&self, ep: &Endpoint) -> Result<usize, EtcdError> {
        self.members
            .iter()
            .position(|m| m.client_urls.contains(ep) && self.answering(m))
            .ok_or_else(|| refused(ep))
    }

    /// A member's backend (file size, in use).
    fn db_of(&self, id: MemberId) -> (u64, u64) {
        self.db.get(&id).copied().unwrap_or((20480, 16384))
    }

    /// Like [`serving`](Self::serving), for calls that need a leader.
    fn serving_with_leader(&self, ep: &Endpoint) -> Result<usize, EtcdError> {
        let i = self.serving(ep)?;
        if self.leader.is_none() {
            return Err(call_error(
                ep,
                EtcdErrorKind::DeadlineExceeded,
                "etcdserver: request timed out",
            ));
        }
        Ok(i)
    }

    fn commit(&mut self) {
        self.index += 1;
        for i in 0..self.members.len() {
            if !self.members[i].learner && self.answering(&self.members[i]) {
                self.members[i].applied = self.index;
            }
        }
    }

    fn new_id(&mut self) -> MemberId {
        self.next_id += 1;
        MemberId(0x1000 + self.next_id)
    }

    fn api_member(m: &FakeMember) -> ApiMember {
        ApiMember {
            id: m.id,
            name: LiveName::from_api(&m.name),
            peer_urls: m.peer_urls.clone(),
            client_urls: m.client_urls.clone(),
            is_learner: m.learner,
        }
    }

    /// The cluster version: a downgrade's target while one is enabled, else
    /// the lowest minor version the voters run (etcd's leader decides it so).
    fn cluster_version(&self) -> Option<MinorVersion> {
        if let Some(t) = self.downgrade {
            return Some(t);
        }
        self.members
            .iter()
            .filter(|m| !m.learner)
            .map(|m| m.version.map(EtcdVersion::minor))
            .min()
            .flatten()
    }

    /// What etcd's version monitor does in the background: a downgrade
    /// migrates every member's data to its target after a few looks, and
    /// completes (is no longer enabled) once every voter runs the target;
    /// otherwise data follows the cluster version up.
    fn monitor(&mut self) {
        match self.downgrade {
            Some(target) => {
                if self.storage_lag > 0 {
                    self.storage_lag -= 1;
                } else {
                    for m in &mut self.members {
                        m.storage = Some(target);
                    }
                }
                let done = self
                    .members
                    .iter()
                    .filter(|m| !m.learner)
                    .all(|m| m.version.map(EtcdVersion::minor) == Some(target));
                if done {
                    self.downgrade = None;
                }
            }
            None => {
                if let Some(cv) = self.cluster_version() {
                    for m in &mut self.members {
                        if m.storage.is_some_and(|s| s < cv) {
                            m.storage = Some(cv);
                        }
                    }
                }
            }
        }
    }

    /// Stops the etcd process on a host; leadership moves on.
    fn stop(&mut self, address: &str) {
        if let Some(d) = self.hosts.get_mut(address) {
            d.running = false;
            d.stalled = false;
            d.started_config = None;
        }
        self.settle();
    }
}

impl FakeCluster {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn log(&self, line: String) {
        self.world().calls.push(line);
    }
}
