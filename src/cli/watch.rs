//! `watch`: the reconcile loop. Each wake-up (start, edit, drift interval)
//! reads the etcdfile, observes, plans and shows the plan; with
//! `--auto-approve` it applies plans that need no force flag, under the
//! cluster's lock, one at a time. A bad edit is reported and changes nothing.
//! Every wake-up (and the backup clock's) also takes the scheduled snapshot
//! of `[backup]` when one is due. With `--metrics-addr` the loop keeps
//! `watch::metrics` up to date (plans, applies, drift, snapshot age).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::apply::{lock_and_observe, run_plan, watch_signals};
use super::edges::{close, etcd_client, hosts, observe_live};
use super::plan::make_plan;
use super::validate::problem_json;
use super::{Cli, CliError, Outcome, file_label, style};
use crate::config::{self, ConfigError, Desired, Loaded};
use crate::execute::Event;
use crate::plan::Plan;
use crate::render;
use crate::view::{self, SharedView, Shown};
use crate::watch::metrics::WatchMetrics;
use crate::watch::{self, Trigger, WatchEvent};

/// The watch's settings from the command line.
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    /// Apply safe plans.
    pub auto_approve: bool,
    /// Time between drift checks.
    pub interval: Duration,
    /// JSON lines instead of text.
    pub json: bool,
    /// Health gate deadline for applies.
    pub gate: Duration,
    /// Where etcdplan's own metrics are served (`--metrics-addr`).
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// What the loop remembers between wake-ups.
#[derive(Default)]
struct Memory {
    /// The plan last shown, as text: a drift check that finds it again stays quiet.
    shown: Option<String>,
    /// The last apply did not happen (the lock was held) or failed: try again
    /// at the next check even if the plan is the same.
    retry: bool,
    /// sha256 of the etcdfile text last read: whether the file really changed
    /// decides between "edited" and "drift", whatever woke the loop.
    file_hash: Option<String>,
    /// When a due snapshot last failed: it is tried again one interval later,
    /// not at every tick of the backup clock.
    snapshot_failed: Option<Instant>,
    /// The figures `--metrics-addr` serves, when it is given.
    metrics: Option<Arc<WatchMetrics>>,
}

/// Runs until a signal: re-plans on every save of the etcdfile and every
/// interval, and applies safe plans when asked to.
pub(super) async fn watch(cli: &Cli, opts: Options) -> Result<Outcome, CliError> {
    if cli.allow_downgrade {
        return Err(CliError::Usage(
            "watch never downgrades etcd; run `etcdplan apply --allow-downgrade` by hand for that"
                .into(),
        ));
    }
    if cli.allow_majority_removal {
        return Err(CliError::Usage(
            "watch never removes a majority of the cluster; run `etcdplan apply --allow-majority-removal` by hand for that".into(),
        ));
    }
    // Bound before anything else, so that a bad address ends the command
    // before a plan; the server stops when it is dropped, as the watch ends.
    let metrics_server = match opts.metrics_addr {
        Some(addr) => Some(watch::metrics::serve(addr).await?),
        None => None,
    };
    let (tx, mut rx) = unbounded_channel();
    let _files = watch::watch_file(&cli.file, tx.clone())?;
    let _ticker = watch::tick(opts.interval, tx.clone());
    // The backup clock's period comes from the etcdfile as it is now; each
    // cycle reads the schedule again, so an edit takes effect at its pace.
    let schedule = config::load(&cli.file)
        .ok()
        .and_then(|l| l.desired.backup.and_then(|b| b.interval));
    let _backup_clock =
        watch::tick_with(watch::backup_period(schedule), Trigger::Backup, tx.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let view = view::choose(view::Command::Watch, opts.json);
    let signals = watch_signals(stop.clone(), Some(tx.clone()), view.clone());
    view.with(|v| {
        v.watch(&WatchEvent::Watching {
            file: cli.file.display().to_string(),
            interval_seconds: opts.interval.as_secs(),
            auto_approve: opts.auto_approve,
        });
    });
    let mut memory = Memory {
        metrics: metrics_server.as_ref().map(|s| s.metrics.clone()),
        ..Memory::default()
    };
    let mut trigger = Trigger::Start;
    let result = loop {
        if trigger == Trigger::Stop {
            break Ok(Outcome::Ok);
        }
        if let Err(e) = cycle(cli, opts, &view, trigger, &stop, &mut memory).await {
            break Err(e);
        }
        if stop.load(Ordering::SeqCst) {
            break Ok(Outcome::Ok);
        }
        trigger = next(&mut rx).await;
    };
    signals.abort();
    let reason = match &result {
        Ok(_) => "stopped by a signal".into(),
        Err(e) => e.to_string(),
    };
    view.with(|v| v.watch(&WatchEvent::Stopped { reason }));
    drop(metrics_server);
    result
}

/// Waits for the next trigger, then takes every other one already queued
/// (events that came in during an apply), keeping the strongest.
async fn next(rx: &mut UnboundedReceiver<Trigger>) -> Trigger {
    let Some(mut t) = rx.recv().await else {
        return Trigger::Stop;
    };
    while let Ok(more) = rx.try_recv() {
        t = t.merge(more);
    }
    t
}

/// Reads the etcdfile; a file that is missing for a moment (an editor
/// replacing it) is read again once.
async fn read(cli: &Cli) -> Result<Loaded, ConfigError> {
    match config::load(&cli.file) {
        Err(ConfigError::Read { .. }) => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            config::load(&cli.file)
        }
        other => other,
    }
}

/// One wake-up: read, observe, plan, show, maybe apply. Only a signal during
/// an apply ends the watch with an error; everything else is reported and the
/// watch goes on.
async fn cycle(
    cli: &Cli,
    opts: Options,
    view: &SharedView,
    trigger: Trigger,
    stop: &Arc<AtomicBool>,
    memory: &mut Memory,
) -> Result<(), CliError> {
    // Editors and `sed -i` fire several events, and a drift tick may come
    // first: the file's content, not the event, says whether it was edited.
    let hash = std::fs::read_to_string(&cli.file)
        .ok()
        .map(|t| config::hash(&t));
    let edited = hash != memory.file_hash;
    let trigger = match trigger {
        Trigger::Start => Trigger::Start,
        _ if edited => Trigger::Edit,
        Trigger::Backup => Trigger::Backup,
        _ => Trigger::Interval,
    };
    memory.file_hash = hash;
    if trigger == Trigger::Edit {
        let file = cli.file.display().to_string();
        view.with(|v| v.watch(&WatchEvent::FileChanged { file }));
    }
    let loaded = match read(cli).await {
        Ok(l) => l,
        Err(e) => {
            let problems = match &e {
                ConfigError::Invalid { problems, .. } => {
                    problems.iter().map(problem_json).collect()
                }
                ConfigError::Read { .. } => vec![serde_json::json!({
                    "level": "error",
                    "message": e.to_string(),
                })],
            };
            // Reported once per content; nothing is planned until it is fixed.
            if trigger != Trigger::Interval {
                view.with(|v| v.watch_invalid(e, problems));
            }
            memory.shown = None;
            return Ok(());
        }
    };
    let d = &loaded.desired;
    if trigger == Trigger::Backup {
        // Only the schedule: no plan, no hosts.
        backup_round(cli, view, d, memory).await;
        return Ok(());
    }
    let mut hosts = hosts(cli, d).await;
    let etcd = Arc::new(etcd_client(cli, d));
    let live = observe_live(cli, d, &hosts, etcd.as_ref(), false).await;
    let plan = make_plan(cli, d, &live);
    if let Some(m) = &memory.metrics {
        m.planned(plan.changed_members());
    }
    let text = render::plan_human(&plan, d, &file_label(&cli.file), style(cli));
    // A drift check that finds nothing new stays quiet; so does one that finds
    // the plan already shown, unless an apply of it is to be tried again.
    let quiet = trigger == Trigger::Interval
        && (plan.is_empty()
            || (memory.shown.as_deref() == Some(text.as_str())
                && !(opts.auto_approve && memory.retry)));
    if !quiet {
        if trigger == Trigger::Interval {
            let changes = plan.changed_members();
            view.with(|v| v.watch(&WatchEvent::Drift { changes }));
            if let Some(m) = &memory.metrics {
                m.drifted();
            }
        }
        show(view, trigger, &plan, d, &text);
        memory.shown = Some(text);
    }
    let result = if quiet || plan.is_empty() {
        Ok(())
    } else if !opts.auto_approve {
        view.with(|v| v.watch_not_approved());
        Ok(())
    } else if let Some(reason) = plan.cannot_apply() {
        view.with(|v| v.watch(&WatchEvent::Skipped { reason }));
        memory.retry = false;
        Ok(())
    } else {
        apply_safely(
            cli, opts, view, trigger, d, &mut hosts, &etcd, live, memory, stop,
        )
        .await
    };
    close(&hosts).await;
    // A snapshot changes nothing, so it is taken with or without
    // --auto-approve (after an apply, never during one).
    backup_round(cli, view, d, memory).await;
    result
}

/// Takes the scheduled snapshot when one is due (see [`scheduled_snapshot`]),
/// then tells the metrics how old the newest snapshot is.
async fn backup_round(cli: &Cli, view: &SharedView, d: &Desired, memory: &mut Memory) {
    scheduled_snapshot(cli, view, d, memory).await;
    if let Some(m) = &memory.metrics {
        m.newest_snapshot(newest_snapshot(d));
    }
}

/// When the newest snapshot in `[backup] dir` was taken (`None` without
/// `[backup]`, with no snapshot, or when the folder cannot be read).
fn newest_snapshot(d: &Desired) -> Option<std::time::SystemTime> {
    let b = d.backup.as_ref()?;
    let taken = crate::backup::newest(&b.dir).ok()??.taken_at()?;
    Some(std::time::SystemTime::from(taken))
}

/// Takes the scheduled snapshot when one is due (`[backup] interval`), retries
/// the copies still to be made and applies `keep`, and reports each through
/// the view. Failures are reported; the next interval tries again.
async fn scheduled_snapshot(cli: &Cli, view: &SharedView, d: &Desired, memory: &mut Memory) {
    let Some(interval) = d.backup.as_ref().and_then(|b| b.interval) else {
        return;
    };
    if memory
        .snapshot_failed
        .is_some_and(|t| t.elapsed() < interval)
    {
        return;
    }
    let etcd = etcd_client(cli, d);
    let round = crate::backup::scheduled(d, &etcd, true).await;
    memory.snapshot_failed = round.failed.as_ref().map(|_| Instant::now());
    let mut events = Vec::new();
    if let Some(t) = &round.taken {
        match &t.manifest {
            Some(m) => events.push(WatchEvent::Snapshot {
                path: t.path.display().to_string(),
                revision: m.revision,
                keys: m.content.keys,
                bytes: m.size,
            }),
            None => events.push(WatchEvent::SnapshotFailed {
                error: format!("{} was saved unchecked", t.path.display()),
            }),
        }
    }
    if let Some(e) = &round.failed {
        events.push(WatchEvent::SnapshotFailed {
            error: e.to_string(),
        });
    }
    for c in round.copies {
        events.push(match c.error {
            None => WatchEvent::Copied { file: c.file },
            Some(error) => WatchEvent::CopyFailed {
                file: c.file,
                error,
            },
        });
    }
    if !round.pruned.is_empty() {
        events.push(WatchEvent::Pruned {
            files: round.pruned,
        });
    }
    if let Some(e) = &round.housekeeping {
        events.push(WatchEvent::SnapshotFailed {
            error: e.to_string(),
        });
    }
    view.with(|v| {
        for e in &events {
            v.watch(e);
        }
    });
}

/// Takes the lock, re-plans from what is live under it (another etcdplan may
/// have changed the cluster meanwhile), and walks the plan if it may still be
/// applied. A held lock or a failed step is reported and left to the next
/// check; only a signal ends the watch.
#[allow(clippy::too_many_arguments)]
async fn apply_safely(
    cli: &Cli,
    opts: Options,
    view: &SharedView,
    trigger: Trigger,
    d: &Desired,
    hosts: &mut crate::io::HostMap,
    etcd: &Arc<crate::io::EtcdClient>,
    live: crate::observe::Live,
    memory: &mut Memory,
    stop: &Arc<AtomicBool>,
) -> Result<(), CliError> {
    let (live, lock) = match lock_and_observe(cli, d, hosts, etcd, live, "watch").await {
        Ok(locked) => locked,
        Err(e @ (CliError::Lock(_) | CliError::HostLock(_))) => {
            let reason = format!("{e}; trying again at the next check");
            view.with(|v| v.watch(&WatchEvent::Skipped { reason }));
            memory.retry = true;
            return Ok(());
        }
        Err(other) => return Err(other),
    };
    let plan = make_plan(cli, d, &live);
    if let Some(m) = &memory.metrics {
        m.planned(plan.changed_members());
    }
    let text = render::plan_human(&plan, d, &file_label(&cli.file), style(cli));
    if memory.shown.as_deref() != Some(text.as_str()) {
        show(view, trigger, &plan, d, &text);
        memory.shown = Some(text);
    }
    memory.retry = false;
    let result = if plan.is_empty() {
        Ok(())
    } else if let Some(reason) = plan.cannot_apply() {
        // Shown and remembered: the next drift check stays quiet about it.
        view.with(|v| v.watch(&WatchEvent::Skipped { reason }));
        Ok(())
    } else {
        let started = Instant::now();
        view.with(|v| v.apply_started(plan.steps.len()));
        let mut on_event = |e: Event| view.with(|v| v.progress(&e));
        match run_plan(
            cli,
            d,
            hosts,
            etcd,
            &live,
            &plan,
            stop,
            opts.gate,
            view,
            &mut on_event,
        )
        .await
        {
            Ok(_) => {
                if let Some(m) = &memory.metrics {
                    m.applied(true, std::time::SystemTime::now());
                }
                let seconds = started.elapsed().as_secs_f64();
                view.with(|v| v.apply_complete(&plan, seconds));
                // What is live now is what the next check compares with.
                memory.shown = None;
                Ok(())
            }
            Err(CliError::Apply(e)) => {
                if let Some(m) = &memory.metrics {
                    m.applied(false, std::time::SystemTime::now());
                }
                memory.shown = None;
                memory.retry = true;
                view.with(|v| v.apply_failed(&e));
                if stop.load(Ordering::SeqCst) {
                    Err(CliError::Apply(e))
                } else {
                    Ok(())
                }
            }
            Err(other) => Err(other),
        }
    };
    lock.release(etcd.as_ref(), view).await;
    result
}

/// Shows a plan: an event, and for people its text on stdout.
fn show(view: &SharedView, trigger: Trigger, plan: &Plan, d: &Desired, text: &str) {
    view.with(|v| {
        v.plan(&Shown {
            plan,
            desired: d,
            text,
            trigger: Some(trigger),
        });
    });
}
