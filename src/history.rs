//! Who did what, written to etcd: each walk of a plan (apply, restart,
//! restore, watch) leaves a record under `etcdplan/history/` (the shape and
//! the pruning are the core's `history`), read back by `etcdplan history`.
//!
//! Best effort by design: the record is about the change, never a reason to
//! refuse or fail it. A record that cannot be written is a note through the
//! view; under a NOSPACE alarm (etcd refuses every put) it is skipped with a
//! note. With auth on, etcdplan writes as root, and only root reads
//! `etcdplan/` unless a role grants it.

use crate::execute::{ApplyError, StepError};
use crate::io::{EtcdApi, EtcdError, EtcdErrorKind};
use crate::live::Live;
use crate::model::Endpoint;
use crate::plan::Plan;

pub use etcdplan_core::history::{KEEP, Outcome, PREFIX, Record, Stored, plan_hash};

/// A walk's record once started: replaced by its end in [`Recording::finish`].
#[derive(Debug)]
pub struct Recording {
    record: Record,
    endpoints: Vec<Endpoint>,
}

/// What happened to a record, for the view: None when it was written.
pub type Note = Option<String>;

/// `user@host` of this process: `$USER` (or `$LOGNAME`), else the name of
/// its uid in /etc/passwd, else `uid N`; the host's name from the kernel.
pub fn who() -> String {
    let user = std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(uid_name);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{host}")
}

/// The real uid's name, from /proc/self/status and /etc/passwd.
fn uid_name() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .and_then(|r| r.split_whitespace().next().map(str::to_owned))
            })
        });
    let Some(uid) = uid else {
        return "unknown".into();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid).then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// Writes `record` through the first endpoint that takes it.
async fn write(
    etcd: &dyn EtcdApi,
    endpoints: &[Endpoint],
    record: &Record,
) -> Result<(), EtcdError> {
    let (key, value) = (record.key(), record.to_json());
    let mut last = None;
    for ep in endpoints {
        match etcd.put(ep, &key, &value).await {
            Ok(()) => return Ok(()),
            // The alarm is the cluster's: another member refuses it too.
            Err(e) if e.kind() == EtcdErrorKind::NoSpace => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| EtcdError::Call {
        endpoint: String::new(),
        kind: EtcdErrorKind::Other,
        message: "no endpoint to write to".into(),
    }))
}

/// Why a record was not written, as a note.
fn not_written(what: &str, e: &EtcdError) -> String {
    if e.kind() == EtcdErrorKind::NoSpace {
        format!(
            "the {what} record of this walk was skipped: etcd refuses writes under its NOSPACE alarm"
        )
    } else {
        format!("the {what} record of this walk could not be written to {PREFIX}: {e}")
    }
}

/// Whether the cluster can take the start record now: something answers,
/// a voter is healthy and no NOSPACE alarm refuses puts. Otherwise (a new
/// cluster, a lost quorum, NOSPACE) only the end is recorded.
fn writable(live: &Live) -> Result<(), String> {
    let Some(c) = &live.cluster else {
        return Err("no member answers yet".into());
    };
    if crate::diff::maintenance::raised(c, "NOSPACE") {
        return Err("etcd refuses writes under its NOSPACE alarm".into());
    }
    if !c.members.iter().any(|m| !m.is_learner && m.healthy()) {
        return Err("no voter is healthy".into());
    }
    Ok(())
}

impl Recording {
    /// Records the walk of `plan` as started, now, by [`who`]; the note says
    /// why it was not written (the end is still tried).
    pub async fn start(
        etcd: &dyn EtcdApi,
        endpoints: Vec<Endpoint>,
        operation: &str,
        plan: &Plan,
        live: &Live,
    ) -> (Self, Note) {
        let record = Record::started(operation, &who(), plan, time::OffsetDateTime::now_utc());
        let note = match writable(live) {
            // A new cluster: nothing to write to yet, nothing to say.
            Err(_) if live.cluster.is_none() => None,
            Err(why) => Some(format!(
                "the start of this walk is not recorded in {PREFIX} ({why}); its end will be"
            )),
            Ok(()) => write(etcd, &endpoints, &record)
                .await
                .err()
                .map(|e| not_written("start", &e)),
        };
        (Self { record, endpoints }, note)
    }

    /// Replaces the start record with how the walk ended, then deletes the
    /// records beyond the newest [`KEEP`].
    pub async fn finish(self, etcd: &dyn EtcdApi, outcome: Outcome) -> Note {
        let record = self.record.ended(outcome, time::OffsetDateTime::now_utc());
        if let Err(e) = write(etcd, &self.endpoints, &record).await {
            return Some(not_written("end", &e));
        }
        prune(etcd, &self.endpoints)
            .await
            .err()
            .map(|e| format!("older records in {PREFIX} could not be pruned: {e}"))
    }

    /// The record as it stands.
    pub fn record(&self) -> &Record {
        &self.record
    }
}

/// How a walk ended, from what `execute::apply` returned.
pub fn outcome(result: &Result<crate::execute::Report, ApplyError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Applied,
        Err(e) if matches!(e.error, StepError::Interrupted) => {
            Outcome::Cancelled { step: e.index + 1 }
        }
        Err(e) => Outcome::failed(e.index + 1, &e.description, &e.error.to_string()),
    }
}

/// Deletes the records beyond the newest [`KEEP`], through the first
/// endpoint that answers the read.
pub async fn prune(etcd: &dyn EtcdApi, endpoints: &[Endpoint]) -> Result<usize, EtcdError> {
    let (ep, kvs) = read_from(etcd, endpoints).await?;
    let keys: Vec<String> = kvs.into_iter().map(|(k, _)| k).collect();
    let gone = etcdplan_core::history::to_prune(&keys, KEEP);
    for k in &gone {
        etcd.delete_key(&ep, k).await?;
    }
    Ok(gone.len())
}

/// Every record (key, value) through the first endpoint that answers.
async fn read_from(
    etcd: &dyn EtcdApi,
    endpoints: &[Endpoint],
) -> Result<(Endpoint, Vec<(String, String)>), EtcdError> {
    let mut last = None;
    for ep in endpoints {
        match etcd.prefix_values(ep, PREFIX, 0).await {
            Ok(kvs) => return Ok((ep.clone(), kvs)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| EtcdError::Call {
        endpoint: String::new(),
        kind: EtcdErrorKind::Other,
        message: "no endpoint to read from".into(),
    }))
}

/// The newest `limit` records, newest first (`etcdplan history`).
pub async fn read(
    etcd: &dyn EtcdApi,
    endpoints: &[Endpoint],
    limit: usize,
) -> Result<Vec<Stored>, EtcdError> {
    let (_, kvs) = read_from(etcd, endpoints).await?;
    Ok(etcdplan_core::history::newest_first(kvs, limit))
}
