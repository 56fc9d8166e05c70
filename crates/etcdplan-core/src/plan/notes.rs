//! Notes about what the plan does not change: a binary on a host that
//! differs from what its etcd runs, a member that can still roll back, and a
//! systemd unit that would not bring its member back after a reboot.

use crate::config::Desired;
use crate::diff::{Action, Change};
use crate::hostfiles::systemd_unit::UNIT;
use crate::live::{HostState, Live};

/// Members whose etcd runs another version than the binary on their host: a
/// restart, for any reason, moves them to the binary's version.
pub(super) fn binary_notes(live: &Live) -> Vec<String> {
    let Some(c) = &live.cluster else {
        return Vec::new();
    };
    c.members
        .iter()
        .filter_map(|m| {
            let running = m.version()?;
            let on_disk = live.facts_of(&m.name)?.binary.version()?;
            (on_disk != running).then(|| {
                format!(
                    "{} runs etcd {running}, but the binary on its host is {on_disk}: its next restart runs {on_disk}",
                    m.name
                )
            })
        })
        .collect()
}

/// Members that run a minor version past its end of life (3.4 since June
/// 2026), with the upgrade path the rules give: one minor version at a
/// time, each with the floor for leaving it. `status` shows the same line.
pub fn end_of_life_note(live: &Live) -> Option<String> {
    use crate::diff::upgrade::{end_of_life, leaving_floor};
    use crate::model::MinorVersion;
    let c = live.cluster.as_ref()?;
    let (minor, last, since) = c
        .running_versions()
        .iter()
        .filter_map(|v| end_of_life(v.minor()).map(|(last, since)| (v.minor(), last, since)))
        .min()?;
    let names: Vec<String> = c
        .members
        .iter()
        .filter(|m| m.version().is_some_and(|v| v.minor() == minor))
        .map(|m| m.name.to_string())
        .collect();
    let newest = crate::config::etcd_keys::KNOWN_MINORS
        .iter()
        .map(|&(major, minor)| MinorVersion { major, minor })
        .max()?;
    let path: Vec<String> = (minor.minor + 1..=newest.minor)
        .map(|n| {
            let m = MinorVersion {
                major: minor.major,
                minor: n,
            };
            match leaving_floor(m).filter(|_| m < newest) {
                Some((floor, _)) => {
                    format!("{m} ({floor} or newer before {}.{})", m.major, m.minor + 1)
                }
                None => m.to_string(),
            }
        })
        .collect();
    Some(format!(
        "{} run{} etcd {minor}, which reached its end of life with {last} in {since} and gets no more fixes; upgrade one minor version at a time: {} (set [cluster] version; with the releases in binary_source etcdplan makes the passes in order)",
        names.join(", "),
        if names.len() == 1 { "s" } else { "" },
        path.join(", then ")
    ))
}

/// A member that is down on a newer release than the others run (an upgrade
/// that stopped at it): while the cluster runs at the older version, the
/// member can still go back to the release the others run.
pub(super) fn rollback_notes(d: &Desired, live: &Live) -> Vec<String> {
    let Some(c) = &live.cluster else {
        return Vec::new();
    };
    let running = c.running_versions();
    let (Some(&low), Some(&high)) = (running.iter().min(), running.iter().max()) else {
        return Vec::new();
    };
    c.members
        .iter()
        .filter(|m| m.status.is_err())
        .filter_map(|m| {
            let facts = live.facts_of(&m.name)?;
            let on_disk = facts.binary.version()?;
            if on_disk <= high || matches!(facts.service, crate::live::ServiceState::Running(_)) {
                return None;
            }
            let kept = if facts.installed.contains_key(&low) {
                format!(
                    " (etcd {low} is kept on its host at {})",
                    d.etcd.installed_path(low).display()
                )
            } else {
                String::new()
            };
            Some(format!(
                "{} is down, and the binary on its host is etcd {on_disk}, while the running members run {low}{}: the cluster still runs at {}, so {} can go back to {low}: set [cluster] version = \"{low}\"{kept} and apply; or fix what stops it on {on_disk} (its log: `etcdplan status`) and apply again to retry",
                m.name,
                if high == low { String::new() } else { format!("–{high}") },
                low.minor(),
                m.name,
            ))
        })
        .collect()
}

/// Members whose unit needs care that this plan does not give it: one that is
/// not enabled (it would not come back when its host reboots), masked, or
/// whose file changed since systemd loaded it. A member the plan (re)starts
/// gets none: every start reloads systemd and enables the unit (a masked unit
/// that must start is a blocker of the diff).
pub(super) fn unit_notes(d: &Desired, live: &Live, changes: &[Change]) -> Vec<String> {
    let starts = |c: &Change| {
        matches!(
            c.action(),
            Action::Create | Action::Start | Action::Restart | Action::Add | Action::Replace
        )
    };
    let mut notes = Vec::new();
    for m in &d.members {
        let Some(u) = live
            .hosts
            .get(&m.name)
            .and_then(HostState::facts)
            .and_then(|f| f.unit.as_ref())
        else {
            continue;
        };
        if changes.iter().any(|c| c.member == m.name && starts(c)) {
            continue;
        }
        if u.enabled.masked() {
            notes.push(format!(
                "{}: {UNIT} is {} on {}: systemd refuses to start it, so the member would not start again once stopped; run `systemctl unmask {UNIT}` there if etcd should run",
                m.name, u.enabled, m.address
            ));
        } else if !u.starts_at_boot() {
            notes.push(format!(
                "{}: {UNIT} is {} on {}: the member would not start at boot; run `systemctl enable {UNIT}` there (etcdplan enables it at the member's next start)",
                m.name, u.enabled, m.address
            ));
        }
        if u.needs_reload {
            notes.push(format!(
                "{}: {UNIT} changed on {} since systemd loaded it: etcd runs under the unit as it was until its next restart, which reloads it",
                m.name, m.address
            ));
        }
    }
    notes
}
