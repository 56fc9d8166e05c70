//! Saved plans: `plan --out` writes the plan document, `apply FILE` executes
//! its steps as saved.
//!
//! Applying re-observes the cluster first and refuses when the etcdfile or
//! anything the plan depended on changed (Terraform refuses a stale plan file
//! the same way); it never plans again. The operator's review of the saved
//! plan is the approval, so no prompt follows.

use super::{FORMAT_VERSION, Plan};
use crate::live::{Fingerprint, fingerprint_changes};

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
}

/// Why a file is not a saved plan at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a saved plan: {0}")]
pub struct ReadError(pub String);

impl Plan {
    /// Reads a saved plan. The format is checked first, so a plan file of
    /// another etcdplan is refused as such rather than as unreadable.
    ///
    /// # Errors
    /// [`StaleError::Format`] for another format; [`ReadError`] otherwise.
    pub fn from_saved(text: &str) -> Result<Result<Self, StaleError>, ReadError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ReadError(e.to_string()))?;
        match value
            .get("format_version")
            .and_then(serde_json::Value::as_str)
        {
            Some(FORMAT_VERSION) => {}
            Some(other) => return Ok(Err(StaleError::Format(other.to_owned()))),
            None => return Err(ReadError("it has no format_version".into())),
        }
        serde_json::from_value(value)
            .map(Ok)
            .map_err(|e| ReadError(e.to_string()))
    }

    /// Checks a saved plan (read by [`Plan::from_saved`], which checked its
    /// format) against the etcdfile and the live state now. Blockers saved
    /// with it are refused as any plan's are ([`Plan::cannot_apply`]).
    pub fn check_saved(&self, etcdfile_sha256: &str, now: &Fingerprint) -> Result<(), StaleError> {
        if self.file_hash != etcdfile_sha256 {
            return Err(StaleError::Etcdfile);
        }
        let changed = fingerprint_changes(&self.live_fingerprint, now);
        if !changed.is_empty() {
            return Err(StaleError::Live(changed));
        }
        Ok(())
    }
}
