//! etcdplan run in the background, for tests that hold it at a failpoint
//! (`ETCDPLAN_FAILPOINT`, see `src/execute/failpoint.rs`), look at the
//! cluster while it waits, and kill it there (SIGKILL, by its pid), or that
//! let it run into a fault and wait for its end. One piece for all of them:
//! the kill-at-every-boundary chains, the fault tests, and the recover,
//! restore and history tests that kill a run half way.
//!
//! A killed etcdplan cannot close its ssh connections: control masters run
//! detached and would outlive the test. So each run gets a `TMPDIR` of its
//! own, where the `openssh` crate's masters keep their control sockets, and
//! [`Running`] asks each of them to exit through its socket (`ssh -O exit`),
//! which is what etcdplan itself does when it closes a session. (Persistent
//! masters, `--ssh-persist`, expire on their own and are reused by the
//! next run, as they would be for an operator.)

use std::io::{BufRead as _, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Which of the run's outputs a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Out,
    /// Standard error (failpoints report there).
    Err,
}

/// `etcdplan ARGS -f <dir>/etcdfile.toml` running in the background, its
/// stdout and stderr gathered line by line; killed by its pid on drop if
/// it still runs.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<(Stream, String)>,
    seen: Vec<(Stream, String)>,
    started: Instant,
    // Dropped in this order after the child is killed: masters exit, then
    // their folder goes.
    _masters: Masters,
    _tmp: tempfile::TempDir,
}

/// How a background etcdplan ended.
pub struct Ended {
    /// Its exit code (None when killed, by a signal or at the deadline).
    pub code: Option<i32>,
    /// Everything it printed, stdout and stderr interleaved by line.
    pub text: String,
    /// From its start to its end, as seen from here.
    pub took: Duration,
}

/// How a held run ended: killed at a failpoint, or ended by itself first.
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

/// Whether `line` is a failpoint's report.
fn is_failpoint(line: &str) -> bool {
    line.starts_with("failpoint ") && line.contains(" reached: ")
}

impl Running {
    /// Writes `file` to `<dir>/etcdfile.toml` and starts
    /// `etcdplan ARGS -f` it with `ETCDPLAN_FAILPOINT=failpoints` (empty:
    /// none) and a `TMPDIR` of its own under `dir`.
    pub fn start(dir: &Path, file: &str, args: &[&str], failpoints: &str) -> Result<Self, String> {
        let path = dir.join("etcdfile.toml");
        std::fs::write(&path, file).map_err(|e| format!("{}: {e}", path.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(dir)
            .map_err(|e| e.to_string())?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
            .args(args)
            .arg("-f")
            .arg(&path)
            .env("NO_COLOR", "1")
            .env("TMPDIR", tmp.path())
            .env("ETCDPLAN_FAILPOINT", failpoints)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("etcdplan: {e}"))?;
        let (tx, lines) = mpsc::channel();
        let out = child
            .stdout
            .take()
            .map(|o| (Stream::Out, Box::new(o) as Box<dyn Read + Send>));
        let err = child
            .stderr
            .take()
            .map(|o| (Stream::Err, Box::new(o) as Box<dyn Read + Send>));
        for (which, stream) in [out, err].into_iter().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    if tx.send((which, line)).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self {
            child,
            lines,
            seen: Vec::new(),
            started: Instant::now(),
            _masters: Masters(tmp.path().to_owned()),
            _tmp: tmp,
        })
    }

    /// Waits up to `deadline` for a line that passes `hit` (lines seen
    /// before count too); the line, or None when the run ended or the
    /// deadline passed first. The child's exit is checked beside the pipes:
    /// a process it left behind may hold them open.
    fn wait_until(
        &mut self,
        hit: impl Fn(Stream, &str) -> bool,
        deadline: Duration,
    ) -> Option<String> {
        let found = |seen: &[(Stream, String)]| {
            seen.iter()
                .find(|(s, l)| hit(*s, l))
                .map(|(_, l)| l.clone())
        };
        if let Some(l) = found(&self.seen) {
            return Some(l);
        }
        let end = Instant::now() + deadline;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok((s, line)) => {
                    let hit = hit(s, &line);
                    self.seen.push((s, line.clone()));
                    if hit {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if matches!(self.child.try_wait(), Ok(Some(_))) {
                        self.drain();
                        return found(&self.seen);
                    }
                }
            }
        }
    }

    /// Waits up to `deadline` for a line containing `what`; whether one came.
    pub fn wait_for_line(&mut self, what: &str, deadline: Duration) -> bool {
        self.wait_for(|l| l.contains(what), deadline)
    }

    /// Waits up to `deadline` for a line that passes `hit`; whether one came.
    pub fn wait_for(&mut self, hit: impl Fn(&str) -> bool, deadline: Duration) -> bool {
        self.wait_until(|_, l| hit(l), deadline).is_some()
    }

    /// Waits up to `deadline` for a failpoint's report on stderr; whether
    /// one came (the run is then held there, or paused).
    pub fn wait_for_failpoint(&mut self, deadline: Duration) -> bool {
        self.wait_until(|s, l| s == Stream::Err && is_failpoint(l), deadline)
            .is_some()
    }

    /// What it printed so far.
    pub fn so_far(&self) -> String {
        self.joined(None)
    }

    fn joined(&self, only: Option<Stream>) -> String {
        let mut s = String::new();
        for (_, l) in self
            .seen
            .iter()
            .filter(|(w, _)| only.is_none_or(|o| o == *w))
        {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// SIGKILL to its pid (if it still runs), then reaps it.
    pub fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Child::kill is SIGKILL to this child's pid.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Gathers what is left of the outputs once the child is gone (the
    /// readers end with the pipes; a grandchild holding one open is not
    /// waited for long).
    fn drain(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
    }

    /// Waits up to `deadline` from its start for it to end (then kills it).
    pub fn finish(mut self, deadline: Duration) -> Ended {
        let end = self.started + deadline;
        let mut code = None;
        let mut ended = false;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                code = st.code();
                ended = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = self.started.elapsed();
        if !ended {
            self.kill();
        }
        self.drain();
        Ended {
            code: if ended { code } else { None },
            text: self.so_far(),
            took,
        }
    }

    /// Kills it as soon as it reports a failpoint on stderr, or lets it
    /// end by itself first. A run that does neither within `deadline` is
    /// killed too and reported as an error with what it said.
    pub fn held(mut self, deadline: Duration) -> Result<Held, String> {
        let reached = self.wait_until(|s, l| s == Stream::Err && is_failpoint(l), deadline);
        let exited = match reached {
            Some(_) => None,
            // Ended, or its outputs closed just before it exits.
            None if self.started.elapsed() < deadline => {
                let end = self.started + deadline;
                loop {
                    if let Ok(Some(st)) = self.child.try_wait() {
                        break Some(st);
                    }
                    if Instant::now() >= end {
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            None => None,
        };
        if exited.is_none() {
            self.kill();
        }
        self.drain();
        let held = Held {
            reached,
            exited,
            stdout: self.joined(Some(Stream::Out)),
            stderr: self.joined(Some(Stream::Err)),
        };
        if held.reached.is_none() && held.exited.is_none() {
            return Err(format!(
                "etcdplan reached no failpoint and did not end within {deadline:?}:\n{}",
                held.text()
            ));
        }
        Ok(held)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `etcdplan ARGS -f FILE` on the test bed with `ETCDPLAN_FAILPOINT=points`;
/// kills it (SIGKILL, by pid) as soon as it reports a failpoint on stderr.
/// A run that neither reaches one nor ends within `deadline` is killed too
/// and reported as an error with what it said.
pub fn run_held(
    tb: &super::testbed::Testbed,
    file: &str,
    args: &[&str],
    points: &str,
    deadline: Duration,
) -> Result<Held, String> {
    Running::start(tb.dir.path(), file, args, points)?
        .held(deadline)
        .map_err(|e| format!("etcdplan {args:?} with failpoints {points:?}: {e}"))
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
