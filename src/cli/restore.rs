//! `etcdplan restore SNAPSHOT`: check the snapshot before anything else,
//! take the lock in files on every host (the lock in etcd cannot be held
//! while every member is stopped), plan the restore in core
//! (`plan::restore`), show it, ask, and walk it; a failure names every data
//! folder moved aside.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::apply::{confirm, run_plan, watch_signals};
use super::edges::{close, etcd_client, hosts, observe_live};
use super::{Cli, CliError, Outcome, RestoreArgs, file_label, load, style};
use crate::backup::{self, BackupError};
use crate::config::{Desired, DesiredMember};
use crate::execute::{self, Event, hostlock};
use crate::io::{EtcdApi, EtcdClient, HostMap};
use crate::observe::Live;
use crate::plan::{Plan, Step, restore};
use crate::render;
use crate::view::{self, SharedView, Shown};
use etcdplan_core::backup::Manifest;

/// A snapshot file that passed [`snapshot_check`].
#[derive(Debug, Clone)]
pub struct CheckedSnapshot {
    /// Its size in bytes.
    pub size: u64,
    /// The sha256 of the whole file, hex.
    pub sha256: String,
    /// The revision it holds: from etcd's status tool on this machine, else
    /// from its manifest; unknown without both.
    pub revision: Option<i64>,
    /// Its manifest, when one is beside it (and matches it).
    pub manifest: Option<Manifest>,
}

/// Checks a snapshot file on this machine before anything is stopped, with
/// the backup module's check (`backup::check_snapshot_file`: the sha256
/// trailer, the manifest beside it when there is one, etcd's `snapshot
/// status`); without etcdutl or etcdctl here, the checks that need neither.
pub async fn snapshot_check(path: &Path) -> Result<CheckedSnapshot, BackupError> {
    let manifest = backup::manifest_beside(path)?;
    match backup::check_snapshot_file(path, manifest.as_ref()).await {
        Ok(c) => Ok(CheckedSnapshot {
            size: c.size,
            sha256: c.sha256,
            revision: Some(c.revision),
            manifest,
        }),
        Err(BackupError::NoTool(_)) => {
            let (size, sha256) = backup::check_integrity(path, manifest.as_ref()).await?;
            Ok(CheckedSnapshot {
                size,
                sha256,
                revision: manifest.as_ref().map(|m| m.revision),
                manifest,
            })
        }
        Err(e) => Err(e),
    }
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
    let snap = snapshot_check(&args.snapshot)
        .await
        .map_err(|e| CliError::Snapshot(e.to_string()))?;
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
    let lock = hostlock::acquire(
        &members,
        hosts,
        &info,
        cli.lock_timeout,
        hostlock::Create::Folders,
    )
    .await?;
    let mut lock_note = format!(
        "locked by lock files on every host that answers (id {}): the lock in etcd cannot be held while every member is stopped",
        info.id
    );
    if !lock.skipped.is_empty() {
        lock_note.push_str(&format!("; no lock on {}", lock.skipped.join(", ")));
    }
    let result = async {
        let live = observe_live(cli, d, hosts, etcd.as_ref(), true).await;
        let revision = snap.revision;
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
            allow_data_loss: cli.allow_data_loss,
            bump: (!args.no_bump_revision).then_some(args.bump_revision),
            notes: vec![lock_note],
        };
        let plan = restore::build(d, &live, &req);
        walk(cli, args, view, d, hosts, &etcd, &live, &plan).await
    }
    .await;
    super::apply::say_lock_notes(view, lock.release().await);
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
        view,
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
