//! The backup folder: the manifests in it, the newest snapshot, and `keep`
//! pruning (the only deletion etcdplan does, of its own snapshot files).

use std::path::{Path, PathBuf};

use super::BackupError;
use super::file::write_private;
use crate::backup_core::{Manifest, manifest_name, to_prune};

/// Where a snapshot's manifest lives.
pub fn manifest_path(dir: &Path, snapshot_file: &str) -> PathBuf {
    dir.join(manifest_name(snapshot_file))
}

/// The manifest beside a snapshot file (`<file>.json`), when there is one;
/// one that cannot be read or parsed is an error, not "none".
pub fn manifest_beside(snapshot: &Path) -> Result<Option<Manifest>, BackupError> {
    let name = snapshot
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = snapshot.with_file_name(manifest_name(&name));
    match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackupError::File {
            path,
            why: e.to_string(),
        }),
        Ok(text) => Manifest::parse(&text)
            .map(Some)
            .map_err(|e| BackupError::File {
                path,
                why: e.to_string(),
            }),
    }
}

/// Writes a manifest beside its snapshot (0600, atomically).
pub async fn save_manifest(dir: &Path, m: &Manifest) -> Result<(), BackupError> {
    let text = serde_json::to_string_pretty(m).map_err(|e| BackupError::File {
        path: manifest_path(dir, &m.file),
        why: e.to_string(),
    })?;
    write_private(&manifest_path(dir, &m.file), (text + "\n").into_bytes()).await
}

/// Every snapshot in `dir` with a readable manifest whose snapshot file is
/// there, oldest first. An absent folder has none.
pub fn list(dir: &Path) -> Result<Vec<Manifest>, BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(BackupError::File {
                path: dir.to_owned(),
                why: e.to_string(),
            });
        }
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".db.json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let Ok(m) = Manifest::parse(&text) else {
            continue;
        };
        if m.taken_at().is_some() && dir.join(&m.file).is_file() {
            out.push(m);
        }
    }
    out.sort_by_key(|m| (m.taken_at(), m.file.clone()));
    Ok(out)
}

/// The newest snapshot in `dir` that has a manifest.
pub fn newest(dir: &Path) -> Result<Option<Manifest>, BackupError> {
    Ok(list(dir)?.pop())
}

/// Deletes the oldest snapshots beyond `keep` (the snapshot, its manifest and
/// its encrypted copy), as the core's retention chooses: never the newest
/// verified one, never one whose copy is still to be made (`copying`: a copy
/// command is set). Returns the snapshot files deleted.
pub fn prune(dir: &Path, keep: u32, copying: bool) -> Result<Vec<String>, BackupError> {
    let all = list(dir)?;
    let entries: Vec<_> = all.iter().filter_map(|m| m.entry(copying)).collect();
    let mut deleted = Vec::new();
    for file in to_prune(&entries, keep) {
        let Some(m) = all.iter().find(|m| m.file == file) else {
            continue;
        };
        let mut paths = vec![dir.join(&m.file)];
        if let Some(x) = &m.encrypted {
            paths.push(dir.join(&x.file));
        }
        // The manifest goes last: a prune cut short leaves it listed.
        paths.push(manifest_path(dir, &m.file));
        for p in paths {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(BackupError::File {
                        path: p,
                        why: e.to_string(),
                    });
                }
            }
        }
        deleted.push(file);
    }
    Ok(deleted)
}
