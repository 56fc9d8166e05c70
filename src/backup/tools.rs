//! The programs this module runs on this machine, each under a deadline:
//! etcd's snapshot tool (etcdutl where it exists, else etcdctl, which has
//! `snapshot status` and `snapshot restore` up to 3.5), the `etcd` binary of
//! the throw-away restore, and `sh -c` for the copy command.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::BackupError;

/// Which snapshot tool is used.
#[derive(Debug, Clone)]
pub(super) struct Tool {
    /// etcdutl or etcdctl.
    pub name: &'static str,
    /// Where it is.
    pub path: PathBuf,
}

/// Finds `program` on PATH.
pub(super) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// etcdutl where it exists, else etcdctl.
pub(super) fn snapshot_tool() -> Option<Tool> {
    ["etcdutl", "etcdctl"]
        .into_iter()
        .find_map(|name| which(name).map(|path| Tool { name, path }))
}

/// What a program printed.
pub(super) struct Ran {
    pub stdout: String,
}

/// The last lines of a program's output, for an error message.
pub(super) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines.len().saturating_sub(5);
    lines[from..].join(" | ")
}

/// Runs `program args` with `ETCDCTL_API=3` (etcdctl 3.4 needs it) in
/// `cwd`, killed after `deadline`; a non-zero exit is an error with the end of
/// its output.
pub(super) async fn run(
    what: &str,
    program: &Path,
    args: &[&str],
    cwd: Option<&Path>,
    deadline: Duration,
) -> Result<Ran, BackupError> {
    let mut c = tokio::process::Command::new(program);
    c.args(args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let failed = |why: String| BackupError::Command {
        what: what.to_owned(),
        why,
    };
    let child = c
        .spawn()
        .map_err(|e| failed(format!("{}: {e}", program.display())))?;
    let out = match tokio::time::timeout(deadline, child.wait_with_output()).await {
        Err(_) => {
            return Err(failed(format!(
                "no answer within {}s (killed)",
                deadline.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(failed(e.to_string())),
        Ok(Ok(out)) => out,
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out
            .status
            .code()
            .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"));
        return Err(failed(format!(
            "{code}: {}",
            tail(&format!("{stdout}\n{stderr}"))
        )));
    }
    Ok(Ran { stdout })
}
