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

    /// Whether each command costs a network round trip (ssh), so that the
    /// walk sends work that belongs together (a restart's stop and start)
    /// as one script; where a command is only a process spawn (this
    /// machine, the test doubles) it sends each on its own.
    fn round_trips(&self) -> bool {
        false
    }
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

/// A script that writes stdin to `path` atomically: a temporary file (its
/// own name per run, removed if the script stops) created under a strict
/// umask, checked against the sha256 of `contents` (a connection cut mid-way
/// ends stdin early, and `cat` takes that for the end of the file), given its
/// mode, flushed to disk, then renamed over the target. Feed it `contents`.
/// It forks as few processes as it can (a folder already there is not
/// made again, the digest is cut by the shell): under load each costs
/// several milliseconds.
pub fn write_file_script(path: &std::path::Path, mode: u32, contents: &[u8]) -> String {
    write_from_stdin(path, mode, contents, "cat")
}

/// [`write_file_script`] for one of several files fed one after the other
/// on one stdin: it takes exactly this file's bytes (GNU `head -c` reads no
/// further than it writes), so the next file's script finds its own. A
/// wrong split (a `head` that reads ahead) fails the sha256 check, and
/// that file is not used.
pub fn write_file_part_script(path: &std::path::Path, mode: u32, contents: &[u8]) -> String {
    write_from_stdin(path, mode, contents, &format!("head -c {}", contents.len()))
}

/// The write through a temporary file, checked and renamed into place,
/// taking the contents from stdin with `reader`.
fn write_from_stdin(path: &std::path::Path, mode: u32, contents: &[u8], reader: &str) -> String {
    let p = shell_quote(&path.display().to_string());
    let dir = shell_quote(
        &path
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "/".into()),
    );
    let sha = crate::model::hex(&<sha2::Sha256 as sha2::Digest>::digest(contents));
    format!(
        "set -e\numask 077\n[ -d {dir} ] || mkdir -p {dir}\nt={p}.etcdplan-tmp.$$\n{cleanup}\
{reader} > \"$t\"\ngot=$(sha256sum < \"$t\")\ngot=${{got%% *}}\n\
if [ \"$got\" != {sha} ]; then echo \"the file arrived incomplete (sha256 $got, not {sha}); not used\" >&2; exit 3; fi\n\
chmod {mode:o} \"$t\"\n{sync}mv -f \"$t\" {p}\ntrap - EXIT\n",
        cleanup = remove_on_exit("t"),
        sync = fsync_line("t"),
    )
}

/// Shell lines that remove the file named by `$var` when the script ends
/// before it is renamed into place (`trap - EXIT` after the rename keeps
/// it): also when a signal ends it, as SIGPIPE does when the script tells of
/// a cut upload on the stderr of the ssh connection that was cut.
pub fn remove_on_exit(var: &str) -> String {
    format!("trap 'rm -f \"${var}\"' EXIT\ntrap 'exit 1' HUP INT PIPE TERM\n")
}

/// A shell function, `fresh_name BASE`, that prints BASE when nothing is
/// there, else the first free `BASE.1`, `BASE.2`, …: the name to move or
/// copy something aside to. Names carry a time stamp to the second, and
/// two asides within one second (a rerun right after a killed run) would
/// otherwise meet: `cp -a` and `mv` of a folder onto an existing folder put
/// it *inside* that folder instead of beside it.
pub const FRESH_NAME: &str = "fresh_name() { fresh_t=\"$1\"; fresh_n=1; while [ -e \"$fresh_t\" ] || [ -L \"$fresh_t\" ]; do fresh_t=\"$1.$fresh_n\"; fresh_n=$((fresh_n + 1)); done; printf '%s' \"$fresh_t\"; }\n";

/// A shell line that flushes the file named by `$var` to disk before it is
/// renamed into place, so a crash after the rename never finds the new name
/// on an empty or partial file (coreutils `sync FILE`; a `sync` of
/// everything where that is missing).
pub fn fsync_line(var: &str) -> String {
    format!("sync -- \"${var}\" 2>/dev/null || sync\n")
}

/// [`write_file_script`] for a file that `owner` must own (a TLS key of an
/// etcd running as `[hosts] run_as`): given to the user and the user's
/// primary group before it is flushed and takes the path, so a running etcd never finds it
/// unreadable. Root's files use [`write_file_script`] unchanged.
pub fn write_owned_file_script(
    path: &std::path::Path,
    mode: u32,
    owner: &crate::model::UserName,
    contents: &[u8],
) -> String {
    let owner = shell_quote(&format!("{owner}:"));
    write_file_script(path, mode, contents).replacen(
        "\nsync -- ",
        &format!("\nchown -- {owner} \"$t\"\nsync -- "),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aside_name_taken_within_the_same_second_gets_the_next_free_suffix() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let base = dir.path().join("member.removed-20261203-132219");
        let fresh = || {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{FRESH_NAME}fresh_name \"$1\""))
                .arg("sh")
                .arg(&base)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let name = |suffix: &str| format!("{}{suffix}", base.display());
        assert_eq!(fresh(), name(""));
        std::fs::create_dir(&base).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fresh(), name(".1"));
        std::fs::write(name(".1"), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fresh(), name(".2"));
        // A dangling symlink is a name taken too.
        std::os::unix::fs::symlink("/nonexistent", name(".2")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fresh(), name(".3"));
    }

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
        let s = write_owned_file_script(
            std::path::Path::new("/etc/etcd/pki/peer.key"),
            0o600,
            &user,
            b"key",
        );
        let chown = s
            .find("chown -- etcd: \"$t\"")
            .unwrap_or_else(|| panic!("{s}"));
        let mv = s.find("mv -f").unwrap_or_else(|| panic!("{s}"));
        assert!(
            s.find("chmod 600").is_some_and(|c| c < chown) && chown < mv,
            "{s}"
        );
    }

    /// Runs [`write_file_script`] for `contents` on this machine, fed `fed`.
    async fn write(path: &std::path::Path, contents: &[u8], fed: &[u8]) -> CommandOutput {
        let script =
            Script::new("write", write_file_script(path, 0o640, contents)).stdin(fed.to_vec());
        LocalHost
            .run(&script)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// What is left in `dir` besides `keep`.
    fn others(dir: &std::path::Path, keep: &str) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != keep)
            .collect()
    }

    /// A connection cut mid-file ends stdin early: `cat` sees an end of file
    /// and the shell goes on. The old file must stay, and the piece go.
    #[tokio::test]
    async fn a_file_cut_short_never_takes_the_path() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("etcd.yaml");
        std::fs::write(&path, "old\n").unwrap_or_else(|e| panic!("{e}"));
        let new = "name: etcd-1\n".repeat(1000);
        let out = write(&path, new.as_bytes(), &new.as_bytes()[..5000]).await;
        assert_eq!(out.code, 3, "{out:?}");
        assert!(out.stderr.contains("arrived incomplete"), "{out:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), "old\n");
        assert!(others(dir.path(), "etcd.yaml").is_empty());

        let out = write(&path, new.as_bytes(), new.as_bytes()).await;
        assert!(out.success(), "{out:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), new);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{e}"))
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o640);
        assert!(others(dir.path(), "etcd.yaml").is_empty());
    }

    /// Killing the ssh connection closes the script's stderr too: telling
    /// of the cut file there raises SIGPIPE, and the piece must still go.
    #[test]
    fn a_file_cut_short_is_removed_when_its_stderr_is_gone() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("etcd.yaml");
        let new = "name: etcd-1\n".repeat(1000);
        let (reader, writer) = std::io::pipe().unwrap_or_else(|e| panic!("{e}"));
        drop(reader);
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(write_file_script(&path, 0o640, new.as_bytes()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(writer)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&new.as_bytes()[..5000])
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
        assert!(!status.success());
        assert!(!path.exists());
        assert!(others(dir.path(), "etcd.yaml").is_empty());
    }
}
