//! One scheduled round, as `watch` runs it every interval and
//! `etcdplan snapshot [--if-due]` runs it once: a snapshot when one is due,
//! then the copies still to be made, then `keep`.

use super::BackupError;
use super::copy::{CopyOutcome, copy_pending};
use super::folder::{newest, prune};
use super::take::{Taken, take};
use crate::backup_core::is_due;
use crate::config::Desired;
use crate::io::{EtcdApi, Progress};

/// What a round did.
#[derive(Debug, Default)]
pub struct Round {
    /// The snapshot taken (none: not due, or it failed).
    pub taken: Option<Taken>,
    /// Why no snapshot was taken though one was due.
    pub failed: Option<BackupError>,
    /// Not due: when the newest was taken.
    pub not_due_since: Option<String>,
    /// Each copy tried.
    pub copies: Vec<CopyOutcome>,
    /// Snapshots deleted by `keep`.
    pub pruned: Vec<String>,
    /// Why the copies or `keep` could not run.
    pub housekeeping: Option<BackupError>,
}

/// Runs a round for the etcdfile's `[backup]`: with `only_if_due`, nothing
/// happens unless the newest snapshot in `dir` is at least `interval` old;
/// a due round takes a snapshot, then retries every copy still to be made,
/// then applies `keep`.
pub async fn scheduled(d: &Desired, etcd: &dyn EtcdApi, only_if_due: bool) -> Round {
    let mut round = Round::default();
    let Some(b) = &d.backup else {
        round.failed = Some(BackupError::Config(
            "the etcdfile has no [backup] section".into(),
        ));
        return round;
    };
    let due = match (only_if_due, b.interval) {
        (false, _) => true,
        (true, None) => {
            round.failed = Some(BackupError::Config(
                "[backup] sets no interval, so no snapshot is ever due; add interval = \"6h\" (or run `etcdplan snapshot` without --if-due)".into(),
            ));
            return round;
        }
        (true, Some(interval)) => match newest(&b.dir) {
            Err(e) => {
                round.failed = Some(e);
                return round;
            }
            Ok(n) => {
                let taken = n.as_ref().and_then(|m| m.taken_at());
                if !is_due(taken, time::OffsetDateTime::now_utc(), interval) {
                    // Copies are retried when the next snapshot is due.
                    round.not_due_since = n.map(|m| m.taken);
                    return round;
                }
                true
            }
        },
    };
    if due {
        let progress = Progress::new(|_, _| {});
        match take(
            etcd,
            &d.client_urls(),
            d.cluster.as_str(),
            &b.dir,
            &progress,
            true,
        )
        .await
        {
            Ok(t) => round.taken = Some(t),
            Err(e) => round.failed = Some(e),
        }
    }
    match copy_pending(b).await {
        Ok(c) => round.copies = c,
        Err(e) => round.housekeeping = Some(e),
    }
    if let Some(keep) = b.keep {
        match prune(&b.dir, keep, b.copy_command.is_some()) {
            Ok(p) => round.pruned = p,
            Err(e) => round.housekeeping = Some(e),
        }
    }
    round
}
