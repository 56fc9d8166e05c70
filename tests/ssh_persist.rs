//! End to end over real sshd: `--ssh-persist` leaves an OpenSSH control
//! master that the next command reuses (the same master pid, as `ssh -O
//! check` reports it), `etcdplan disconnect` closes it, `--ssh-persist 0`
//! leaves nothing, an edited known_hosts makes a new master instead of
//! reusing one checked against the old file, and a killed master is
//! replaced without the command failing.

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::testbed::{Testbed, up_or_skip};
use harness::text;

/// A private runtime folder (XDG_RUNTIME_DIR) for this test's masters;
/// dropped, it closes whatever masters are left in it.
struct Runtime {
    dir: tempfile::TempDir,
    etcdfile: PathBuf,
}

impl Runtime {
    fn new(tb: &Testbed) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ep-xdg")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let etcdfile = tb.dir.path().join("etcdfile.toml");
        std::fs::write(&etcdfile, tb.etcdfile("persist", "", &[0], &[]))
            .unwrap_or_else(|e| panic!("{e}"));
        Self { dir, etcdfile }
    }

    /// The folder the masters' sockets are in.
    fn ssh_dir(&self) -> PathBuf {
        self.dir.path().join("etcdplan/ssh")
    }

    /// `etcdplan ARGS -f ETCDFILE` with this runtime folder.
    fn etcdplan(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_etcdplan"))
            .args(args)
            .arg("-f")
            .arg(&self.etcdfile)
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env_remove("ETCDPLAN_SSH_PERSIST")
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|e| panic!("etcdplan: {e}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.etcdplan(args);
        assert!(out.status.success(), "etcdplan {args:?}:\n{}", text(&out));
        text(&out)
    }

    /// The sockets in the folder.
    fn sockets(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.ssh_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_none())
            .collect();
        out.sort();
        out
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.etcdplan(&["disconnect"]);
    }
}

/// The pid of the master listening on `socket` (`ssh -O check`), if one answers.
fn master_pid(socket: &Path) -> Option<u32> {
    let out = Command::new("timeout")
        .args(["5", "ssh", "-F", "none", "-O", "check", "-S"])
        .arg(socket)
        .arg("x")
        .output()
        .ok()?;
    let said = String::from_utf8_lossy(&out.stderr);
    said.split("pid=").nth(1)?.split(')').next()?.parse().ok()
}

fn one_socket(rt: &Runtime) -> (PathBuf, u32) {
    let sockets = rt.sockets();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    let pid = master_pid(&sockets[0])
        .unwrap_or_else(|| panic!("no master answers on {}", sockets[0].display()));
    (sockets[0].clone(), pid)
}

#[test]
fn ssh_masters_persist_are_reused_replaced_and_closed() {
    let Some(tb) = up_or_skip(1) else { return };
    let rt = Runtime::new(&tb);

    // --ssh-persist 0: today's behaviour, nothing left behind.
    rt.ok(&["plan", "--ssh-persist", "0"]);
    assert!(rt.sockets().is_empty(), "{:?}", rt.sockets());

    // The default: the master persists, in a 0700 folder.
    rt.ok(&["plan"]);
    let (socket, first) = one_socket(&rt);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(rt.ssh_dir())
            .unwrap_or_else(|e| panic!("{e}"))
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);

    // The next plan reuses it: the same master process.
    rt.ok(&["plan"]);
    assert_eq!(one_socket(&rt), (socket.clone(), first), "not reused");

    // A killed master is replaced, and the plan still reads the host.
    let killed = Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(killed.success());
    harness::wait_for(std::time::Duration::from_secs(5), || {
        master_pid(&socket).is_none()
    });
    let shown = rt.ok(&["plan"]);
    assert!(!shown.contains("unreachable"), "{shown}");
    let (again, replaced) = one_socket(&rt);
    assert_eq!(again, socket);
    assert_ne!(replaced, first, "the killed master is still named");

    // An edited known_hosts is other options: a new master, not the old one.
    let mut known = std::fs::read_to_string(&tb.known_hosts).unwrap_or_else(|e| panic!("{e}"));
    known.push_str("# edited\n");
    std::fs::write(&tb.known_hosts, known).unwrap_or_else(|e| panic!("{e}"));
    rt.ok(&["plan"]);
    let sockets = rt.sockets();
    assert_eq!(sockets.len(), 2, "{sockets:?}");
    let fresh = sockets
        .iter()
        .find(|s| **s != socket)
        .and_then(|s| master_pid(s))
        .unwrap_or_else(|| panic!("no new master: {sockets:?}"));
    assert_ne!(fresh, replaced);

    // disconnect closes both, names them, and leaves no socket.
    let said = rt.ok(&["disconnect"]);
    let target = format!("root@{}:22", tb.hosts[0].ip);
    assert_eq!(
        said.matches(&format!("Closed the ssh connection to {target}"))
            .count(),
        2,
        "{said}"
    );
    assert!(rt.sockets().is_empty(), "{:?}", rt.sockets());
    for pid in [replaced, fresh] {
        assert!(
            harness::wait_for(std::time::Duration::from_secs(5), || {
                !Path::new(&format!("/proc/{pid}")).exists()
            }),
            "master {pid} still runs"
        );
    }
    let said = rt.ok(&["disconnect"]);
    assert!(said.contains("No ssh connections are open"), "{said}");
}
