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
}

/// The passes, as one change per member and pass (`Change::phase`), with
/// the passes' caveats; none when every member runs what the etcdfile asks.
pub(super) fn phases(
    d: &Desired,
    live: &Live,
    c: &LiveCluster,
    allow_downgrade: bool,
) -> Result<(Vec<Change>, Vec<String>), Blocker> {
    let Some(want) = d.version else {
        return Ok((Vec::new(), Vec::new()));
    };
    let passes =
        upgrade::route(&c.running_versions(), want, allow_downgrade).map_err(|r| Blocker {
            member: None,
            message: format!("[cluster] version = \"{want}\": {r}"),
            help: r.help().to_owned(),
        })?;
    if passes.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let members = settled(d, live, c).map_err(|why| Blocker {
        member: None,
        message: format!(
            "[cluster] version = \"{want}\" changes the version the members run, which starts only from a healthy cluster with the membership of the etcdfile: {why}"
        ),
        help: "repair the cluster first (`etcdplan status`); nothing was changed".into(),
    })?;
    let n = passes.len();
    let mut changes = Vec::new();
    // What each member runs, as the passes planned so far leave it.
    let mut now: Vec<Option<EtcdVersion>> = members.iter().map(|s| s.lm.version()).collect();
    // Each member's files as the passes planned so far wrote them.
    let mut rendered: Vec<Option<Vec<hostfiles::HostFile>>> = vec![None; members.len()];
    for (i, pass) in passes.iter().enumerate() {
        for (k, s) in members.iter().enumerate() {
            let target = release_for(d, s.m, s.facts, pass)?;
            if now[k] == Some(target.version) {
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
    }))
}
