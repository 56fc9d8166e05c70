//! The test-facing controls of a [`FakeCluster`]: build a running cluster
//! from a desired state, hand out its hosts, inspect it, and inject faults.

use std::sync::Arc;

use super::{FailHook, FakeCluster, FakeDisk, FakeHost, FakeMember, sha256_hex};
use crate::config::Desired;
use crate::io::EtcdErrorKind;
use crate::io::{ApiAlarm, HostMap};
use crate::model::{EtcdVersion, MinorVersion};

/// The storage version data written by `version` has: its minor version
/// from 3.6 on; none for older releases, which have no storage version.
fn storage_of(version: Option<EtcdVersion>) -> Option<MinorVersion> {
    version
        .map(EtcdVersion::minor)
        .filter(|v| (v.major, v.minor) >= (3, 6))
}

impl FakeCluster {
    /// An empty world: no members, no hosts.
    pub fn new() -> Self {
        Self::default()
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
                let release = version.map_or_else(
                    || crate::diff::start_release(from, None),
                    crate::model::EtcdVersion::minor,
                );
                for f in crate::hostfiles::member_files(from, m, &initial, release) {
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
                    storage: storage_of(version),
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
        if let Some(h) = w.host_of(name) {
            if let Some(d) = w.hosts.get_mut(&h) {
                d.log.push("fake: killed by the test".into());
            }
            w.stop(&h);
        }
        w.calls.push(format!("fake kill {name}"));
    }

    /// Member `name` loses its host's disk: its etcd dies and its data is gone.
    pub fn lose_disk(&self, name: &str) {
        self.kill(name);
        let mut w = self.world();
        if let Some(d) = w.host_of(name).and_then(|h| w.hosts.get_mut(&h)) {
            d.data = false;
        }
        w.calls.push(format!("fake lose disk {name}"));
    }

    /// Member `name` comes back with its data (a host thought lost returns).
    pub fn revive(&self, name: &str) {
        let mut w = self.world();
        if let Some(d) = w.host_of(name).and_then(|h| w.hosts.get_mut(&h)) {
            d.data = true;
            d.running = true;
            d.stalled = false;
        }
        w.settle();
        w.calls.push(format!("fake revive {name}"));
    }

    /// Member `name`'s etcd runs under something other than etcdplan's
    /// service (a hand-built cluster), as far as its host shows.
    pub fn foreign(&self, name: &str) {
        let mut w = self.world();
        if let Some(d) = w.host_of(name).and_then(|h| w.hosts.get_mut(&h)) {
            d.foreign = true;
            d.started_config = None;
            d.files.clear();
        }
    }

    /// From now on a quorum read without a leader never answers, as etcd's
    /// waits out its caller's deadline, instead of failing at once.
    pub fn reads_wait_for_a_leader(&self) {
        self.world().reads_wait_for_a_leader = true;
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

    /// The binary on the host of member `name` becomes `version` (an
    /// operator installed it); the running etcd is not disturbed, its next
    /// start runs it.
    pub fn install_binary(&self, name: &str, version: &str) {
        let mut w = self.world();
        if let Some(d) = w.host_of(name).and_then(|h| w.hosts.get_mut(&h)) {
            d.binary = EtcdVersion::parse(version);
        }
    }

    /// The cluster version now.
    pub fn cluster_version(&self) -> Option<MinorVersion> {
        self.world().cluster_version()
    }

    /// The target of the downgrade enabled now, if one is.
    pub fn downgrade_enabled(&self) -> Option<MinorVersion> {
        self.world().downgrade
    }

    /// Each member's storage version now, by name.
    pub fn storage_versions(&self) -> Vec<(String, Option<MinorVersion>)> {
        self.world()
            .members
            .iter()
            .map(|m| (m.name.clone(), m.storage))
            .collect()
    }

    /// Every `downgrade` call is refused from now on with `kind` and etcd's
    /// message `message` (a test hook).
    pub fn fail_downgrade(&self, kind: EtcdErrorKind, message: &str) {
        self.world().fail_downgrade = Some((message.to_owned(), kind));
    }

    /// Downgrade calls are answered again (undoes [`fail_downgrade`](Self::fail_downgrade)).
    pub fn heal_downgrade(&self) {
        self.world().fail_downgrade = None;
    }

    /// Writes a key as a client would (tests of content reads).
    pub fn put(&self, key: &str, value: &str) {
        let mut w = self.world();
        w.index += 1;
        w.kv.insert(key.to_owned(), (value.to_owned(), None));
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

    /// Sets member `name`'s backend: its file size and the bytes in use.
    pub fn set_db(&self, name: &str, size: u64, in_use: u64) {
        let mut w = self.world();
        if let Some(id) = w.members.iter().find(|m| m.name == name).map(|m| m.id) {
            w.db.insert(id, (size, in_use));
        }
    }

    /// Sets the quota every member enforces (Status reports it, as 3.6 does).
    pub fn set_quota(&self, quota: u64) {
        self.world().quota = Some(quota);
    }

    /// Each member's backend (file size, in use), by name.
    pub fn dbs(&self) -> Vec<(String, u64, u64)> {
        let w = self.world();
        w.members
            .iter()
            .map(|m| {
                let (size, used) = w.db_of(m.id);
                (m.name.clone(), size, used)
            })
            .collect()
    }

    /// The revision the history is compacted to.
    pub fn compacted(&self) -> i64 {
        self.world().compacted
    }

    /// Raised alarms as (member name, kind).
    pub fn alarms(&self) -> Vec<(String, String)> {
        let w = self.world();
        w.alarms
            .iter()
            .map(|a| {
                let name = w
                    .members
                    .iter()
                    .find(|m| m.id == a.member)
                    .map_or_else(|| a.member.to_string(), |m| m.name.clone());
                (name, a.kind.clone())
            })
            .collect()
    }

    /// Makes member `name`'s defragmentation never end.
    pub fn stall_defrag(&self, name: &str) {
        self.world().defrag_stalls.insert(name.to_owned());
    }

    /// Member `name`'s HashKV differs from the others' (its data is corrupt).
    pub fn skew_hash(&self, name: &str) {
        self.world().hash_skew.insert(name.to_owned(), 0x5a5a_5a5a);
    }

    /// Member `name` reports `revision` as its compact revision in HashKV.
    pub fn set_compact_revision(&self, name: &str, revision: i64) {
        self.world().compact_of.insert(name.to_owned(), revision);
    }

    /// Member `name`'s `/metrics` answers `body`, or is refused (None).
    pub fn set_metrics(&self, name: &str, body: Option<&str>) {
        self.world()
            .metrics_of
            .insert(name.to_owned(), body.map(str::to_owned));
    }
}
