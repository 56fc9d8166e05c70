//! Copying snapshots off this machine with the operator's `copy_command`
//! (`sh -c`, 10-minute deadline, paths shell-quoted), age-encrypting each
//! first when `encrypt_to` is set. The outcome is recorded in the manifest:
//! a snapshot not copied yet is retried at the next run and never pruned.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use super::file::private_dir;
use super::folder::{list, save_manifest};
use super::tools::run;
use super::{BackupError, now_rfc3339};
use crate::backup_core::{Encrypted, Manifest, substitute};
use crate::config::Backup;

/// How long one copy command may run.
pub const COPY_DEADLINE: Duration = Duration::from_secs(600);

/// What happened to one snapshot's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOutcome {
    /// The snapshot file.
    pub file: String,
    /// None: copied; else why not (the end of the command's output).
    pub error: Option<String>,
}

/// Copies every snapshot in the backup folder whose copy has not succeeded
/// yet, oldest first, and records each outcome in its manifest. Nothing to do
/// without a copy command.
pub async fn copy_pending(b: &Backup) -> Result<Vec<CopyOutcome>, BackupError> {
    let Some(command) = &b.copy_command else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for mut m in list(&b.dir)?.into_iter().filter(|m| m.copied.is_none()) {
        let result = copy_one(&b.dir, &mut m, command, b.encrypt_to.as_deref()).await;
        match &result {
            Ok(()) => {
                m.copied = Some(now_rfc3339());
                m.copy_error = None;
            }
            Err(e) => m.copy_error = Some(e.clone()),
        }
        save_manifest(&b.dir, &m).await?;
        out.push(CopyOutcome {
            file: m.file.clone(),
            error: result.err(),
        });
    }
    Ok(out)
}

/// Encrypts (when asked) and runs the copy command for one snapshot.
async fn copy_one(
    dir: &Path,
    m: &mut Manifest,
    command: &str,
    encrypt_to: Option<&str>,
) -> Result<(), String> {
    let path = match encrypt_to {
        None => dir.join(&m.file),
        Some(r) => {
            let name = format!("{}.age", m.file);
            let target = dir.join(&name);
            // A finished encryption from an earlier attempt is reused; it is
            // renamed into place only when complete.
            let current = m
                .encrypted
                .as_ref()
                .is_some_and(|x| x.recipient == r && x.file == name);
            if !(current && target.is_file()) {
                encrypt(&dir.join(&m.file), &target, r)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            m.encrypted = Some(Encrypted {
                file: name,
                recipient: r.to_owned(),
            });
            target
        }
    };
    let manifest = super::folder::manifest_path(dir, &m.file);
    let line = substitute(
        command,
        &path.display().to_string(),
        &manifest.display().to_string(),
    );
    run(
        "the copy command",
        Path::new("/bin/sh"),
        &["-c", &line],
        Some(dir),
        COPY_DEADLINE,
    )
    .await
    .map(|_| ())
    .map_err(|e| match e {
        BackupError::Command { why, .. } => why,
        other => other.to_string(),
    })
}

/// Encrypts `from` to the age `recipient` into `to` (0600, written under a
/// temporary name and renamed when complete).
async fn encrypt(from: &Path, to: &Path, recipient: &str) -> Result<(), BackupError> {
    if let Some(d) = to.parent() {
        private_dir(d)?;
    }
    let (from, to, recipient) = (from.to_owned(), to.to_owned(), recipient.to_owned());
    let target = to.clone();
    let work = tokio::task::spawn_blocking(move || -> Result<(), String> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let r = age::x25519::Recipient::from_str(&recipient).map_err(|e| e.to_string())?;
        let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
            .map_err(|e| e.to_string())?;
        let tmp = super::file::part_path(&to);
        let _ = std::fs::remove_file(&tmp);
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| e.to_string())?;
        let mut input = std::fs::File::open(&from).map_err(|e| e.to_string())?;
        let mut w = enc
            .wrap_output(std::io::BufWriter::new(out))
            .map_err(|e| e.to_string())?;
        std::io::copy(&mut input, &mut w).map_err(|e| e.to_string())?;
        let buf = w.finish().map_err(|e| e.to_string())?;
        let file = buf.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &to).map_err(|e| e.to_string())
    });
    let failed = |why: String| BackupError::File {
        path: target.clone(),
        why: format!("encrypting: {why}"),
    };
    match tokio::time::timeout(COPY_DEADLINE, work).await {
        Ok(Ok(r)) => r.map_err(failed),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!(
            "not done within {}s",
            COPY_DEADLINE.as_secs()
        ))),
    }
}
