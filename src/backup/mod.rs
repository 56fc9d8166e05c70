//! Snapshots on this machine: reading what a cluster holds, to record it
//! beside a snapshot and to check a restore against it.

mod content;

pub use content::{ContentError, content_digest};
