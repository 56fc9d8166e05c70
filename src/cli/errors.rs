//! What the user sees when a command fails: [`CliError`], with a miette code
//! and help for each kind of failure.

use std::path::PathBuf;

use miette::Diagnostic;

use crate::config::ConfigError;
use crate::execute::{self, ApplyError};
use crate::plan;

/// What the user sees when a command fails; `main` turns it into exit code 1.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum CliError {
    /// The etcdfile is unreadable or invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// `import` cannot describe the cluster exactly.
    #[error("import cannot describe the cluster exactly:\n{0}")]
    #[diagnostic(
        code(etcdplan::import),
        help("nothing was written and nothing on the hosts or in the cluster was changed")
    )]
    Import(String),
    /// The plan has blockers.
    #[error("the plan cannot be applied: {0}")]
    #[diagnostic(
        code(etcdplan::blocked),
        help("fix what the plan lists under \"This plan cannot be applied\"; nothing was changed")
    )]
    Blocked(String),
    /// Another etcdplan holds the cluster's lock, or the lock could not be handled.
    #[error(transparent)]
    #[diagnostic(
        code(etcdplan::lock),
        help(
            "wait for it (--lock-timeout DURATION), or, if that etcdplan is gone, `etcdplan force-unlock ID`; nothing was changed"
        )
    )]
    Lock(#[from] execute::lock::LockError),
    /// A saved plan no longer fits the cluster or the etcdfile.
    #[error("Saved plan is stale: {0}")]
    #[diagnostic(
        code(etcdplan::stale),
        help("nothing was changed; run `etcdplan plan --out FILE` again and review the new plan")
    )]
    Stale(plan::file::StaleError),
    /// A plan file could not be read or written.
    #[error("plan file {path}: {message}")]
    #[diagnostic(code(etcdplan::plan_file))]
    PlanFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The operator did not approve.
    #[error("apply cancelled: {0}")]
    #[diagnostic(
        code(etcdplan::cancelled),
        help("nothing was changed; pass --auto-approve to apply without asking")
    )]
    Cancelled(String),
    /// A step failed mid-apply.
    #[error("{0}")]
    #[diagnostic(
        code(etcdplan::apply),
        help("run `etcdplan plan` to see what remains; etcdplan stopped before any further step")
    )]
    Apply(Box<ApplyError>),
    /// The etcdfile's folder cannot be watched.
    #[error(transparent)]
    #[diagnostic(code(etcdplan::watch))]
    Watch(#[from] crate::watch::WatchError),
    /// `watch --metrics-addr` could not bind its address.
    #[error(transparent)]
    #[diagnostic(
        code(etcdplan::metrics),
        help(
            "give a HOST:PORT of this machine that is free, such as 127.0.0.1:9464 (nothing was planned or changed)"
        )
    )]
    Metrics(#[from] crate::watch::metrics::MetricsError),
    /// The CA or a certificate cannot be used.
    #[error("{error}")]
    #[diagnostic(code(etcdplan::pki))]
    Pki {
        /// What is wrong.
        error: crate::pki::PkiError,
        /// What to do.
        #[help]
        advice: &'static str,
    },
    /// `endpoints` knows no endpoint to print.
    #[error("no endpoint: {0}")]
    #[diagnostic(
        code(etcdplan::no_endpoint),
        help(
            "`etcdplan status` shows which members answer; without --healthy the etcdfile's members are printed"
        )
    )]
    NoEndpoint(String),
    /// `history` could not read the records.
    #[error("cannot read etcdplan/history/: {0}")]
    #[diagnostic(
        code(etcdplan::history),
        help(
            "a member must answer; with auth on, only root (or a role granted etcdplan/) reads the records"
        )
    )]
    History(String),
    /// Flags that do not go together.
    #[error("{0}")]
    #[diagnostic(code(etcdplan::usage))]
    Usage(String),
    /// A snapshot could not be taken, checked, copied or kept.
    #[error(transparent)]
    #[diagnostic(
        code(etcdplan::backup),
        help("nothing in the cluster was changed; snapshots already in the folder are kept")
    )]
    Backup(#[from] crate::backup::BackupError),
    /// A snapshot did not restore to what its manifest records.
    #[error("the restore check failed: {0}")]
    #[diagnostic(
        code(etcdplan::restore_check),
        help(
            "do not rely on this snapshot; it is marked in its manifest, and keep never counts it as the newest good one"
        )
    )]
    RestoreCheck(String),
    /// Writing output failed.
    #[error("cannot write output: {0}")]
    #[diagnostic(code(etcdplan::io))]
    Output(#[from] std::io::Error),
    /// The snapshot to restore is unusable.
    #[error("{0}")]
    #[diagnostic(
        code(etcdplan::snapshot),
        help("nothing was stopped or changed; restore a snapshot that passes its checks")
    )]
    Snapshot(String),
    /// The lock in files on the hosts could not be taken.
    #[error(transparent)]
    #[diagnostic(
        code(etcdplan::host_lock),
        help(
            "wait for that etcdplan to finish (--lock-timeout waits for it), or, if it is gone, `etcdplan force-unlock ID` with the lock id above (the file also goes stale by itself); nothing was changed"
        )
    )]
    HostLock(#[from] execute::hostlock::HostLockError),
}

/// A CA or certificate failure, with the advice that goes with it.
pub(super) fn pki_error(error: crate::pki::PkiError) -> CliError {
    CliError::Pki {
        advice: error.advice(),
        error,
    }
}
