//! Taking a snapshot: from the leader (else the most up-to-date healthy
//! member), streamed under a deadline, its trailer checked, written under a
//! temporary name, checked by etcd's status tool (which gives its revision),
//! the content read at that revision right away (before a compaction can
//! pass it), and only then renamed into place with its manifest. The plan's
//! pre-change snapshot step and `etcdplan snapshot` both call [`take`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{check_snapshot_file, part_path, write_private};
use super::folder::save_manifest;
use super::{BackupError, content_digest, now_rfc3339};
use crate::backup_core::{MANIFEST_FORMAT, Manifest};
use crate::io::{EtcdApi, EtcdErrorKind, Progress};
use crate::model::Endpoint;

/// How long streaming a snapshot may take.
const STREAM_DEADLINE: Duration = Duration::from_secs(600);
/// How long reading the whole keyspace may take.
const CONTENT_DEADLINE: Duration = Duration::from_secs(600);

/// A snapshot written to disk.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The snapshot file.
    pub path: PathBuf,
    /// Its manifest (also written beside it); none when `require_check` was
    /// false and no status tool is on this machine.
    pub manifest: Option<Manifest>,
    /// Things worth saying (no status tool, so no manifest).
    pub warnings: Vec<String>,
}

/// The member a snapshot is streamed from.
struct Source {
    endpoint: Endpoint,
    member: String,
    version: String,
    cluster_id: String,
}

/// The leader among the members that answer, else the healthy one with the
/// highest raft index.
async fn source(etcd: &dyn EtcdApi, endpoints: &[Endpoint]) -> Result<Source, BackupError> {
    let mut answered = Vec::new();
    let mut last = String::from("no endpoints");
    for ep in endpoints {
        match etcd.status(ep).await {
            Ok(s) => answered.push((ep.clone(), s)),
            Err(e) => last = format!("{ep}: {e}"),
        }
    }
    let leader = answered
        .iter()
        .find(|(_, s)| s.leader == Some(s.member_id))
        .or_else(|| {
            answered
                .iter()
                .filter(|(_, s)| s.errors.is_empty() && !s.is_learner)
                .max_by_key(|(_, s)| s.raft_index)
        })
        .cloned();
    let Some((endpoint, status)) = leader else {
        return Err(BackupError::NoMember(if answered.is_empty() {
            format!("none answers ({last})")
        } else {
            "none is the leader or healthy".into()
        }));
    };
    let member = etcd
        .member_list(&endpoint)
        .await
        .ok()
        .and_then(|l| l.into_iter().find(|m| m.id == status.member_id))
        .map_or_else(|| status.member_id.to_string(), |m| m.name.to_string());
    Ok(Source {
        endpoint,
        member,
        version: status.version.map(|v| v.to_string()).unwrap_or_default(),
        cluster_id: status.cluster_id.to_string(),
    })
}

/// Whether the last 32 bytes are the SHA-256 of the rest, as etcd writes them.
fn trailer_ok(data: &[u8]) -> bool {
    use sha2::{Digest as _, Sha256};
    data.len() > 32 && {
        let (body, trailer) = data.split_at(data.len() - 32);
        Sha256::digest(body).as_slice() == trailer
    }
}

/// UTC time for file names.
fn stamp() -> String {
    let f = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_else(|_| "now".into())
}

/// A file name in `dir` not used yet: `<cluster>-<time>.db`, with `-2`, `-3`
/// … when two snapshots are taken within one second.
fn free_name(dir: &Path, cluster: &str) -> String {
    let base = format!("{cluster}-{}", stamp());
    let mut name = format!("{base}.db");
    let mut n = 2;
    while dir.join(&name).exists() || part_path(&dir.join(&name)).exists() {
        name = format!("{base}-{n}.db");
        n += 1;
    }
    name
}

/// Takes a snapshot of the cluster reached at `endpoints` into `dir`, and
/// writes its manifest. Without a status tool on this machine the snapshot
/// cannot be fully checked, and the status tool may not read a newer etcd's
/// file: with `require_check` either is an error (and nothing is kept);
/// without (the pre-change step), the trailer-checked snapshot is kept with
/// no manifest and a warning.
pub async fn take(
    etcd: &dyn EtcdApi,
    endpoints: &[Endpoint],
    cluster: &str,
    dir: &Path,
    progress: &Progress,
    require_check: bool,
) -> Result<Taken, BackupError> {
    let folder_warning = super::file::private_dir(dir)?;
    let src = source(etcd, endpoints).await?;
    let data = etcd
        .snapshot_with_progress(&src.endpoint, STREAM_DEADLINE, progress)
        .await?;
    let name = free_name(dir, cluster);
    if !trailer_ok(&data) {
        return Err(BackupError::Integrity {
            path: dir.join(&name),
            why: format!(
                "the {} bytes streamed from {} fail their sha256 trailer (nothing was kept)",
                data.len(),
                src.member
            ),
        });
    }
    let path = dir.join(&name);
    // Written under a name no listing counts until every check passed.
    let part = dir.join(format!(".{name}.checking"));
    write_private(&part, data).await?;
    let mut result = check_and_record(etcd, &src, &part, &path, cluster, require_check).await;
    match &mut result {
        // Our own download, which failed its checks: not kept.
        Err(_) => {
            let _ = std::fs::remove_file(&part);
        }
        Ok(t) => t.warnings.extend(folder_warning),
    }
    result
}

async fn check_and_record(
    etcd: &dyn EtcdApi,
    src: &Source,
    part: &Path,
    path: &Path,
    cluster: &str,
    require_check: bool,
) -> Result<Taken, BackupError> {
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|e| BackupError::File {
            path: to.to_owned(),
            why: e.to_string(),
        })
    };
    let check = match check_snapshot_file(part, None).await {
        Ok(c) => c,
        // The trailer checked already; a pre-change snapshot is still kept
        // when this machine cannot check more, and says so.
        Err(e) if !require_check => {
            rename(part, path)?;
            return Ok(Taken {
                path: path.to_owned(),
                manifest: None,
                warnings: vec![format!(
                    "only the sha256 trailer was checked, and no manifest was written: {e}"
                )],
            });
        }
        Err(BackupError::Integrity { why, .. }) => {
            return Err(BackupError::Integrity {
                path: path.to_owned(),
                why,
            });
        }
        Err(e) => return Err(e),
    };
    let (content, _) = content_digest(etcd, &src.endpoint, check.revision, CONTENT_DEADLINE)
        .await
        .map_err(|e| match &e {
            super::ContentError::Etcd { source, .. }
                if source.kind() == EtcdErrorKind::Compacted =>
            {
                BackupError::Compacted(check.revision)
            }
            _ => BackupError::Content(e),
        })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        file,
        cluster: cluster.to_owned(),
        cluster_id: src.cluster_id.clone(),
        member: src.member.clone(),
        etcd_version: src.version.clone(),
        revision: check.revision,
        size: check.size,
        sha256: check.sha256,
        taken: now_rfc3339(),
        content,
        copied: None,
        copy_error: None,
        encrypted: None,
        restore_check: None,
        etcdfile_sha256: None,
    };
    rename(part, path)?;
    save_manifest(dir, &manifest).await?;
    Ok(Taken {
        path: path.to_owned(),
        manifest: Some(manifest),
        warnings: Vec::new(),
    })
}
