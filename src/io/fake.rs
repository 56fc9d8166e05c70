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
//!
//! A host cannot run shell: [`FakeHost`] recognises each script by its `what`
//! label (see [`Effect::of`], the one table) and applies its effect to the
//! shared state. Every script and every etcd call is recorded in a log
//! ([`FakeCluster::calls`]) that tests assert on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{
    ApiAlarm, ApiMember, ApiStatus, CommandOutput, EtcdApi, EtcdError, EtcdErrorKind, Host,
    HostError, HostMap, Script,
};
use crate::config::Desired;
use crate::model::{ClusterId, Endpoint, EtcdVersion, MemberId, MinorVersion};

/// How many raft entries a learner may trail and still be promoted (etcd
/// allows 90% of the leader's progress; a small margin is enough here).
const PROMOTE_MARGIN: u64 = 5;

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
            name: m.name.clone(),
            peer_urls: m.peer_urls.clone(),
            client_urls: m.client_urls.clone(),
            is_learner: m.learner,
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
    /// An empty world: no members, no hosts.
    pub fn new() -> Self {
        Self::default()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cluster that was bootstrapped from `from` and runs with its files on
    /// every host, each binary reporting `version`; `leader` is the index of
    /// the leading member in `from`. Plan against a desired state that
    /// differs from `from` to get changes.
    pub fn running(from: &Desired, version: &str, leader: usize) -> Self {
        let fake = Self::new();
        {
            let mut w = fake.world();
            w.cluster_id = 0xc1;
            let version = EtcdVersion::parse(version);
            let initial = crate::hostfiles::Initial::bootstrap(from);
            for m in &from.members {
                let address = m.address.to_string();
                let mut disk = FakeDisk {
                    data: true,
                    binary: version,
                    running: true,
                    pid: 1000 + u32::try_from(w.members.len()).unwrap_or(0),
                    ..FakeDisk::default()
                };
                for f in crate::hostfiles::member_files(from, m, &initial) {
                    if f.path == m.config_file() {
                        disk.started_config = Some(sha256_hex(f.contents.as_bytes()));
                    }
                    disk.files.insert(f.path, (f.contents, f.mode));
                }
                w.hosts.insert(address.clone(), disk);
                let id = w.new_id();
                w.members.push(FakeMember {
                    id,
                    name: m.name.to_string(),
                    peer_urls: vec![m.peer_url(&from.tls)],
                    client_urls: vec![m.client_url(&from.tls)],
                    learner: false,
                    host: Some(address),
                    version,
                    applied: 0,
                });
            }
            w.index = 100;
            for m in &mut w.members {
                m.applied = 100;
            }
            w.term = 2;
            w.leader = w.members.get(leader).map(|m| m.id);
            w.settle();
        }
        fake
    }

    /// Every member's host as a [`HostMap`] (one [`FakeHost`] per address of `d`).
    pub fn hosts(&self, d: &Desired) -> HostMap {
        let mut map = HostMap::default();
        for m in &d.members {
            let address = m.address.to_string();
            self.world().hosts.entry(address.clone()).or_default();
            map.insert(
                m.address.clone(),
                Arc::new(FakeHost {
                    cluster: self.clone(),
                    address,
                }),
            );
        }
        map
    }

    /// Every host script and etcd call so far, in order: `host ADDR: WHAT`
    /// and `etcd METHOD …` (reads included), plus test marks.
    pub fn calls(&self) -> Vec<String> {
        self.world().calls.clone()
    }

    /// Adds a line to the call log (a test marks where a step ended).
    pub fn mark(&self, text: &str) {
        self.world().calls.push(format!("mark {text}"));
    }

    /// The members as the cluster knows them now.
    pub fn members(&self) -> Vec<FakeMember> {
        self.world().members.clone()
    }

    /// The leader's name now, if any.
    pub fn leader(&self) -> Option<String> {
        let w = self.world();
        let l = w.leader?;
        w.members.iter().find(|m| m.id == l).map(|m| m.name.clone())
    }

    /// A host's disk and process.
    pub fn disk(&self, address: &str) -> Option<FakeDisk> {
        self.world().hosts.get(address).cloned()
    }

    /// A fresh host at `address` with only an etcd binary of `version`
    /// (what an operator prepares before adding a member there).
    pub fn empty_host(&self, address: &str, version: &str) {
        self.world().hosts.insert(
            address.to_owned(),
            FakeDisk {
                binary: EtcdVersion::parse(version),
                pid: 2000,
                ..FakeDisk::default()
            },
        );
    }

    /// The etcd process of member `name` dies (a crash, or its host goes down).
    pub fn kill(&self, name: &str) {
        let mut w = self.world();
        let host = w
            .members
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.host.clone());
        if let Some(h) = host {
            if let Some(d) = w.hosts.get_mut(&h) {
                d.log.push("fake: killed by the test".into());
            }
            w.stop(&h);
        }
        w.calls.push(format!("fake kill {name}"));
    }

    /// The next start of member `name` runs etcd that never answers.
    pub fn stall_on_start(&self, name: &str) {
        self.world().stall_on_start.insert(name.to_owned());
    }

    /// The `nth` (1-based) host script whose `what` starts with `prefix`
    /// (e.g. "start etcd-3", or "start" for any member) exits 1 without effect.
    pub fn fail_script(&self, prefix: &str, nth: usize) {
        self.world().fail.push(FailHook {
            prefix: prefix.to_owned(),
            nth,
            seen: 0,
        });
    }

    /// Raises an alarm on member `name`.
    pub fn raise_alarm(&self, name: &str, kind: &str) {
        let mut w = self.world();
        if let Some(id) = w.members.iter().find(|m| m.name == name).map(|m| m.id) {
            w.alarms.push(ApiAlarm {
                member: id,
                kind: kind.to_owned(),
            });
        }
    }

    fn log(&self, line: String) {
        self.world().calls.push(line);
    }
}

#[async_trait]
impl EtcdApi for FakeCluster {
    async fn member_list(&self, ep: &Endpoint) -> Result<Vec<ApiMember>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd member_list {ep}"));
        w.serving(ep)?;
        Ok(w.members.iter().map(World::api_member).collect())
    }

    async fn status(&self, ep: &Endpoint) -> Result<ApiStatus, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd status {ep}"));
        let i = w.serving(ep)?;
        let m = w.members[i].clone();
        let errors = w
            .alarms
            .iter()
            .map(|a| format!("memberID:{} alarm:{}", a.member.0, a.kind))
            .collect();
        let status = ApiStatus {
            cluster_id: ClusterId(w.cluster_id),
            member_id: m.id,
            version: m.version,
            db_size: 20480,
            db_size_in_use: 16384,
            leader: w.leader,
            raft_index: w.index,
            raft_applied_index: m.applied,
            raft_term: w.term,
            is_learner: m.learner,
            errors,
        };
        // A learner catches up between two looks.
        if w.leader.is_some() {
            w.members[i].applied = w.index;
        }
        Ok(status)
    }

    async fn alarms(&self, ep: &Endpoint) -> Result<Vec<ApiAlarm>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd alarms {ep}"));
        w.serving(ep)?;
        Ok(w.alarms.clone())
    }

    async fn quorum_read(&self, ep: &Endpoint) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd quorum_read {ep}"));
        let i = w.serving_with_leader(ep)?;
        if w.members[i].learner {
            return Err(call_error(
                ep,
                EtcdErrorKind::Other,
                "etcdserver: rpc not supported for learner",
            ));
        }
        Ok(())
    }

    async fn move_leader(&self, ep: &Endpoint, to: MemberId) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd move_leader {ep} {to}"));
        let i = w.serving_with_leader(ep)?;
        if Some(w.members[i].id) != w.leader {
            return Err(call_error(
                ep,
                EtcdErrorKind::NotLeader,
                "etcdserver: not leader",
            ));
        }
        let Some(target) = w.members.iter().find(|m| m.id == to) else {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotFound,
                "etcdserver: member not found",
            ));
        };
        if target.learner || !w.answering(target) {
            return Err(call_error(
                ep,
                EtcdErrorKind::Other,
                "etcdserver: bad leader transferee",
            ));
        }
        w.leader = Some(to);
        w.term += 1;
        Ok(())
    }

    async fn add_learner(&self, ep: &Endpoint, peer_url: &Endpoint) -> Result<MemberId, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd add_learner {ep} {peer_url}"));
        w.serving_with_leader(ep)?;
        if w.members.iter().any(|m| !m.learner && !w.answering(m)) {
            return Err(call_error(
                ep,
                EtcdErrorKind::Unhealthy,
                "etcdserver: unhealthy cluster",
            ));
        }
        if w.members.iter().any(|m| m.learner) {
            return Err(call_error(
                ep,
                EtcdErrorKind::TooManyLearners,
                "etcdserver: too many learner members in cluster",
            ));
        }
        if w.members.iter().any(|m| m.peer_urls.contains(peer_url)) {
            return Err(call_error(
                ep,
                EtcdErrorKind::Other,
                "etcdserver: Peer URLs already exists",
            ));
        }
        let id = w.new_id();
        w.members.push(FakeMember {
            id,
            name: String::new(),
            peer_urls: vec![peer_url.clone()],
            client_urls: Vec::new(),
            learner: true,
            host: None,
            version: None,
            applied: 0,
        });
        w.commit();
        Ok(id)
    }

    async fn promote(&self, ep: &Endpoint, id: MemberId) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd promote {ep} {id}"));
        w.serving_with_leader(ep)?;
        let index = w.index;
        let Some(i) = w.members.iter().position(|m| m.id == id) else {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotFound,
                "etcdserver: member not found",
            ));
        };
        let m = &w.members[i];
        if !m.learner {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotLearner,
                "etcdserver: can only promote a learner member",
            ));
        }
        if !w.answering(m) || m.applied + PROMOTE_MARGIN < index {
            return Err(call_error(
                ep,
                EtcdErrorKind::LearnerNotReady,
                "etcdserver: can only promote a learner member which is in sync with leader",
            ));
        }
        w.members[i].learner = false;
        w.commit();
        w.settle();
        Ok(())
    }

    async fn remove(&self, ep: &Endpoint, id: MemberId) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd remove {ep} {id}"));
        w.serving_with_leader(ep)?;
        let Some(i) = w.members.iter().position(|m| m.id == id) else {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotFound,
                "etcdserver: member not found",
            ));
        };
        let gone = w.members.remove(i);
        w.commit();
        // A removed member's etcd exits by itself.
        if let Some(h) = gone.host {
            if let Some(d) = w.hosts.get_mut(&h) {
                d.log
                    .push("the member has been permanently removed from the cluster".into());
            }
            w.stop(&h);
        }
        if w.leader == Some(id) {
            w.leader = None;
        }
        w.settle();
        Ok(())
    }

    async fn update_peer(
        &self,
        ep: &Endpoint,
        id: MemberId,
        peer_url: &Endpoint,
    ) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls
            .push(format!("etcd update_peer {ep} {id} {peer_url}"));
        w.serving_with_leader(ep)?;
        let Some(m) = w.members.iter_mut().find(|m| m.id == id) else {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotFound,
                "etcdserver: member not found",
            ));
        };
        m.peer_urls = vec![peer_url.clone()];
        w.commit();
        Ok(())
    }

    async fn create_leased(
        &self,
        ep: &Endpoint,
        key: &str,
        value: &str,
        _ttl: Duration,
    ) -> Result<Result<i64, String>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd create_leased {ep} {key}"));
        w.serving_with_leader(ep)?;
        if let Some((held, _)) = w.kv.get(key) {
            return Ok(Err(held.clone()));
        }
        w.next_lease += 1;
        let lease = w.next_lease;
        w.kv.insert(key.to_owned(), (value.to_owned(), Some(lease)));
        w.commit();
        Ok(Ok(lease))
    }

    async fn keep_alive(&self, ep: &Endpoint, lease: i64) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd keep_alive {ep} {lease}"));
        w.serving_with_leader(ep)?;
        Ok(())
    }

    async fn delete_if(
        &self,
        ep: &Endpoint,
        key: &str,
        value: &str,
        _lease: Option<i64>,
    ) -> Result<bool, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd delete_if {ep} {key}"));
        w.serving_with_leader(ep)?;
        let holds = w.kv.get(key).is_some_and(|(v, _)| v == value);
        if holds {
            w.kv.remove(key);
            w.commit();
        }
        Ok(holds)
    }

    async fn get_value(&self, ep: &Endpoint, key: &str) -> Result<Option<String>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd get_value {ep} {key}"));
        w.serving_with_leader(ep)?;
        Ok(w.kv.get(key).map(|(v, _)| v.clone()))
    }

    async fn snapshot(&self, ep: &Endpoint, _deadline: Duration) -> Result<Vec<u8>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd snapshot {ep}"));
        w.serving(ep)?;
        let mut data = format!("fake etcd backend at index {}", w.index).into_bytes();
        let trailer = Sha256::digest(&data);
        data.extend_from_slice(&trailer);
        Ok(data)
    }

    async fn cluster_version(&self, ep: &Endpoint) -> Result<Option<MinorVersion>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd cluster_version {ep}"));
        w.serving(ep)?;
        Ok(w.members
            .iter()
            .filter(|m| !m.learner)
            .map(|m| m.version.map(EtcdVersion::minor))
            .min()
            .flatten())
    }
}

/// What a script does, recognised by its `what` label: the one place that
/// knows the scripts `service`, `execute` and `observe` run. A script not
/// listed here exits 127, so a new script fails tests loudly.
#[derive(Debug, PartialEq)]
enum Effect {
    /// `probe NAME` (observe/host.rs): print what the host shows.
    Probe,
    /// `write PATH` (io::write_file_script): stdin to PATH, mode from `chmod`.
    Write(PathBuf),
    /// `read PATH` (issuing certificates): print PATH or nothing.
    Read(PathBuf),
    /// `hash PATH` (installing a release): its sha256, if present.
    Hash(PathBuf),
    /// `start NAME` (service::start): start etcd with the config at `cfg=`.
    Start,
    /// `stop NAME` (service::stop): stop etcd.
    Stop,
    /// `check NAME` (service::check_alive): `alive`, or `dead` and the log.
    CheckAlive,
    /// `retire NAME` (membership::retire): move data and config aside.
    Retire,
}

impl Effect {
    /// The table: label prefix → effect.
    fn of(script: &Script) -> Option<Self> {
        let (verb, rest) = script.what.split_once(' ')?;
        Some(match verb {
            "probe" => Self::Probe,
            "write" => Self::Write(PathBuf::from(rest)),
            "read" => Self::Read(PathBuf::from(rest)),
            "hash" => Self::Hash(PathBuf::from(rest)),
            "start" => Self::Start,
            "stop" => Self::Stop,
            "check" if !rest.contains(' ') => Self::CheckAlive,
            "retire" => Self::Retire,
            _ => return None,
        })
    }
}

fn ok(stdout: String) -> CommandOutput {
    CommandOutput {
        code: 0,
        stdout,
        stderr: String::new(),
    }
}

fn failed(code: i32, stderr: &str) -> CommandOutput {
    CommandOutput {
        code,
        stdout: String::new(),
        stderr: stderr.to_owned(),
    }
}

/// Removes POSIX single quotes as `shell_quote` adds them.
fn unquote(word: &str) -> String {
    match word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')) {
        Some(inner) => inner.replace("'\\''", "'"),
        None => word.to_owned(),
    }
}

/// The value of a `name=VALUE` line of a script.
fn assignment(source: &str, name: &str) -> Option<String> {
    source
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(unquote)
}

/// The `if [ -f PATH ]; then printf 'KIND\tI\t…` lines of the probe: (kind, index, path).
fn probed_paths(source: &str) -> Vec<(String, String, PathBuf)> {
    source
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("if [ -f ")?;
            let (path, rest) = rest.split_once(" ]; then printf '")?;
            let (kind, rest) = rest.split_once("\\t")?;
            let (index, _) = rest.split_once(['\\', '\''])?;
            Some((
                kind.to_owned(),
                index.to_owned(),
                PathBuf::from(unquote(path)),
            ))
        })
        .collect()
}

fn base64(text: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text)
}

impl FakeHost {
    /// Runs one recognised script against the shared state.
    fn apply(&self, effect: Effect, script: &Script) -> CommandOutput {
        let mut w = self.cluster.world();
        let address = self.address.clone();
        let disk = w.hosts.entry(address.clone()).or_default();
        match effect {
            Effect::Probe => ok(probe_output(disk, &script.source)),
            Effect::Write(path) => {
                let mode = script
                    .source
                    .lines()
                    .find_map(|l| l.strip_prefix("chmod "))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|m| u32::from_str_radix(m, 8).ok())
                    .unwrap_or(0o644);
                let text = String::from_utf8_lossy(script.stdin.as_deref().unwrap_or_default());
                disk.files.insert(path, (text.into_owned(), mode));
                ok(String::new())
            }
            Effect::Read(path) => ok(disk
                .files
                .get(&path)
                .map(|(t, _)| t.clone())
                .unwrap_or_default()),
            Effect::Hash(path) => ok(disk
                .files
                .get(&path)
                .map(|(t, _)| format!("{}\n", sha256_hex(t.as_bytes())))
                .unwrap_or_default()),
            Effect::CheckAlive => {
                if disk.running {
                    ok("alive\n".into())
                } else {
                    ok(format!("dead\n{}", disk.log.join("\n")))
                }
            }
            Effect::Stop => {
                w.stop(&address);
                ok("stopped\n".into())
            }
            Effect::Retire => {
                let mut out = Vec::new();
                if disk.data {
                    disk.data = false;
                    out.push("moved the data dir's member aside".to_owned());
                }
                if let Some(cfg) = assignment(&script.source, "c").map(PathBuf::from)
                    && disk.files.remove(&cfg).is_some()
                {
                    out.push(format!("moved {} aside", cfg.display()));
                }
                disk.started_config = None;
                ok(out.join("\n"))
            }
            Effect::Start => start(&mut w, &address, &script.source),
        }
    }
}

/// What the probe prints for a disk (see observe/host.rs `parse_probe`).
fn probe_output(disk: &FakeDisk, source: &str) -> String {
    let mut out = String::new();
    for (kind, index, path) in probed_paths(source) {
        match (kind.as_str(), disk.files.get(&path)) {
            ("file", Some((text, _))) => {
                out.push_str(&format!("file\t{index}\t{}\n", base64(text)))
            }
            ("file", None) => out.push_str(&format!("file\t{index}\t-\n")),
            ("cert", Some((text, _))) => {
                out.push_str(&format!("cert\t{index}\t{}\n", base64(text)))
            }
            ("key", Some((_, mode))) => out.push_str(&format!("key\t{index}\t{mode:o}\n")),
            _ => {}
        }
    }
    out.push_str(if disk.data {
        "data\tmember\n"
    } else {
        "data\tabsent\n"
    });
    if disk.running {
        out.push_str(&format!(
            "service\trunning\t{}\nstarted-config\t{}\n",
            disk.pid,
            disk.started_config.as_deref().unwrap_or("")
        ));
    } else {
        out.push_str("service\tstopped\n");
    }
    match disk.binary {
        Some(v) => out.push_str(&format!("binary\tok\tetcd Version: {v}\n")),
        None => out.push_str("binary\tmissing\n"),
    }
    out
}

/// Starts etcd on a host with the config at the script's `cfg=`: it joins
/// the member whose name or peer URL the config gives, bootstraps a new
/// cluster from `initial-cluster`, or exits (shown by `check`).
fn start(w: &mut World, address: &str, source: &str) -> CommandOutput {
    let Some(cfg) = assignment(source, "cfg") else {
        return failed(2, "fake: start script without cfg=");
    };
    let Some(disk) = w.hosts.get_mut(address) else {
        return failed(2, "fake: no such host");
    };
    if disk.running {
        return ok(format!("running {}\n", disk.pid));
    }
    let Some(binary) = disk.binary else {
        return failed(3, "etcd binary not found or not executable");
    };
    disk.pid += 1;
    let pid = disk.pid;
    let has_data = disk.data;
    let exits = |w: &mut World, why: String| {
        if let Some(d) = w.hosts.get_mut(address) {
            d.running = false;
            d.log.push(why);
        }
        ok(format!("started {pid}\n"))
    };
    let Some((text, _)) = disk.files.get(Path::new(&cfg)).cloned() else {
        return exits(w, format!("open {cfg}: no such file or directory"));
    };
    let value = |k: &str| crate::hostfiles::read_value(&text, k).unwrap_or_default();
    let (name, peer, client) = (
        value("name"),
        Endpoint::parse(&value("initial-advertise-peer-urls")),
        Endpoint::parse(&value("advertise-client-urls")),
    );
    if w.members.is_empty() && value("initial-cluster-state") == "new" && !has_data {
        // Bootstrap: every member of initial-cluster exists, none started.
        w.cluster_id = 0xc1;
        for pair in value("initial-cluster").split(',') {
            let Some((n, url)) = pair.split_once('=') else {
                continue;
            };
            let id = w.new_id();
            w.members.push(FakeMember {
                id,
                name: n.to_owned(),
                peer_urls: Endpoint::parse(url).into_iter().collect(),
                client_urls: Vec::new(),
                learner: false,
                host: None,
                version: None,
                applied: 0,
            });
        }
    }
    let found = w.members.iter().position(|m| m.name == name).or_else(|| {
        w.members.iter().position(|m| {
            m.name.is_empty() && peer.as_ref().is_some_and(|p| m.peer_urls.contains(p))
        })
    });
    let Some(i) = found else {
        return exits(
            w,
            format!("member {name} is not in the cluster's member list; it exits"),
        );
    };
    let stall = w.stall_on_start.remove(&name);
    let m = &mut w.members[i];
    m.name = name;
    m.client_urls = client.into_iter().collect();
    m.host = Some(address.to_owned());
    m.version = Some(binary);
    if let Some(d) = w.hosts.get_mut(address) {
        d.running = true;
        d.stalled = stall;
        d.data = true;
        d.started_config = Some(sha256_hex(text.as_bytes()));
    }
    w.settle();
    ok(format!("started {pid}\n"))
}

#[async_trait]
impl Host for FakeHost {
    fn label(&self) -> String {
        self.address.clone()
    }

    async fn run(&self, script: &Script) -> Result<CommandOutput, HostError> {
        let failing = {
            let mut w = self.cluster.world();
            w.calls
                .push(format!("host {}: {}", self.address, script.what));
            let mut failing = false;
            for hook in &mut w.fail {
                if script.what.starts_with(&hook.prefix) {
                    hook.seen += 1;
                    failing |= hook.seen == hook.nth;
                }
            }
            failing
        };
        if failing {
            self.cluster.log(format!(
                "host {}: {} failed (test hook)",
                self.address, script.what
            ));
            return Ok(failed(
                1,
                &format!("fake: {} failed (test hook)", script.what),
            ));
        }
        match Effect::of(script) {
            Some(effect) => Ok(self.apply(effect, script)),
            None => Ok(failed(
                127,
                &format!("fake host: no model for the script \"{}\"", script.what),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap_or_else(|| unreachable!())
    }

    fn three() -> (FakeCluster, Vec<Endpoint>) {
        let mut d = String::from("[cluster]\nname = \"main\"\n[hosts]\ntransport = \"ssh\"\n");
        for i in 1..=3 {
            d.push_str(&format!(
                "[[member]]\nname = \"etcd-{i}\"\naddress = \"10.0.0.{}\"\n",
                10 + i
            ));
        }
        let ctx = crate::config::Context {
            base_dir: PathBuf::from("/srv"),
            home: None,
            file_hash: crate::config::hash(&d),
            releases: Default::default(),
        };
        let Ok(loaded) = crate::config::parse("etcdfile.toml", d, &ctx) else {
            panic!("etcdfile");
        };
        let fake = FakeCluster::running(&loaded.desired, "3.5.17", 0);
        let eps = (11..=13)
            .map(|i| ep(&format!("http://10.0.0.{i}:2379")))
            .collect();
        (fake, eps)
    }

    #[tokio::test]
    async fn a_stopped_member_stops_answering_and_leadership_moves() {
        let (fake, eps) = three();
        assert_eq!(fake.leader().as_deref(), Some("etcd-1"));
        fake.kill("etcd-1");
        let e = fake.status(&eps[0]).await.err().map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::Unavailable));
        assert_eq!(fake.leader().as_deref(), Some("etcd-2"));
        fake.kill("etcd-2");
        assert_eq!(fake.leader(), None, "one of three has no quorum");
        let s = fake.status(&eps[2]).await.ok().and_then(|s| s.leader);
        assert_eq!(s, None);
    }

    #[tokio::test]
    async fn an_added_member_is_a_nameless_learner_until_promoted() {
        let (fake, eps) = three();
        let peer = ep("http://10.0.0.14:2380");
        let id = match fake.add_learner(&eps[0], &peer).await {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        };
        let list = fake.member_list(&eps[1]).await.unwrap_or_default();
        let added = list.iter().find(|m| m.id == id);
        assert!(
            added.is_some_and(|m| m.is_learner && m.name.is_empty() && m.client_urls.is_empty())
        );
        // Never started: not in sync, so promote is refused.
        let e = fake.promote(&eps[0], id).await.err().map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::LearnerNotReady));
        // A second learner is refused.
        let e = fake
            .add_learner(&eps[0], &ep("http://10.0.0.15:2380"))
            .await
            .err()
            .map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::TooManyLearners));
    }

    #[tokio::test]
    async fn add_is_refused_while_a_voter_is_down_and_promote_of_a_voter_too() {
        let (fake, eps) = three();
        fake.kill("etcd-3");
        let e = fake
            .add_learner(&eps[0], &ep("http://10.0.0.14:2380"))
            .await
            .err()
            .map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::Unhealthy));
        let voter = fake.members()[0].id;
        let e = fake.promote(&eps[0], voter).await.err().map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::MemberNotLearner));
    }

    #[tokio::test]
    async fn move_leader_must_go_to_the_leader() {
        let (fake, eps) = three();
        let to = fake.members()[2].id;
        let e = fake.move_leader(&eps[1], to).await.err().map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::NotLeader));
        assert!(fake.move_leader(&eps[0], to).await.is_ok());
        assert_eq!(fake.leader().as_deref(), Some("etcd-3"));
    }

    #[test]
    fn the_probe_paths_are_read_from_the_script() {
        let src = "if [ -f /etc/etcd/etcd.conf.yml ]; then printf 'file\\t0\\t'; base64 -w0 < /etc/etcd/etcd.conf.yml; echo; else printf 'file\\t0\\t-\\n'; fi\n\
if [ -f '/a b/ca.crt' ]; then printf 'cert\\t0\\t'; base64 -w0 < '/a b/ca.crt'; echo; fi\n\
if [ -f /k ]; then printf 'key\\t1\\t%s\\n' \"$(stat -c %a /k)\"; fi\n";
        assert_eq!(
            probed_paths(src),
            [
                (
                    "file".into(),
                    "0".into(),
                    PathBuf::from("/etc/etcd/etcd.conf.yml")
                ),
                ("cert".into(), "0".into(), PathBuf::from("/a b/ca.crt")),
                ("key".into(), "1".into(), PathBuf::from("/k")),
            ]
        );
    }

    #[test]
    fn scripts_are_recognised_by_their_label() {
        let s = |what: &str| Effect::of(&Script::new(what, ""));
        assert_eq!(s("start etcd-1"), Some(Effect::Start));
        assert_eq!(s("check etcd-1"), Some(Effect::CheckAlive));
        assert_eq!(
            s("write /etc/etcd/etcd.conf.yml"),
            Some(Effect::Write(PathBuf::from("/etc/etcd/etcd.conf.yml")))
        );
        // A version check is not the liveness check.
        assert_eq!(s("check etcd-1 runs etcd 3.5.17"), None);
        assert_eq!(s("upload etcd 3.5.17 to /usr/local/bin/etcd-3.5.17"), None);
    }
}
