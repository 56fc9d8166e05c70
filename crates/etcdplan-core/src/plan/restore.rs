//! The restore plan (`etcdplan restore SNAPSHOT`): the cluster the etcdfile
//! describes rebuilt from one snapshot as a new cluster (etcd-ops R7.3).
//!
//! Nothing is stopped before the snapshot has been checked (by the edge,
//! before planning), uploaded to every host and checked there, and every
//! host's restore tool found. Then every member stops, its data moves aside
//! (never deleted), the same snapshot is restored on every host with the
//! member's name and peer URL, the full initial cluster and a new token,
//! the members' files are written with that token, all start, and the new
//! cluster is checked against what the snapshot is known to hold. The
//! revision is bumped (`--bump-revision`, `--mark-compacted`) where every
//! member's release can, so watchers see it only move forward (etcd #16028);
//! a bump must be the same on every member, so one member that cannot bump
//! means none does, and the plan says so.

use std::path::{Path, PathBuf};

use super::{Plan, Step};
use crate::backup::Manifest;
use crate::config::{Desired, DesiredMember};
use crate::diff::{Blocker, Change, ChangeKind, FileChange, Situation};
use crate::hostfiles::{self, ClusterState, Initial};
use crate::live::Live;
use crate::model::EtcdVersion;

/// The revision bump when the operator does not choose one: etcd's recovery
/// guide suggests a large margin for Kubernetes, whose informers must never
/// see a revision go back; a billion is far beyond what any cluster writes
/// between a snapshot and its restore.
pub const DEFAULT_BUMP: u64 = 1_000_000_000;

/// The tool that restores a member's data, as its release has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "program")]
pub enum RestoreTool {
    /// `etcdutl snapshot restore` (3.5 and later).
    Etcdutl {
        /// `--bump-revision N --mark-compacted` (3.5.10 and later), or none.
        bump: Option<u64>,
    },
    /// `etcdctl snapshot restore` (3.4: no `--bump-revision`).
    Etcdctl,
}

impl RestoreTool {
    /// The program's name, found next to the member's etcd binary.
    pub fn program(&self) -> &'static str {
        match self {
            Self::Etcdutl { .. } => "etcdutl",
            Self::Etcdctl => "etcdctl",
        }
    }

    /// The revision bump it restores with.
    pub fn bump(&self) -> Option<u64> {
        match self {
            Self::Etcdutl { bump } => *bump,
            Self::Etcdctl => None,
        }
    }

    /// One phrase for people.
    pub fn describe(&self) -> String {
        match self.bump() {
            Some(n) => format!("{} --bump-revision {n} --mark-compacted", self.program()),
            None => format!("{} (no revision bump)", self.program()),
        }
    }
}

/// Whether etcd `v`'s restore tool takes `--bump-revision` (3.5.10 and later).
pub fn can_bump(v: EtcdVersion) -> bool {
    (v.major, v.minor, v.patch) >= (3, 5, 10)
}

/// The tool of release `v`, restoring with `bump` when the plan bumps.
pub fn tool_for(v: EtcdVersion, bump: Option<u64>) -> RestoreTool {
    if (v.major, v.minor) >= (3, 5) {
        RestoreTool::Etcdutl { bump }
    } else {
        RestoreTool::Etcdctl
    }
}

/// The 0700 folder of a member's state dir the snapshot is uploaded to.
pub fn upload_dir(m: &DesiredMember) -> PathBuf {
    m.state_dir.join("restore")
}

/// Where the snapshot is uploaded on a member's host (in [`upload_dir`]).
pub fn upload_path(m: &DesiredMember, stamp: &str) -> PathBuf {
    upload_dir(m).join(format!("snapshot-{stamp}.db"))
}

/// Where a restore moves a member's data (and WAL folder) aside: inside the
/// data dir (often a mount point, which cannot be renamed), as retiring a
/// member does.
pub fn aside_paths(m: &DesiredMember, stamp: &str) -> Vec<PathBuf> {
    let mut out = vec![aside_path(&m.data_dir.join("member"), stamp)];
    if let Some(w) = &m.wal_dir {
        out.push(aside_path(w, stamp));
    }
    out
}

/// `<path>.restored-aside-<stamp>`.
pub fn aside_path(path: &Path, stamp: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".restored-aside-{stamp}"));
    PathBuf::from(s)
}

/// What the edge found out before planning: the checked snapshot, the
/// revision it holds, the live cluster's revision, and the operator's choices.
#[derive(Debug, Clone)]
pub struct Request {
    /// The snapshot file on this machine.
    pub snapshot: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256 (whole file), hex.
    pub sha256: String,
    /// The revision it holds, when known (its manifest, or `snapshot status`).
    pub revision: Option<i64>,
    /// Its manifest, when one is beside it and matches it.
    pub manifest: Option<Manifest>,
    /// The live cluster's revision, when a member answered a read.
    pub live_revision: Option<i64>,
    /// UTC time for the token and the moved-aside names.
    pub stamp: String,
    /// `--allow-data-loss`.
    pub allow_data_loss: bool,
    /// The bump asked for (None: `--no-bump-revision`).
    pub bump: Option<u64>,
    /// What the edge says about itself (the lock it holds, the check it did).
    pub notes: Vec<String>,
}

/// The restore plan for `d` from the checked snapshot in `req`.
pub fn build(d: &Desired, live: &Live, req: &Request) -> Plan {
    let mut blockers = Vec::new();
    let mut notes = req.notes.clone();
    let token = hostfiles::restored_token(d, &req.stamp);
    let file_name = req.snapshot.file_name().map_or_else(
        || req.snapshot.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );

    // Every host must answer with a known release: the restore tool is the
    // one next to the member's etcd binary.
    let mut versions: Vec<(&DesiredMember, EtcdVersion)> = Vec::new();
    for m in &d.members {
        match live.hosts.get(&m.name).and_then(|h| h.facts()) {
            None => blockers.push(Blocker {
                member: Some(m.name.clone()),
                message: format!("{}: its host {} does not answer", m.name, m.address),
                help: "a restore rebuilds every member: bring the host back (or take the member out of the etcdfile) first; nothing was changed".into(),
            }),
            Some(f) => match f.binary.version() {
                Some(v) => versions.push((m, v)),
                None => blockers.push(Blocker {
                    member: Some(m.name.clone()),
                    message: format!(
                        "{}: no etcd binary at {} on {}",
                        m.name,
                        d.etcd.binary.display(),
                        m.address
                    ),
                    help: "the restore uses the restore tool of the member's release: install etcd there (or run `etcdplan apply` first); nothing was changed".into(),
                }),
            },
        }
    }

    // One bump for all, or none: members restored with different bumps would
    // hold different revisions of the same keys.
    let bump = match req.bump {
        None => {
            notes.push("--no-bump-revision: the restored cluster's revision is the snapshot's; watchers that saw later revisions of the old cluster may miss changes".into());
            None
        }
        Some(n) => {
            let cannot: Vec<String> = versions
                .iter()
                .filter(|(_, v)| !can_bump(*v))
                .map(|(m, v)| format!("{} (etcd {v})", m.name))
                .collect();
            if cannot.is_empty() {
                Some(n)
            } else {
                notes.push(format!(
                    "no revision bump: the restore tool of {} has no --bump-revision (etcd 3.5.10 and later have it), and every member must restore the same revisions; watchers that saw later revisions of the old cluster may miss changes",
                    cannot.join(", ")
                ));
                None
            }
        }
    };

    // Data written after the snapshot is lost; the operator must say so.
    match (req.live_revision, req.revision) {
        (Some(live_rev), Some(snap)) if live_rev > snap => {
            let lost = live_rev - snap;
            let what = format!(
                "the live cluster is at revision {live_rev}, the snapshot at {snap}: the {lost} revision{} written since the snapshot would be lost",
                if lost == 1 { "" } else { "s" }
            );
            if req.allow_data_loss {
                notes.push(format!("--allow-data-loss: {what}"));
            } else {
                blockers.push(Blocker {
                    member: None,
                    message: what,
                    help: "pass --allow-data-loss if that is what you want; nothing was changed"
                        .into(),
                });
            }
        }
        (Some(live_rev), None) => {
            let what = format!(
                "the live cluster answers (revision {live_rev}) and the snapshot's revision is unknown (no manifest, and no etcdutl or etcdctl here to read it): writes since the snapshot would be lost"
            );
            if req.allow_data_loss {
                notes.push(format!("--allow-data-loss: {what}"));
            } else {
                blockers.push(Blocker {
                    member: None,
                    message: what,
                    help: "pass --allow-data-loss if that is what you want, or restore a snapshot with its manifest; nothing was changed".into(),
                });
            }
        }
        _ => {}
    }
    match &req.manifest {
        Some(mf) => notes.push(format!(
            "{file_name}: sha256 trailer and manifest checked (revision {}, {} keys, taken {} from {}); the restored cluster's keys and values are compared with the manifest's digest",
            mf.revision, mf.content.keys, mf.taken, mf.member
        )),
        None => notes.push(format!(
            "{file_name}: no manifest beside it: only its integrity (sha256 trailer) was checked, and the restored content cannot be compared with what was snapshotted"
        )),
    }
    notes.push(format!(
        "the restore makes a new cluster (new cluster and member IDs) with the token {token:?}, recorded in each member's config; every member's old data is moved aside, never deleted"
    ));

    let initial_cluster = Initial::bootstrap(d).cluster;
    let initial = Initial {
        state: ClusterState::New,
        cluster: initial_cluster.clone(),
        token: token.clone(),
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut changes = Vec::new();
    for (m, v) in &versions {
        steps.push(Step::UploadSnapshot {
            member: m.name.clone(),
            source: req.snapshot.clone(),
            dest: upload_path(m, &req.stamp),
            sha256: req.sha256.clone(),
            size: req.size,
        });
        steps.push(Step::CheckRestoreTool {
            member: m.name.clone(),
            tool: tool_for(*v, bump),
            version: *v,
        });
    }
    for (m, _) in &versions {
        steps.push(Step::StopForRestore {
            member: m.name.clone(),
        });
    }
    for (m, v) in &versions {
        steps.push(Step::RestoreData {
            member: m.name.clone(),
            snapshot: upload_path(m, &req.stamp),
            tool: tool_for(*v, bump),
            initial_cluster: initial_cluster.clone(),
            token: token.clone(),
            stamp: req.stamp.clone(),
        });
    }
    for (m, v) in &versions {
        let facts = live.hosts.get(&m.name).and_then(|h| h.facts());
        // The member restarts on the release whose tool restored its data.
        let files: Vec<FileChange> = hostfiles::member_files(d, m, &initial, v.minor())
            .into_iter()
            .map(|f| FileChange {
                before: facts.and_then(|x| x.file(&f.path)).map(str::to_owned),
                path: f.path,
                mode: f.mode,
                host: m.address.to_string(),
                after: f.contents,
            })
            .collect();
        let live_member = live
            .cluster
            .as_ref()
            .and_then(|c| c.find(&m.name, &m.peer_url(&d.tls)));
        let mut ch = Change {
            member: m.name.clone(),
            kind: ChangeKind::Restore {
                snapshot: req.snapshot.clone(),
            },
            reason: format!(
                "data replaced by {file_name}{}; old data moved aside to {}",
                req.revision
                    .map_or_else(String::new, |r| format!(" (revision {r})")),
                aside_paths(m, &req.stamp)
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            files: Vec::new(),
            id: live_member.map(|x| x.id),
            leader: false,
            certificates: false,
            auth_files: false,
        };
        // Only the files that differ are shown; all are written.
        ch.files = files
            .iter()
            .filter(|f| f.before.as_deref() != Some(f.after.as_str()))
            .cloned()
            .collect();
        changes.push(ch);
        steps.push(Step::WriteFiles {
            member: m.name.clone(),
            files,
        });
    }
    for (m, _) in &versions {
        steps.push(Step::Start {
            member: m.name.clone(),
        });
    }
    steps.push(Step::WaitHealthy {
        members: versions.iter().map(|(m, _)| m.name.clone()).collect(),
    });
    steps.push(Step::VerifyRestore {
        revision: req
            .revision
            .map(|r| r.saturating_add(bump.map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)))),
        content: req.manifest.as_ref().map(|m| m.content.clone()),
    });
    if !blockers.is_empty() {
        // Nothing of a blocked restore may run.
        steps.clear();
    }
    let situation = if live.cluster.is_some() {
        Situation::Running
    } else {
        Situation::Down
    };
    super::assemble(
        d,
        live,
        situation,
        super::Parts {
            changes,
            steps: super::chained(steps),
            blockers,
            notes,
            deferred: Vec::new(),
        },
    )
}

/// Whether a plan is a restore: it only runs from `etcdplan restore`, where
/// the operator names the snapshot (never from a saved plan or `watch`).
pub fn is_restore(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| {
        matches!(
            s.step,
            Step::StopForRestore { .. } | Step::RestoreData { .. }
        )
    })
}

/// A restore that stopped before its cluster was verified, as the hosts'
/// markers show it: `plan` and `apply` refuse to plan around it (starting
/// members of which some hold restored data and some the old data would
/// make two clusters), and say how to finish it or go back.
pub fn unfinished(d: &Desired, live: &Live) -> Option<Blocker> {
    let marked: Vec<(&DesiredMember, &str)> = d
        .members
        .iter()
        .filter_map(|m| {
            let f = live.hosts.get(&m.name)?.facts()?;
            Some((m, f.restore_pending.as_deref()?))
        })
        .collect();
    let (_, first) = marked.first()?;
    let stamp = first.split('\t').next().unwrap_or_default();
    let names: Vec<&str> = marked.iter().map(|(m, _)| m.name.as_str()).collect();
    let back: Vec<String> = d
        .members
        .iter()
        .flat_map(|m| {
            aside_paths(m, stamp)
                .into_iter()
                .map(move |p| format!("{}:{}", m.address, p.display()))
        })
        .collect();
    Some(Blocker {
        member: None,
        message: format!(
            "a restore started at {stamp} did not finish: {} {} restored data or had it moved aside, and the restored cluster was never verified",
            names.join(", "),
            if names.len() == 1 { "has" } else { "have" }
        ),
        help: format!(
            "to finish it, run `etcdplan restore SNAPSHOT --allow-data-loss` again with the same snapshot; to go back instead, stop etcd on every host, move each restored `member` aside and the old data back ({}), remove {} from each member's state dir, then `etcdplan apply`",
            back.join(", "),
            crate::live::RESTORE_PENDING
        ),
    })
}
