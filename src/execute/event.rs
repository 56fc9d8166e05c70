//! What the walk reports while it runs: step starts and ends, what a step
//! did worth knowing, and the bytes of long transfers. The caller's view
//! turns these into lines, bars or JSON; the walk never prints.

use std::path::PathBuf;

/// Progress, for the caller to show.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// A step begins.
    StepStarted {
        /// 0-based index.
        index: usize,
        /// Number of steps.
        total: usize,
        /// What it does.
        description: String,
    },
    /// A step ended well.
    StepFinished {
        /// 0-based index.
        index: usize,
        /// Seconds it took.
        seconds: f64,
        /// What it did worth knowing (a snapshot's path, a new member's id, a warning).
        #[serde(flatten)]
        outcome: StepOutcome,
    },
    /// Bytes of a long transfer in a step (a release upload, a snapshot
    /// download): a start, reports at most every 100 ms, and an end.
    Transfer {
        /// Where it is.
        phase: TransferPhase,
        /// What moves ("upload etcd 3.5.17").
        what: String,
        /// The other end (a host, a member's endpoint).
        host: String,
        /// Bytes moved so far.
        done: u64,
        /// Bytes in all, once known.
        total: Option<u64>,
    },
}

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferPhase {
    /// It begins.
    Start,
    /// Bytes moved.
    Progress,
    /// It ended (how the step went is said by the step).
    End,
}

/// What a step that ended well did worth knowing.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StepOutcome {
    /// What it did (a new member's id, an upload's size), when worth saying.
    pub detail: Option<String>,
    /// Where it saved a snapshot: worth repeating when the apply ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<PathBuf>,
    /// What the operator must know and may have to do by hand; the step
    /// still counts as done.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl StepOutcome {
    /// A step that did its work but leaves the operator something to know or do.
    pub fn warning(message: String) -> Self {
        Self {
            warnings: vec![message],
            ..Self::default()
        }
    }

    /// The detail and the warnings on one line, as shown after the step.
    pub fn text(&self) -> Option<String> {
        let parts: Vec<String> = self
            .detail
            .iter()
            .cloned()
            .chain(self.warnings.iter().map(|w| format!("warning: {w}")))
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The lines worth repeating when the apply ends: a snapshot's detail and
    /// every warning.
    pub fn summary(&self) -> Vec<String> {
        let snapshot = self.detail.iter().filter(|_| self.snapshot.is_some());
        snapshot
            .cloned()
            .chain(self.warnings.iter().map(|w| format!("warning: {w}")))
            .collect()
    }
}

impl From<Option<String>> for StepOutcome {
    fn from(detail: Option<String>) -> Self {
        Self {
            detail,
            ..Self::default()
        }
    }
}

impl From<String> for StepOutcome {
    fn from(detail: String) -> Self {
        Some(detail).into()
    }
}
