//! Hosts reached over OpenSSH (the `openssh` crate, native multiplexing: one
//! connection per host, reused by every command).
//!
//! Host keys are checked strictly unless the operator explicitly accepts new
//! ones; a refused key is reported with the fingerprint the host offered. The
//! crate has no per-command deadline, so every call is wrapped in one. A
//! connection found lost before a command (its sshd killed) is made again
//! once; a command is never sent twice. A non-root user runs scripts through
//! `sudo -n`, which fails instead of asking for a password.
//!
//! With a persist duration (`--ssh-persist`, [`persist`]) the master outlives
//! the run, in a private runtime folder, and the next run reuses it.

pub mod persist;

use std::path::PathBuf;
use std::process::Stdio as StdStdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::sync::Mutex;

use super::host::{CommandOutput, Host, HostError, Script};
use crate::model::{Address, Port};

/// How to reach hosts over ssh.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Remote user; anything but root goes through `sudo -n`.
    pub user: String,
    /// Remote port.
    pub port: Port,
    /// Private key; used when the file exists (else ssh's defaults and agent).
    pub identity: PathBuf,
    /// known_hosts file to check host keys against.
    pub known_hosts: PathBuf,
    /// Accept (and record) keys of hosts not yet in known_hosts; a changed key is
    /// still refused.
    pub accept_new: bool,
    /// Deadline for establishing the connection.
    pub connect_timeout: Duration,
    /// Keep the master running this long idle after the run, in this folder,
    /// for the next run to reuse; None closes it at the end of the run.
    pub persist: Option<(persist::RuntimeDir, Duration)>,
}

/// One host over ssh. A host that could not be connected keeps the reason and
/// answers every command with it, so the plan for other hosts still shows.
/// A deferred host ([`SshHost::deferred`]) connects on its first command, so
/// that a read-only command's etcd calls and host probes overlap the ssh
/// handshakes instead of waiting for all of them.
pub struct SshHost {
    label: String,
    sudo: bool,
    /// The master persists: the run leaves it running.
    persistent: bool,
    /// Set once connected (or failed).
    conn: tokio::sync::OnceCell<Conn>,
    /// Where a deferred host connects to.
    target: Option<(Address, SshOptions)>,
}

/// The connection of an [`SshHost`], or why there is none.
struct Conn {
    session: Mutex<Option<Arc<Session>>>,
    failure: Option<HostError>,
    /// The master was already running (made by an earlier run).
    reused: bool,
}

/// How long the multiplexing master may take to say whether its
/// connection still lives.
const CHECK_DEADLINE: Duration = Duration::from_secs(5);

impl SshHost {
    /// Connects to `address`; never fails, see [`SshHost`].
    pub async fn connect(address: &Address, opts: &SshOptions) -> Self {
        let host = Self::deferred(address, opts);
        host.conn().await;
        host
    }

    /// The host at `address`, connected on its first command; never fails,
    /// see [`SshHost`].
    pub fn deferred(address: &Address, opts: &SshOptions) -> Self {
        Self {
            label: address.to_string(),
            sudo: opts.user != "root",
            persistent: opts.persist.is_some(),
            conn: tokio::sync::OnceCell::new(),
            target: Some((address.clone(), opts.clone())),
        }
    }

    async fn conn(&self) -> &Conn {
        self.conn
            .get_or_init(|| async {
                match &self.target {
                    Some((address, opts)) => open(address, opts).await,
                    None => Conn {
                        session: Mutex::new(None),
                        failure: None,
                        reused: false,
                    },
                }
            })
            .await
    }

    /// The connection, made again first when it was lost (its sshd killed,
    /// its master gone): an apply stopped by a killed connection still
    /// removes its lock file there, and the next one is not refused. Checked
    /// before a script is sent, never after: no script runs twice. A
    /// connection that lives but stalls (a cut link) is left to the script's
    /// deadline.
    async fn live_session(&self, conn: &Conn) -> Result<Arc<Session>, String> {
        let mut slot = conn.session.lock().await;
        let session = slot
            .clone()
            .ok_or_else(|| "the connection is closed".to_owned())?;
        if let Ok(Ok(())) = tokio::time::timeout(CHECK_DEADLINE, session.check()).await {
            return Ok(session);
        }
        let Some((address, opts)) = &self.target else {
            return Ok(session);
        };
        tracing::debug!(
            "{}: the ssh connection was lost; connecting again",
            self.label
        );
        // `open` has the connect deadline; a persistent master that died is
        // replaced there.
        let again = open(address, opts).await;
        match (again.failure, again.session.into_inner()) {
            (None, Some(new)) => {
                *slot = Some(new.clone());
                Ok(new)
            }
            (Some(e), _) => Err(format!(
                "the ssh connection was lost and cannot be made again: {e}"
            )),
            (None, None) => Err("the ssh connection was lost and cannot be made again".into()),
        }
    }

    /// Whether this run reused a master an earlier run left.
    pub fn reused(&self) -> bool {
        self.conn.get().is_some_and(|c| c.reused)
    }

    /// Why the connection failed, if it did (None before a deferred host
    /// connects).
    pub fn failure(&self) -> Option<&HostError> {
        self.conn.get().and_then(|c| c.failure.as_ref())
    }
}

/// Connects to `address` under the options' deadline: the persistent master
/// when the options keep one, else a master of this run only.
async fn open(address: &Address, opts: &SshOptions) -> Conn {
    let dest = match address {
        Address::Ip(ip) => ip.to_string(),
        Address::Dns(n) => n.clone(),
    };
    let label = address.to_string();
    let deadline = opts.connect_timeout + Duration::from_secs(2);
    let timed_out = || HostError::Unreachable {
        host: label.clone(),
        what: "connect".into(),
        message: format!(
            "ssh {}@{dest}:{}: no connection within {}s",
            opts.user,
            opts.port,
            deadline.as_secs()
        ),
    };
    let conn = |session: Option<Session>, failure, reused| Conn {
        session: Mutex::new(session.map(Arc::new)),
        failure,
        reused,
    };
    if let Some((dir, idle)) = &opts.persist {
        return match persist::session(dir, &dest, opts, *idle, deadline).await {
            Ok((s, reused)) => conn(Some(s), None, reused),
            Err(persist::LaunchError::Timeout) => conn(None, Some(timed_out()), false),
            Err(persist::LaunchError::Failed(log)) => {
                let e = describe_connect_failure(&log, &label, &dest, opts).await;
                conn(None, Some(e), false)
            }
        };
    }
    let mut b = SessionBuilder::default();
    b.user(opts.user.clone())
        .port(opts.port.get())
        .known_hosts_check(if opts.accept_new {
            KnownHosts::Add
        } else {
            KnownHosts::Strict
        })
        .user_known_hosts_file(&opts.known_hosts)
        .connect_timeout(opts.connect_timeout)
        .server_alive_interval(Duration::from_secs(5))
        .control_directory(std::env::temp_dir());
    if opts.identity.exists() {
        b.keyfile(&opts.identity);
    }
    match tokio::time::timeout(deadline, b.connect_mux(&dest)).await {
        Err(_) => conn(None, Some(timed_out()), false),
        Ok(Err(e)) => {
            let e = describe_connect_error(&e, &label, &dest, opts).await;
            conn(None, Some(e), false)
        }
        Ok(Ok(session)) => conn(Some(session), None, false),
    }
}

/// The typed reason for a failed connection; for a refused host key, with the
/// fingerprint the host offers.
async fn describe_connect_error(
    e: &openssh::Error,
    label: &str,
    dest: &str,
    opts: &SshOptions,
) -> HostError {
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    describe_connect_failure(&chain, label, dest, opts).await
}

/// The typed reason for a failed connection from what ssh said (`chain`).
async fn describe_connect_failure(
    chain: &str,
    label: &str,
    dest: &str,
    opts: &SshOptions,
) -> HostError {
    let target = format!("{}@{dest}:{}", opts.user, opts.port);
    if chain.contains("Host key verification failed") {
        return HostError::HostKey {
            target,
            known_hosts: opts.known_hosts.display().to_string(),
            offered: offered_fingerprints(dest, opts.port).await,
        };
    }
    if chain.contains("Permission denied") {
        return HostError::Auth {
            target,
            identity: opts.identity.display().to_string(),
        };
    }
    HostError::Unreachable {
        host: label.to_owned(),
        what: "connect".into(),
        message: format!("ssh {target}: {}", chain.trim()),
    }
}

/// `ssh-keyscan | ssh-keygen -lf -`, under a deadline: what the host presents.
async fn offered_fingerprints(dest: &str, port: Port) -> String {
    let script = format!(
        "ssh-keyscan -T 5 -p {port} {} 2>/dev/null | ssh-keygen -lf - 2>/dev/null",
        super::shell_quote(dest)
    );
    let run = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(StdStdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(8), run).await {
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let fps: Vec<String> = text
                .lines()
                .filter_map(|l| {
                    let mut parts = l.split_whitespace();
                    let _bits = parts.next()?;
                    let fp = parts.next()?;
                    let kind = l.rsplit_once('(').map(|(_, k)| k.trim_end_matches(')'))?;
                    Some(format!("{fp} ({kind})"))
                })
                .collect();
            if fps.is_empty() {
                "no key that ssh-keyscan could read".into()
            } else {
                fps.join(", ")
            }
        }
        _ => "a key ssh-keyscan could not read in time".into(),
    }
}

#[async_trait]
impl Host for SshHost {
    fn label(&self) -> String {
        self.label.clone()
    }

    async fn run(&self, script: &Script) -> Result<CommandOutput, HostError> {
        let unreachable = |message: String| HostError::Unreachable {
            host: self.label.clone(),
            what: script.what.clone(),
            message,
        };
        let started = std::time::Instant::now();
        let conn = self.conn().await;
        if let Some(f) = &conn.failure {
            return Err(f.clone());
        }
        let connected = started.elapsed();
        let session = self.live_session(conn).await.map_err(unreachable)?;
        let checked = started.elapsed();
        let mut cmd = if self.sudo {
            let mut c = Session::to_command(session, "sudo");
            c.args(["-n", "sh", "-c", &script.source]);
            c
        } else {
            let mut c = Session::to_command(session, "sh");
            c.args(["-c", &script.source]);
            c
        };
        cmd.stdin(if script.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let input = script.stdin.clone();
        let progress = script.progress.clone();
        let run = async move {
            let mut child = cmd.spawn().await?;
            if let (Some(mut w), Some(bytes)) = (child.stdin().take(), input) {
                super::host::feed(&mut w, &bytes, progress.as_ref())
                    .await
                    .map_err(openssh::Error::ChildIo)?;
            }
            child.wait_with_output().await
        };
        let out = match tokio::time::timeout(script.timeout, run).await {
            Err(_) => {
                return Err(HostError::Timeout {
                    host: self.label.clone(),
                    what: script.what.clone(),
                    timeout: script.timeout,
                });
            }
            Ok(Err(openssh::Error::Remote(e))) if e.kind() == std::io::ErrorKind::NotFound => {
                let what = if self.sudo { "sudo" } else { "sh" };
                return Err(unreachable(format!(
                    "{}: {what} is not installed on the host",
                    self.label
                )));
            }
            Ok(Err(e)) => return Err(unreachable(format!("{}: {e}", self.label))),
            Ok(Ok(out)) => out,
        };
        tracing::debug!(
            target: "etcdplan::timing",
            "ssh {}: {}: connection {:.3}s, check {:.3}s, command {:.3}s",
            self.label,
            script.what,
            connected.as_secs_f64(),
            (checked - connected).as_secs_f64(),
            (started.elapsed() - checked).as_secs_f64()
        );
        let out = CommandOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if self.sudo
            && out.code == 1
            && out.stderr.contains("sudo:")
            && out.stderr.contains("password")
        {
            return Err(HostError::Sudo {
                host: self.label.clone(),
            });
        }
        Ok(out)
    }

    fn round_trips(&self) -> bool {
        true
    }

    async fn close(&self) {
        // A deferred host that never connected has nothing to close.
        let Some(conn) = self.conn.get() else {
            return;
        };
        let session = conn.session.lock().await.take();
        if self.persistent {
            // The master outlives the run (ControlPersist ends it when idle);
            // only this run's handle on it goes.
            return;
        }
        if let Some(s) = session.and_then(|s| Arc::try_unwrap(s).ok()) {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.close()).await;
        }
    }
}
