//! An etcdplan run held at a failpoint (`ETCDPLAN_FAILPOINT`, see
//! `src/execute/failpoint.rs`) and killed there with SIGKILL, by its pid,
//! once it said on stderr that it got there; or the run's end, when it ends
//! before any failpoint.
//!
//! A killed etcdplan cannot close its ssh connections: the `openssh` crate's
//! control masters run detached with `ControlPersist=yes` and would outlive
//! the test. So each run gets a `TMPDIR` of its own, where those masters
//! keep their control sockets, and [`Held`] asks each of them to exit
//! through its socket (`ssh -O exit`), which is what etcdplan itself does
//! when it closes a session.

use std::io::{BufRead as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::testbed::Testbed;

/// How a held run ended.
#[derive(Debug)]
pub struct Held {
    /// The failpoint's line (`failpoint NAME reached: …`), when one was reached
    /// and the run was killed there.
    pub reached: Option<String>,
    /// The exit status when the run ended by itself.
    pub exited: Option<ExitStatus>,
    /// Everything it wrote on stdout.
    pub stdout: String,
    /// Everything it wrote on stderr until it was killed or ended.
    pub stderr: String,
}

impl Held {
    /// The name of the failpoint reached (`after-step:0`), if any.
    pub fn point(&self) -> Option<&str> {
        self.reached
            .as_deref()?
            .strip_prefix("failpoint ")?
            .split(" reached")
            .next()
    }

    /// stdout and stderr together, for messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `etcdplan ARGS -f FILE` with `ETCDPLAN_FAILPOINT=points`; kills it
/// (SIGKILL, by pid) as soon as it reports a failpoint on stderr. A run
/// that neither reaches one nor ends within `deadline` is killed too and
/// reported as an error with what it said.
pub fn run_held(
    tb: &Testbed,
    file: &str,
    args: &[&str],
    points: &str,
    deadline: Duration,
) -> Result<Held, String> {
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, file).map_err(|e| format!("{}: {e}", path.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("held-")
        .tempdir_in(tb.dir.path())
        .map_err(|e| e.to_string())?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(args)
        .arg("-f")
        .arg(&path)
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp.path())
        .env("ETCDPLAN_FAILPOINT", points)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("etcdplan: {e}"))?;
    let _masters = Masters(tmp.path().to_owned());
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let err = child.stderr.take().ok_or("no stderr")?;
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut stderr = String::new();
    let mut reached = None;
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        match lines.recv_timeout(left) {
            Ok(line) => {
                stderr.push_str(&line);
                stderr.push('\n');
                if line.starts_with("failpoint ") && line.contains(" reached: ") {
                    reached = Some(line);
                    break;
                }
            }
            // stderr closed: the run ended by itself.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
        }
    }
    let exited = if reached.is_some() || timed_out {
        // Child::kill is SIGKILL to this child's pid.
        child
            .kill()
            .map_err(|e| format!("kill {}: {e}", child.id()))?;
        let _ = child.wait();
        None
    } else {
        Some(child.wait().map_err(|e| e.to_string())?)
    };
    let stdout = stdout.join().unwrap_or_default();
    let held = Held {
        reached,
        exited,
        stdout,
        stderr,
    };
    if timed_out {
        return Err(format!(
            "etcdplan {args:?} reached no failpoint of {points:?} and did not end within {deadline:?}:\n{}",
            held.text()
        ));
    }
    Ok(held)
}

/// The ssh control masters a (killed) run left in its `TMPDIR`; asked to
/// exit on drop.
struct Masters(PathBuf);

impl Drop for Masters {
    fn drop(&mut self) {
        for socket in sockets(&self.0) {
            // The destination is not used with -O; the socket names the master.
            let _ = Command::new("ssh")
                .args(["-o", "ConnectTimeout=5", "-S"])
                .arg(&socket)
                .args(["-O", "exit", "unused"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The control sockets under `dir` (`.ssh-connection*/master`).
fn sockets(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("master"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}
