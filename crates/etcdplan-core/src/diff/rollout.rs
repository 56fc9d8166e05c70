//! A version change on a running cluster, as phases: one pass per minor
//! version ([`upgrade::route`]), each a rolling restart of every member onto
//! one release (etcd-ops R8.3). A pass names the release each member runs
//! after it, and whether that release is uploaded first (from
//! `binary_source`) or already on the host.

use super::upgrade::{self, Pass};
use super::{Blocker, Change, ChangeKind, initial_for, settled};
use crate::config::{Desired, DesiredMember, Release};
use crate::hostfiles;
use crate::live::{HostFacts, Live, LiveCluster};
use crate::model::{EtcdVersion, MinorVersion};

/// What a member's restart does to its binary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BinaryMove {
    /// What it runs now, when known.
    pub from: Option<EtcdVersion>,
    /// What it runs after the restart.
    pub to: EtcdVersion,
    /// Uploaded to `<binary>-<to>` on its host before any member restarts
    /// (absent or different there); none when the host has it.
    pub install: Option<Release>,
    /// `binary` is pointed at `<binary>-<to>` while the member is stopped;
    /// false when the binary on the host already is that release.
    pub link: bool,
    /// The pass (from 1) and how many there are.
    pub pass: (usize, usize),
    /// The pass is a downgrade through etcd's downgrade API ([`Pass::via_api`]):
    /// the planner puts its API steps around the restarts. Absent in plans
    /// saved before it existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub via_api: bool,
}

/// The passes, as one change per member and pass (`Change::phase`), with
/// the passes' caveats; none when every member runs what the etcdfile asks.
pub(super) fn phases(
    d: &Desired,
    live: &Live,
    c: &LiveCluster,
    allow_downgrade: bool,
) -> Result<(Vec<Change>, Vec<String>), Blocker> {
    let offered: Vec<EtcdVersion> = d
        .etcd
        .binary_source
        .iter()
        .flat_map(|s| s.releases.iter().map(|r| r.version))
        .collect();
    let running = c.running_versions();
    let Some(want) = d.version else {
        return match forbidden_mix(c, &running) {
            Some(b) => Err(b),
            None => Ok((Vec::new(), Vec::new())),
        };
    };
    let passes = upgrade::route(&running, want, allow_downgrade, &offered).map_err(|r| {
        forbidden_mix(c, &running).unwrap_or_else(|| Blocker {
            member: None,
            message: format!("[cluster] version = \"{want}\": {r}"),
            help: r.help().to_owned(),
        })
    })?;
    // A forbidden mix is repaired first (its older members onto the floor),
    // or nothing is planned.
    // (A member below its minor's landing floor is repaired by any pass
    // onto that minor: every pass lands at or above the floor.)
    let oldest_minor = running.iter().min().map(|v| v.minor());
    let landing = upgrade::forbidden_mix(&running)
        .is_some_and(|(_, high, needed)| needed.minor() == high.minor());
    let repairs = passes.first().map(|p| Some(p.to.minor)) == Some(oldest_minor)
        || (landing && !passes.is_empty());
    if let Some(b) = forbidden_mix(c, &running).filter(|_| !repairs) {
        return Err(b);
    }
    if passes.is_empty() {
        // A downgrade enabled (by an apply that stopped right after it, its
        // cancel refused too) while every member runs what the etcdfile
        // asks: the cluster version stays lowered until it is cancelled.
        if let Some(target) = c.downgrade_in_progress().filter(|t| *t != want.minor) {
            return Err(Blocker {
                member: None,
                message: format!(
                    "a downgrade to {target} is enabled on the cluster (its cluster version is lowered), but every member runs {want} as the etcdfile asks"
                ),
                help: format!(
                    "cancel it (`etcdctl downgrade cancel`), or finish it: [cluster] version = \"{target}\" with --allow-downgrade; nothing was changed"
                ),
            });
        }
        return Ok((Vec::new(), Vec::new()));
    }
    let members = settled(d, live, c).map_err(|why| Blocker {
        member: None,
        message: format!(
            "[cluster] version = \"{want}\" changes the version the members run, which starts only from a healthy cluster with the membership of the etcdfile: {why}"
        ),
        help: "repair the cluster first (`etcdplan status`); nothing was changed".into(),
    })?;
    // v2 off on every member before 3.6 (upgrade::Check::V2CleanBefore):
    // a member whose config file turns it on is named.
    if passes.iter().any(|p| upgrade::needs_v2_check(p.to.minor))
        && let Some(s) = members.iter().find(|s| {
            s.facts
                .file(&s.m.config_file())
                .and_then(|f| crate::hostfiles::read_value(f, "enable-v2"))
                .is_some_and(|v| v == "true")
        })
    {
        return Err(Blocker {
            member: Some(s.m.name.clone()),
            message: format!(
                "{} runs with enable-v2: true; etcd 3.6 has no v2 API and refuses custom v2 content",
                s.m.name
            ),
            help: "remove enable-v2 from [etcd.extra], apply (v2 off), move any v2 data to v3, then upgrade; nothing was changed".into(),
        });
    }
    let n = passes.len();
    // An upgrade (not a way back): its patch pass of the older members of a
    // mixed cluster leaves the newer ones alone.
    let upgrading = running
        .iter()
        .max()
        .is_some_and(|h| want.minor >= h.minor());
    let mut changes = Vec::new();
    // What each member runs, as the passes planned so far leave it.
    let mut now: Vec<Option<EtcdVersion>> = members.iter().map(|s| s.lm.version()).collect();
    // Each member's files as the passes planned so far wrote them.
    let mut rendered: Vec<Option<Vec<hostfiles::HostFile>>> = vec![None; members.len()];
    for (i, pass) in passes.iter().enumerate() {
        for (k, s) in members.iter().enumerate() {
            let target = release_for(d, s.m, s.facts, pass)?;
            // An upgrade pass leaves members that already run newer alone
            // (a patch pass of the older members of a mixed cluster).
            if now[k] == Some(target.version)
                || (upgrading && now[k].is_some_and(|v| v.minor() > target.version.minor()))
            {
                continue;
            }
            let from = now[k];
            let install = target
                .release
                .clone()
                .filter(|r| s.facts.installed.get(&r.version) != Some(&r.sha256));
            let mv = BinaryMove {
                from,
                to: target.version,
                install,
                link: target.release.is_some(),
                pass: (i + 1, n),
                via_api: pass.via_api,
            };
            let reason = format!(
                "etcd {} → {}{}: stopped, started on the new binary, checked to run {} and to have caught up",
                from.map_or("?".into(), |v| v.to_string()),
                target.version,
                if n > 1 {
                    format!(" (pass {} of {n})", i + 1)
                } else {
                    String::new()
                },
                target.version
            );
            let kind = ChangeKind::Restart {
                peer_update: None,
                phase: Some(u32::try_from(i).unwrap_or(u32::MAX)),
                binary: Some(mv),
            };
            let mut ch = Change::new(s.m.name.clone(), kind, reason);
            ch.id = Some(s.lm.id);
            ch.leader = s.leader;
            // Each restart carries the config for the release it starts;
            // other settings ride along with the first.
            let initial = initial_for(d, s.m, s.facts);
            let wanted = hostfiles::member_files(d, s.m, &initial, target.version.minor());
            ch.files = match rendered[k].replace(wanted.clone()) {
                None => super::changed_files(s.m, wanted, Some(s.facts)),
                Some(previous) => super::changed_from(s.m, wanted, &previous),
            };
            changes.push(ch);
            now[k] = Some(target.version);
        }
    }
    let notes = passes
        .iter()
        .flat_map(|p| {
            p.notes
                .iter()
                .map(move |n| format!("onto {}: {n}", p.to.minor))
        })
        .collect();
    Ok((changes, notes))
}

/// A cluster whose members run two minor versions while the older ones are
/// below the floor for leaving theirs: a blocker naming a member of each.
fn forbidden_mix(c: &LiveCluster, running: &[EtcdVersion]) -> Option<Blocker> {
    let (low, high, needed) = upgrade::forbidden_mix(running)?;
    let named = |v: EtcdVersion| {
        c.members
            .iter()
            .find(|m| m.version() == Some(v))
            .map_or_else(|| "a member".to_owned(), |m| m.name.to_string())
    };
    Some(Blocker {
        member: None,
        message: format!(
            "{} runs etcd {high} beside {} on {low}: a cluster may mix {} and {} only while every {} member runs {needed} or newer",
            named(high),
            named(low),
            low.minor(),
            high.minor(),
            needed.minor()
        ),
        help: format!(
            "the repair: set [cluster] version = \"{}\" with binary_source holding {needed} or newer (and the {} release), so etcdplan moves the members below the floor onto it first; every other change waits; nothing was changed",
            high.minor(),
            high.minor()
        ),
    })
}

/// The release a member runs after a pass.
struct Target {
    version: EtcdVersion,
    /// From `binary_source`; none when the binary on the host is used.
    release: Option<Release>,
}

/// The newest release of `binary_source` that the pass may use, else the
/// binary on the host when it fits; otherwise why the pass cannot be made.
fn release_for(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
    pass: &Pass,
) -> Result<Target, Blocker> {
    let fits = |v: EtcdVersion| pass.to.matches(v) && pass.at_least.is_none_or(|a| v >= a);
    let wanted = match pass.at_least {
        Some(a) => format!("etcd {} ({a} or later)", pass.to),
        None => format!("etcd {}", pass.to),
    };
    if let Some(src) = &d.etcd.binary_source {
        if let Some(r) = src.releases.iter().find(|r| fits(r.version)) {
            return Ok(Target {
                version: r.version,
                release: Some(r.clone()),
            });
        }
        let held: Vec<String> = src.releases.iter().map(|r| r.version.to_string()).collect();
        return Err(Blocker {
            member: None,
            message: format!(
                "the version change passes through {wanted}, but binary_source ({}) holds {}",
                src.path.display(),
                held.join(", ")
            ),
            help: format!(
                "make binary_source a folder holding one folder per release, {} among them; nothing was changed",
                pass.to
            ),
        });
    }
    match facts.binary.version() {
        Some(v) if fits(v) => Ok(Target {
            version: v,
            release: None,
        }),
        on_disk => Err(wrong_binary(d, m, &format!("needs {wanted}"), on_disk)),
    }
}

/// A host whose binary is not the release a member needs, and no
/// `binary_source` to bring it.
fn wrong_binary(
    d: &Desired,
    m: &DesiredMember,
    needs: &str,
    on_disk: Option<EtcdVersion>,
) -> Blocker {
    Blocker {
        member: Some(m.name.clone()),
        message: format!(
            "{} {needs}, but {} on its host is {}",
            m.name,
            d.etcd.binary.display(),
            on_disk.map_or("not a readable etcd".into(), |v| format!("etcd {v}"))
        ),
        help: "set [etcd] binary_source to that release on this machine (etcdplan uploads it), or install it on the host yourself; nothing was changed".into(),
    }
}

/// The minor version a pass leaves the cluster at, for the check after it.
pub fn pass_minor(changes: &[Change], phase: u32) -> Option<MinorVersion> {
    changes
        .iter()
        .filter(|c| c.phase() == Some(phase))
        .find_map(|c| c.binary().map(|b| b.to.minor()))
}

/// For a member that starts (a new one, or one whose etcd is down): the
/// release the etcdfile asks for, put in place first when the binary on its
/// host is another one. Without `binary_source`, a binary of another version
/// blocks instead.
pub(super) fn for_start(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
) -> Result<Option<BinaryMove>, Blocker> {
    let Some(want) = d.version else {
        return Ok(None);
    };
    let on_disk = facts.binary.version();
    if on_disk.is_some_and(|v| want.matches(v)) && d.etcd.binary_source.is_none() {
        return Ok(None);
    }
    let Some(src) = &d.etcd.binary_source else {
        return Err(wrong_binary(
            d,
            m,
            &format!("should run etcd {want}"),
            on_disk,
        ));
    };
    let Some(r) = src.releases.iter().find(|r| want.matches(r.version)) else {
        // The etcdfile check refuses this already; nothing to put in place.
        return Ok(None);
    };
    let installed = facts.installed.get(&r.version) == Some(&r.sha256);
    if on_disk == Some(r.version) && installed {
        return Ok(None);
    }
    Ok(Some(BinaryMove {
        from: on_disk,
        to: r.version,
        install: (!installed).then(|| r.clone()),
        link: true,
        pass: (1, 1),
        via_api: false,
    }))
}
