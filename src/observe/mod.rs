//! Stage 2: the live state, read from the etcd API and from every member's host.
//!
//! Observing never changes anything and never fails as a whole: an unreachable
//! host or member is a fact of the live state, recorded for the planner.

mod host;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::join_all;

use crate::config::Desired;
use crate::io::{EtcdApi, Host, HostMap};
use crate::model::{ClusterId, Endpoint};

pub use etcdplan_core::live::*;
pub(crate) use host::UNIT_OF_LP;
pub use host::{ProbeOutputError, parse_probe, probe_script};

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
    let (local_ca, previous_ca) = if let Some(x) = d.tls.external().filter(|_| d.tls.any()) {
        // The operator's CA: what the members' certificates must verify against.
        (std::fs::read_to_string(&x.ca_file).ok(), None)
    } else if d.tls.any() {
        crate::pki::local_cas(&d.tls.ca_dir)
    } else {
        (None, None)
    };
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
    // Side by side: without a quorum both wait out their deadline.
    let (statuses, alarms) = tokio::join!(
        join_all(list.iter().map(|m| member_status(d, etcd, m))),
        etcd.alarms(&answered_by)
    );
    let alarms = alarms.unwrap_or_default();
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
            .find(|dm| m.name.is(&dm.name))
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
    // The paths are the same whatever release the files are rendered for.
    let release = crate::diff::start_release(d, None);
    crate::hostfiles::member_files(d, m, &crate::hostfiles::Initial::bootstrap(d), release)
        .into_iter()
        .map(|f| f.path)
        .collect()
}
