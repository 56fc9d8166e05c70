//! Stage 2: the live state, read from the etcd API and from every member's host.
//!
//! Observing never changes anything and never fails as a whole: an unreachable
//! host or member is a fact of the live state, recorded for the planner.

mod fingerprint;
mod host;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::join_all;

use crate::config::Desired;
use crate::io::{ApiAlarm, ApiMember, ApiStatus, EtcdApi, Host, HostMap};
use crate::model::{ClusterId, Endpoint, MemberId, MemberName};

pub use fingerprint::{Fingerprint, changes as fingerprint_changes, fingerprint};
pub use host::{Binary, DataDir, HostCerts, HostFacts, parse_probe, probe_script};

use crate::service::ServiceState;

/// Everything etcdplan knows about the live cluster and its hosts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Live {
    /// The cluster as the etcd API shows it; `None` when no member answered.
    pub cluster: Option<LiveCluster>,
    /// What each desired member's host shows.
    pub hosts: BTreeMap<MemberName, HostState>,
    /// Endpoints that did not answer MemberList, with why.
    pub unreachable: Vec<(Endpoint, String)>,
    /// The operator's CA certificate (PEM) in `ca_dir`, when there is one:
    /// member certificates are checked against it.
    pub local_ca: Option<String>,
    /// The CA a rotation replaces (`ca_dir/previous/ca.crt`), while it is kept:
    /// members trust it next to `local_ca` until it is retired.
    pub previous_ca: Option<String>,
    /// When this was observed (unix seconds); certificate expiry is judged from it.
    pub observed_at: i64,
}

/// The cluster as the etcd API reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveCluster {
    /// The cluster id.
    pub id: ClusterId,
    /// The endpoint that answered MemberList.
    pub answered_by: Endpoint,
    /// Members, as MemberList lists them.
    pub members: Vec<LiveMember>,
    /// Active alarms.
    pub alarms: Vec<ApiAlarm>,
}

/// One member of the live cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveMember {
    /// Member id.
    pub id: MemberId,
    /// Name; empty while the member was never started.
    pub name: String,
    /// Advertised peer URLs.
    pub peer_urls: Vec<Endpoint>,
    /// Advertised client URLs.
    pub client_urls: Vec<Endpoint>,
    /// Learner or voter.
    pub is_learner: bool,
    /// Its own Status, or why it could not be read.
    pub status: Result<MemberStatus, String>,
}

/// What the member reports about itself, plus a quorum read through it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberStatus {
    /// The member's own Status answer.
    #[serde(flatten)]
    pub reported: ApiStatus,
    /// Whether a linearizable read through it succeeded.
    pub quorum_read: Result<(), String>,
}

impl MemberStatus {
    /// Healthy: has a leader, reports no errors, and serves a quorum read.
    /// The one definition; the execute gates use it too.
    pub fn healthy(&self) -> bool {
        self.problem().is_none()
    }

    /// Why it is not [healthy](Self::healthy), or `None` when it is.
    pub fn problem(&self) -> Option<String> {
        Self::report_problem(&self.reported).or_else(|| {
            self.quorum_read
                .as_ref()
                .err()
                .map(|e| format!("quorum read failed: {e}"))
        })
    }

    /// The part of [`problem`](Self::problem) a Status answer alone shows:
    /// no leader, or errors the member reports. A caller may skip the quorum
    /// read when this is already a reason.
    pub fn report_problem(reported: &ApiStatus) -> Option<String> {
        if reported.leader.is_none() {
            Some("no leader yet".into())
        } else if !reported.errors.is_empty() {
            Some(reported.errors.join("; "))
        } else {
            None
        }
    }
}

impl Live {
    /// What the host of the member named `name` (as MemberList names it) showed.
    pub fn facts_of(&self, name: &str) -> Option<&HostFacts> {
        let name = MemberName::parse(name).ok()?;
        self.hosts.get(&name).and_then(HostState::facts)
    }
}

impl LiveMember {
    /// Started: it has published its name (a member added but never started has none).
    pub fn started(&self) -> bool {
        !self.name.is_empty()
    }

    /// Healthy per [`MemberStatus::healthy`].
    pub fn healthy(&self) -> bool {
        self.status.as_ref().is_ok_and(MemberStatus::healthy)
    }

    /// The version it runs, as its Status reports it.
    pub fn version(&self) -> Option<crate::model::EtcdVersion> {
        self.status.as_ref().ok()?.reported.version
    }
}

impl LiveCluster {
    /// The versions the members that answer run.
    pub fn running_versions(&self) -> Vec<crate::model::EtcdVersion> {
        self.members
            .iter()
            .filter_map(LiveMember::version)
            .collect()
    }
}

impl LiveCluster {
    /// The leader, as the healthy members agree on it.
    pub fn leader(&self) -> Option<MemberId> {
        self.members
            .iter()
            .filter_map(|m| m.status.as_ref().ok())
            .find_map(|s| s.reported.leader)
    }

    /// The live member carrying this desired name, or (never started) this peer URL.
    pub fn find(&self, name: &MemberName, peer: &Endpoint) -> Option<&LiveMember> {
        self.members
            .iter()
            .find(|m| m.name == name.as_str())
            .or_else(|| {
                self.members
                    .iter()
                    .find(|m| !m.started() && m.peer_urls.contains(peer))
            })
    }
}

/// A host as observed.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "state")]
// One per member and run: boxing the facts would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum HostState {
    /// The host answered the probe.
    Reached(HostFacts),
    /// The probe failed: one line saying why, and what to do.
    Unreachable {
        /// Why.
        reason: String,
        /// What to do.
        advice: String,
    },
}

impl HostState {
    /// The facts, when the host was reached.
    pub fn facts(&self) -> Option<&HostFacts> {
        match self {
            Self::Reached(f) => Some(f),
            Self::Unreachable { .. } => None,
        }
    }

    /// Whether etcd runs there.
    pub fn running(&self) -> bool {
        self.facts()
            .is_some_and(|f| matches!(f.service, ServiceState::Running(_)))
    }
}

/// Reads the live state: hosts and etcd in parallel, each call under its deadline.
pub async fn observe(d: &Desired, hosts: &HostMap, etcd: &dyn EtcdApi) -> Live {
    let host_probe = join_all(d.members.iter().map(|m| {
        let host: Option<Arc<dyn Host>> = hosts.get(&m.address);
        async move {
            let state = match host {
                Some(h) => host::probe(h.as_ref(), d, m).await,
                None => HostState::Unreachable {
                    reason: "no host for this member".into(),
                    advice: "this is a bug in etcdplan".into(),
                },
            };
            (m.name.clone(), state)
        }
    }));
    let timed = |label: &'static str| {
        let start = std::time::Instant::now();
        move || {
            tracing::debug!(
                "observe: {label} took {:.3}s",
                start.elapsed().as_secs_f64()
            )
        }
    };
    let hosts_done = timed("host probes");
    let etcd_done = timed("etcd API");
    let (host_states, (mut cluster, mut unreachable)) = tokio::join!(
        async {
            let r = host_probe.await;
            hosts_done();
            r
        },
        async {
            let r = observe_cluster(d, etcd, d.client_urls()).await;
            etcd_done();
            r
        }
    );
    if cluster.is_none() {
        // The etcdfile may name client ports the members do not listen on yet
        // (a port change not applied): ask where they say they listen.
        let advertised: Vec<Endpoint> = host_states
            .iter()
            .filter_map(|(name, h)| {
                let m = d.member(name)?;
                let text = h.facts()?.file(&m.config_file())?;
                crate::hostfiles::read_value(text, "advertise-client-urls")
            })
            .flat_map(|v| v.split(',').filter_map(Endpoint::parse).collect::<Vec<_>>())
            .filter(|u| !d.client_urls().contains(u))
            .collect();
        if !advertised.is_empty() {
            (cluster, unreachable) = observe_cluster(d, etcd, advertised).await;
        }
    }
    let read_ca = |dir: &std::path::Path| {
        d.tls
            .any()
            .then(|| std::fs::read_to_string(dir.join(crate::pki::CA_CERT)).ok())
            .flatten()
    };
    let local_ca = read_ca(&d.tls.ca_dir);
    let previous_ca = read_ca(&d.tls.ca_dir.join(crate::pki::PREVIOUS_DIR));
    Live {
        cluster,
        hosts: host_states.into_iter().collect(),
        unreachable,
        local_ca,
        previous_ca,
        observed_at: crate::pki::now(),
    }
}

async fn observe_cluster(
    d: &Desired,
    etcd: &dyn EtcdApi,
    urls: Vec<Endpoint>,
) -> (Option<LiveCluster>, Vec<(Endpoint, String)>) {
    let lists = join_all(urls.iter().map(|u| etcd.member_list(u))).await;
    let mut unreachable = Vec::new();
    let mut found: Option<(Endpoint, Vec<ApiMember>)> = None;
    for (u, r) in urls.iter().zip(lists) {
        match r {
            Ok(list) if found.is_none() => found = Some((u.clone(), list)),
            Ok(_) => {}
            Err(e) => unreachable.push((u.clone(), short(&e.to_string(), u))),
        }
    }
    let Some((answered_by, list)) = found else {
        return (None, unreachable);
    };
    let statuses = join_all(list.iter().map(|m| member_status(d, etcd, m))).await;
    let alarms = etcd.alarms(&answered_by).await.unwrap_or_default();
    let id = statuses
        .iter()
        .find_map(|s| s.as_ref().ok().map(|(cid, _)| *cid))
        .unwrap_or(ClusterId(0));
    let members = list
        .into_iter()
        .zip(statuses)
        .map(|(m, s)| LiveMember {
            id: m.id,
            name: m.name,
            peer_urls: m.peer_urls,
            client_urls: m.client_urls,
            is_learner: m.is_learner,
            status: s.map(|(_, st)| st),
        })
        .collect();
    (
        Some(LiveCluster {
            id,
            answered_by,
            members,
            alarms,
        }),
        unreachable,
    )
}

/// The endpoint to reach a member on: what it advertises, else what the file says.
fn member_endpoint(d: &Desired, m: &ApiMember) -> Option<Endpoint> {
    m.client_urls.first().cloned().or_else(|| {
        d.members
            .iter()
            .find(|dm| dm.name.as_str() == m.name)
            .map(|dm| dm.client_url(&d.tls))
    })
}

async fn member_status(
    d: &Desired,
    etcd: &dyn EtcdApi,
    m: &ApiMember,
) -> Result<(ClusterId, MemberStatus), String> {
    let Some(ep) = member_endpoint(d, m) else {
        return Err("not started: no client URL yet".into());
    };
    let (status, read) = tokio::join!(etcd.status(&ep), async {
        if m.is_learner {
            // Learners refuse linearizable reads by design.
            Ok(())
        } else {
            etcd.quorum_read(&ep).await
        }
    });
    let s: ApiStatus = status.map_err(|e| short(&e.to_string(), &ep))?;
    Ok((
        s.cluster_id,
        MemberStatus {
            reported: s,
            quorum_read: read.map_err(|e| short(&e.to_string(), &ep)),
        },
    ))
}

/// Drops the endpoint prefix an error already carries, for compact tables.
fn short(msg: &str, ep: &Endpoint) -> String {
    msg.strip_prefix(&format!("{ep}: "))
        .unwrap_or(msg)
        .to_owned()
}

/// The file paths etcdplan owns for a member, in probe order.
pub fn owned_paths(d: &Desired, m: &crate::config::DesiredMember) -> Vec<PathBuf> {
    crate::hostfiles::member_files(d, m, &crate::hostfiles::Initial::bootstrap(d))
        .into_iter()
        .map(|f| f.path)
        .collect()
}
