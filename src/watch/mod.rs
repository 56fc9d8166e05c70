//! The watch loop's parts: what wakes it (an edit of the etcdfile, the drift
//! interval, the backup clock, a signal), what it reports (one event per line for log shippers,
//! or text for people), and which plans it may apply without a person.
//!
//! The loop itself lives in the command line, which owns the real edges; this
//! module has no etcd or ssh in it. [`metrics`] serves etcdplan's own metrics
//! while the loop runs (`--metrics-addr`).

pub mod metrics;

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::event::{AccessKind, EventKind};
use notify_debouncer_full::notify::{self, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, DebouncedEvent, new_debouncer};
use tokio::sync::mpsc::UnboundedSender;

/// Why the loop wakes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The watch just started.
    Start,
    /// The etcdfile was saved.
    Edit,
    /// The drift interval passed.
    Interval,
    /// A signal asked the watch to end.
    Stop,
    /// The backup clock: a scheduled snapshot may be due (`[backup] interval`).
    Backup,
}

impl Trigger {
    /// The strongest of two triggers that arrived while the loop was busy: a
    /// stop wins, then an edit (which re-reads the file), then the rest.
    #[must_use]
    pub fn merge(self, other: Self) -> Self {
        // Every cycle looks at the backup schedule, so a backup tick merged
        // into any other trigger is not lost.
        let rank = |t: Self| match t {
            Self::Stop => 4,
            Self::Edit => 3,
            Self::Start => 2,
            Self::Interval => 1,
            Self::Backup => 0,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// Why the file watcher could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {}: {source}", path.display())]
pub struct WatchError {
    /// The folder that was to be watched.
    pub path: PathBuf,
    /// What notify said.
    #[source]
    pub source: notify::Error,
}

/// Keeps the etcdfile watched while alive; dropping it stops watching.
pub struct FileWatch {
    _debouncer: notify_debouncer_full::Debouncer<
        notify::RecommendedWatcher,
        notify_debouncer_full::RecommendedCache,
    >,
}

/// How long bursts of file events are merged: an editor's save is a write, a
/// rename and a few metadata events within a few milliseconds.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches the folder of `file` (editors save by replacing the file, which
/// would end a watch on the file itself) and sends [`Trigger::Edit`] for each
/// debounced burst of events that concern the file.
///
/// # Errors
/// When the folder cannot be watched (it does not exist, inotify limits).
pub fn watch_file(file: &Path, tx: UnboundedSender<Trigger>) -> Result<FileWatch, WatchError> {
    let target = canonical_target(file);
    let folder = target
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned);
    let wanted = target.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |res: DebounceEventResult| {
        if let Ok(events) = res
            && events.iter().any(|e| concerns(e, &wanted))
        {
            let _ = tx.send(Trigger::Edit);
        }
    })
    .map_err(|source| WatchError {
        path: folder.clone(),
        source,
    })?;
    debouncer
        .watch(&folder, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError {
            path: folder.clone(),
            source,
        })?;
    Ok(FileWatch {
        _debouncer: debouncer,
    })
}

/// The file's absolute path with its folder's symlinks resolved (notify
/// reports resolved paths); the file itself may be missing for a moment.
fn canonical_target(file: &Path) -> PathBuf {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_owned())
            .join(name),
        _ => abs,
    }
}

/// Whether an event is a change of the file: anything that names it except a
/// bare open or read, which every reader (etcdplan included) causes.
fn concerns(e: &DebouncedEvent, file: &Path) -> bool {
    let passive = matches!(
        e.event.kind,
        EventKind::Access(AccessKind::Open(_) | AccessKind::Read | AccessKind::Any)
    );
    !passive && e.event.paths.iter().any(|p| p == file)
}

/// Sends [`Trigger::Interval`] every `every`, starting one interval from now.
pub fn tick(every: Duration, tx: UnboundedSender<Trigger>) -> tokio::task::JoinHandle<()> {
    tick_with(every, Trigger::Interval, tx)
}

/// How often the backup clock looks whether a snapshot is due: often enough
/// that one is taken within half an interval of being due, at most every
/// minute, and every minute when the etcdfile has no schedule (yet).
#[must_use]
pub fn backup_period(interval: Option<Duration>) -> Duration {
    interval.map_or(Duration::from_secs(60), |i| {
        (i / 2).clamp(Duration::from_secs(1), Duration::from_secs(60))
    })
}

/// Sends `trigger` every `every`, starting one interval from now.
pub fn tick_with(
    every: Duration,
    trigger: Trigger,
    tx: UnboundedSender<Trigger>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + every;
        let mut t = tokio::time::interval_at(start, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            if tx.send(trigger).is_err() {
                return;
            }
        }
    })
}

/// What the watch reports; one JSON object per line with `--json`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum WatchEvent {
    /// Watching began.
    Watching {
        /// The etcdfile.
        file: String,
        /// Seconds between drift checks.
        interval_seconds: u64,
        /// Whether safe plans are applied.
        auto_approve: bool,
    },
    /// The etcdfile was saved.
    FileChanged {
        /// The etcdfile.
        file: String,
    },
    /// The etcdfile cannot be used; nothing was changed.
    Invalid {
        /// Every problem, with its line.
        problems: Vec<serde_json::Value>,
    },
    /// A drift check found the cluster differs from the file without an edit.
    Drift {
        /// Members with a change.
        changes: usize,
    },
    /// A plan was made.
    Plan {
        /// What caused it.
        trigger: Trigger,
        /// Members with a change.
        changes: usize,
        /// The plan, as `plan --json` prints it.
        plan: serde_json::Value,
    },
    /// A plan was not applied, and why.
    Skipped {
        /// Why.
        reason: String,
    },
    /// An apply ended well.
    Applied {
        /// Members added, changed and removed.
        add: usize,
        /// Members changed.
        change: usize,
        /// Members removed.
        remove: usize,
        /// Wall time.
        seconds: f64,
    },
    /// An apply stopped at a failed step; the next cycle re-plans.
    ApplyFailed {
        /// The failed step and why.
        error: String,
        /// Steps done.
        done: Vec<String>,
        /// Steps not run.
        remaining: Vec<String>,
        /// What was done after the failure (a half-way downgrade cancelled).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        afterwards: Vec<String>,
    },
    /// A scheduled snapshot was taken and checked (`[backup]`).
    Snapshot {
        /// The snapshot file.
        path: String,
        /// The store's revision it holds.
        revision: i64,
        /// Keys at that revision.
        keys: u64,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A scheduled snapshot was due and could not be taken; the next
    /// interval tries again.
    SnapshotFailed {
        /// Why.
        error: String,
    },
    /// A snapshot was copied with `copy_command`.
    Copied {
        /// The snapshot file.
        file: String,
    },
    /// A copy failed; the snapshot is kept and the copy retried at the next interval.
    CopyFailed {
        /// The snapshot file.
        file: String,
        /// The end of the command's output.
        error: String,
    },
    /// `keep` deleted the oldest snapshots.
    Pruned {
        /// The snapshot files deleted.
        files: Vec<String>,
    },
    /// The watch ended.
    Stopped {
        /// Why.
        reason: String,
    },
    /// A step of an apply (tagged `step_started` / `step_finished`).
    #[serde(untagged)]
    Step(crate::execute::Event),
}

impl WatchEvent {
    /// One line of JSON with the time it was made (UTC, RFC 3339).
    #[must_use]
    pub fn json_line(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.insert("time".into(), serde_json::Value::String(now_rfc3339()));
        }
        v.to_string()
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The time of day (UTC) for human watch output.
#[must_use]
pub fn clock() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}Z", now.hour(), now.minute(), now.second())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_debouncer_full::notify::Event;
    use notify_debouncer_full::notify::event::{AccessMode, CreateKind, ModifyKind, RenameMode};

    fn ev(kind: EventKind, path: &str) -> DebouncedEvent {
        DebouncedEvent::new(
            Event::new(kind).add_path(PathBuf::from(path)),
            std::time::Instant::now(),
        )
    }

    #[test]
    fn saves_count_and_reads_do_not() {
        let f = Path::new("/d/etcdfile.toml");
        assert!(concerns(
            &ev(EventKind::Create(CreateKind::File), "/d/etcdfile.toml"),
            f
        ));
        assert!(concerns(
            &ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                "/d/etcdfile.toml"
            ),
            f
        ));
        assert!(concerns(
            &ev(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "/d/etcdfile.toml"
            ),
            f
        ));
        assert!(!concerns(
            &ev(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "/d/etcdfile.toml"
            ),
            f
        ));
        assert!(!concerns(
            &ev(EventKind::Create(CreateKind::File), "/d/.etcdfile.toml.swp"),
            f
        ));
    }

    #[test]
    fn a_stop_outranks_an_edit_which_outranks_a_tick() {
        assert_eq!(Trigger::Interval.merge(Trigger::Edit), Trigger::Edit);
        assert_eq!(Trigger::Edit.merge(Trigger::Interval), Trigger::Edit);
        assert_eq!(Trigger::Edit.merge(Trigger::Stop), Trigger::Stop);
        assert_eq!(Trigger::Start.merge(Trigger::Interval), Trigger::Start);
        assert_eq!(Trigger::Backup.merge(Trigger::Interval), Trigger::Interval);
        assert_eq!(Trigger::Backup.merge(Trigger::Backup), Trigger::Backup);
    }

    #[test]
    fn the_backup_clock_ticks_at_half_the_interval_within_bounds() {
        assert_eq!(backup_period(None), Duration::from_secs(60));
        assert_eq!(
            backup_period(Some(Duration::from_secs(2))),
            Duration::from_secs(1)
        );
        assert_eq!(
            backup_period(Some(Duration::from_millis(1500))),
            Duration::from_secs(1)
        );
        assert_eq!(
            backup_period(Some(Duration::from_secs(90))),
            Duration::from_secs(45)
        );
        assert_eq!(
            backup_period(Some(Duration::from_secs(6 * 3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn step_events_keep_their_own_tag() {
        let e = WatchEvent::Step(crate::execute::Event::StepStarted {
            index: 0,
            total: 2,
            description: "restart etcd-1".into(),
        });
        let v: serde_json::Value = serde_json::from_str(&e.json_line()).unwrap_or_default();
        assert_eq!(v["event"], "step_started");
        assert_eq!(v["total"], 2);
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
