//! What a snapshot is known to hold: the manifest written beside each
//! snapshot file, and the content digest a restore is checked against. An
//! integrity check (the sha256 trailer) proves the file is what the member
//! sent; the content digest proves a restored cluster serves the same keys
//! and values.

use sha2::{Digest as _, Sha256};

mod command;
mod retention;
mod schedule;

pub use command::{MANIFEST, PATH, TemplateError, check_template, substitute};
pub use retention::{Entry, to_prune};
pub use schedule::{is_due, timer_units};

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// The file name of a snapshot's manifest: the snapshot's own name plus
/// `.json` (`c1-20261202-101500.db.json`).
pub fn manifest_name(snapshot_file_name: &str) -> String {
    format!("{snapshot_file_name}.json")
}

/// What is known of one snapshot file, written beside it as JSON
/// ([`manifest_name`]) when it is taken, and read before a restore.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`] when written.
    pub format: u32,
    /// The snapshot's file name (in the same folder as the manifest).
    pub file: String,
    /// The cluster's name in the etcdfile.
    pub cluster: String,
    /// The cluster ID, hex, as etcd reports it.
    pub cluster_id: String,
    /// The member it was streamed from.
    pub member: String,
    /// That member's etcd version.
    pub etcd_version: String,
    /// The store's revision the snapshot holds.
    pub revision: i64,
    /// The file's size in bytes.
    pub size: u64,
    /// The SHA-256 of the whole file (trailer included), hex.
    pub sha256: String,
    /// When it was taken, RFC 3339 UTC.
    pub taken: String,
    /// Every key and value at `revision`.
    pub content: ContentDigest,
    /// When the copy command last succeeded for this snapshot (RFC 3339);
    /// none: not copied (yet). `keep` never prunes a snapshot whose copy is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied: Option<String>,
    /// Why the last copy failed (the end of its output), until one succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_error: Option<String>,
    /// The age-encrypted copy beside it (`<file>.age`), when `encrypt_to` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<Encrypted>,
    /// The last restore check (`snapshot --verify-restore`), when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_check: Option<RestoreCheck>,
    /// The sha256 of the etcdfile whose plan took it (the snapshot before
    /// that plan's changes); none for `etcdplan snapshot` and older manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcdfile_sha256: Option<String>,
}

/// How long the snapshot a plan took stays the restore point of a rerun of
/// the same etcdfile ([`restore_point`]).
pub const RESTORE_POINT_KEPT: time::Duration = time::Duration::hours(1);

/// The snapshot that an apply of `etcdfile` (its sha256) on cluster
/// `cluster_id` continues from: the newest one a plan of that same etcdfile
/// took of that cluster within [`RESTORE_POINT_KEPT`] before `now`. An apply
/// stopped after its snapshot (killed, a failed step) is run again with the
/// same etcdfile; planning a new snapshot first each time would make a run
/// stopped right after it start over for ever, and the one taken is the
/// restore point from before its changes.
pub fn restore_point<'a>(
    manifests: &'a [Manifest],
    cluster_id: &str,
    etcdfile: &str,
    now: time::OffsetDateTime,
) -> Option<&'a Manifest> {
    manifests
        .iter()
        .filter(|m| m.cluster_id == cluster_id && m.etcdfile_sha256.as_deref() == Some(etcdfile))
        .filter(|m| {
            m.taken_at()
                .is_some_and(|t| t <= now && now - t < RESTORE_POINT_KEPT)
        })
        .max_by_key(|m| m.taken_at())
}

/// The encrypted copy of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Encrypted {
    /// Its file name, in the same folder.
    pub file: String,
    /// The age recipient it is encrypted to.
    pub recipient: String,
}

/// The outcome of restoring a snapshot into a throw-away etcd and reading it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestoreCheck {
    /// When it ran (RFC 3339).
    pub time: String,
    /// Whether the restored content matched [`Manifest::content`].
    pub passed: bool,
    /// What was found, in a sentence.
    pub detail: String,
}

impl Manifest {
    /// When it was taken, parsed (None: not RFC 3339).
    pub fn taken_at(&self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::parse(&self.taken, &time::format_description::well_known::Rfc3339)
            .ok()
    }

    /// Whether it counts as a good snapshot: a manifest is written only after
    /// the integrity checks, so only a failed restore check takes that away.
    pub fn verified(&self) -> bool {
        self.restore_check.as_ref().is_none_or(|r| r.passed)
    }

    /// The retention view of it (`copying`: a copy command is set).
    pub fn entry(&self, copying: bool) -> Option<Entry> {
        Some(Entry {
            file: self.file.clone(),
            taken: self.taken_at()?,
            verified: self.verified(),
            copy_pending: copying && self.copied.is_none(),
        })
    }
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of this shape.
    #[error("not a snapshot manifest: {0}")]
    Parse(String),
    /// Written by a newer etcdplan.
    #[error("manifest format {0} is newer than this etcdplan reads ({MANIFEST_FORMAT})")]
    Format(u32),
}

impl Manifest {
    /// Parses a manifest's JSON.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let m: Self =
            serde_json::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        if m.format > MANIFEST_FORMAT {
            return Err(ManifestError::Format(m.format));
        }
        Ok(m)
    }
}

/// A SHA-256 over every key and value of the keyspace at one revision, in key
/// order, each key and value prefixed by its length (so no two different
/// keyspaces give the same stream), with the number of keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContentDigest {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// How many keys were read.
    pub keys: u64,
}

/// Builds a [`ContentDigest`] from pairs fed in key order, page by page.
#[derive(Default)]
pub struct ContentHasher {
    hasher: Sha256,
    keys: u64,
}

impl ContentHasher {
    /// An empty digest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one key and its value (keys must come in key order).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        self.hasher.update((key.len() as u64).to_be_bytes());
        self.hasher.update(key);
        self.hasher.update((value.len() as u64).to_be_bytes());
        self.hasher.update(value);
        self.keys += 1;
    }

    /// The digest of everything added.
    pub fn finish(self) -> ContentDigest {
        ContentDigest {
            sha256: crate::model::hex(&self.hasher.finalize()),
            keys: self.keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(pairs: &[(&str, &str)]) -> ContentDigest {
        let mut h = ContentHasher::new();
        for (k, v) in pairs {
            h.add(k.as_bytes(), v.as_bytes());
        }
        h.finish()
    }

    #[test]
    fn a_changed_value_or_key_boundary_changes_the_digest() {
        let a = digest(&[("a", "1"), ("b", "2")]);
        assert_eq!(a.keys, 2);
        assert_ne!(a, digest(&[("a", "1"), ("b", "3")]));
        // Without length prefixes "ab"+"" and "a"+"b" would hash the same.
        assert_ne!(digest(&[("ab", "")]).sha256, digest(&[("a", "b")]).sha256);
        assert_eq!(a, digest(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn a_rerun_of_the_same_etcdfile_continues_from_the_snapshot_its_plan_took_within_the_hour()
    -> Result<(), ManifestError> {
        let text = r#"{"format":1,"file":"c-1.db","cluster":"c","cluster_id":"1a","member":"m",
            "etcd_version":"3.5.30","revision":9,"size":100,"sha256":"ab",
            "taken":"2026-12-02T10:15:00Z","content":{"sha256":"cd","keys":3}}"#;
        let manual = Manifest::parse(text)?;
        let mut by_plan = manual.clone();
        by_plan.file = "c-2.db".into();
        by_plan.etcdfile_sha256 = Some("f00d".into());
        let at = |t: &str| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|e| ManifestError::Parse(e.to_string()))
        };
        let all = [manual.clone(), by_plan.clone()];
        let soon = at("2026-12-02T10:20:00Z")?;
        assert_eq!(restore_point(&all, "1a", "f00d", soon), Some(&by_plan));
        // `etcdplan snapshot`'s own, another etcdfile, another cluster, too old: none.
        assert_eq!(restore_point(&[manual], "1a", "f00d", soon), None);
        assert_eq!(restore_point(&all, "1a", "beef", soon), None);
        assert_eq!(restore_point(&all, "2b", "f00d", soon), None);
        assert_eq!(
            restore_point(&all, "1a", "f00d", at("2026-12-02T11:15:00Z")?),
            None
        );
        Ok(())
    }

    #[test]
    fn a_manifest_without_the_later_fields_reads_and_counts_as_verified()
    -> Result<(), ManifestError> {
        let text = r#"{"format":1,"file":"c-1.db","cluster":"c","cluster_id":"1","member":"m",
            "etcd_version":"3.5.16","revision":9,"size":100,"sha256":"ab",
            "taken":"2026-12-02T10:15:00Z","content":{"sha256":"cd","keys":3}}"#;
        let mut m = Manifest::parse(text)?;
        assert_eq!(m.copied, None);
        assert!(m.verified());
        let e = m
            .entry(true)
            .ok_or(ManifestError::Parse("no time".into()))?;
        assert!(
            e.copy_pending,
            "a copy command is set and it was never copied"
        );
        assert!(m.entry(false).is_some_and(|e| !e.copy_pending));
        m.restore_check = Some(RestoreCheck {
            time: "2026-12-02T10:16:00Z".into(),
            passed: false,
            detail: "differs".into(),
        });
        assert!(!m.verified(), "a failed restore check takes verified away");
        m.copied = Some("2026-12-02T10:17:00Z".into());
        assert!(
            m.entry(true)
                .is_some_and(|e| !e.copy_pending && !e.verified)
        );
        Ok(())
    }

    #[test]
    fn the_empty_keyspace_has_a_digest_too() {
        let e = digest(&[]);
        assert_eq!(e.keys, 0);
        assert_eq!(e.sha256.len(), 64);
    }
}
