//! A fingerprint of everything a plan depends on in the live state: membership,
//! URLs, health, and what each host shows (files, service, data dir). Not the KV
//! revision, raft indices or sizes, which move with every write. A saved plan
//! keeps it; applying the plan later refuses when it differs, and says what changed.

use std::collections::BTreeMap;

use super::{HostState, Live, ServiceState};

/// Named facts, each with a short value; compared key by key.
pub type Fingerprint = BTreeMap<String, String>;

fn short_hash(text: &str) -> String {
    crate::config::hash(text)[..16].to_owned()
}

/// The fingerprint of a live state.
pub fn fingerprint(live: &Live) -> Fingerprint {
    let mut f = Fingerprint::new();
    match &live.cluster {
        None => {
            f.insert("cluster".into(), "not running".into());
        }
        Some(c) => {
            f.insert("cluster".into(), c.id.to_string());
            f.insert(
                "leader".into(),
                c.leader().map_or("none".into(), |l| l.to_string()),
            );
            for m in &c.members {
                let key = format!("member {}", m.id);
                let urls = |u: &[crate::model::Endpoint]| {
                    u.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                f.insert(
                    key,
                    format!(
                        "name={} peer={} client={} learner={} healthy={}",
                        m.name.as_started().unwrap_or("-"),
                        urls(&m.peer_urls),
                        urls(&m.client_urls),
                        m.is_learner,
                        m.healthy()
                    ),
                );
            }
            // A downgrade enabled or cancelled since changes what a version
            // plan must do (only present while one is under way).
            if let Some(t) = c.downgrade_in_progress() {
                f.insert("downgrade".into(), format!("enabled to {t}"));
            }
            for a in &c.alarms {
                f.insert(format!("alarm {} {}", a.member, a.kind), "raised".into());
            }
        }
    }
    // The auth store (only once observe reads it): a saved plan's auth
    // steps were made against these users, roles and password checks.
    if let Some(a) = &live.auth {
        let store = match &a.store {
            Ok(s) => serde_json::to_string(s).map_or_else(|e| e.to_string(), |t| short_hash(&t)),
            Err(e) => format!("unreadable ({e})"),
        };
        f.insert(
            "auth".into(),
            format!("enabled={} store={store}", a.enabled),
        );
    }
    for (name, h) in &live.hosts {
        match h {
            HostState::Unreachable { .. } => {
                f.insert(format!("host of {name}"), "unreachable".into());
            }
            HostState::Reached(facts) => {
                let service = match facts.service {
                    ServiceState::Running(_) => "running",
                    ServiceState::Stopped => "stopped",
                };
                f.insert(
                    format!("host of {name}"),
                    format!(
                        "service={service} data={:?} started-config={}",
                        facts.data,
                        facts
                            .started_config
                            .as_deref()
                            .map_or("-", |h| &h[..16.min(h.len())])
                    )
                    .to_lowercase(),
                );
                let c = &facts.certs;
                if c.ca.is_some() || c.server.is_some() || c.peer.is_some() {
                    let all = [&c.ca, &c.server, &c.peer, &facts.started_ca]
                        .map(|x| x.as_deref().unwrap_or("-"))
                        .join("\n");
                    f.insert(format!("certificates of {name}"), short_hash(&all));
                }
                if !facts.installed.is_empty() || facts.binary.version().is_some() {
                    let releases: Vec<String> = facts
                        .installed
                        .iter()
                        .map(|(v, sha)| format!("{v}:{}", &sha[..12.min(sha.len())]))
                        .collect();
                    f.insert(
                        format!("binary of {name}"),
                        format!(
                            "{} installed={}",
                            facts.binary.version().map_or("-".into(), |v| v.to_string()),
                            releases.join(",")
                        ),
                    );
                }
                if facts.data_owner.is_some() || facts.service_user.is_some() {
                    let or_dash = |u: &Option<String>| u.clone().unwrap_or_else(|| "-".into());
                    f.insert(
                        format!("users of {name}"),
                        format!(
                            "data-owner={} etcd-user={}",
                            or_dash(&facts.data_owner),
                            or_dash(&facts.service_user)
                        ),
                    );
                }
                for (path, content) in &facts.files {
                    f.insert(
                        format!("file {} of {name}", path.display()),
                        content.as_deref().map_or("absent".into(), short_hash),
                    );
                }
            }
        }
    }
    f
}

/// What differs between a saved fingerprint and the current one, one line each.
pub fn changes(saved: &Fingerprint, now: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in saved {
        match now.get(k) {
            None => out.push(format!("{k}: gone (was {v})")),
            Some(n) if n != v => out.push(format!("{k}: {v} → {n}")),
            Some(_) => {}
        }
    }
    for (k, v) in now {
        if !saved.contains_key(k) {
            out.push(format!("{k}: new ({v})"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_listed_per_fact() {
        let a: Fingerprint = [("x".to_string(), "1".to_string()), ("y".into(), "2".into())].into();
        let b: Fingerprint = [
            ("x".to_string(), "1".to_string()),
            ("y".into(), "3".into()),
            ("z".into(), "4".into()),
        ]
        .into();
        assert_eq!(changes(&a, &b), ["y: 2 → 3", "z: new (4)"]);
        assert!(changes(&a, &a).is_empty());
    }
}
