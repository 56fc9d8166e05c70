//! Saved plans: what `plan --out` writes and `apply FILE` checks before acting.
//!
//! A saved plan records the etcdfile's hash, the fingerprint of the live state
//! it was made from, and its steps. Applying it re-observes the cluster and
//! refuses when anything it depended on changed; the operator's review of the
//! saved plan is the approval, so no prompt follows.

use serde::{Deserialize, Serialize};

use super::{Plan, Step};
use crate::live::{Fingerprint, fingerprint_changes};

/// The saved form, versioned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Bumped on incompatible changes.
    pub format_version: String,
    /// sha256 of the etcdfile the plan was made from.
    pub etcdfile_sha256: String,
    /// The live state it was made from.
    pub fingerprint: Fingerprint,
    /// Its steps, as people read them (and as re-planning must reproduce them).
    pub steps: Vec<String>,
    /// The whole plan as `plan --json` shows it, for people and scripts.
    pub plan: serde_json::Value,
}

/// The current format version.
pub const FORMAT_VERSION: &str = "1";

/// Why a saved plan cannot be applied now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaleError {
    /// Written by another version of etcdplan.
    #[error("the plan file has format {0}, this etcdplan reads format {FORMAT_VERSION}")]
    Format(String),
    /// The etcdfile changed since.
    #[error("the etcdfile changed since the plan was saved")]
    Etcdfile,
    /// The live state changed since.
    #[error("the cluster changed since the plan was saved:\n  {}", .0.join("\n  "))]
    Live(Vec<String>),
    /// Planning again gives other steps (a bug, or a change the fingerprint missed).
    #[error("planning again gives other steps than the saved plan")]
    Steps,
}

impl SavedPlan {
    /// A saved form of `plan`, made against `live`.
    pub fn new(plan: &Plan, fingerprint: Fingerprint, json: serde_json::Value) -> Self {
        Self {
            format_version: FORMAT_VERSION.into(),
            etcdfile_sha256: plan.file_hash.clone(),
            fingerprint,
            steps: plan.steps.iter().map(Step::describe).collect(),
            plan: json,
        }
    }

    /// Checks the saved plan against the etcdfile, the live state, and the plan
    /// made from them now.
    pub fn check(
        &self,
        etcdfile_sha256: &str,
        now: &Fingerprint,
        replanned: &Plan,
    ) -> Result<(), StaleError> {
        if self.format_version != FORMAT_VERSION {
            return Err(StaleError::Format(self.format_version.clone()));
        }
        if self.etcdfile_sha256 != etcdfile_sha256 {
            return Err(StaleError::Etcdfile);
        }
        let changed = fingerprint_changes(&self.fingerprint, now);
        if !changed.is_empty() {
            return Err(StaleError::Live(changed));
        }
        let steps: Vec<String> = replanned.steps.iter().map(Step::describe).collect();
        if steps != self.steps {
            return Err(StaleError::Steps);
        }
        Ok(())
    }
}
