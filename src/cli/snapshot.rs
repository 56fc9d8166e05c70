//! `etcdplan snapshot` and `etcdplan backup-timer`: a snapshot on demand or
//! when due (`--if-due`, for cron and systemd timers), the copies and `keep`
//! of `[backup]`, and the restore check (`--verify-restore`) that proves a
//! snapshot restores to what its manifest records.

use std::io::Write;
use std::path::PathBuf;

use super::edges::etcd_client;
use super::{Cli, CliError, Outcome, load};
use crate::backup::{self, BackupError, Round, Taken};
use crate::backup_core::Manifest;
use crate::execute;
use crate::io::Progress;

/// `etcdplan snapshot`'s flags.
#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    /// Write the snapshot to DIR instead of [backup] dir (copy_command and
    /// keep apply only in [backup] dir).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do nothing unless the newest snapshot in [backup] dir is at least
    /// [backup] interval old (then copies still to be made are retried too).
    #[arg(long)]
    pub if_due: bool,
    /// Restore the snapshot just taken (else the newest) into a throw-away
    /// one-member etcd on this machine and compare its keys and values with
    /// the manifest; exit 1 when they differ.
    #[arg(long)]
    pub verify_restore: bool,
    /// With --verify-restore: check the newest snapshot in the folder, and
    /// take none.
    #[arg(long, requires = "verify_restore", conflicts_with = "if_due")]
    pub newest: bool,
}

/// Runs `etcdplan snapshot`.
pub(super) async fn snapshot(
    cli: &Cli,
    a: &SnapshotArgs,
    out: &mut impl Write,
) -> Result<Outcome, CliError> {
    let loaded = load(cli)?;
    let d = &loaded.desired;
    let etcdfile = std::path::absolute(&cli.file).unwrap_or_else(|_| cli.file.clone());
    let backup_dir = d.backup.as_ref().map(|b| b.dir.clone());
    let dir = match &a.out {
        Some(o) => std::path::absolute(o).unwrap_or_else(|_| o.clone()),
        None => backup_dir
            .clone()
            .unwrap_or_else(|| execute::default_snapshot_dir(&etcdfile)),
    };
    let in_backup = backup_dir.as_ref() == Some(&dir);
    if a.if_due && !in_backup {
        return Err(CliError::Usage(
            "--if-due works on the [backup] folder: add [backup] with an interval to the etcdfile (and leave out --out)".into(),
        ));
    }
    let mut failure: Option<CliError> = None;
    let mut subject: Option<Manifest> = None;
    if !a.newest {
        let etcd = etcd_client(cli, d);
        if in_backup {
            let round = backup::scheduled(d, &etcd, a.if_due).await;
            subject = round.taken.as_ref().and_then(|t| t.manifest.clone());
            failure = report_round(out, d, round)?;
        } else {
            let progress = Progress::new(|_, _| {});
            let taken = backup::take(
                &etcd,
                &d.client_urls(),
                d.cluster.as_str(),
                &dir,
                &progress,
                true,
            )
            .await?;
            report_taken(out, &taken)?;
            subject = taken.manifest;
        }
    }
    if a.verify_restore {
        if subject.is_none() {
            subject = backup::newest(&dir)?;
        }
        let Some(mut m) = subject else {
            return Err(failure.unwrap_or_else(|| {
                CliError::Backup(BackupError::Config(format!(
                    "there is no snapshot with a manifest in {} to check",
                    dir.display()
                )))
            }));
        };
        writeln!(
            out,
            "Restoring {} into a throw-away etcd on this machine…",
            m.file
        )?;
        let releases = d
            .etcd
            .binary_source
            .as_ref()
            .map(|b| b.releases.as_slice())
            .unwrap_or_default();
        let check = backup::verify_restore(&dir, &m, releases).await?;
        m.restore_check = Some(check.clone());
        backup::save_manifest(&dir, &m).await?;
        if check.passed {
            writeln!(out, "Restore check passed: {}.", check.detail)?;
        } else {
            writeln!(out, "Restore check FAILED: {}.", check.detail)?;
            return Err(CliError::RestoreCheck(format!(
                "{}: {}",
                m.file, check.detail
            )));
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Outcome::Ok),
    }
}

/// Says what a snapshot is and where its manifest is.
fn report_taken(out: &mut impl Write, t: &Taken) -> Result<(), CliError> {
    match &t.manifest {
        Some(m) => writeln!(
            out,
            "Snapshot saved to {}: revision {}, {} keys, {} bytes, from {} (etcd {}); sha256 trailer and snapshot status checked, content digest recorded in {}.",
            t.path.display(),
            m.revision,
            m.content.keys,
            m.size,
            m.member,
            m.etcd_version,
            crate::backup_core::manifest_name(&m.file)
        )?,
        None => writeln!(out, "Snapshot saved to {}.", t.path.display())?,
    }
    for w in &t.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

/// Prints a round; returns the error the command should end with (a failed
/// snapshot, or a copy still failing), after everything is said.
fn report_round(
    out: &mut impl Write,
    d: &crate::config::Desired,
    round: Round,
) -> Result<Option<CliError>, CliError> {
    if let Some(since) = &round.not_due_since {
        let every = d
            .backup
            .as_ref()
            .and_then(|b| b.interval)
            .map_or(0, |i| i.as_secs());
        writeln!(
            out,
            "No snapshot due: the newest was taken at {since} (interval {every}s)."
        )?;
    }
    if let Some(t) = &round.taken {
        report_taken(out, t)?;
    }
    let mut failed_copies = Vec::new();
    for c in &round.copies {
        match &c.error {
            None => writeln!(out, "Copied {} with copy_command.", c.file)?,
            Some(e) => {
                writeln!(
                    out,
                    "Copy of {} FAILED: {e}. The snapshot is kept and its copy is tried again at the next run.",
                    c.file
                )?;
                failed_copies.push(c.file.clone());
            }
        }
    }
    if !round.pruned.is_empty() {
        let keep = d.backup.as_ref().and_then(|b| b.keep).unwrap_or(0);
        writeln!(
            out,
            "Deleted the oldest beyond keep = {keep}: {}.",
            round.pruned.join(", ")
        )?;
    }
    if let Some(e) = round.housekeeping {
        writeln!(out, "warning: {e}")?;
    }
    Ok(match round.failed {
        Some(e) => Some(CliError::Backup(e)),
        None if !failed_copies.is_empty() => Some(CliError::Backup(BackupError::Command {
            what: "copy_command".into(),
            why: format!(
                "the copy of {} failed (see above)",
                failed_copies.join(", ")
            ),
        })),
        None => None,
    })
}

/// Runs `etcdplan backup-timer`: the systemd units for `snapshot --if-due`.
pub(super) fn backup_timer(cli: &Cli, out: &mut impl Write) -> Result<Outcome, CliError> {
    let loaded = load(cli)?;
    let d = &loaded.desired;
    let Some(interval) = d.backup.as_ref().and_then(|b| b.interval) else {
        return Err(CliError::Usage(
            "backup-timer needs [backup] with an interval in the etcdfile (interval = \"6h\")"
                .into(),
        ));
    };
    let binary = std::env::current_exe()?;
    let etcdfile = std::path::absolute(&cli.file)?;
    let text = crate::backup_core::timer_units(d.cluster.as_str(), &binary, &etcdfile, interval);
    out.write_all(text.as_bytes())?;
    Ok(Outcome::Ok)
}
