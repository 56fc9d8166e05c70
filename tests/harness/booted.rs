//! Booted test-bed hosts: each a Debian bookworm system booted with
//! `systemd-nspawn` inside the host's network namespace, with systemd as PID 1,
//! its own sshd and Debian's etcd packages: what `service = "systemd"` meets
//! on a real fleet.
//!
//! All hosts share one read-only root file system (built once per machine by
//! `scripts/booted-rootfs.sh` and cached outside the repository), each with its
//! own tmpfs layer over it (`--volatile=overlay`); what must survive a reboot
//! is bound in from the host's own folder ([`BOUND_DIRS`]), seeded from the
//! image so its enabled units (sshd among them) stay enabled. A host is
//! powered off by SIGTERM to its `systemd-nspawn` process (a clean shutdown:
//! systemd stops etcd), by that pid, never by name.

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::testbed::{HostKind, TbHost, Testbed, sh};
use super::wait_for;

/// The host folders bound into each booted host, so they survive its reboot:
/// etcdplan's files, etcd's data, the units (and their enable links), sshd's
/// host keys, root's authorized key, and Debian's `/etc/default`.
pub const BOUND_DIRS: [&str; 7] = [
    "/etc/etcd",
    "/var/lib/etcd",
    "/var/lib/etcdplan",
    "/etc/systemd/system",
    "/etc/ssh",
    "/root/.ssh",
    "/etc/default",
];

/// Folders seeded from the image before the first boot (the rest start empty,
/// with the image's owner and mode).
const SEEDED: [&str; 3] = ["/etc/systemd/system", "/etc/ssh", "/etc/default"];

/// How long a boot may take until sshd answers and systemd has settled.
const BOOT_DEADLINE: Duration = Duration::from_secs(90);

/// How long a clean shutdown may take before the nspawn process is killed.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60);

/// A booted host's machine: how to boot it and the running nspawn process.
pub struct Machine {
    /// systemd-nspawn's arguments.
    args: Vec<OsString>,
    /// Console output of every boot, appended.
    log: PathBuf,
    /// The running `systemd-nspawn`, while the host is up.
    child: Mutex<Option<Child>>,
}

/// The cached root file system, built on first use (`scripts/booted-rootfs.sh`).
pub fn rootfs() -> Result<PathBuf, String> {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/booted-rootfs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        ))
    })
    .clone()
}

/// Whether booted hosts can be made here: root, systemd-nspawn, the root
/// file system. Under `CI=true` anything missing is a failure.
pub fn boot_or_skip(n: usize) -> Option<Testbed> {
    if !super::prerequisites() {
        return None;
    }
    let result = if Command::new("systemd-nspawn")
        .arg("--version")
        .output()
        .is_err()
    {
        Err("systemd-nspawn missing (apt-get install systemd-container)".to_owned())
    } else {
        Testbed::boot(n)
    };
    super::testbed::or_skip(result, "cannot boot the test hosts")
}

/// Processes named etcd in network namespace `ns` (a booted host's own).
pub fn etcd_pids_in(ns: &str) -> Vec<u32> {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "etcd")
                && !super::is_zombie(*pid)
        })
        .collect()
}

/// Makes `dst` a folder with `src`'s owner and mode.
fn like(src: &Path, dst: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    let (uid, gid, mode) = match std::fs::metadata(src) {
        Ok(m) => (m.uid(), m.gid(), m.mode() & 0o7777),
        Err(_) => (0, 0, 0o755),
    };
    std::os::unix::fs::chown(dst, Some(uid), Some(gid))
        .map_err(|e| format!("{}: {e}", dst.display()))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", dst.display()))
}

impl Testbed {
    /// Boots `n` Debian hosts with systemd as PID 1. Errors say what could not
    /// be created or did not come up.
    pub fn boot(n: usize) -> Result<Self, String> {
        let image = rootfs()?;
        let (mut tb, net) = Self::bare(HostKind::Booted)?;
        for i in 1..=n {
            let host = tb.add_booted_host(net, i, &image)?;
            tb.hosts.push(host);
        }
        tb.write_known_hosts()?;
        let started = Instant::now();
        for i in 0..n {
            tb.spawn_machine(i)?;
        }
        for i in 0..n {
            tb.wait_booted(i)?;
        }
        eprintln!(
            "booted {n} hosts in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(tb)
    }

    fn add_booted_host(&mut self, net: u32, i: usize, image: &Path) -> Result<TbHost, String> {
        let name = format!("h{i}");
        let root = self.dir.path().join(&name);
        let (ns, veth, ip) = self.wire_host(net, i)?;
        let fs = root.join("fs");
        for d in BOUND_DIRS {
            let rel = d.trim_start_matches('/');
            let dst = fs.join(rel);
            if SEEDED.contains(&d) {
                std::fs::create_dir_all(dst.parent().unwrap_or(&fs)).map_err(|e| e.to_string())?;
                sh(Command::new("cp").arg("-a").arg(image.join(rel)).arg(&dst))?;
            } else {
                like(&image.join(rel), &dst)?;
            }
        }
        // Its own ssh host keys, made now (the image has none).
        sh(Command::new("ssh-keygen").arg("-A").arg("-f").arg(&fs))?;
        // The harness logs in as root with the client key.
        let ssh_dir = fs.join("root/.ssh");
        std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        let authorized = ssh_dir.join("authorized_keys");
        std::fs::copy(self.client_key.with_extension("pub"), &authorized)
            .map_err(|e| format!("{}: {e}", authorized.display()))?;
        std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        // A machine name no other test's host has (nspawn keeps per-name state
        // under /run); the hostname is the short one.
        let machine = format!("ep{net}{name}");
        let mut args: Vec<OsString> = vec![
            "-D".into(),
            image.into(),
            "-b".into(),
            "--register=no".into(),
            "--keep-unit".into(),
            "--volatile=overlay".into(),
            "--console=read-only".into(),
            format!("--network-namespace-path=/run/netns/{ns}").into(),
            "-M".into(),
            machine.into(),
            format!("--hostname={name}").into(),
        ];
        for d in BOUND_DIRS {
            let mut a = OsString::from("--bind=");
            a.push(fs.join(d.trim_start_matches('/')));
            a.push(":");
            a.push(d);
            args.push(a);
        }
        Ok(TbHost {
            name,
            ns,
            ip,
            veth,
            sshd_pid_file: None,
            machine: Some(Machine {
                args,
                log: root.join("console.log"),
                child: Mutex::new(None),
            }),
            root,
        })
    }

    fn machine(&self, i: usize) -> Result<&Machine, String> {
        self.hosts[i]
            .machine
            .as_ref()
            .ok_or_else(|| format!("{} is not a booted host", self.hosts[i].name))
    }

    /// Starts host `i`'s nspawn process (does not wait for the boot).
    fn spawn_machine(&self, i: usize) -> Result<(), String> {
        let m = self.machine(i)?;
        let mut child = m
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if child.is_some() {
            return Err(format!("{} is already up", self.hosts[i].name));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .map_err(|e| format!("{}: {e}", m.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let c = Command::new("systemd-nspawn")
            .args(&m.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("systemd-nspawn: {e}"))?;
        *child = Some(c);
        Ok(())
    }

    /// Waits until host `i` booted: sshd answers and systemd has settled
    /// (`is-system-running --wait`). An nspawn that exits early (the image
    /// still "busy" right after another host on it shut down) is started again.
    fn wait_booted(&self, i: usize) -> Result<(), String> {
        let m = self.machine(i)?;
        let start = Instant::now();
        let addr: std::net::SocketAddr = format!("{}:22", self.hosts[i].ip)
            .parse()
            .map_err(|e| format!("{e}"))?;
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            let exited = {
                let mut child = m
                    .child
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match child.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(_))) | Some(Err(_)) | None => {
                        *child = None;
                        true
                    }
                    Some(Ok(None)) => false,
                }
            };
            if exited {
                if start.elapsed() > BOOT_DEADLINE {
                    return Err(format!(
                        "{}'s systemd-nspawn exited; see {}",
                        self.hosts[i].name,
                        m.log.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(500));
                self.spawn_machine(i)?;
            }
            if start.elapsed() > BOOT_DEADLINE {
                return Err(format!(
                    "{} did not boot within {BOOT_DEADLINE:?}; see {}",
                    self.hosts[i].name,
                    m.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let settled = self.ssh(i, "timeout 60 systemctl is-system-running --wait || true");
        let state = String::from_utf8_lossy(&settled.stdout).trim().to_owned();
        if state != "running" && state != "degraded" {
            return Err(format!(
                "{} booted but systemd says {state:?}: {}",
                self.hosts[i].name,
                String::from_utf8_lossy(&settled.stderr).trim()
            ));
        }
        Ok(())
    }

    /// Boots host `i` again after [`Testbed::power_off`] and waits for it.
    pub fn power_on(&self, i: usize) -> Result<(), String> {
        self.spawn_machine(i)?;
        self.wait_booted(i)
    }

    /// Shuts host `i` down cleanly: SIGTERM to its nspawn process (by pid);
    /// SIGKILL only when it has not exited within a minute.
    pub fn power_off(&self, i: usize) -> Result<(), String> {
        let m = self.machine(i)?;
        let mut child = m
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(mut c) = child.take() else {
            return Ok(());
        };
        let pid = c.id();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .output();
        let exited = wait_for(SHUTDOWN_DEADLINE, || matches!(c.try_wait(), Ok(Some(_))));
        if !exited {
            let _ = c.kill();
            let _ = c.wait();
            return Err(format!(
                "{} did not shut down within {SHUTDOWN_DEADLINE:?}: killed its nspawn (pid {pid})",
                self.hosts[i].name
            ));
        }
        Ok(())
    }

    /// Shuts host `i` down and boots it again.
    pub fn reboot(&self, i: usize) -> Result<(), String> {
        self.power_off(i)?;
        self.power_on(i)
    }

    /// Whether host `i` is up (its nspawn process runs).
    pub fn is_up(&self, i: usize) -> bool {
        self.machine(i).is_ok_and(|m| {
            let mut child = m
                .child
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            matches!(child.as_mut().map(Child::try_wait), Some(Ok(None)))
        })
    }

    /// Shuts every booted host down, all at once (each by its nspawn pid).
    pub(super) fn shut_down_all(&self) {
        let booted: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.hosts[i].machine.is_some())
            .collect();
        for &i in &booted {
            if let Ok(m) = self.machine(i) {
                let child = m
                    .child
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(c) = child.as_ref() {
                    let _ = Command::new("kill")
                        .args(["-TERM", &c.id().to_string()])
                        .output();
                }
            }
        }
        for i in booted {
            let _ = self.power_off(i);
        }
    }

    /// Adds user `name` on booted host `i`, who logs in with the client key,
    /// with passwordless sudo when `sudo`. Lives in the host's tmpfs layer: gone
    /// after a reboot.
    pub fn add_user(&self, i: usize, name: &str, sudo: bool) -> Result<(), String> {
        let sudoers = if sudo {
            format!(
                "echo '{name} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/{name} && chmod 0440 /etc/sudoers.d/{name} && "
            )
        } else {
            String::new()
        };
        let script = format!(
            "set -e; useradd --create-home --shell /bin/sh {name}; usermod -p '*' {name}; \
{sudoers}install -d -m 700 -o {name} -g {name} /home/{name}/.ssh; \
install -m 600 -o {name} -g {name} /root/.ssh/authorized_keys /home/{name}/.ssh/authorized_keys"
        );
        let out = self.ssh(i, &script);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "adding {name} on {}: {}",
                self.hosts[i].name,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `systemctl show` of etcd.service on host `i`: ActiveState and UnitFileState.
    pub fn unit_state(&self, i: usize) -> (String, String) {
        let out = self.ssh(
            i,
            "systemctl show -p ActiveState --value etcd.service; systemctl is-enabled etcd.service 2>/dev/null || true",
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        (
            lines.next().unwrap_or("").trim().to_owned(),
            lines.next().unwrap_or("").trim().to_owned(),
        )
    }
}
