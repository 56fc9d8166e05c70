//! Builders for described live states: the planner is pure, so its tests feed
//! it a `Desired` parsed from text and a `Live` written by hand.

#![allow(dead_code)]

pub mod fakes;
pub mod plans;
pub mod versions;

use std::path::PathBuf;

use etcdplan::config::{self, Context, Desired};
use etcdplan::hostfiles::{self, Initial};
use etcdplan::io::ApiStatus;
use etcdplan::live::{ApiHashKv, HashCheck, MemberHash};
use etcdplan::model::{ClusterId, EtcdVersion, MemberId};
use etcdplan::observe::{
    Binary, DataDir, HostCerts, HostFacts, HostState, Listener, ListenerUnit, Live, LiveCluster,
    LiveMember, MemberStatus, ProbeProblem, UnitState,
};
use etcdplan::service::ServiceState;

/// A 3-member ssh cluster with the process service, `extra` appended to [etcd].
pub fn desired_with(n: usize, etcd_extra: &str) -> Desired {
    desired_from(&text_with(n, etcd_extra))
}

/// The etcdfile text behind [`desired_with`].
pub fn text_with(n: usize, etcd_extra: &str) -> String {
    let mut text = format!(
        "[cluster]\nname = \"main\"\n\n[etcd]\ndata_dir = \"/var/lib/etcd\"\n{etcd_extra}\n[hosts]\ntransport = \"ssh\"\nservice = \"process\"\n"
    );
    for i in 1..=n {
        text.push_str(&format!(
            "\n[[member]]\nname = \"etcd-{i}\"\naddress = \"10.0.0.{}\"\n",
            10 + i
        ));
    }
    text
}

/// Parses etcdfile text with a fixed context.
pub fn desired_from(text: &str) -> Desired {
    let ctx = Context {
        base_dir: PathBuf::from("/srv/etcdplan"),
        home: Some(PathBuf::from("/home/operator")),
        file_hash: config::hash(text),
        ..Default::default()
    };
    match config::parse("etcdfile.toml", text.to_owned(), &ctx) {
        Ok(l) => l.desired,
        Err(e) => panic!("test etcdfile invalid: {e:?}"),
    }
}

/// How a host looks.
#[derive(Clone)]
pub struct HostSpec {
    pub running: bool,
    pub data: DataDir,
    /// The config file on disk (and, under systemd, the unit) was rendered
    /// from this desired state (None: absent).
    pub config_from: Option<Desired>,
    pub binary: Binary,
    pub listening: Vec<String>,
    pub started_config: Option<String>,
    pub certs: HostCerts,
    /// The systemd unit's state (None: the process service).
    pub unit: Option<UnitState>,
    /// What the probe reported as stopping etcd from starting there.
    pub problems: Vec<ProbeProblem>,
    /// Who owns the data dir (None: not reported).
    pub data_owner: Option<String>,
    /// The user the running etcd runs as (None: not reported).
    pub service_user: Option<String>,
    /// An etcd on the member's ports that etcdplan did not start (None: when
    /// running, the listener is etcdplan's own etcd).
    pub foreign: Option<Listener>,
    /// Whose data the WAL says it is (None: not read).
    pub data_owner_id: Option<(MemberId, ClusterId)>,
}

impl HostSpec {
    pub fn empty() -> Self {
        Self {
            running: false,
            data: DataDir::Absent,
            config_from: None,
            binary: Binary::Found {
                version: EtcdVersion::parse("3.4.23"),
            },
            listening: Vec::new(),
            started_config: None,
            certs: HostCerts::default(),
            unit: None,
            problems: Vec::new(),
            data_owner: None,
            service_user: None,
            foreign: None,
            data_owner_id: None,
        }
    }

    /// A member that was bootstrapped from `d` and runs with that config.
    pub fn running_from(d: &Desired) -> Self {
        Self {
            running: true,
            data: DataDir::Member,
            config_from: Some(d.clone()),
            ..Self::empty()
        }
    }
}

/// The release a host's files were rendered for: its binary's, as the
/// diff renders them (`diff::start_release`).
pub fn release(from: &Desired, spec: &HostSpec) -> etcdplan::model::MinorVersion {
    spec.binary.version().map_or_else(
        || etcdplan::diff::start_release(from, None),
        EtcdVersion::minor,
    )
}

/// The facts for member `i` (0-based) of `d` under `spec`.
pub fn facts(d: &Desired, i: usize, spec: &HostSpec) -> HostFacts {
    let m = &d.members[i];
    let file = spec.config_from.as_ref().map(|from| {
        let fm = &from.members[i];
        hostfiles::etcd_config(from, fm, &Initial::bootstrap(from), release(from, spec))
    });
    let started_config = spec.started_config.clone().or_else(|| {
        (spec.running)
            .then(|| file.as_deref().map(config::hash))
            .flatten()
    });
    let mut files = vec![(m.config_file(), file)];
    // Under systemd, the unit etcdplan rendered from the same state.
    if let Some(from) = &spec.config_from
        && from.hosts.service == config::ServiceKind::Systemd
    {
        files.push((
            hostfiles::systemd_unit::unit_path(),
            Some(hostfiles::systemd_unit::unit(from, &from.members[i])),
        ));
    }
    HostFacts {
        files,
        data: spec.data,
        service: if spec.running {
            ServiceState::Running(1000 + i as u32)
        } else {
            ServiceState::Stopped
        },
        started_config,
        binary: spec.binary.clone(),
        listening: Some(
            spec.listening
                .iter()
                .map(|a| a.parse().unwrap_or_else(|e| panic!("{e}")))
                .collect(),
        ),
        problems: spec.problems.clone(),
        certs: spec.certs.clone(),
        auth_files: Default::default(),
        started_ca: None,
        installed: std::collections::BTreeMap::new(),
        unit: spec.unit.clone(),
        data_owner: spec.data_owner.clone(),
        service_user: spec.service_user.clone(),
        restore_pending: None,
        data_owner_id: spec.data_owner_id,
        // What `ss -p` finds on the ports: a foreign etcd, or etcdplan's own.
        listener: spec.foreign.clone().or_else(|| {
            spec.running.then(|| {
                let systemd = d.hosts.service == config::ServiceKind::Systemd;
                Listener {
                    pid: 1000 + i as u32,
                    cmdline: vec![
                        "/usr/bin/etcd".into(),
                        "--config-file".into(),
                        "/etc/etcd/etcd.conf.yml".into(),
                    ],
                    unit: systemd.then(|| ListenerUnit {
                        name: hostfiles::systemd_unit::UNIT.into(),
                        fragment: Some(hostfiles::systemd_unit::unit_path()),
                        dropins: Vec::new(),
                        env_files: Vec::new(),
                    }),
                }
            })
        }),
    }
}

/// A live cluster made of `d`'s members; `healthy[i]` per member, leader index.
pub fn cluster(d: &Desired, healthy: &[bool], leader: usize) -> LiveCluster {
    let members = d
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| LiveMember {
            id: MemberId(0x1000 + i as u64),
            name: etcdplan::live::LiveName::Started(m.name.to_string()),
            peer_urls: vec![m.peer_url(&d.tls)],
            client_urls: vec![m.client_url(&d.tls)],
            is_learner: false,
            status: if healthy.get(i).copied().unwrap_or(true) {
                Ok(MemberStatus {
                    reported: ApiStatus {
                        cluster_id: ClusterId(0xc1),
                        member_id: MemberId(0x1000 + i as u64),
                        version: EtcdVersion::parse("3.4.23"),
                        db_size: 20480,
                        db_size_in_use: 16384,
                        db_quota: None,
                        leader: Some(MemberId(0x1000 + leader as u64)),
                        raft_index: 42,
                        raft_applied_index: 42,
                        raft_term: 2,
                        revision: 40,
                        errors: Vec::new(),
                        is_learner: false,
                        storage_version: None,
                        downgrade: None,
                    },
                    quorum_read: Ok(()),
                })
            } else {
                Err("connection refused".into())
            },
            db: None,
        })
        .map(|mut m: LiveMember| {
            // The backend as observe makes it when neither Status, metrics
            // nor the config file say the quota: etcd's default.
            m.db = m
                .status
                .as_ref()
                .ok()
                .map(|s| etcdplan::live::db_state(&s.reported, None, None));
            m
        })
        .collect::<Vec<LiveMember>>();
    // The voters that answer agree on their data at revision 40.
    let hash_check = HashCheck::judge(
        40,
        members
            .iter()
            .filter(|m| m.status.is_ok())
            .map(|m| MemberHash {
                id: m.id,
                name: m.name.clone(),
                answer: Ok(ApiHashKv {
                    hash: 0x7c3a_91e2,
                    compact_revision: 0,
                    hash_revision: None,
                    header_revision: 40,
                }),
            })
            .collect(),
    );
    LiveCluster {
        id: ClusterId(0xc1),
        answered_by: d.members[0].client_url(&d.tls),
        members,
        alarms: Vec::new(),
        hash_check: Some(hash_check),
    }
}

/// A live state: hosts per spec, and the cluster if any.
pub fn live(d: &Desired, specs: &[HostSpec], cluster: Option<LiveCluster>) -> Live {
    Live {
        cluster,
        hosts: d
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), HostState::Reached(facts(d, i, &specs[i]))))
            .collect(),
        unreachable: Vec::new(),
        local_ca: None,
        previous_ca: None,
        observed_at: 1_790_000_000,
        auth: None,
        local_auth: Default::default(),
        auth_refused: None,
    }
}

/// Every example etcdfile and the repository's demo etcdfile.
pub fn example_etcdfiles() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("examples")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.push(PathBuf::from("etcdfile.toml"));
    files.sort();
    files
}

/// Deadlines for a fake whose elections and catch-up are instant.
pub fn quick() -> etcdplan::execute::Deadlines {
    etcdplan::execute::Deadlines {
        gate: std::time::Duration::from_millis(300),
        poll: std::time::Duration::from_millis(10),
        stop_grace: std::time::Duration::from_millis(100),
        settle: std::time::Duration::from_millis(50),
    }
}
