//! One way to put a file from this machine on a host: skipped when the host
//! has it with the same sha256 already; otherwise the local file is checked
//! against the sha256 the plan saw, streamed to a temporary file beside its
//! destination, checked there by sha256 (and by `check`, e.g. a binary's
//! `--version`), given its mode, flushed to disk, and renamed into place, so
//! a half-sent file (a connection cut mid-way ends stdin early) is never used
//! and the temporary file is removed. Releases and snapshots both travel this way.

use std::path::Path;
use std::time::{Duration, Instant};

use super::transfer::Transfers;
use super::{StepError, run_checked};
use crate::io::{Host, Script, fsync_line, remove_on_exit, shell_quote};

/// What to upload and how to check it.
pub(super) struct Upload<'a> {
    /// What it is, for people ("etcd 3.5.30", "the snapshot").
    pub what: String,
    /// The file on this machine.
    pub source: &'a Path,
    /// Its sha256 when the plan was made.
    pub sha256: &'a str,
    /// Where it goes on the host.
    pub dest: &'a Path,
    /// Its mode there (the folder is made 0700 for a private file).
    pub mode: u32,
    /// Shell lines run on the uploaded `$tmp` before it is renamed; exit
    /// non-zero to refuse it.
    pub check: String,
    /// How long the upload may take.
    pub deadline: Duration,
}

/// Uploads `u.source` to `u.dest` on `host` (see the module); says what it did.
pub(super) async fn upload(
    host: &dyn Host,
    transfers: &Transfers,
    u: Upload<'_>,
) -> Result<String, StepError> {
    let refused = |why: String| StepError::Refused {
        what: format!("upload {}", u.what),
        why,
    };
    let d = shell_quote(&u.dest.display().to_string());
    let there = run_checked(
        host,
        &Script::new(
            format!("hash {}", u.dest.display()),
            format!("if [ -f {d} ]; then sha256sum < {d} | cut -d' ' -f1; fi\n"),
        )
        .timeout(Duration::from_secs(120)),
    )
    .await?;
    if there.trim() == u.sha256 {
        return Ok(format!(
            "{} has {} at {} already",
            host.label(),
            u.what,
            u.dest.display()
        ));
    }
    let bytes = tokio::fs::read(u.source)
        .await
        .map_err(|e| refused(format!("cannot read {}: {e}", u.source.display())))?;
    // The file must still be the one the plan saw.
    let now = crate::model::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    if now != u.sha256 {
        return Err(refused(format!(
            "{} changed since the plan was made (sha256 {} now, {} then)",
            u.source.display(),
            &now[..12],
            &u.sha256[..12.min(u.sha256.len())]
        )));
    }
    let private = u.mode & 0o077 == 0;
    let script = format!(
        "set -e\n{umask}dst={d}\nmkdir -p \"$(dirname \"$dst\")\"\n{folder}\
tmp=\"$dst.etcdplan-tmp.$$\"\n{cleanup}cat > \"$tmp\"\n\
got=$(sha256sum < \"$tmp\" | cut -d' ' -f1)\n\
if [ \"$got\" != {sha} ]; then echo \"the upload arrived with sha256 $got\" >&2; exit 3; fi\n\
chmod {mode:o} \"$tmp\"\n{check}{sync}mv -f \"$tmp\" \"$dst\"\ntrap - EXIT\n",
        umask = if private { "umask 077\n" } else { "" },
        folder = if private {
            "chmod 0700 \"$(dirname \"$dst\")\"\n"
        } else {
            ""
        },
        sha = shell_quote(u.sha256),
        mode = u.mode,
        check = u.check,
        cleanup = remove_on_exit("tmp"),
        sync = fsync_line("tmp"),
    );
    let size = bytes.len();
    let t = Instant::now();
    let transfer = transfers.start(
        format!("upload {}", u.what),
        host.label(),
        Some(size as u64),
    );
    let uploaded = run_checked(
        host,
        &Script::new(format!("upload {} to {}", u.what, u.dest.display()), script)
            .stdin(bytes)
            .progress(transfer.progress())
            .timeout(u.deadline),
    )
    .await;
    transfer.finish();
    uploaded?;
    Ok(format!(
        "{:.1} MB to {}:{} in {:.1}s, sha256 checked",
        size as f64 / 1e6,
        host.label(),
        u.dest.display(),
        t.elapsed().as_secs_f64()
    ))
}
