//! Test harness for real etcd processes: each test gets its own network
//! namespace (its own loopback), so tests never collide with each other or with
//! a demo cluster running on the machine. Everything started is ended by pid.

#![allow(dead_code)]

pub mod booted;
pub mod failpoint;
pub mod fault;
pub mod figures;
pub mod fill;
pub mod inproc;
pub mod pki;
pub mod probe;
pub mod release;
pub mod testbed;
pub mod watch;
pub mod writer;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Whether tests that need root, `ip` and etcd can run; under `CI=true` a
/// missing prerequisite is a failure, elsewhere the test is skipped loudly.
pub fn prerequisites() -> bool {
    let mut missing = Vec::new();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        missing.push("root (for network namespaces)".to_owned());
    }
    for bin in ["/usr/bin/etcd", "/usr/bin/etcdctl"] {
        if !Path::new(bin).exists() {
            missing.push(format!("{bin} (apt-get install etcd-server etcd-client)"));
        }
    }
    if Command::new("ip").arg("-V").output().is_err() {
        missing.push("ip (apt-get install iproute2)".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("end-to-end test cannot run: missing {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: a skipped end-to-end test is a failure)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// A private network namespace with loopback up; deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(tag: &str) -> Self {
        let name = format!("etcdplan-t{}-{tag}", std::process::id());
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        run_ok(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        Self { name }
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn run_ok(c: &mut Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A scratch folder with an etcdfile, inside a namespace; on drop every etcd
/// whose pid file lies under the folder is stopped (checked by its command line).
pub struct Site {
    pub dir: tempfile::TempDir,
    pub ns: Netns,
    pub children: Vec<std::process::Child>,
}

impl Site {
    pub fn new(tag: &str, etcdfile: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("etcdplan-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::write(dir.path().join("etcdfile.toml"), etcdfile)
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            dir,
            ns: Netns::create(tag),
            children: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn etcdfile(&self) -> PathBuf {
        self.path("etcdfile.toml")
    }

    /// Runs `etcdplan ARGS -f <etcdfile>` inside the namespace.
    pub fn etcdplan(&self, args: &[&str]) -> Output {
        let bin = env!("CARGO_BIN_EXE_etcdplan");
        let mut c = self.ns.command(bin);
        c.args(args)
            .arg("-f")
            .arg(self.etcdfile())
            .env("NO_COLOR", "1");
        c.output().unwrap_or_else(|e| panic!("etcdplan: {e}"))
    }

    /// `apply --auto-approve`, which must succeed.
    pub fn apply_ok(&self) -> Output {
        let out = self.etcdplan(&["apply", "--auto-approve"]);
        assert!(out.status.success(), "apply failed:\n{}", text(&out));
        out
    }

    /// Runs etcdctl (v3 API) inside the namespace against one endpoint.
    pub fn etcdctl(&self, endpoint: &str, args: &[&str]) -> Output {
        let mut c = self.ns.command("/usr/bin/etcdctl");
        c.env_remove("ETCDCTL_ENDPOINTS")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", endpoint, "--command-timeout=5s"])
            .args(args);
        c.output().unwrap_or_else(|e| panic!("etcdctl: {e}"))
    }

    /// Pids of etcd processes started for this site, from their pid files.
    pub fn etcd_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        let Ok(entries) = glob_pidfiles(self.dir.path()) else {
            return pids;
        };
        for f in entries {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let Ok(pid) = text.trim().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let here = self.dir.path().to_string_lossy().into_owned();
            if String::from_utf8_lossy(&cmdline).contains(&here) && !is_zombie(pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Sends a signal to one member's etcd by its pid file.
    pub fn kill_member(&self, member: &str, signal: &str) {
        let pidfile = self.path(&format!("demo-cluster/{member}/run/etcd.pid"));
        let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
        run_ok(Command::new("kill").args([&format!("-{signal}"), pid.trim()]));
        wait_for(Duration::from_secs(10), || {
            !Path::new(&format!("/proc/{}", pid.trim())).exists()
                || is_zombie(pid.trim().parse().unwrap_or(0))
        });
    }
}

/// Whether a pid is gone or a zombie (PID 1 reaps orphans late here).
pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .unwrap_or(true)
}

fn glob_pidfiles(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "etcd.pid") {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Polls `f` until it holds or the deadline passes; returns whether it held.
pub fn wait_for(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

impl Drop for Site {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let pids = self.etcd_pids();
        for pid in &pids {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .output();
        }
        let gone = wait_for(Duration::from_secs(10), || self.etcd_pids().is_empty());
        if !gone {
            for pid in self.etcd_pids() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .output();
            }
        }
    }
}

/// etcdctl (v3 API, plain) against `endpoints` (comma-separated `host:port`
/// or URLs), with short dial and command deadlines.
pub fn etcdctl(endpoints: &str, args: &[&str]) -> Output {
    Command::new("/usr/bin/etcdctl")
        .env_remove("ETCDCTL_ENDPOINTS")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            endpoints,
            "--command-timeout=5s",
            "--dial-timeout=2s",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("etcdctl: {e}"))
}

/// The voters' names (learners left out), sorted, as the member at
/// `endpoint` lists them; none when it does not answer.
pub fn voter_names(endpoint: &str) -> Vec<String> {
    let out = etcdctl(endpoint, &["member", "list", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut names: Vec<String> = v["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| m.get("isLearner").is_none_or(|l| l == false))
                .filter_map(|m| m["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// stdout and stderr together, for assertions on what the user sees.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A plan made after an apply stopped mid-join: the learner (stopped after its
/// config was written or after it started) is continued, never added twice.
pub fn assert_join_continued(plan_text: &str, member: &str) {
    assert!(
        plan_text.contains(&format!(
            "+ {member}   add: added as a learner earlier but never started"
        )) || plan_text.contains(&format!("+ {member}   add: a learner from an earlier join")),
        "{plan_text}"
    );
    assert!(
        !plan_text.contains(&format!("add {member} as a learner (")),
        "{plan_text}"
    );
}

/// The body of `GET path` (HTTP/1.0, plain) from a member's client port 2379;
/// empty when it does not answer within 5 s.
pub fn http_get(ip: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect((ip, 2379)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n");
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}
