//! `etcdplan status`: the live cluster as a table, or as JSON.

use std::fmt::Write as _;

use super::Style;
use crate::config::Desired;
use crate::model::ByteSize;
use crate::observe::{HostState, Live, LiveMember};
use crate::service::ServiceState;

fn join(urls: &[crate::model::Endpoint]) -> String {
    if urls.is_empty() {
        return "-".into();
    }
    urls.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn health(m: &LiveMember) -> String {
    match &m.status {
        Err(e) => format!("unreachable ({e})"),
        Ok(s) if s.healthy() => "healthy".into(),
        Ok(s) => {
            let mut why = s.reported.errors.clone();
            if s.reported.leader.is_none() {
                why.push("no leader".into());
            }
            if let Err(e) = &s.quorum_read {
                why.push(e.clone());
            }
            format!("unhealthy ({})", why.join("; "))
        }
    }
}

/// One line per member whose host is unreachable or whose etcd is not running.
fn host_lines(live: &Live, style: Style) -> String {
    let mut out = String::new();
    for (name, h) in &live.hosts {
        match h {
            HostState::Unreachable { reason, .. } => {
                let _ = writeln!(out, "{} {name}: host unreachable: {reason}", style.red("✗"));
            }
            HostState::Reached(f) if f.service == ServiceState::Stopped => {
                let _ = writeln!(
                    out,
                    "{} {name}: etcd is not running on its host",
                    style.yellow("!")
                );
            }
            HostState::Reached(_) => {}
        }
    }
    out
}

/// The status table.
pub fn human(live: &Live, d: &Desired, style: Style) -> String {
    let mut out = String::new();
    let Some(c) = &live.cluster else {
        let _ = writeln!(
            out,
            "{}",
            style.red("No member answers: the cluster is not running.")
        );
        for (ep, why) in &live.unreachable {
            let _ = writeln!(out, "  {ep}: {why}");
        }
        out.push_str(&host_lines(live, style));
        let _ = writeln!(
            out,
            "Run `etcdplan plan` to see what it would take to start it."
        );
        return out;
    };
    let leader = c.leader();
    let header = [
        "ID",
        "NAME",
        "PEER URLS",
        "CLIENT URLS",
        "LEADER",
        "VERSION",
        "DB SIZE",
        "RAFT INDEX",
        "LEARNER",
        "HEALTH",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for m in &c.members {
        let st = m.status.as_ref().ok().map(|s| &s.reported);
        rows.push(vec![
            m.id.to_string(),
            if m.name.is_empty() {
                "(unstarted)".into()
            } else {
                m.name.clone()
            },
            join(&m.peer_urls),
            join(&m.client_urls),
            if Some(m.id) == leader {
                "*".into()
            } else {
                String::new()
            },
            st.and_then(|s| s.version)
                .map_or("-".into(), |v| v.to_string()),
            st.map_or("-".into(), |s| ByteSize(s.db_size).human()),
            st.map_or("-".into(), |s| s.raft_index.to_string()),
            if m.is_learner {
                "yes".into()
            } else {
                "no".into()
            },
            health(m),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let _ = writeln!(
        out,
        "Cluster {:?} ({}), {} members",
        d.cluster.as_str(),
        c.id,
        c.members.len()
    );
    for (ri, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{:<w$}", cell, w = widths[i]))
            .collect();
        let line = line.join("  ").trim_end().to_owned();
        let line = if ri == 0 { style.bold(&line) } else { line };
        let _ = writeln!(out, "{line}");
    }
    for a in &c.alarms {
        let _ = writeln!(
            out,
            "{}",
            style.red(&format!("ALARM {} raised by member {}", a.kind, a.member))
        );
    }
    for m in &d.members {
        if c.find(&m.name, &m.peer_url(&d.tls)).is_none() {
            let _ = writeln!(out, "{} is in the etcdfile but not in the cluster.", m.name);
        }
    }
    out.push_str(&host_lines(live, style));
    out
}

/// Per desired member: its host's state, for JSON.
fn hosts_json(live: &Live) -> serde_json::Value {
    live.hosts
        .iter()
        .map(|(name, h)| {
            let v = match h {
                HostState::Unreachable { reason, advice } => {
                    serde_json::json!({"reachable": false, "reason": reason, "advice": advice})
                }
                HostState::Reached(f) => serde_json::json!({
                    "reachable": true,
                    "service": f.service,
                    "binary": f.binary,
                    "data_dir": f.data,
                }),
            };
            (name.to_string(), v)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The status as JSON: ids in hex, sizes in bytes.
pub fn json(live: &Live, d: &Desired) -> serde_json::Value {
    let Some(c) = &live.cluster else {
        return serde_json::json!({
            "cluster": d.cluster,
            "running": false,
            "unreachable": live.unreachable.iter().map(|(e, w)| serde_json::json!({"endpoint": e, "error": w})).collect::<Vec<_>>(),
            "hosts": hosts_json(live),
        });
    };
    let leader = c.leader();
    let members: Vec<serde_json::Value> = c
        .members
        .iter()
        .map(|m| {
            let st = m.status.as_ref().ok().map(|s| &s.reported);
            serde_json::json!({
                "id": m.id,
                "name": m.name,
                "peer_urls": m.peer_urls,
                "client_urls": m.client_urls,
                "leader": Some(m.id) == leader,
                "is_learner": m.is_learner,
                "version": st.and_then(|s| s.version),
                "db_size": st.map(|s| s.db_size),
                "raft_index": st.map(|s| s.raft_index),
                "raft_applied_index": st.map(|s| s.raft_applied_index),
                "healthy": m.healthy(),
                "health": health(m),
            })
        })
        .collect();
    serde_json::json!({
        "cluster": d.cluster,
        "cluster_id": c.id,
        "running": true,
        "leader": leader,
        "members": members,
        "alarms": c.alarms,
        "hosts": hosts_json(live),
    })
}
