//! A running `etcdplan watch --json` in a site's namespace, its JSON Lines
//! events read on a thread and waited for with deadlines; ended by pid.

use std::io::BufRead as _;
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Site;

/// A running `etcdplan watch --json`, its events read line by line.
pub struct Watch {
    /// The watch process.
    pub child: Child,
    /// Events not yet read.
    pub events: Receiver<Value>,
    /// Events read so far.
    pub seen: Vec<Value>,
}

impl Watch {
    pub fn start(site: &Site, extra: &[&str]) -> Self {
        let mut child = site
            .ns
            .command(env!("CARGO_BIN_EXE_etcdplan"))
            .args(["watch", "--json", "-f"])
            .arg(site.etcdfile())
            .args(extra)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let (tx, events) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            });
        }
        Self {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// The first event from now on that `pred` accepts, within `deadline`.
    pub fn until(&mut self, deadline: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("no such event within {deadline:?}; seen: {:#?}", self.seen)
                }
            }
        }
    }

    /// The first event from now on named `name`, within `deadline`.
    pub fn event(&mut self, name: &str, deadline: Duration) -> Value {
        self.until(deadline, |v| v["event"] == name)
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .output();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
