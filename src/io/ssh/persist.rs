//! Persistent OpenSSH control masters (`--ssh-persist`): a `plan` right after
//! another command reuses the connections it left, instead of paying the ssh
//! handshake again for every host.
//!
//! Each master listens on a socket in a private runtime folder (0700, owned
//! by the user: anyone who can reach a socket can run commands as the ssh
//! user). The socket's name is a hash of every option that decided how the
//! master was authenticated (user, host, port, the identity file, the
//! known_hosts file's content, accept-new), so a master is only reused by a
//! run that would have made the same one; a master made under other options
//! is never found. The master ends on its own after the persist duration
//! idle (`ControlPersist`), or by `etcdplan disconnect`.
//!
//! A master that died (a stale socket) or hangs is replaced transparently:
//! every operation on a socket has a deadline, and one lock file per socket
//! keeps two etcdplans from launching the same master at once.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use openssh::Session;
use sha2::{Digest as _, Sha256};

use super::SshOptions;

/// How long a check of a master, or its `-O exit`, may take.
const CONTROL_DEADLINE: Duration = Duration::from_secs(3);

/// The longest socket path ssh can bind: `sun_path` holds 108 bytes with its
/// NUL, and ssh binds `PATH.XXXXXXXXXXXXXXXX` (17 bytes more) before
/// renaming it into place.
const MAX_SOCKET_PATH: usize = 107 - 17;

/// Why the runtime folder cannot hold masters.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PersistError {
    /// The folder could not be created or read.
    #[error("ssh runtime folder {path}: {message}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The folder is not private to this user: refused.
    #[error(
        "ssh runtime folder {path} is mode {mode:o}, owned by uid {owner}: it must be 0700 and owned by uid {uid}"
    )]
    NotPrivate {
        /// The folder.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
        /// Its owner.
        owner: u32,
        /// This process's user.
        uid: u32,
    },
    /// Socket paths under the folder would be longer than a unix socket allows.
    #[error("ssh runtime folder {path}: too long for unix socket paths (at most {max} bytes)")]
    TooLong {
        /// The folder.
        path: PathBuf,
        /// The longest folder path that fits.
        max: usize,
    },
}

/// The private folder that holds the masters' sockets.
#[derive(Debug, Clone)]
pub struct RuntimeDir {
    path: PathBuf,
}

/// The uid this process runs as (the owner of its own `/proc` entry).
fn my_uid() -> Result<u32, PersistError> {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| PersistError::Io {
            path: PathBuf::from("/proc/self"),
            message: e.to_string(),
        })
}

impl RuntimeDir {
    /// Where the folder is: `$XDG_RUNTIME_DIR/etcdplan/ssh`, else
    /// `/run/user/UID/etcdplan/ssh` when that runtime folder exists, else
    /// `/tmp/etcdplan-UID/ssh`.
    pub fn location() -> Result<PathBuf, PersistError> {
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            return Ok(PathBuf::from(x).join("etcdplan/ssh"));
        }
        let uid = my_uid()?;
        let run = PathBuf::from(format!("/run/user/{uid}"));
        if run.is_dir() {
            return Ok(run.join("etcdplan/ssh"));
        }
        Ok(PathBuf::from(format!("/tmp/etcdplan-{uid}/ssh")))
    }

    /// The folder, created 0700 when absent; refused when it (or its
    /// `etcdplan` parent) is not 0700 and owned by this user.
    pub fn open() -> Result<Self, PersistError> {
        let path = Self::location()?;
        let max = MAX_SOCKET_PATH - 1 - NAME_LEN;
        if path.as_os_str().len() > max {
            return Err(PersistError::TooLong { path, max });
        }
        let uid = my_uid()?;
        let parent = path.parent().map(Path::to_path_buf);
        for dir in parent.iter().chain(std::iter::once(&path)) {
            make_private(dir)?;
            check_private(dir, uid)?;
        }
        let dir = Self { path };
        dir.sweep();
        Ok(dir)
    }

    /// Removes the files of masters that are gone: a master that expired
    /// (`ControlPersist`) or died removed its socket, but its log, lock and
    /// target stay. A master's files go only while its lock is free, so a
    /// master being launched or checked is left alone. Best effort: a file
    /// that cannot go stays for the next run.
    fn sweep(&self) {
        for m in self.leftovers() {
            let Ok(file) = std::fs::OpenOptions::new().write(true).open(&m.lock) else {
                continue;
            };
            if file.try_lock().is_err() || m.socket.exists() {
                continue;
            }
            // The lock file last, still held: `lock` checks that the file it
            // holds is still the one at the path.
            for f in [&m.log, &m.target, &m.lock] {
                let _ = std::fs::remove_file(f);
            }
        }
    }

    /// The masters whose lock file is here but whose socket is not.
    fn leftovers(&self) -> Vec<Master> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".lock")?.to_owned();
                (name.len() == NAME_LEN && name.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| Master::at(&self.path, &name))
            })
            .filter(|m| !m.socket.exists())
            .collect()
    }

    /// The folder, if it exists and is private; None when it does not exist.
    pub fn existing() -> Result<Option<Self>, PersistError> {
        let path = Self::location()?;
        if !path.exists() {
            return Ok(None);
        }
        check_private(&path, my_uid()?)?;
        Ok(Some(Self { path }))
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sockets under the folder, with the target each was made for.
    pub fn masters(&self) -> Vec<Master> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut out: Vec<Master> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
                (name.len() == NAME_LEN && name.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| Master::at(&self.path, &name))
            })
            .collect();
        out.sort_by_key(Master::target);
        out
    }
}

/// Creates `dir` with mode 0700 if it is absent (its parents as the system makes them).
fn make_private(dir: &Path) -> Result<(), PersistError> {
    if dir.exists() {
        return Ok(());
    }
    let io = |e: std::io::Error| PersistError::Io {
        path: dir.to_owned(),
        message: e.to_string(),
    };
    if let Some(p) = dir.parent() {
        std::fs::create_dir_all(p).map_err(io)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io),
        // Another etcdplan made it first: checked next like any folder.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Refuses a folder that is a symlink, not 0700, or not this user's.
fn check_private(dir: &Path, uid: u32) -> Result<(), PersistError> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| PersistError::Io {
        path: dir.to_owned(),
        message: e.to_string(),
    })?;
    let mode = m.mode() & 0o7777;
    if !m.is_dir() || mode != 0o700 || m.uid() != uid {
        return Err(PersistError::NotPrivate {
            path: dir.to_owned(),
            mode,
            owner: m.uid(),
            uid,
        });
    }
    Ok(())
}

/// Hex characters of a socket's name.
const NAME_LEN: usize = 24;

/// The socket name for a master made with these options to `dest`: a hash
/// of everything that decided how it was authenticated. The identity is
/// keyed on its path and file metadata (its key is never read here); the
/// known_hosts file on its content, so an edited file never reuses a
/// master checked against the old one.
pub fn socket_name(dest: &str, opts: &SshOptions) -> String {
    let mut h = Sha256::new();
    let mut field = |k: &str, v: &[u8]| {
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v);
    };
    field("version", b"etcdplan-ssh-master-1");
    field("user", opts.user.as_bytes());
    field("host", dest.as_bytes());
    field("port", opts.port.get().to_string().as_bytes());
    field("identity", opts.identity.as_os_str().as_encoded_bytes());
    let id_meta = std::fs::metadata(&opts.identity).map_or_else(
        |_| "absent".to_owned(),
        |m| {
            format!(
                "{}:{}:{}:{}.{}",
                m.dev(),
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            )
        },
    );
    field("identity-file", id_meta.as_bytes());
    field(
        "known-hosts",
        opts.known_hosts.as_os_str().as_encoded_bytes(),
    );
    let known = std::fs::read(&opts.known_hosts).unwrap_or_else(|_| b"\0absent".to_vec());
    field("known-hosts-content", &Sha256::digest(&known));
    field("accept-new", if opts.accept_new { b"yes" } else { b"no" });
    h.finalize()
        .iter()
        .take(NAME_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One master's files in the runtime folder: the socket, the master's log,
/// the lock taken while it is checked or launched, and the target it was
/// made for (what `disconnect` prints).
#[derive(Debug, Clone)]
pub struct Master {
    /// The control socket.
    pub socket: PathBuf,
    log: PathBuf,
    lock: PathBuf,
    target: PathBuf,
}

impl Master {
    fn at(dir: &Path, name: &str) -> Self {
        Self {
            socket: dir.join(name),
            log: dir.join(format!("{name}.log")),
            lock: dir.join(format!("{name}.lock")),
            target: dir.join(format!("{name}.target")),
        }
    }

    /// The master for `dest` under these options.
    pub fn for_target(dir: &RuntimeDir, dest: &str, opts: &SshOptions) -> Self {
        Self::at(&dir.path, &socket_name(dest, opts))
    }

    /// `user@host:port` as recorded when it was made, else the socket's name.
    pub fn target(&self) -> String {
        std::fs::read_to_string(&self.target)
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|_| self.socket.display().to_string())
    }

    /// Takes this master's lock file, waiting until `deadline`. The lock
    /// held must be the file at the path still: one removed meanwhile (by
    /// `sweep` or `close`, which remove it while holding it) is opened anew.
    async fn lock(&self, deadline: Instant) -> Result<std::fs::File, String> {
        let failed = |e: std::io::Error| format!("{}: {e}", self.lock.display());
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&self.lock)
                .map_err(failed)?;
            loop {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(format!("{}: {e}", self.lock.display())),
                }
            }
            let held = file.metadata().map_err(failed)?;
            match std::fs::metadata(&self.lock) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(file),
                _ if Instant::now() < deadline => continue,
                _ => {
                    return Err(format!(
                        "{}: removed while waiting for it",
                        self.lock.display()
                    ));
                }
            }
        }
    }

    /// A session on this master if it answers in time: the master's own
    /// alive check, then a round trip to the host through it (`true`), so a
    /// master whose host went away (rebooted, powered off) is not taken for
    /// a live one until its keepalives notice.
    async fn alive(&self) -> Option<Session> {
        if !self.socket.exists() {
            return None;
        }
        let s = Session::resume_mux(self.socket.clone().into_boxed_path(), None);
        let started = Instant::now();
        let checked = tokio::time::timeout(CONTROL_DEADLINE, async {
            s.check().await?;
            let checked = started.elapsed();
            let st = s.command("true").status().await;
            tracing::debug!(
                target: "etcdplan::timing",
                "ssh master {}: check {:.3}s, `true` {:.3}s",
                self.socket.display(),
                checked.as_secs_f64(),
                (started.elapsed() - checked).as_secs_f64()
            );
            st
        })
        .await;
        let why = match checked {
            Ok(Ok(st)) if st.success() => return Some(s),
            Ok(Ok(st)) => format!("`true` exited {st}"),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {}s", CONTROL_DEADLINE.as_secs()),
        };
        tracing::info!("ssh master {}: {why}; replacing it", self.target());
        // A master that still runs but cannot reach its host is ended, not
        // left behind.
        let _ = control(&self.socket, "exit").await;
        None
    }

    /// Asks the master to exit (`ssh -O exit`, under a deadline) and removes
    /// its files; whether a master answered.
    pub async fn close(&self) -> bool {
        let answered = if self.socket.exists() {
            control(&self.socket, "exit").await.is_ok()
        } else {
            false
        };
        for f in [&self.socket, &self.log, &self.lock, &self.target] {
            let _ = std::fs::remove_file(f);
        }
        answered
    }
}

/// `ssh -O COMMAND -S SOCKET`, under [`CONTROL_DEADLINE`]; its stderr on failure.
pub async fn control(socket: &Path, command: &str) -> Result<String, String> {
    let run = tokio::process::Command::new("ssh")
        .args(["-F", "none", "-o", "BatchMode=yes", "-O", command, "-S"])
        .arg(socket)
        // ssh wants a destination; the socket decides where it goes.
        .arg("etcdplan-master")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(CONTROL_DEADLINE, run).await {
        Err(_) => Err(format!(
            "ssh -O {command}: no answer within {}s",
            CONTROL_DEADLINE.as_secs()
        )),
        Ok(Err(e)) => Err(format!("ssh -O {command}: {e}")),
        Ok(Ok(out)) => {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            if out.status.success() {
                Ok(text)
            } else {
                Err(text)
            }
        }
    }
}

/// Why launching a master failed: the master's own log, for the caller to
/// type (host key, authentication, unreachable).
#[derive(Debug)]
pub enum LaunchError {
    /// No answer before the deadline.
    Timeout,
    /// ssh failed; what its log says.
    Failed(String),
}

/// The session on the persistent master for `dest`: the running one when it
/// answers, else a new one launched with `ControlPersist=idle`.
pub async fn session(
    dir: &RuntimeDir,
    dest: &str,
    opts: &SshOptions,
    idle: Duration,
    deadline: Duration,
) -> Result<(Session, bool), LaunchError> {
    let until = Instant::now() + deadline;
    let master = Master::for_target(dir, dest, opts);
    let _lock = master.lock(until).await.map_err(LaunchError::Failed)?;
    if let Some(s) = master.alive().await {
        tracing::debug!("ssh: reusing the master for {}", master.target());
        return Ok((s, true));
    }
    // Whatever is there is dead or hung: ssh would refuse to bind over it.
    let _ = std::fs::remove_file(&master.socket);
    let _ = std::fs::remove_file(&master.log);
    let target = format!("{}@{dest}:{}", opts.user, opts.port);
    let _ = std::fs::File::create(&master.target).and_then(|mut f| writeln!(f, "{target}"));
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .arg("-E")
        .arg(&master.log)
        .arg("-S")
        .arg(&master.socket)
        .args(["-M", "-f", "-N", "-o"])
        .arg(format!("ControlPersist={}s", idle.as_secs().max(1)))
        .args(["-o", "BatchMode=yes", "-o"])
        .arg(if opts.accept_new {
            "StrictHostKeyChecking=accept-new"
        } else {
            "StrictHostKeyChecking=yes"
        })
        .arg("-o")
        .arg(format!(
            "ConnectTimeout={}",
            opts.connect_timeout.as_secs().max(1)
        ))
        .args(["-o", "ServerAliveInterval=5", "-p"])
        .arg(opts.port.get().to_string())
        .arg("-l")
        .arg(&opts.user);
    if opts.identity.exists() {
        cmd.args(["-o", "IdentitiesOnly=yes", "-i"])
            .arg(&opts.identity);
    }
    let mut known = std::ffi::OsString::from("UserKnownHostsFile=");
    known.push(&opts.known_hosts);
    cmd.arg("-o").arg(known).arg(dest);
    let left = until.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, cmd.status()).await {
        Err(_) => Err(LaunchError::Timeout),
        Ok(Err(e)) => Err(LaunchError::Failed(format!("ssh: {e}"))),
        Ok(Ok(st)) if !st.success() => Err(LaunchError::Failed(
            std::fs::read_to_string(&master.log)
                .unwrap_or_default()
                .trim()
                .to_owned(),
        )),
        Ok(Ok(_)) => Ok((
            Session::resume_mux(master.socket.clone().into_boxed_path(), None),
            false,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> SshOptions {
        SshOptions {
            user: "root".into(),
            port: crate::model::Port::new(22).unwrap_or_else(|| panic!("port")),
            identity: dir.join("id"),
            known_hosts: dir.join("known_hosts"),
            accept_new: false,
            connect_timeout: Duration::from_secs(5),
            persist: None,
        }
    }

    #[test]
    fn the_socket_name_changes_with_every_option_that_decides_authentication() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let o = opts(dir.path());
        std::fs::write(&o.known_hosts, "10.0.0.1 ssh-ed25519 AAAA\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let base = socket_name("10.0.0.1", &o);
        assert_eq!(base.len(), NAME_LEN);
        assert_eq!(base, socket_name("10.0.0.1", &o), "not deterministic");
        assert_ne!(base, socket_name("10.0.0.2", &o));
        let mut other = o.clone();
        other.user = "ops".into();
        assert_ne!(base, socket_name("10.0.0.1", &other));
        let mut other = o.clone();
        other.port = crate::model::Port::new(2222).unwrap_or_else(|| panic!("port"));
        assert_ne!(base, socket_name("10.0.0.1", &other));
        let mut other = o.clone();
        other.accept_new = true;
        assert_ne!(base, socket_name("10.0.0.1", &other));
        let mut other = o.clone();
        other.identity = dir.path().join("id2");
        assert_ne!(base, socket_name("10.0.0.1", &other));
        // The connect deadline decides nothing about who is on the other end.
        let mut other = o.clone();
        other.connect_timeout = Duration::from_secs(30);
        assert_eq!(base, socket_name("10.0.0.1", &other));
        // An edited known_hosts, or an identity file that appears.
        std::fs::write(&o.known_hosts, "10.0.0.1 ssh-ed25519 BBBB\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let edited = socket_name("10.0.0.1", &o);
        assert_ne!(base, edited);
        std::fs::write(&o.identity, "key").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(edited, socket_name("10.0.0.1", &o));
    }

    #[test]
    fn a_folder_open_to_others_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let uid = my_uid().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path().join("ssh");
        make_private(&d).unwrap_or_else(|e| panic!("{e}"));
        check_private(&d, uid).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = check_private(&d, uid);
        assert!(
            matches!(refused, Err(PersistError::NotPrivate { mode: 0o755, .. })),
            "{refused:?}"
        );
        // Not ours.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(check_private(&d, uid.wrapping_add(1)).is_err());
        // A symlink to a private folder is not the folder.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap_or_else(|e| panic!("{e}"));
        assert!(check_private(&link, uid).is_err());
    }

    #[test]
    fn the_files_of_gone_masters_are_swept_and_live_or_locked_ones_kept() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = RuntimeDir {
            path: tmp.path().to_owned(),
        };
        let name = |c: char| std::iter::repeat_n(c, NAME_LEN).collect::<String>();
        let write = |p: &Path| std::fs::write(p, "x").unwrap_or_else(|e| panic!("{e}"));
        // Expired: lock, log and target, no socket.
        let gone = Master::at(&dir.path, &name('a'));
        // Being launched: no socket yet, its lock held.
        let launching = Master::at(&dir.path, &name('b'));
        // Alive: its socket is there.
        let alive = Master::at(&dir.path, &name('c'));
        for m in [&gone, &launching, &alive] {
            for f in [&m.lock, &m.log, &m.target] {
                write(f);
            }
        }
        write(&alive.socket);
        let held = std::fs::OpenOptions::new()
            .write(true)
            .open(&launching.lock)
            .unwrap_or_else(|e| panic!("{e}"));
        held.try_lock().unwrap_or_else(|e| panic!("{e}"));
        dir.sweep();
        for f in [&gone.lock, &gone.log, &gone.target] {
            assert!(!f.exists(), "{} was left", f.display());
        }
        for m in [&launching, &alive] {
            for f in [&m.lock, &m.log, &m.target] {
                assert!(f.exists(), "{} was swept", f.display());
            }
        }
        // Unlocked, the launch that never made its socket is swept too.
        drop(held);
        dir.sweep();
        assert!(!launching.lock.exists() && !launching.target.exists());
        assert!(alive.lock.exists() && alive.socket.exists());
    }

    #[tokio::test]
    async fn a_lock_file_removed_while_waited_for_is_taken_anew() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let m = Master::at(tmp.path(), &"d".repeat(NAME_LEN));
        let first = m
            .lock(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let waiter = {
            let m = m.clone();
            tokio::spawn(async move { m.lock(Instant::now() + Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        // What sweep and close do: remove it while holding it, then let go.
        std::fs::remove_file(&m.lock).unwrap_or_else(|e| panic!("{e}"));
        drop(first);
        let second = waiter
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let held = second.metadata().unwrap_or_else(|e| panic!("{e}"));
        let at_path = std::fs::metadata(&m.lock).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((held.dev(), held.ino()), (at_path.dev(), at_path.ino()));
    }
}
