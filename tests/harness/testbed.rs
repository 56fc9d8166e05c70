//! A multi-host test bed on one machine: each host is a network namespace on a
//! private bridge, with its own sshd (keys generated per run) started in a
//! private mount namespace where `/etc/etcd`, `/var/lib/etcd` and
//! `/var/lib/etcdplan` are bind mounts of the host's own folders. etcdplan runs
//! in the root namespace and reaches the hosts over the bridge, as an operator's
//! machine would. Everything is torn down by pid (checked) and by the names the
//! test bed created; nothing is killed by process name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use super::wait_for;

/// The folders each host keeps private.
pub const PRIVATE_DIRS: [&str; 3] = ["/etc/etcd", "/var/lib/etcd", "/var/lib/etcdplan"];

/// Test beds in other processes (two `cargo test` runs at once) bind their
/// hosts' folders onto the same [`PRIVATE_DIRS`]: each holds a shared lock on
/// this file while it lives, and a test bed removes the folders it created
/// only when it can take the lock alone; removing a mount point another
/// process's hosts still use would silently detach their folders.
const SHARED_DIRS_LOCK: &str = "/run/etcdplan-testbed.lock";

/// Test beds share the root file system's mount points: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What the test bed's hosts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// A network namespace with its own sshd, sharing this machine's init (not
    /// systemd) and its files but for [`PRIVATE_DIRS`]: fast, for every test
    /// that does not need a service manager; etcd runs as `service = "process"`.
    Namespace,
    /// A Debian system booted with `systemd-nspawn` inside the namespace:
    /// systemd as PID 1, its own sshd, etcd as `service = "systemd"`
    /// ([`super::booted`]).
    Booted,
}

/// One host of the test bed.
pub struct TbHost {
    /// h1, h2, …
    pub name: String,
    /// Its network namespace.
    pub ns: String,
    /// Its address on the bridge.
    pub ip: String,
    /// The root-namespace folder that holds its private folders (`fs/etc/etcd`, …).
    pub root: PathBuf,
    /// The veth end in the root namespace.
    pub veth: String,
    /// The namespace host's sshd pid file (None on a booted host).
    pub(super) sshd_pid_file: Option<PathBuf>,
    /// The booted system (None on a namespace host).
    pub(super) machine: Option<super::booted::Machine>,
}

impl TbHost {
    /// A host path as seen from the root namespace (`/etc/etcd/x` → `root/fs/etc/etcd/x`);
    /// on a booted host only the folders bound into it are there
    /// ([`super::booted::BOUND_DIRS`]).
    pub fn file(&self, path: &str) -> PathBuf {
        self.root.join("fs").join(path.trim_start_matches('/'))
    }

    /// Its ssh host key (public half), as a `known_hosts` line.
    fn known_hosts_line(&self) -> Result<String, String> {
        let pubkey = std::fs::read_to_string(self.host_key_pub())
            .map_err(|e| format!("{}: {e}", self.host_key_pub().display()))?;
        let mut parts = pubkey.split_whitespace();
        let (kind, b64) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        Ok(format!("{} {kind} {b64}\n", self.ip))
    }

    /// Where its public ed25519 host key is, seen from the root namespace.
    pub fn host_key_pub(&self) -> PathBuf {
        if self.machine.is_some() {
            self.file("/etc/ssh/ssh_host_ed25519_key.pub")
        } else {
            self.root.join("ssh_host_ed25519_key.pub")
        }
    }
}

/// The test bed; dropped, it tears everything down.
pub struct Testbed {
    /// What its hosts are.
    pub kind: HostKind,
    /// Scratch folder (keys, known_hosts, per-host folders, logs).
    pub dir: tempfile::TempDir,
    /// The bridge.
    pub bridge: String,
    /// The hosts.
    pub hosts: Vec<TbHost>,
    /// The client's private key (authorized on every host, as root).
    pub client_key: PathBuf,
    /// known_hosts with every host's real key.
    pub known_hosts: PathBuf,
    created_dirs: Vec<PathBuf>,
    /// A shared lock on [`SHARED_DIRS_LOCK`] while this test bed lives
    /// (namespace hosts only: booted hosts have their own mount points).
    shared_dirs: Option<std::fs::File>,
    namespaces: Vec<String>,
    _guard: Option<std::sync::MutexGuard<'static, ()>>,
}

/// Runs a command; its stdout, or what it said on failure.
pub(super) fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<String, String> {
    sh(Command::new("ip").args(args))
}

/// A /24 under 10.77.0.0/16 that no route or address uses yet.
fn free_net() -> Result<u32, String> {
    let routes = ip(&["-4", "route"])? + &ip(&["-4", "addr"])?;
    let start = 100 + std::process::id() % 100;
    (0..100)
        .map(|k| 100 + (start - 100 + k) % 150)
        .find(|n| !routes.contains(&format!("10.77.{n}.")))
        .ok_or_else(|| "no free 10.77.x.0/24".to_owned())
}

impl Testbed {
    /// Brings up `n` namespace hosts with sshd. Errors say what could not be created.
    pub fn up(n: usize) -> Result<Self, String> {
        let guard = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let shared_dirs = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(SHARED_DIRS_LOCK)
            .map_err(|e| format!("{SHARED_DIRS_LOCK}: {e}"))?;
        shared_dirs
            .lock_shared()
            .map_err(|e| format!("{SHARED_DIRS_LOCK}: {e}"))?;
        let (mut tb, net) = Self::bare(HostKind::Namespace)?;
        tb.shared_dirs = Some(shared_dirs);
        tb._guard = Some(guard);
        for d in PRIVATE_DIRS {
            if !Path::new(d).exists() {
                std::fs::create_dir_all(d).map_err(|e| format!("{d}: {e}"))?;
                tb.created_dirs.push(PathBuf::from(d));
            }
        }
        std::fs::create_dir_all("/run/sshd").map_err(|e| e.to_string())?;
        for i in 1..=n {
            let host = tb.add_host(net, i)?;
            tb.hosts.push(host);
        }
        tb.write_known_hosts()?;
        for i in 0..n {
            tb.wait_for_ssh_port(i, Duration::from_secs(10))?;
        }
        Ok(tb)
    }

    /// The bridge and the client's key, no hosts yet; returns the /24's third octet.
    pub(super) fn bare(kind: HostKind) -> Result<(Self, u32), String> {
        let dir = tempfile::Builder::new()
            .prefix("etcdplan-tb-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        // Picking a free /24 and taking it (the bridge's address) is one step
        // for the test beds of this process, which may come up in parallel.
        static NETS: Mutex<()> = Mutex::new(());
        let _nets = NETS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let net = free_net()?;
        let bridge = format!("epb{net}");
        let tb = Self {
            kind,
            client_key: dir.path().join("client_key"),
            known_hosts: dir.path().join("known_hosts"),
            dir,
            bridge: bridge.clone(),
            hosts: Vec::new(),
            created_dirs: Vec::new(),
            shared_dirs: None,
            namespaces: Vec::new(),
            _guard: None,
        };
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("10.77.{net}.1/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        let key = tb.client_key.display().to_string();
        sh(Command::new("ssh-keygen").args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "etcdplan-test",
            "-f",
            &key,
        ]))?;
        Ok((tb, net))
    }

    /// Writes known_hosts with every host's real key.
    pub(super) fn write_known_hosts(&self) -> Result<(), String> {
        let mut known = String::new();
        for h in &self.hosts {
            known.push_str(&h.known_hosts_line()?);
        }
        std::fs::write(&self.known_hosts, known).map_err(|e| e.to_string())
    }

    /// Waits until host `i` accepts TCP connections on port 22.
    pub(super) fn wait_for_ssh_port(&self, i: usize, deadline: Duration) -> Result<(), String> {
        let h = &self.hosts[i];
        let addr: std::net::SocketAddr = format!("{}:22", h.ip)
            .parse()
            .map_err(|e| format!("{}: {e}", h.ip))?;
        if wait_for(deadline, || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        }) {
            Ok(())
        } else {
            Err(format!("sshd on {} did not come up", h.name))
        }
    }

    /// Creates host `i`'s namespace, wired to the bridge; returns (namespace, veth, address).
    pub(super) fn wire_host(
        &mut self,
        net: u32,
        i: usize,
    ) -> Result<(String, String, String), String> {
        let name = format!("h{i}");
        let ns = format!("ep{net}{name}");
        let veth = format!("ep{net}v{i}");
        let peer = format!("ep{net}p{i}");
        let addr = format!("10.77.{net}.{}", 10 + i);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer])?;
        ip(&["link", "set", &peer, "netns", &ns])?;
        ip(&["link", "set", &veth, "master", &self.bridge, "up"])?;
        ip(&["-n", &ns, "link", "set", &peer, "name", "eth0"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        Ok((ns, veth, addr))
    }

    fn add_host(&mut self, net: u32, i: usize) -> Result<TbHost, String> {
        let name = format!("h{i}");
        let root = self.dir.path().join(&name);
        let (ns, veth, addr) = self.wire_host(net, i)?;
        for d in PRIVATE_DIRS {
            std::fs::create_dir_all(root.join("fs").join(d.trim_start_matches('/')))
                .map_err(|e| e.to_string())?;
        }
        let hostkey = root.join("ssh_host_ed25519_key");
        sh(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", &name, "-f"])
            .arg(&hostkey))?;
        let pid_file = root.join("sshd.pid");
        let config = root.join("sshd_config");
        // The hosts share this machine's /root: bash, run by sshd for each
        // command, sources root's ~/.bashrc (Debian's SSH_SOURCE_BASHRC)
        // unless SHLVL says it is nested, and a ~/.bashrc that runs tools
        // (`pyenv init` here) costs ~0.3 s per command under load, ten
        // times the rest of the round trip (benches/rolling.rs prints it).
        std::fs::write(
            &config,
            format!(
                "ListenAddress {addr}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}.pub\n\
PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
UsePAM no\nStrictModes no\nUseDNS no\nMaxStartups 100:30:200\nMaxSessions 50\nSubsystem sftp internal-sftp\n\
SetEnv SHLVL=1\n",
                hostkey.display(),
                pid_file.display(),
                self.client_key.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        sh(Command::new("/usr/sbin/sshd")
            .arg("-t")
            .arg("-f")
            .arg(&config))?;
        let mounts: Vec<String> = PRIVATE_DIRS
            .iter()
            .map(|d| {
                format!(
                    "mount --bind {} {d}",
                    root.join("fs").join(d.trim_start_matches('/')).display()
                )
            })
            .collect();
        let script = format!(
            "hostname {name} && {} && exec /usr/sbin/sshd -f {} -E {}",
            mounts.join(" && "),
            config.display(),
            root.join("sshd.log").display()
        );
        sh(Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "unshare",
                "--uts",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
            ])
            .arg(&script))?;
        Ok(TbHost {
            name,
            ns,
            ip: addr,
            root,
            veth,
            sshd_pid_file: Some(pid_file),
            machine: None,
        })
    }

    /// Runs a command on a host through the system ssh client, as an operator would.
    pub fn ssh(&self, host: usize, command: &str) -> std::process::Output {
        self.ssh_as(host, "root", command)
    }

    /// Runs a command on a host as `user` (who must accept the client's key).
    pub fn ssh_as(&self, host: usize, user: &str, command: &str) -> std::process::Output {
        let h = &self.hosts[host];
        Command::new("ssh")
            .args([
                "-F",
                "none",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
            ])
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-i")
            .arg(&self.client_key)
            .args(["-o", "ConnectTimeout=10"])
            .arg(format!("{user}@{}", h.ip))
            .arg(command)
            .output()
            .unwrap_or_else(|e| panic!("ssh: {e}"))
    }

    /// etcd pids running on the test bed's hosts: on namespace hosts from
    /// their pid files, checked to live in that host's network namespace; on
    /// booted hosts the processes named etcd in the host's own namespace.
    pub fn etcd_pids(&self) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if h.machine.is_some() {
                out.extend(
                    super::booted::etcd_pids_in(&h.ns)
                        .into_iter()
                        .map(|p| (i, p)),
                );
                continue;
            }
            let Ok(text) = std::fs::read_to_string(h.file("/var/lib/etcdplan/etcd.pid")) else {
                continue;
            };
            let Ok(pid) = text.trim().parse::<u32>() else {
                continue;
            };
            let in_ns = sh(Command::new("ip").args(["netns", "identify", &pid.to_string()]))
                .is_ok_and(|o| o.trim() == h.ns);
            if in_ns && !super::is_zombie(pid) {
                out.push((i, pid));
            }
        }
        out
    }
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .output();
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // etcd first (by checked pid files, or in a booted host's
        // namespace), then sshd (by its pid file, checked by comm). etcd is
        // killed outright: its data is thrown away, and a graceful stop of
        // every member at once makes the leader wait out its handover to a
        // member that is stopping too (etcd's request timeout, 7 s by
        // default) before it exits; a booted host's shutdown waited for that.
        for (_, pid) in self.etcd_pids() {
            kill(pid, "KILL");
        }
        // Booted hosts shut down through their nspawn pid.
        self.shut_down_all();
        if !wait_for(Duration::from_secs(10), || self.etcd_pids().is_empty()) {
            eprintln!(
                "test bed: etcd still runs after SIGKILL: {:?}",
                self.etcd_pids()
            );
        }
        for h in &self.hosts {
            let Some(pid_file) = &h.sshd_pid_file else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(pid_file) else {
                continue;
            };
            let Ok(pid) = text.trim().parse::<u32>() else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sshd" {
                kill(pid, "TERM");
            }
        }
        // What still runs in our namespaces: sshd's per-connection processes
        // outlive their listener, and with the veth gone their peer never
        // answers, so they would wait forever and keep the namespace alive.
        let left = || -> Vec<u32> {
            self.namespaces
                .iter()
                .filter_map(|ns| ip(&["netns", "pids", ns]).ok())
                .flat_map(|out| {
                    out.split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect::<Vec<u32>>()
                })
                .collect()
        };
        for pid in left() {
            kill(pid, "TERM");
        }
        if !wait_for(Duration::from_secs(5), || left().is_empty()) {
            for pid in left() {
                kill(pid, "KILL");
            }
        }
        for h in &self.hosts {
            let _ = ip(&["link", "del", &h.veth]);
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
        // Alone (no other process's test bed holds the lock): the folders
        // this one created are nobody's mount points any more.
        if let Some(shared_dirs) = &self.shared_dirs {
            if shared_dirs.try_lock().is_ok() {
                for d in &self.created_dirs {
                    let _ = std::fs::remove_dir(d);
                }
            }
            let _ = shared_dirs.unlock();
        }
    }
}

/// A throw-away unprivileged user that can log in with the test bed's key;
/// removed on drop, with its sudoers file.
pub struct TestUser {
    /// The user name.
    pub name: String,
    sudoers: PathBuf,
}

impl TestUser {
    /// Creates the user (`epe2e<pid>x<n>`), with passwordless sudo when asked.
    pub fn create(passwordless_sudo: bool) -> Result<Self, String> {
        // Unique in this process too: two tests may each want a user at once.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("epe2e{}x{k}", std::process::id());
        sh(Command::new("useradd").args(["--create-home", "--shell", "/bin/sh", &name]))?;
        let user = Self {
            sudoers: PathBuf::from(format!("/etc/sudoers.d/{name}")),
            name,
        };
        // Unlocked without a password, so sshd (UsePAM no) accepts its key.
        sh(Command::new("usermod").args(["-p", "*", &user.name]))?;
        if passwordless_sudo {
            user.allow_sudo(true)?;
        }
        Ok(user)
    }

    /// Grants or revokes passwordless sudo.
    pub fn allow_sudo(&self, allow: bool) -> Result<(), String> {
        if allow {
            std::fs::write(
                &self.sudoers,
                format!("{} ALL=(ALL) NOPASSWD: ALL\n", self.name),
            )
            .map_err(|e| e.to_string())?;
            sh(Command::new("chmod").arg("0440").arg(&self.sudoers))?;
        } else {
            std::fs::write(&self.sudoers, format!("{} ALL=(ALL) ALL\n", self.name))
                .map_err(|e| e.to_string())?;
            sh(Command::new("chmod").arg("0440").arg(&self.sudoers))?;
        }
        Ok(())
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = Command::new("userdel")
            .args(["--remove", &self.name])
            .output();
    }
}

/// Brings up `n` hosts, or says why not: under `CI=true` that is a failure,
/// elsewhere the test is skipped loudly.
pub fn up_or_skip(n: usize) -> Option<Testbed> {
    if !super::prerequisites() {
        return None;
    }
    or_skip(Testbed::up(n), "cannot create the test bed")
}

/// The test bed, or `None` after saying loudly why not; under `CI=true` a
/// test bed that cannot be made is a failure.
pub fn or_skip(made: Result<Testbed, String>, what: &str) -> Option<Testbed> {
    match made {
        Ok(tb) => Some(tb),
        Err(e) => {
            let msg = format!("{what}: {e}");
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "{msg} (CI=true: a skipped end-to-end test is a failure)"
            );
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

impl Testbed {
    /// An etcdfile for hosts `which` (0-based) as members etcd-(i+1), reached
    /// with the test bed's key and known_hosts, with `etcd` as the [etcd] table
    /// and `per_member[k]` appended to the k-th member.
    pub fn etcdfile(
        &self,
        cluster: &str,
        etcd: &str,
        which: &[usize],
        per_member: &[&str],
    ) -> String {
        let mut s = format!(
            "[cluster]\nname = \"{cluster}\"\n\n[etcd]\n{etcd}\n[hosts]\ntransport = \"ssh\"\nservice = \"{}\"\nssh_user = \"root\"\n\
ssh_identity = \"{}\"\nssh_known_hosts = \"{}\"\n",
            self.service(),
            self.client_key.display(),
            self.known_hosts.display()
        );
        for (k, &i) in which.iter().enumerate() {
            s.push_str(&format!(
                "\n[[member]]\nname = \"etcd-{}\"\naddress = \"{}\"\n{}",
                i + 1,
                self.hosts[i].ip,
                per_member.get(k).copied().unwrap_or("")
            ));
        }
        s
    }

    /// The etcdfile's `service` for this test bed's hosts.
    pub fn service(&self) -> &'static str {
        match self.kind {
            HostKind::Namespace => "process",
            HostKind::Booted => "systemd",
        }
    }

    /// The plain client URLs (port 2379) of hosts `which`.
    pub fn client_endpoints(&self, which: &[usize]) -> Vec<String> {
        which
            .iter()
            .map(|&i| format!("http://{}:2379", self.hosts[i].ip))
            .collect()
    }

    /// Every host's index, for [`Testbed::etcdfile`].
    pub fn all(&self) -> Vec<usize> {
        (0..self.hosts.len()).collect()
    }

    /// Writes `file` as the test bed's etcdfile and runs `etcdplan ARGS -f` on it.
    pub fn etcdplan(&self, file: &str, args: &[&str]) -> std::process::Output {
        let path = self.dir.path().join("etcdfile.toml");
        std::fs::write(&path, file).unwrap_or_else(|e| panic!("{e}"));
        Command::new(env!("CARGO_BIN_EXE_etcdplan"))
            .args(args)
            .arg("-f")
            .arg(&path)
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|e| panic!("etcdplan: {e}"))
    }
}
