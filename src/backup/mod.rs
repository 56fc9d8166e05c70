//! Snapshots on this machine: taken from the leader (the one function both
//! `etcdplan snapshot` and the plan's pre-change snapshot step use), checked
//! (`check_snapshot_file`: the sha256 trailer, the manifest, etcd's own
//! status tool), recorded in a manifest with the content digest read at the
//! snapshot's revision, kept (`keep`), copied off the machine (optionally
//! age-encrypted), and restored into a throw-away etcd to prove they restore.
//!
//! The decisions (what to prune, when one is due, the copy command's text)
//! are the core's (`etcdplan_core::backup`); this module does the I/O.

mod content;
mod copy;
mod file;
mod folder;
mod round;
mod take;
mod tools;
mod verify;

use std::path::PathBuf;

pub use content::{ContentError, content_digest};
pub use copy::{CopyOutcome, copy_pending};
pub use file::{SnapshotCheck, check_integrity, check_snapshot_file, write_private};
pub use folder::{list, manifest_beside, manifest_path, newest, prune, save_manifest};
pub use round::{Round, scheduled};
pub use take::{Taken, take};
pub use verify::verify_restore;

/// Why a snapshot could not be taken, checked, copied or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// An etcd call failed.
    #[error(transparent)]
    Etcd(#[from] crate::io::EtcdError),
    /// No member answered well enough to stream a snapshot.
    #[error("no member to take a snapshot from: {0}")]
    NoMember(String),
    /// The file is not an intact snapshot, or not the one its manifest names.
    #[error("{} is refused: {why}", path.display())]
    Integrity {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Neither etcdutl nor etcdctl is on this machine.
    #[error("neither etcdutl nor etcdctl is on this machine's PATH, and {0} needs one")]
    NoTool(&'static str),
    /// A program (status tool, restore, etcd, the copy command) failed.
    #[error("{what} failed: {why}")]
    Command {
        /// What was run.
        what: String,
        /// Its exit and the end of its output.
        why: String,
    },
    /// The snapshot's revision was compacted before its content could be read.
    #[error(
        "revision {0} was compacted before its content could be read, so no manifest can vouch for this snapshot; take another"
    )]
    Compacted(i64),
    /// Reading the keyspace failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// A file or folder on this machine.
    #[error("{}: {why}", path.display())]
    File {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// `[backup]` is needed for this and the etcdfile has none.
    #[error("{0}")]
    Config(String),
}

/// UTC now as RFC 3339, as manifests record times.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
