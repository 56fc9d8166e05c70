//! Who did what: the record every apply leaves in etcd under [`PREFIX`], so
//! an operator finds out afterwards who changed the cluster, when, with which
//! plan, and how it ended. `etcdplan history` lists them.
//!
//! Pure: the record's shape, its key, which keys to prune. Writing and
//! reading them is on the edge (`src/history.rs`). A walk writes its record
//! twice under one key: [`Outcome::Started`] before the first step, replaced
//! by how it ended after the last, so a walk that died (killed, host lost)
//! still shows as started.

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::plan::Plan;

/// Where the records live; with auth on only root reads it (unless a role
/// grants it).
pub const PREFIX: &str = "etcdplan/history/";

/// How many records are kept; older ones are deleted after each write.
pub const KEEP: usize = 100;

/// How a walk ended, as far as its record knows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Written before the first step; a record still saying this after the
    /// walk is over means etcdplan never wrote the end (killed, crashed).
    Started,
    /// Every step done.
    Applied,
    /// Stopped at a failed step.
    Failed {
        /// The failed step, from 1.
        step: usize,
        /// Its description.
        description: String,
        /// Why it failed.
        error: String,
    },
    /// A signal stopped the walk before this step (from 1).
    Cancelled {
        /// The first step not run.
        step: usize,
    },
}

impl Outcome {
    /// One line for `etcdplan history`.
    pub fn describe(&self, total: usize) -> String {
        match self {
            Self::Started => "started, no end recorded".into(),
            Self::Applied => "applied".into(),
            Self::Failed {
                step,
                description,
                error,
            } => format!(
                "failed at step {step}/{total} ({description}): {}",
                clip(&error.split_whitespace().collect::<Vec<_>>().join(" "), 100)
            ),
            Self::Cancelled { step } => format!("cancelled before step {step}/{total}"),
        }
    }
}

/// The most of a step's error a record keeps: etcd's last log lines can be
/// long, and a hundred records share the keyspace with the cluster's data.
pub const ERROR_MAX: usize = 2000;

impl Outcome {
    /// A failed step (from 1), its error clipped to [`ERROR_MAX`] characters.
    pub fn failed(step: usize, description: &str, error: &str) -> Self {
        Self::Failed {
            step,
            description: description.to_owned(),
            error: clip(error, ERROR_MAX),
        }
    }
}

/// `s` cut to `max` characters, with "…" when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One walk of a plan, as stored (JSON) under [`Record::key`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// `apply`, `restart`, `restore` or `watch`.
    pub operation: String,
    /// user@host of the etcdplan that walked it.
    pub who: String,
    /// When the walk started (RFC 3339, UTC).
    pub started: String,
    /// When it ended (RFC 3339, UTC); None while started.
    pub finished: Option<String>,
    /// [`plan_hash`] of the plan walked.
    pub plan_sha256: String,
    /// sha256 of the etcdfile the plan was made from.
    pub etcdfile_sha256: String,
    /// The steps, as the plan describes them.
    pub steps: Vec<String>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The fixed-width UTC stamp a key starts with: keys sort as times do.
const KEY_STAMP: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
);

impl Record {
    /// The record of `plan` starting now (`started`), by `who`.
    pub fn started(operation: &str, who: &str, plan: &Plan, started: OffsetDateTime) -> Self {
        Self {
            operation: operation.to_owned(),
            who: who.to_owned(),
            started: rfc3339(started),
            finished: None,
            plan_sha256: plan_hash(plan),
            etcdfile_sha256: plan.file_hash.clone(),
            steps: plan.steps.iter().map(|s| s.description.clone()).collect(),
            outcome: Outcome::Started,
        }
    }

    /// The same record, ended at `at` with `outcome`.
    pub fn ended(&self, outcome: Outcome, at: OffsetDateTime) -> Self {
        Self {
            finished: Some(rfc3339(at)),
            outcome,
            ..self.clone()
        }
    }

    /// Its key: [`PREFIX`], the start time to the millisecond, and the plan
    /// hash's first 12 digits (two walks in one millisecond stay apart
    /// unless they walk the same plan).
    pub fn key(&self) -> String {
        let stamp = OffsetDateTime::parse(
            &self.started,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
        .and_then(|t| t.format(KEY_STAMP).ok())
        .unwrap_or_else(|| self.started.clone());
        format!(
            "{PREFIX}{stamp}-{}",
            self.plan_sha256.get(..12).unwrap_or(&self.plan_sha256)
        )
    }

    /// The stored value.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// RFC 3339 in UTC, to the millisecond.
fn rfc3339(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

/// The plan's own hash: sha256 of the plan document as `plan --out` saves
/// it (steps, changes, the etcdfile's hash and the live fingerprint), so a
/// saved plan and its record name each other.
pub fn plan_hash(plan: &Plan) -> String {
    let doc = serde_json::to_vec_pretty(plan).unwrap_or_default();
    crate::model::hex(&Sha256::digest(&doc))
}

/// The record keys to delete so that the newest `keep` remain: the oldest
/// first. Keys outside [`PREFIX`] are never named.
pub fn to_prune(keys: &[String], keep: usize) -> Vec<String> {
    let mut ours: Vec<&String> = keys.iter().filter(|k| k.starts_with(PREFIX)).collect();
    ours.sort();
    ours.dedup();
    let extra = ours.len().saturating_sub(keep);
    ours.into_iter().take(extra).cloned().collect()
}

/// One stored record as read back: its key, and the record or why its value
/// is not one (a newer etcdplan's, or written by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The key.
    pub key: String,
    /// The record, or the parse error.
    pub record: Result<Record, String>,
}

/// Stored records from the key-value pairs under [`PREFIX`], newest first,
/// at most `limit`.
pub fn newest_first(kvs: Vec<(String, String)>, limit: usize) -> Vec<Stored> {
    let mut kvs: Vec<(String, String)> = kvs
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect();
    kvs.sort_by(|a, b| b.0.cmp(&a.0));
    kvs.into_iter()
        .take(limit)
        .map(|(key, value)| Stored {
            key,
            record: serde_json::from_str(&value).map_err(|e| e.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> String {
        format!("{PREFIX}20261203T{:06}.000Z-abcdef012345", i)
    }

    #[test]
    fn prune_keeps_the_newest_hundred() {
        // Shuffled, as a range read need not hand them in order.
        let mut keys: Vec<String> = (0..130).map(key).collect();
        keys.reverse();
        keys.swap(3, 90);
        keys.push("etcdplan/lock".into());
        let gone = to_prune(&keys, KEEP);
        assert_eq!(gone.len(), 30);
        assert_eq!(gone.first(), Some(&key(0)));
        assert_eq!(gone.last(), Some(&key(29)));
        assert!(!gone.contains(&key(30)));
        assert!(!gone.iter().any(|k| k == "etcdplan/lock"));
        assert!(to_prune(&keys[..50], KEEP).is_empty());
        assert_eq!(
            to_prune(&(0..101).map(key).collect::<Vec<_>>(), KEEP),
            [key(0)]
        );
    }

    #[test]
    fn keys_sort_as_times_do() {
        let t = |s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("{s}: {e}"))
        };
        let plan_hash = "0123456789abcdef".to_owned();
        let rec = |at: &str| Record {
            operation: "apply".into(),
            who: "ops@admin".into(),
            started: rfc3339(t(at)),
            finished: None,
            plan_sha256: plan_hash.clone(),
            etcdfile_sha256: String::new(),
            steps: vec![],
            outcome: Outcome::Started,
        };
        let a = rec("2026-12-03T09:05:01.5+02:00").key();
        let b = rec("2026-12-03T07:05:01.75Z").key();
        let c = rec("2026-12-03T10:00:00Z").key();
        assert_eq!(a, "etcdplan/history/20261203T070501.500Z-0123456789ab");
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn outcome_is_flattened_into_the_record() {
        let r = Record {
            operation: "apply".into(),
            who: "ops@admin".into(),
            started: "2026-12-03T07:05:01.500Z".into(),
            finished: Some("2026-12-03T07:05:09.000Z".into()),
            plan_sha256: "ab".into(),
            etcdfile_sha256: "cd".into(),
            steps: vec!["restart m1".into(), "wait until m1 healthy".into()],
            outcome: Outcome::Failed {
                step: 2,
                description: "wait until m1 healthy".into(),
                error: "timed out".into(),
            },
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap_or_default();
        assert_eq!(v["result"], "failed");
        assert_eq!(v["step"], 2);
        let back: Record = serde_json::from_str(&r.to_json()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, r);
        assert_eq!(
            r.outcome.describe(2),
            "failed at step 2/2 (wait until m1 healthy): timed out"
        );
    }

    #[test]
    fn long_errors_are_clipped_in_the_record_and_more_in_the_table() {
        let long = "x ".repeat(3000);
        let o = Outcome::failed(1, "restart m1", &long);
        let Outcome::Failed { error, .. } = &o else {
            panic!("{o:?}");
        };
        assert_eq!(error.chars().count(), ERROR_MAX);
        assert!(error.ends_with('…'));
        let line = o.describe(3);
        assert!(line.chars().count() < 160, "{line}");
        assert!(
            line.starts_with("failed at step 1/3 (restart m1): x x"),
            "{line}"
        );
        assert_eq!(clip("short", 100), "short");
    }

    #[test]
    fn newest_first_limits_and_keeps_unreadable_values() {
        let kvs = vec![
            (key(1), "{}".to_owned()),
            (key(3), "not json".to_owned()),
            (key(2), "{}".to_owned()),
            ("etcdplan/lock".to_owned(), "x".to_owned()),
        ];
        let got = newest_first(kvs, 2);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].key, key(3));
        assert!(got[0].record.is_err());
        assert_eq!(got[1].key, key(2));
    }
}
