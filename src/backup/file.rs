//! One snapshot file: written privately (0600 in a 0700 folder, atomically),
//! and checked before it is trusted: its sha256 trailer, the size and sha256
//! its manifest records, and etcd's own `snapshot status`, which also gives
//! the revision it holds. A restore calls the same check before it stops
//! anything.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::BackupError;
use super::tools::{run, snapshot_tool};
use crate::backup_core::Manifest;

/// How long `snapshot status` may take (it reads the whole file).
const STATUS_DEADLINE: Duration = Duration::from_secs(300);
/// How long writing or hashing a snapshot file may take.
const FILE_DEADLINE: Duration = Duration::from_secs(600);

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCheck {
    /// The store's revision the snapshot holds (from the status tool).
    pub revision: i64,
    /// Keys in the snapshot, as the status tool counts them (every revision).
    pub total_keys: u64,
    /// The file's size in bytes.
    pub size: u64,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    /// The tool that read it (etcdutl or etcdctl).
    pub tool: String,
}

/// The checks that need no etcd tool: the sha256 trailer, and the size and
/// sha256 `manifest` records when given. Returns the file's size and sha256.
/// [`check_snapshot_file`] runs these first; a restore on a machine without
/// etcdutl or etcdctl runs only these (and says so).
pub async fn check_integrity(
    path: &Path,
    manifest: Option<&Manifest>,
) -> Result<(u64, String), BackupError> {
    let refused = |why: String| BackupError::Integrity {
        path: path.to_owned(),
        why,
    };
    let (size, sha256) = hash_and_check_trailer(path).await?;
    if let Some(m) = manifest {
        if m.size != size {
            return Err(refused(format!(
                "it has {size} bytes, its manifest says {}",
                m.size
            )));
        }
        if m.sha256 != sha256 {
            return Err(refused(format!(
                "its sha256 is {}…, its manifest says {}…",
                &sha256[..16],
                m.sha256.get(..16).unwrap_or(&m.sha256)
            )));
        }
    }
    Ok((size, sha256))
}

/// Checks a snapshot file: its sha256 trailer (etcd appends the SHA-256 of
/// the rest), the size and sha256 `manifest` records when given, and
/// `etcdutl snapshot status` (else `etcdctl`'s), which must read it and, with
/// a manifest, report the manifest's revision. Returns the revision.
pub async fn check_snapshot_file(
    path: &Path,
    manifest: Option<&Manifest>,
) -> Result<SnapshotCheck, BackupError> {
    let refused = |why: String| BackupError::Integrity {
        path: path.to_owned(),
        why,
    };
    let (size, sha256) = check_integrity(path, manifest).await?;
    let tool = snapshot_tool().ok_or(BackupError::NoTool("checking a snapshot"))?;
    let file = path.display().to_string();
    let ran = run(
        &format!("{} snapshot status {file}", tool.name),
        &tool.path,
        &["snapshot", "status", "-w", "json", &file],
        None,
        STATUS_DEADLINE,
    )
    .await
    .map_err(|e| refused(e.to_string()))?;
    let status: Status = serde_json::from_str(ran.stdout.trim()).map_err(|e| {
        refused(format!(
            "{} snapshot status printed no status ({e}): {}",
            tool.name,
            ran.stdout.trim()
        ))
    })?;
    if let Some(m) = manifest
        && m.revision != status.revision
    {
        return Err(refused(format!(
            "it holds revision {}, its manifest says {}",
            status.revision, m.revision
        )));
    }
    Ok(SnapshotCheck {
        revision: status.revision,
        total_keys: status.total_key,
        size,
        sha256,
        tool: tool.name.to_owned(),
    })
}

/// `snapshot status -w json`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    revision: i64,
    #[serde(default)]
    total_key: u64,
}

/// Reads the file once: the SHA-256 of all of it, and the SHA-256 of all but
/// its last 32 bytes, which must equal those 32 bytes.
async fn hash_and_check_trailer(path: &Path) -> Result<(u64, String), BackupError> {
    let p = path.to_owned();
    let work = tokio::task::spawn_blocking(move || -> Result<(u64, String), String> {
        let mut f = std::fs::File::open(&p).map_err(|e| e.to_string())?;
        let size = f.metadata().map_err(|e| e.to_string())?.len();
        if size <= 32 {
            return Err(format!("it has only {size} bytes (truncated?)"));
        }
        let body_len = size - 32;
        let (mut whole, mut body) = (Sha256::new(), Sha256::new());
        let mut trailer = Vec::with_capacity(32);
        let mut done: u64 = 0;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            whole.update(chunk);
            let in_body = usize::try_from(body_len.saturating_sub(done))
                .unwrap_or(usize::MAX)
                .min(n);
            body.update(&chunk[..in_body]);
            trailer.extend_from_slice(&chunk[in_body..]);
            done += n as u64;
        }
        if done != size {
            return Err("it changed while it was read".into());
        }
        if body.finalize().as_slice() != trailer.as_slice() {
            return Err(
                "its sha256 trailer does not match its content (corrupt or truncated)".into(),
            );
        }
        Ok((size, crate::model::hex(&whole.finalize())))
    });
    let refused = |why: String| BackupError::Integrity {
        path: path.to_owned(),
        why,
    };
    match tokio::time::timeout(FILE_DEADLINE, work).await {
        Ok(Ok(r)) => r.map_err(refused),
        Ok(Err(e)) => Err(refused(e.to_string())),
        Err(_) => Err(refused(format!(
            "not read within {}s",
            FILE_DEADLINE.as_secs()
        ))),
    }
}

/// Makes `dir` (0700) when absent. An existing folder others may write to is
/// refused (a file swapped in there could be restored later); one others may
/// only list is used, and the returned warning says so (the files are 0600).
pub(super) fn private_dir(dir: &Path) -> Result<Option<String>, BackupError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let failed = |why: String| BackupError::File {
        path: dir.to_owned(),
        why,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| failed(e.to_string()))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| failed(e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        return Err(failed(format!(
            "others may write to this folder (mode {:o}); snapshots hold every secret the cluster stores: `chmod 700` it or choose another",
            mode & 0o777
        )));
    }
    Ok((mode & 0o055 != 0).then(|| {
        format!(
            "{} is mode {:o}: others may list the snapshots (not read them, they are 0600); `chmod 700` it",
            dir.display(),
            mode & 0o777
        )
    }))
}

/// Writes `data` to `path` privately: into a new file (0600) in a 0700
/// folder, synced, then renamed into place, under a deadline.
pub async fn write_private(path: &Path, data: Vec<u8>) -> Result<(), BackupError> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let target = path.to_owned();
    let write = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let tmp = part_path(&target);
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    });
    let failed = |why: String| BackupError::File {
        path: path.to_owned(),
        why,
    };
    match tokio::time::timeout(FILE_DEADLINE, write).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(failed(e.to_string())),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!(
            "not written within {}s",
            FILE_DEADLINE.as_secs()
        ))),
    }
}

/// The temporary name a file is written under before its rename.
pub(super) fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}
