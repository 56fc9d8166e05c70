//! Hosts: run a shell script with optional stdin, under a deadline.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

/// A script for `sh -c` on a host, with its input and deadline.
#[derive(Debug, Clone)]
pub struct Script {
    /// What the script is for, in error messages ("start etcd-1").
    pub what: String,
    /// POSIX sh source.
    pub source: String,
    /// Bytes fed to the script's stdin (file contents); never logged.
    pub stdin: Option<Vec<u8>>,
    /// The whole run must finish within this.
    pub timeout: Duration,
    /// Told as stdin is fed, for a long upload's progress.
    pub progress: Option<Progress>,
}

impl Script {
    /// A script without stdin and a 30 s deadline.
    pub fn new(what: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            source: source.into(),
            stdin: None,
            timeout: Duration::from_secs(30),
            progress: None,
        }
    }

    /// Sets the deadline.
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sets stdin.
    #[must_use]
    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// Reports how much of stdin has been fed (a release of tens of MB).
    #[must_use]
    pub fn progress(mut self, p: Progress) -> Self {
        self.progress = Some(p);
        self
    }
}

/// Told how many bytes of a transfer have moved (`done`, and the `total` once
/// known), once per chunk: the receiver decides how often to pass it on.
#[derive(Clone)]
pub struct Progress(std::sync::Arc<dyn Fn(u64, Option<u64>) + Send + Sync>);

impl Progress {
    /// A progress sink calling `f(done, total)`.
    pub fn new(f: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }

    /// Reports bytes moved so far.
    pub fn report(&self, done: u64, total: Option<u64>) {
        (self.0)(done, total);
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// How much stdin is written between two progress reports.
const FEED_CHUNK: usize = 64 * 1024;

/// Writes `bytes` to a script's stdin and closes it, reporting progress per
/// chunk when asked to.
pub(super) async fn feed<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    progress: Option<&Progress>,
) -> std::io::Result<()> {
    let Some(p) = progress else {
        w.write_all(bytes).await?;
        return w.shutdown().await;
    };
    let total = bytes.len() as u64;
    let mut done = 0u64;
    for chunk in bytes.chunks(FEED_CHUNK) {
        w.write_all(chunk).await?;
        done += chunk.len() as u64;
        p.report(done, Some(total));
    }
    w.shutdown().await
}

/// What a script printed and how it exited.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CommandOutput {
    /// Whether the script exited 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The last lines of stderr (or stdout), for one-line error messages.
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.trim().lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }
}

/// Why a script could not run to completion.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// The deadline passed; the script was killed.
    #[error("{host}: {what} did not finish within {}s", timeout.as_secs_f32())]
    Timeout {
        /// The host.
        host: String,
        /// The script's purpose.
        what: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The host could not be reached or the shell not started.
    #[error("{message}")]
    Unreachable {
        /// The host.
        host: String,
        /// The script's purpose.
        what: String,
        /// Why, naming the target.
        message: String,
    },
    /// The host's key does not match known_hosts: refused.
    #[error(
        "ssh {target}: host key verification failed against {known_hosts}; the host offers {offered}"
    )]
    HostKey {
        /// user@host:port.
        target: String,
        /// The known_hosts file checked.
        known_hosts: String,
        /// Fingerprints the host presents.
        offered: String,
    },
    /// The host refused our key.
    #[error("ssh {target}: authentication failed (key {identity} not accepted)")]
    Auth {
        /// user@host:port.
        target: String,
        /// The key offered.
        identity: String,
    },
    /// `sudo -n` wanted a password.
    #[error("{host}: the ssh user needs passwordless sudo: `sudo -n` asked for a password")]
    Sudo {
        /// The host.
        host: String,
    },
}

impl HostError {
    /// What the operator should do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            Self::HostKey { .. } => {
                "check the offered fingerprint out of band; if the host was reinstalled, replace its line in known_hosts (--accept-new-host-keys only accepts hosts with no entry yet)"
            }
            Self::Auth { .. } => {
                "check ssh_identity and that its public key is in the host's authorized_keys"
            }
            Self::Sudo { .. } => {
                "allow the ssh user to run sudo without a password, or set ssh_user = \"root\""
            }
            Self::Timeout { .. } => {
                "the host answers too slowly or a command hangs there; check it, then run plan again"
            }
            Self::Unreachable { .. } => {
                "check that the host is up and reachable over ssh, then run plan again"
            }
        }
    }
}

/// A host etcdplan can run commands on.
#[async_trait]
pub trait Host: Send + Sync {
    /// A short name for messages ("local", "10.0.0.11").
    fn label(&self) -> String;

    /// Runs a script under its deadline. A non-zero exit is `Ok`; only failures to
    /// run at all (or the deadline) are errors.
    async fn run(&self, script: &Script) -> Result<CommandOutput, HostError>;

    /// Releases the connection, if the host holds one.
    async fn close(&self) {}
}

/// This machine, for the `local` transport.
#[derive(Debug, Clone, Default)]
pub struct LocalHost;

#[async_trait]
impl Host for LocalHost {
    fn label(&self) -> String {
        "local".to_owned()
    }

    async fn run(&self, script: &Script) -> Result<CommandOutput, HostError> {
        let unreachable = |e: std::io::Error| HostError::Unreachable {
            host: self.label(),
            what: script.what.clone(),
            message: format!("cannot run {}: {e}", script.what),
        };
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&script.source)
            .stdin(if script.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(unreachable)?;
        let stdin = child.stdin.take();
        let input = script.stdin.clone();
        let progress = script.progress.clone();
        let run = async move {
            if let (Some(mut w), Some(bytes)) = (stdin, input) {
                feed(&mut w, &bytes, progress.as_ref()).await?;
            }
            child.wait_with_output().await
        };
        match tokio::time::timeout(script.timeout, run).await {
            Err(_) => Err(HostError::Timeout {
                host: self.label(),
                what: script.what.clone(),
                timeout: script.timeout,
            }),
            Ok(Err(e)) => Err(unreachable(e)),
            Ok(Ok(out)) => Ok(CommandOutput {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
        }
    }
}

/// Quotes a word for POSIX sh (defined in the core, which quotes the
/// backup copy command's paths with it).
pub use etcdplan_core::model::shell_quote;

/// A script that writes stdin to `path` atomically: a temp file created with the
/// final mode under a strict umask, then renamed over the target.
pub fn write_file_script(path: &std::path::Path, mode: u32) -> String {
    let p = shell_quote(&path.display().to_string());
    let dir = shell_quote(
        &path
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "/".into()),
    );
    format!(
        "set -e\numask 077\nmkdir -p {dir}\nt={p}.etcdplan-tmp\ncat > \"$t\"\nchmod {mode:o} \"$t\"\nmv -f \"$t\" {p}\n"
    )
}

/// [`write_file_script`] for a file that `owner` must own (a TLS key of an
/// etcd running as `[hosts] run_as`): given to the user and the user's
/// primary group before it takes the path, so a running etcd never finds it
/// unreadable. Root's files use [`write_file_script`] unchanged.
pub fn write_owned_file_script(
    path: &std::path::Path,
    mode: u32,
    owner: &crate::model::UserName,
) -> String {
    let owner = shell_quote(&format!("{owner}:"));
    write_file_script(path, mode).replacen(
        "\nmv -f ",
        &format!("\nchown -- {owner} \"$t\"\nmv -f "),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/var/lib/etcd"), "/var/lib/etcd");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn an_owned_file_changes_hands_before_it_takes_the_path() {
        let user = crate::model::UserName::parse("etcd").unwrap_or_else(|e| panic!("{e}"));
        let s =
            write_owned_file_script(std::path::Path::new("/etc/etcd/pki/peer.key"), 0o600, &user);
        let chown = s
            .find("chown -- etcd: \"$t\"")
            .unwrap_or_else(|| panic!("{s}"));
        let mv = s.find("mv -f").unwrap_or_else(|| panic!("{s}"));
        assert!(
            s.find("chmod 600").is_some_and(|c| c < chown) && chown < mv,
            "{s}"
        );
    }
}
