//! `etcdplan restore SNAPSHOT`: check the snapshot before anything else,
//! take the lock in files on every host (the lock in etcd cannot be held
//! while every member is stopped), plan the restore in core
//! (`plan::restore`), show it, ask, and walk it; a failure names every data
//! folder moved aside.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::apply::{confirm, run_plan, watch_signals};
use super::edges::{close, etcd_client, hosts, observe_live};
use super::{Cli, CliError, Outcome, RestoreArgs, file_label, load, style};
use crate::config::{Desired, DesiredMember};
use crate::execute::{self, Event, hostlock};
use crate::io::{EtcdApi, EtcdClient, HostMap};
use crate::observe::Live;
use crate::plan::{Plan, Step, restore};
use crate::render;
use crate::view::{self, SharedView, Shown};
use etcdplan_core::backup::{Manifest, manifest_name};

/// A snapshot file that passed [`snapshot_check`].
#[derive(Debug, Clone)]
pub struct CheckedSnapshot {
    /// Its size in bytes.
    pub size: u64,
    /// The sha256 of the whole file, hex.
    pub sha256: String,
    /// Its manifest, when one is beside it (and matches it).
    pub manifest: Option<Manifest>,
}

/// Why a snapshot file is refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// It cannot be read.
    #[error("cannot read the snapshot {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Too short to be a snapshot, or its sha256 trailer does not match.
    #[error("{path} is not an intact etcd snapshot: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The manifest beside it is unreadable or describes another file.
    #[error("the manifest {path} does not fit the snapshot: {why}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

// ---------------------------------------------------------------------------
// snapshot_check: a minimal check of a snapshot file and its manifest, here
// until the backup module's `crate::backup::check_snapshot_file(path,
// manifest)` is merged; the lead folds this into that one function.
// ---------------------------------------------------------------------------
/// Checks a snapshot file on this machine before anything is stopped: its
/// sha256 trailer (etcd appends the sha256 of the rest to every snapshot it
/// streams), and, when its manifest (`<file>.json`) is beside it, that the
/// manifest names this file's size and sha256.
pub fn snapshot_check(path: &Path) -> Result<CheckedSnapshot, SnapshotError> {
    let read = |source| SnapshotError::Read {
        path: path.to_owned(),
        source,
    };
    let corrupt = |why: String| SnapshotError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let mut f = std::fs::File::open(path).map_err(read)?;
    let mut data = Vec::new();
    f.read_to_end(&mut data).map_err(read)?;
    if data.len() <= 32 {
        return Err(corrupt(format!("it has only {} bytes", data.len())));
    }
    let (body, trailer) = data.split_at(data.len() - 32);
    if Sha256::digest(body).as_slice() != trailer {
        return Err(corrupt(
            "its sha256 trailer does not match its content (truncated or altered)".into(),
        ));
    }
    let sha256 = crate::model::hex(&Sha256::digest(&data));
    let size = data.len() as u64;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mpath = path.with_file_name(manifest_name(&name));
    let manifest = match std::fs::read_to_string(&mpath) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(SnapshotError::Manifest {
                path: mpath,
                why: e.to_string(),
            });
        }
        Ok(text) => {
            let bad = |why: String| SnapshotError::Manifest {
                path: mpath.clone(),
                why,
            };
            let m = Manifest::parse(&text).map_err(|e| bad(e.to_string()))?;
            if m.size != size {
                return Err(bad(format!(
                    "it says {} bytes, the file has {size}",
                    m.size
                )));
            }
            if m.sha256 != sha256 {
                return Err(bad(format!(
                    "it says sha256 {}…, the file's is {}…",
                    &m.sha256[..16.min(m.sha256.len())],
                    &sha256[..16]
                )));
            }
            Some(m)
        }
    };
    Ok(CheckedSnapshot {
        size,
        sha256,
        manifest,
    })
}

/// How long one `snapshot status` may take (the tool reads the whole file).
const STATUS_DEADLINE: Duration = Duration::from_secs(60);

/// The revision a snapshot holds, read by this machine's `etcdutl` (else
/// `etcdctl`) `snapshot status` when there is no manifest; `None` when no
/// tool is here or it cannot tell.
fn status_revision(path: &Path) -> Option<i64> {
    for tool in ["etcdutl", "etcdctl"] {
        let child = Command::new("timeout")
            .arg(STATUS_DEADLINE.as_secs().to_string())
            .arg(tool)
            .args(["snapshot", "status", "-w", "json"])
            .arg(path)
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        let Ok(out) = child else { continue };
        if !out.status.success() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        if let Some(r) = v["revision"].as_i64() {
            return Some(r);
        }
    }
    None
}

/// The live cluster's revision, from the first member that answers a read
/// (a linearizable read: only a cluster with its quorum answers).
async fn live_revision(etcd: &EtcdClient, d: &Desired, live: &Live) -> Option<i64> {
    live.cluster.as_ref()?;
    for ep in d.client_urls() {
        if let Ok(page) = etcd.range_page(&ep, b"", 0, 1).await {
            return Some(page.header_revision);
        }
    }
    None
}

/// `etcdplan restore SNAPSHOT`.
pub(super) async fn restore(cli: &Cli, args: &RestoreArgs) -> Result<Outcome, CliError> {
    if args.json && !args.auto_approve {
        return Err(CliError::Usage(
            "restore --json cannot ask for approval inside its output; pass --auto-approve".into(),
        ));
    }
    let view = view::choose(view::Command::Apply, args.json);
    let loaded = load(cli)?;
    let d = &loaded.desired;
    // Before any host is touched: a corrupt snapshot stops here.
    let snap = snapshot_check(&args.snapshot).map_err(|e| CliError::Snapshot(e.to_string()))?;
    let mut hosts = hosts(cli, d).await;
    let result = restore_with(cli, args, &view, d, &mut hosts, &snap).await;
    close(&hosts).await;
    result
}

async fn restore_with(
    cli: &Cli,
    args: &RestoreArgs,
    view: &SharedView,
    d: &Desired,
    hosts: &mut HostMap,
    snap: &CheckedSnapshot,
) -> Result<Outcome, CliError> {
    let etcd = Arc::new(etcd_client(cli, d));
    let members: Vec<&DesiredMember> = d.members.iter().collect();
    let info = execute::lock::LockInfo::new("restore", &d.file_hash);
    let lock = hostlock::acquire(&members, hosts, &info).await?;
    let mut lock_note = format!(
        "locked by lock files on every host that answers (id {}): the lock in etcd cannot be held while every member is stopped",
        info.id
    );
    if !lock.skipped.is_empty() {
        lock_note.push_str(&format!("; no lock on {}", lock.skipped.join(", ")));
    }
    let result = async {
        let live = observe_live(cli, d, hosts, etcd.as_ref(), true).await;
        let revision = match &snap.manifest {
            Some(m) => Some(m.revision),
            None => status_revision(&args.snapshot),
        };
        let snapshot =
            std::path::absolute(&args.snapshot).unwrap_or_else(|_| args.snapshot.clone());
        let req = restore::Request {
            snapshot,
            size: snap.size,
            sha256: snap.sha256.clone(),
            revision,
            manifest: snap.manifest.clone(),
            live_revision: live_revision(&etcd, d, &live).await,
            stamp: execute::stamp(),
            allow_data_loss: args.allow_data_loss,
            bump: (!args.no_bump_revision).then_some(args.bump_revision),
            notes: vec![lock_note],
        };
        let plan = restore::build(d, &live, &req);
        walk(cli, args, view, d, hosts, &etcd, &live, &plan).await
    }
    .await;
    lock.release().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn walk(
    cli: &Cli,
    args: &RestoreArgs,
    view: &SharedView,
    d: &Desired,
    hosts: &mut HostMap,
    etcd: &Arc<EtcdClient>,
    live: &Live,
    plan: &Plan,
) -> Result<Outcome, CliError> {
    let text = render::plan_human(plan, d, &file_label(&cli.file), style(cli));
    view.with(|v| {
        v.plan(&Shown {
            plan,
            desired: d,
            text: &text,
            trigger: None,
        });
    });
    if let Some(why) = plan.cannot_apply() {
        return Err(CliError::Blocked(why));
    }
    if !args.auto_approve {
        confirm(view, d.cluster.as_str())?;
    }
    view.with(|v| v.apply_started(plan.steps.len()));
    let stop = Arc::new(AtomicBool::new(false));
    let signals = watch_signals(stop.clone(), None, view.clone());
    let t = Instant::now();
    let mut on_event = |e: Event| view.with(|v| v.progress(&e));
    let result = run_plan(
        cli,
        d,
        hosts,
        etcd,
        live,
        plan,
        &stop,
        args.gate_timeout,
        &mut on_event,
    )
    .await;
    signals.abort();
    match result {
        Ok(report) => {
            view.with(|v| v.apply_complete(plan, report.seconds));
            eprintln!("{}", moved_aside(d, plan, plan.steps.len()));
            Ok(Outcome::Ok)
        }
        Err(CliError::Apply(e)) => {
            view.with(|v| v.apply_failed(&e));
            eprintln!("{}", moved_aside(d, plan, e.index + 1));
            tracing::debug!("restore failed after {:.1}s", t.elapsed().as_secs_f64());
            Err(CliError::Apply(e))
        }
        Err(other) => Err(other),
    }
}

/// Every data folder the first `ran` steps may have moved aside, with its
/// host: kept, never deleted, and named so the operator can go back.
fn moved_aside(d: &Desired, plan: &Plan, ran: usize) -> String {
    let mut lines = Vec::new();
    for s in plan.steps.iter().take(ran) {
        if let Step::RestoreData { member, stamp, .. } = &s.step
            && let Some(m) = d.member(member)
        {
            for p in restore::aside_paths(m, stamp) {
                lines.push(format!("  {}:{}", m.address, p.display()));
            }
        }
    }
    if lines.is_empty() {
        return "No data was moved aside.".into();
    }
    format!(
        "The old data is kept, moved aside (when the member had any) to:\n{}",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcdplan_core::backup::{ContentDigest, MANIFEST_FORMAT};

    /// A file shaped like a streamed snapshot: a body and its sha256.
    fn snapshot_bytes(body: &[u8]) -> Vec<u8> {
        let mut data = body.to_vec();
        data.extend_from_slice(&Sha256::digest(body));
        data
    }

    fn manifest_for(data: &[u8]) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            file: "s.db".into(),
            cluster: "main".into(),
            cluster_id: "c1".into(),
            member: "etcd-1".into(),
            etcd_version: "3.5.30".into(),
            revision: 7,
            size: data.len() as u64,
            sha256: crate::model::hex(&Sha256::digest(data)),
            taken: "2026-12-02T10:00:00Z".into(),
            content: ContentDigest {
                sha256: "00".repeat(32),
                keys: 1,
            },
        }
    }

    #[test]
    fn an_intact_snapshot_passes_with_or_without_its_manifest()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.db");
        let data = snapshot_bytes(&[7u8; 4096]);
        std::fs::write(&path, &data)?;
        let alone = snapshot_check(&path)?;
        assert!(alone.manifest.is_none());
        assert_eq!(alone.size, data.len() as u64);
        std::fs::write(
            dir.path().join("s.db.json"),
            serde_json::to_string(&manifest_for(&data))?,
        )?;
        let with = snapshot_check(&path)?;
        assert_eq!(with.manifest.map(|m| m.revision), Some(7));
        Ok(())
    }

    #[test]
    fn truncated_altered_or_mismatched_snapshots_are_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.db");
        let data = snapshot_bytes(&[7u8; 4096]);
        // Truncated.
        std::fs::write(&path, &data[..data.len() - 100])?;
        let e = snapshot_check(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("sha256 trailer does not match"), "{e}");
        // One byte altered.
        let mut altered = data.clone();
        altered[10] ^= 1;
        std::fs::write(&path, &altered)?;
        assert!(matches!(
            snapshot_check(&path),
            Err(SnapshotError::Corrupt { .. })
        ));
        // Too short to hold a trailer.
        std::fs::write(&path, b"short")?;
        assert!(matches!(
            snapshot_check(&path),
            Err(SnapshotError::Corrupt { .. })
        ));
        // Intact, but its manifest describes another file.
        std::fs::write(&path, &data)?;
        let mut other = manifest_for(&data);
        other.sha256 = "ff".repeat(32);
        std::fs::write(dir.path().join("s.db.json"), serde_json::to_string(&other)?)?;
        let e = snapshot_check(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("does not fit the snapshot"), "{e}");
        std::fs::write(dir.path().join("s.db.json"), "{not json")?;
        assert!(matches!(
            snapshot_check(&path),
            Err(SnapshotError::Manifest { .. })
        ));
        // Missing.
        assert!(matches!(
            snapshot_check(&dir.path().join("none.db")),
            Err(SnapshotError::Read { .. })
        ));
        Ok(())
    }
}
