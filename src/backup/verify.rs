//! Proving a snapshot restores: it is restored into a throw-away one-member
//! etcd on this machine (`snapshot restore` into a temporary folder inside
//! the 0700 backup folder, the local `etcd` on free 127.0.0.1 ports), and
//! every key and value at the manifest's revision is read and compared with
//! the manifest's content digest. An integrity check does not prove that.
//! The throw-away etcd is stopped by its pid and its folder removed (it is
//! our own copy, never a member's data).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::file::{check_snapshot_file, private_dir};
use super::tools::{run, snapshot_tool, tail, which};
use super::{BackupError, content_digest, now_rfc3339};
use crate::backup_core::{Manifest, RestoreCheck};
use crate::config::Release;
use crate::io::{EtcdApi, EtcdClient, Timeouts};
use crate::model::Endpoint;
use crate::model::EtcdVersion;

/// How long the restore itself may take.
const RESTORE_DEADLINE: Duration = Duration::from_secs(600);
/// How long the throw-away etcd may take to serve.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The etcd and the snapshot tool the restore check runs.
struct Binaries {
    etcd: PathBuf,
    tool: PathBuf,
    tool_name: &'static str,
}

/// The release of the snapshot's minor version among `releases` (the
/// etcdfile's `binary_source`), newest first, with the etcdutl or etcdctl
/// beside it; else the etcd and the tool on this machine's PATH.
fn binaries(manifest: &Manifest, releases: &[Release]) -> Result<Binaries, BackupError> {
    let minor = EtcdVersion::parse(&manifest.etcd_version).map(EtcdVersion::minor);
    let mut matching: Vec<&Release> = releases
        .iter()
        .filter(|r| Some(r.version.minor()) == minor)
        .collect();
    matching.sort_by_key(|r| std::cmp::Reverse(r.version));
    for r in matching {
        let Some(folder) = r.path.parent() else {
            continue;
        };
        for name in ["etcdutl", "etcdctl"] {
            let tool = folder.join(name);
            if tool.is_file() {
                return Ok(Binaries {
                    etcd: r.path.clone(),
                    tool,
                    tool_name: name,
                });
            }
        }
    }
    let tool = snapshot_tool().ok_or(BackupError::NoTool("a restore check"))?;
    let etcd = which("etcd").ok_or_else(|| BackupError::Command {
        what: "the restore check".into(),
        why: "no etcd binary on this machine's PATH (nor a release of the snapshot's version at binary_source) to run the restored copy".into(),
    })?;
    Ok(Binaries {
        etcd,
        tool: tool.path,
        tool_name: tool.name,
    })
}

/// Restores the snapshot `manifest` describes (in `dir`) into a throw-away
/// etcd and compares its content with the manifest. The etcd of the
/// snapshot's minor version among `releases` runs it when there is one,
/// else the `etcd` on PATH. `Ok` carries the verdict (a mismatch is
/// `passed: false`); `Err` is a check that could not run.
pub async fn verify_restore(
    dir: &Path,
    manifest: &Manifest,
    releases: &[Release],
) -> Result<RestoreCheck, BackupError> {
    let path = dir.join(&manifest.file);
    check_snapshot_file(&path, Some(manifest)).await?;
    let bin = binaries(manifest, releases)?;
    private_dir(dir)?;
    let scratch = dir.join(format!(
        ".verify-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    private_dir(&scratch)?;
    let result = restore_and_compare(&path, manifest, &bin, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// A free port on 127.0.0.1, other than `not`.
fn free_port(not: Option<u16>) -> Result<u16, BackupError> {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| BackupError::Command {
                what: "finding a free port".into(),
                why: e.to_string(),
            })?;
        if Some(port) != not {
            return Ok(port);
        }
    }
}

async fn restore_and_compare(
    snapshot: &Path,
    manifest: &Manifest,
    bin: &Binaries,
    scratch: &Path,
) -> Result<RestoreCheck, BackupError> {
    let client_port = free_port(None)?;
    let peer_port = free_port(Some(client_port))?;
    let (tool, tool_name, etcd_bin) = (&bin.tool, bin.tool_name, &bin.etcd);
    let data = scratch.join("data");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let client = format!("http://127.0.0.1:{client_port}");
    let cluster = format!("verify={peer}");
    let (snap, data_s) = (snapshot.display().to_string(), data.display().to_string());
    run(
        &format!("{tool_name} snapshot restore"),
        tool,
        &[
            "snapshot",
            "restore",
            &snap,
            "--data-dir",
            &data_s,
            "--name",
            "verify",
            "--initial-cluster",
            &cluster,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster-token",
            "etcdplan-verify",
        ],
        Some(scratch),
        RESTORE_DEADLINE,
    )
    .await?;
    let log_path = scratch.join("etcd.log");
    let log = std::fs::File::create(&log_path).map_err(|e| BackupError::File {
        path: log_path.clone(),
        why: e.to_string(),
    })?;
    let log2 = log.try_clone().map_err(|e| BackupError::File {
        path: log_path.clone(),
        why: e.to_string(),
    })?;
    let mut child = tokio::process::Command::new(etcd_bin)
        .args([
            "--name",
            "verify",
            "--data-dir",
            &data_s,
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &cluster,
        ])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BackupError::Command {
            what: format!("starting {}", etcd_bin.display()),
            why: e.to_string(),
        })?;
    let mut result = compare(&mut child, &client, manifest, &log_path).await;
    if let Ok(check) = &mut result {
        check.detail = format!(
            "{} (restored by {}, served by {})",
            check.detail,
            tool.display(),
            etcd_bin.display()
        );
    }
    // Stopped by its pid (ours), whatever happened.
    let _ = child.kill().await;
    result
}

/// Waits for the throw-away etcd, then reads and compares its content.
async fn compare(
    child: &mut tokio::process::Child,
    client: &str,
    manifest: &Manifest,
    log: &PathBuf,
) -> Result<RestoreCheck, BackupError> {
    let ep = Endpoint::parse(client).ok_or_else(|| BackupError::Command {
        what: "the restore check".into(),
        why: format!("{client} is not an endpoint"),
    })?;
    let etcd = EtcdClient::new(Timeouts::default());
    let start = Instant::now();
    let failed = |why: String| BackupError::Command {
        what: "the restored etcd".into(),
        why,
    };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(failed(format!("exited ({status}): {}", tail(&text))));
        }
        if etcd.status(&ep).await.is_ok() {
            break;
        }
        if start.elapsed() > START_DEADLINE {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(failed(format!(
                "not serving within {}s: {}",
                START_DEADLINE.as_secs(),
                tail(&text)
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (found, _) = content_digest(&etcd, &ep, manifest.revision, RESTORE_DEADLINE).await?;
    let passed = found == manifest.content;
    let detail = if passed {
        format!(
            "restored and read {} keys at revision {}: the content matches the manifest (sha256 {}…)",
            found.keys,
            manifest.revision,
            &found.sha256[..16]
        )
    } else {
        format!(
            "restored and read {} keys at revision {} with sha256 {}…, but the manifest records {} keys with sha256 {}…: the snapshot does not hold what was taken",
            found.keys,
            manifest.revision,
            &found.sha256[..16],
            manifest.content.keys,
            manifest
                .content
                .sha256
                .get(..16)
                .unwrap_or(&manifest.content.sha256)
        )
    };
    Ok(RestoreCheck {
        time: now_rfc3339(),
        passed,
        detail,
    })
}
