//! `etcdplan status`: the live cluster as a table, or as JSON.

use std::fmt::Write as _;

use super::Style;
use crate::config::{Desired, ServiceKind};
use crate::hostfiles::systemd_unit::UNIT;
use crate::live::{ActiveState, ServiceState};
use crate::live::{DbState, HashCheck, HashVerdict, QuotaSource};
use crate::live::{HostState, Live, LiveCluster, LiveMember};
use crate::model::{ByteSize, EtcdVersion, MemberId};

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

/// One line per member with the systemd service: its unit's state, and what
/// of it needs care (it would not start at boot; systemd runs an older copy
/// of its file).
fn unit_lines(live: &Live, d: &Desired, style: Style) -> String {
    let mut out = String::new();
    if d.hosts.service != ServiceKind::Systemd {
        return out;
    }
    let _ = writeln!(out, "{}", style.bold("Units:"));
    let w = live
        .hosts
        .keys()
        .map(|n| n.as_str().len())
        .max()
        .unwrap_or(0);
    for (name, h) in &live.hosts {
        let Some(f) = h.facts() else { continue };
        let Some(u) = &f.unit else {
            let _ = writeln!(
                out,
                "  {name:<w$}  {UNIT}: state unknown (systemd did not answer the probe)"
            );
            continue;
        };
        let state = format!("{} ({})", u.active, u.sub);
        let state = match u.active {
            ActiveState::Active => state,
            ActiveState::Failed => style.red(&state),
            _ => style.yellow(&state),
        };
        let enabled = if u.enabled.masked() {
            style.red(&format!("{}: systemd refuses to start it", u.enabled))
        } else if u.starts_at_boot() {
            u.enabled.to_string()
        } else {
            style.yellow(&format!(
                "{}: the member would not start at boot",
                u.enabled
            ))
        };
        let reload = if u.needs_reload {
            style.yellow("; its file changed since systemd loaded it (read at the next restart)")
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {name:<w$}  {UNIT} {state}, {enabled}{reload}");
    }
    out
}

/// The unit's state for JSON: `null` for the process service, or when
/// systemd did not answer.
fn unit_json(f: &crate::live::HostFacts) -> serde_json::Value {
    match &f.unit {
        None => serde_json::Value::Null,
        Some(u) => serde_json::json!({
            "name": UNIT,
            "active": u.active,
            "sub": u.sub,
            "enabled": u.enabled,
            "needs_daemon_reload": u.needs_reload,
        }),
    }
}

/// The certificates found on a member's host, by role, parsed.
fn host_certs(
    f: &crate::live::HostFacts,
) -> Vec<(&'static str, Result<crate::cert::CertInfo, String>)> {
    [("server", &f.certs.server), ("peer", &f.certs.peer)]
        .into_iter()
        .filter_map(|(role, pem)| pem.as_deref().map(|p| (role, crate::cert::inspect(p))))
        .collect()
}

/// The version a member runs, and the binary on its host when that differs
/// (an upgrade waiting for a restart, or one rolled back).
fn version_cell(live: &Live, m: &LiveMember, running: Option<EtcdVersion>) -> String {
    let on_disk = live.facts_of(&m.name).and_then(|f| f.binary.version());
    match (running, on_disk) {
        (Some(r), Some(d)) if r != d => format!("{r} (binary {d})"),
        (Some(r), _) => r.to_string(),
        (None, _) => "-".into(),
    }
}

/// The CAs a bundle holds, as `"subject" (sha256 AB:CD…)`.
fn trusted(bundle: &str) -> Vec<String> {
    crate::cert::inspect_bundle(bundle)
        .into_iter()
        .map(|i| format!("{:?} (sha256 {})", i.subject, i.short_fingerprint()))
        .collect()
}

/// One line per certificate on the members' hosts, with days to expiry.
fn cert_lines(live: &Live, d: &Desired, style: Style) -> String {
    let mut out = String::new();
    if !d.tls.any() {
        return out;
    }
    let _ = writeln!(out, "{}", style.bold("Certificates:"));
    for (name, h) in &live.hosts {
        let Some(f) = h.facts() else { continue };
        let certs = host_certs(f);
        if certs.is_empty() {
            let _ = writeln!(out, "  {name}: none on its host");
        }
        if let Some(running) = f.running_trust() {
            let file = f.certs.ca.as_deref().unwrap_or_default();
            let (now, on_disk) = (trusted(running), trusted(file));
            let _ = writeln!(
                out,
                "  {name} trusts {}{}",
                now.join(" + "),
                if on_disk == now {
                    String::new()
                } else {
                    style.yellow(&format!(
                        "; its ca.crt says {} (read at the next restart)",
                        on_disk.join(" + ")
                    ))
                }
            );
        }
        for (role, info) in certs {
            match info {
                Err(e) => {
                    let _ = writeln!(out, "  {name} {role}: {}", style.red(&e));
                }
                Ok(i) => {
                    let left = i.days_left(live.observed_at);
                    let days = format!("{left} days");
                    let days = if left < d.tls.renew_before_days {
                        style.yellow(&days)
                    } else {
                        days
                    };
                    let sans: Vec<String> = i.sans.iter().map(ToString::to_string).collect();
                    let _ = writeln!(
                        out,
                        "  {name:<w$} {role:<6} expires {} ({days})  issuer {:?}  sha256 {}  {}",
                        crate::cert::date(i.not_after),
                        i.issuer,
                        i.short_fingerprint(),
                        sans.join(","),
                        w = live
                            .hosts
                            .keys()
                            .map(|n| n.as_str().len())
                            .max()
                            .unwrap_or(0)
                    );
                }
            }
        }
    }
    out
}

/// A share (0 to 1) as a percentage with one decimal.
fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// One line per member that answered Status: its backend's size, what is in
/// use and free (fragmentation), and the quota with how much of it the file
/// takes (the quota compares the whole file, free pages included).
fn backend_lines(c: &LiveCluster, style: Style) -> String {
    let mut out = String::new();
    let rows: Vec<(String, DbState)> = c
        .members
        .iter()
        .filter_map(|m| Some((m.name.to_string(), m.db_figures().and(m.db)?)))
        .collect();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(out, "{}", style.bold("Backends:"));
    let w = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, db) in rows {
        let f = db.figures;
        let from = match db.quota_from {
            QuotaSource::Status => String::new(),
            other => format!(" ({})", other.word()),
        };
        let usage = format!(
            "{} of the quota {}{from}",
            percent(f.quota_usage()),
            ByteSize(f.db_quota).human()
        );
        // The NOSPACE alarm is near: say it in colour.
        let usage = if f.quota_usage() >= 0.8 {
            style.red(&usage)
        } else {
            usage
        };
        let defrag = if db.defragmenting == Some(true) {
            style.yellow(", defragmenting")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {name:<w$}  {} file, {} in use, {} free ({} of the file); {usage}{defrag}",
            ByteSize(f.db_size).human(),
            ByteSize(f.db_size_in_use).human(),
            ByteSize(f.free()).human(),
            percent(f.free_ratio()),
        );
    }
    out
}

/// The HashKV check in one sentence, and whether it found corruption.
fn hash_sentence(h: &HashCheck) -> (String, bool) {
    let names = |ids: &[MemberId]| {
        ids.iter()
            .map(|id| h.name_of(*id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hex = |id: MemberId| h.hash_of(id).map_or("-".into(), |x| format!("{x:#010x}"));
    let (mut text, bad) = match &h.verdict {
        HashVerdict::Agree { members } => (
            format!(
                "hashes agree at revision {} ({} members)",
                h.revision,
                members.len()
            ),
            false,
        ),
        HashVerdict::Disagree {
            majority,
            differing,
        } => {
            let each = differing
                .iter()
                .map(|id| format!("{} {}", h.name_of(*id), hex(*id)))
                .collect::<Vec<_>>()
                .join(", ");
            let text = match majority.first() {
                Some(first) => format!(
                    "members disagree at revision {}: {each} differ{} from {} {}",
                    h.revision,
                    if differing.len() == 1 { "s" } else { "" },
                    names(majority),
                    hex(*first)
                ),
                None => format!(
                    "members disagree at revision {}: {each} (no majority)",
                    h.revision
                ),
            };
            (text, true)
        }
        HashVerdict::NotComparable { reason } => (
            format!("hashes not compared at revision {}: {reason}", h.revision),
            false,
        ),
    };
    // Voters left out of a comparison that was made.
    if h.compact_revision.is_some() {
        for m in &h.members {
            match &m.answer {
                Err(e) => {
                    let _ = write!(text, "; {} not compared: {e}", h.name_of(m.id));
                }
                Ok(a) if Some(a.compact_revision) != h.compact_revision => {
                    let _ = write!(
                        text,
                        "; {} not compared: compacted at {}, the others at {}",
                        h.name_of(m.id),
                        a.compact_revision,
                        h.compact_revision.unwrap_or_default()
                    );
                }
                Ok(_) => {}
            }
        }
    }
    (text, bad)
}

/// The HashKV check for JSON: names, not ids, as the human line says them.
fn hash_json(h: &HashCheck) -> serde_json::Value {
    let names = |ids: &[MemberId]| ids.iter().map(|id| h.name_of(*id)).collect::<Vec<_>>();
    let (verdict, majority, differing, reason) = match &h.verdict {
        HashVerdict::Agree { .. } => ("agree", Vec::new(), Vec::new(), None),
        HashVerdict::Disagree {
            majority,
            differing,
        } => ("disagree", names(majority), names(differing), None),
        HashVerdict::NotComparable { reason } => {
            ("not_comparable", Vec::new(), Vec::new(), Some(reason))
        }
    };
    serde_json::json!({
        "revision": h.revision,
        "verdict": verdict,
        "compact_revision": h.compact_revision,
        "majority": majority,
        "differing": differing,
        "reason": reason,
        "summary": hash_sentence(h).0,
        "members": h.members.iter().map(|m| match &m.answer {
            Ok(a) => serde_json::json!({
                "id": m.id,
                "name": m.name,
                "hash": a.hash,
                "compact_revision": a.compact_revision,
                "error": null,
            }),
            Err(e) => serde_json::json!({
                "id": m.id,
                "name": m.name,
                "hash": null,
                "compact_revision": null,
                "error": e,
            }),
        }).collect::<Vec<_>>(),
    })
}

/// A member's backend for JSON: bytes, shares from 0 to 1.
fn db_json(db: &DbState) -> serde_json::Value {
    let f = db.figures;
    serde_json::json!({
        "size": f.db_size,
        "in_use": f.db_size_in_use,
        "free": f.free(),
        "free_ratio": f.free_ratio(),
        "quota": f.db_quota,
        "quota_usage": f.quota_usage(),
        "quota_from": db.quota_from,
        "defragmenting": db.defragmenting,
    })
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
        out.push_str(&unit_lines(live, d, style));
        out.push_str(&cert_lines(live, d, style));
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
            m.name.as_started().unwrap_or("(unstarted)").to_owned(),
            join(&m.peer_urls),
            join(&m.client_urls),
            if Some(m.id) == leader {
                "*".into()
            } else {
                String::new()
            },
            version_cell(live, m, st.and_then(|s| s.version)),
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
    let versions: std::collections::BTreeSet<EtcdVersion> =
        c.running_versions().into_iter().collect();
    if let (Some(low), true) = (versions.first(), versions.len() > 1) {
        let _ = writeln!(
            out,
            "{}",
            style.yellow(&format!(
                "Members run {}: the cluster runs at {}, the lowest, until every member runs the newer one (as during an upgrade).",
                versions
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                low.minor()
            ))
        );
    }
    if let Some(target) = c.downgrade_in_progress() {
        let storage: std::collections::BTreeSet<String> = c
            .storage_versions()
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(
            out,
            "{}",
            style.yellow(&format!(
                "A downgrade to {target} is enabled (etcd's downgrade API); storage version{} {}: members move to {target} one at a time, or `downgrade cancel` undoes it (etcdplan plans either from [cluster] version).",
                if storage.len() == 1 { "" } else { "s" },
                if storage.is_empty() {
                    "not reported".to_owned()
                } else {
                    storage.into_iter().collect::<Vec<_>>().join(", ")
                }
            ))
        );
    }
    if let Some(eol) = crate::plan::end_of_life_note(live) {
        let _ = writeln!(out, "{}", style.yellow(&eol));
    }
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
    out.push_str(&backend_lines(c, style));
    if let Some(h) = &c.hash_check {
        let (text, bad) = hash_sentence(h);
        let text = format!("Data: {text}");
        let _ = writeln!(
            out,
            "{}",
            if bad {
                style.red(&text)
            } else if matches!(h.verdict, HashVerdict::NotComparable { .. }) {
                style.yellow(&text)
            } else {
                text
            }
        );
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
    out.push_str(&unit_lines(live, d, style));
    out.push_str(&cert_lines(live, d, style));
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
                    "unit": unit_json(f),
                    "trusts": f.running_trust().map(|b| crate::cert::inspect_bundle(b).into_iter().map(|i| serde_json::json!({
                        "subject": i.subject,
                        "fingerprint_sha256": i.fingerprint,
                    })).collect::<Vec<_>>()),
                    "certificates": host_certs(f).into_iter().map(|(role, info)| {
                        let v = match info {
                            Ok(i) => serde_json::json!({
                                "fingerprint_sha256": i.fingerprint,
                                "subject": i.subject,
                                "issuer": i.issuer,
                                "sans": i.sans.iter().map(ToString::to_string).collect::<Vec<_>>(),
                                "not_after": crate::cert::date(i.not_after),
                                "days_left": i.days_left(live.observed_at),
                            }),
                            Err(e) => serde_json::json!({"error": e}),
                        };
                        (role.to_owned(), v)
                    }).collect::<serde_json::Map<_, _>>(),
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
                "storage_version": st.and_then(|s| s.storage_version),
                "db_size": st.map(|s| s.db_size),
                "db": m.db.filter(|_| m.db_figures().is_some()).as_ref().map(db_json),
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
        "hash_check": c.hash_check.as_ref().map(hash_json),
        "downgrade": c.downgrade_in_progress().map(|t| serde_json::json!({"enabled": true, "target": t})),
        "end_of_life": crate::plan::end_of_life_note(live),
        "hosts": hosts_json(live),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{ApiHashKv, LiveName, MemberHash};
    use crate::model::DbFigures;

    /// A member's number and its HashKV answer: (hash, compact revision) or an error.
    type Answer<'a> = (u64, Result<(u32, i64), &'a str>);

    fn check(revision: i64, answers: &[Answer<'_>]) -> HashCheck {
        HashCheck::judge(
            revision,
            answers
                .iter()
                .map(|(i, a)| MemberHash {
                    id: MemberId(*i),
                    name: LiveName::Started(format!("etcd-{i}")),
                    answer: a
                        .map(|(hash, compact_revision)| ApiHashKv {
                            hash,
                            compact_revision,
                            hash_revision: None,
                            header_revision: revision,
                        })
                        .map_err(str::to_owned),
                })
                .collect(),
        )
    }

    #[test]
    fn the_hash_line_names_who_differs_from_whom_and_who_was_left_out() {
        let (text, bad) = hash_sentence(&check(
            90,
            &[
                (1, Ok((0xabc, 4))),
                (2, Ok((0xdef, 4))),
                (3, Ok((0xabc, 4))),
            ],
        ));
        assert!(bad);
        assert_eq!(
            text,
            "members disagree at revision 90: etcd-2 0x00000def differs from etcd-1, etcd-3 0x00000abc"
        );
        let (text, bad) = hash_sentence(&check(
            90,
            &[
                (1, Ok((0xabc, 4))),
                (2, Ok((0xabc, 4))),
                (3, Err("timed out")),
            ],
        ));
        assert!(!bad);
        assert_eq!(
            text,
            "hashes agree at revision 90 (2 members); etcd-3 not compared: timed out"
        );
        let (text, _) = hash_sentence(&check(
            90,
            &[(1, Ok((0xabc, 4))), (2, Ok((0xabc, 4))), (3, Ok((0x1, 2)))],
        ));
        assert_eq!(
            text,
            "hashes agree at revision 90 (2 members); etcd-3 not compared: compacted at 2, the others at 4"
        );
        let (text, bad) = hash_sentence(&check(90, &[(1, Ok((0xabc, 4))), (2, Ok((0xabc, 3)))]));
        assert!(!bad);
        assert_eq!(
            text,
            "hashes not compared at revision 90: the voters' compact revisions differ (4, 3): a compaction is not applied everywhere yet"
        );
        let v = hash_json(&check(
            90,
            &[
                (1, Ok((0xabc, 4))),
                (2, Ok((0xdef, 4))),
                (3, Ok((0xabc, 4))),
            ],
        ));
        assert_eq!(v["verdict"], "disagree");
        assert_eq!(v["differing"], serde_json::json!(["etcd-2"]));
        assert_eq!(v["majority"], serde_json::json!(["etcd-1", "etcd-3"]));
        assert_eq!(v["members"][1]["hash"], 0xdef);
    }

    #[test]
    fn a_backend_shows_free_pages_and_the_quota_share_with_its_source() {
        let db = DbState {
            figures: DbFigures {
                db_size: 900 << 20,
                db_size_in_use: 300 << 20,
                db_quota: 1 << 30,
            },
            quota_from: QuotaSource::Metrics,
            defragmenting: Some(true),
        };
        let v = db_json(&db);
        assert_eq!(v["free"], 600 << 20);
        assert_eq!(v["quota_from"], "metrics");
        assert_eq!(v["defragmenting"], true);
        assert!((v["quota_usage"].as_f64().unwrap_or_default() - 0.8789).abs() < 1e-3);
        let line = {
            let m = LiveMember {
                id: MemberId(1),
                name: LiveName::Started("etcd-1".into()),
                peer_urls: Vec::new(),
                client_urls: Vec::new(),
                is_learner: false,
                status: Err("only the backend matters here".into()),
                db: Some(db),
            };
            let mut c = LiveCluster {
                id: crate::model::ClusterId(1),
                answered_by: crate::model::Endpoint::parse("http://10.0.0.1:2379")
                    .unwrap_or_else(|| unreachable!()),
                members: vec![m],
                alarms: Vec::new(),
                hash_check: None,
            };
            // A member that did not answer Status shows no backend.
            assert_eq!(backend_lines(&c, Style::PLAIN), "");
            c.members[0].status = Ok(crate::live::MemberStatus {
                reported: crate::live::ApiStatus {
                    cluster_id: crate::model::ClusterId(1),
                    member_id: MemberId(1),
                    version: None,
                    db_size: 900 << 20,
                    db_size_in_use: 300 << 20,
                    db_quota: None,
                    leader: None,
                    raft_index: 0,
                    raft_applied_index: 0,
                    raft_term: 0,
                    revision: 0,
                    is_learner: false,
                    errors: Vec::new(),
                    storage_version: None,
                    downgrade: None,
                },
                quorum_read: Ok(()),
            });
            backend_lines(&c, Style::PLAIN)
        };
        assert_eq!(
            line,
            "Backends:\n  etcd-1  900.0 MiB file, 300.0 MiB in use, 600.0 MiB free (66.7% of the file); 87.9% of the quota 1.0 GiB (metrics), defragmenting\n"
        );
    }
}
