//! `etcdplan watch --metrics-addr` with real etcd in its own network
//! namespace: the metrics answer before the first apply, count the applies
//! and the drift the watch repairs, show the last success and the newest
//! snapshot's age, and go away with the watch. Without a cluster: an address
//! in use is a clear error before any plan, a malformed one a usage error.

mod harness;

use std::io::BufRead as _;
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use harness::{Site, prerequisites};
use serde_json::Value;

/// The demo etcdfile (3 members on 127.0.0.11-13) with a snapshot schedule,
/// so that the first cycle takes one and its age is served.
fn etcdfile() -> String {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etcdfile.toml"))
        .unwrap_or_default();
    format!("{base}\n[backup]\ndir = \"snapshots\"\ninterval = \"1h\"\n")
}

/// Where the watch serves, inside the test's namespace (its own loopback,
/// so the port is free).
const METRICS: &str = "127.0.0.1:9464";

/// A running `etcdplan watch --json`, its events read line by line.
struct Watch {
    child: Child,
    events: Receiver<Value>,
    seen: Vec<Value>,
}

impl Watch {
    fn start(site: &Site, extra: &[&str]) -> Self {
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

    /// The first event from now on named `name`, within `deadline`.
    fn event(&mut self, name: &str, deadline: Duration) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["event"] == name {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("no {name} within {deadline:?}; seen: {:#?}", self.seen)
                }
            }
        }
    }

    /// SIGTERM by pid, then the exit code.
    fn terminate(&mut self) -> Option<i32> {
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

/// `GET /metrics` inside the namespace (bash's /dev/tcp, under a 10 s
/// deadline): the status line and the body, or None when nothing answers.
fn get(site: &Site) -> Option<(String, String)> {
    let (host, port) = METRICS.split_once(':')?;
    let script = format!(
        "exec 3<>/dev/tcp/{host}/{port} || exit 7; printf 'GET /metrics HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' >&3; cat <&3"
    );
    let out = site
        .ns
        .command("timeout")
        .args(["10", "bash", "-c", &script])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let response = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = response.split_once("\n\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

/// The scraped samples by name and labels, parsed as Prometheus' text format.
struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    fn of(site: &Site) -> Self {
        let (status, body) = get(site).unwrap_or_else(|| panic!("{METRICS} does not answer"));
        assert!(status.contains(" 200 "), "{status}\n{body}");
        let lines = body.lines().map(|l| Ok(l.to_owned()));
        Self(
            prometheus_parse::Scrape::parse(lines)
                .unwrap_or_else(|e| panic!("not the text format ({e}):\n{body}")),
        )
    }

    /// The value of the sample `name` with the label `label` (if given).
    fn value(&self, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
        self.0
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    }

    fn must(&self, name: &str, label: Option<(&str, &str)>) -> f64 {
        self.value(name, label)
            .unwrap_or_else(|| panic!("no {name} {label:?} in {:#?}", self.0.samples))
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Scrapes until `pred` holds, within `deadline`; the last scrape.
fn scrape_until(site: &Site, deadline: Duration, pred: impl Fn(&Scrape) -> bool) -> Scrape {
    let end = Instant::now() + deadline;
    loop {
        let s = Scrape::of(site);
        if pred(&s) || Instant::now() > end {
            return s;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

const APPLY: Duration = Duration::from_secs(90);
const SUCCESS: Option<(&str, &str)> = Some(("result", "success"));
const FAILURE: Option<(&str, &str)> = Some(("result", "failure"));

#[test]
fn the_metrics_count_applies_and_drift_and_end_with_the_watch() {
    if !prerequisites() {
        return;
    }
    let site = Site::new("wmetrics", &etcdfile());
    let started = unix_now();
    let mut w = Watch::start(
        &site,
        &[
            "--auto-approve",
            "--interval",
            "2",
            "--metrics-addr",
            METRICS,
        ],
    );
    w.event("watching", Duration::from_secs(10));
    // Bound before the first plan: it answers while the cluster is created.
    let early = scrape_until(&site, Duration::from_secs(5), |_| true);
    assert!(early.value("etcdplan_plan_changes", None).is_some());
    assert!(early.value("etcdplan_drift_total", None) == Some(0.0));

    let first = w.event("applied", APPLY);
    assert_eq!(first["add"], 3, "{first}");
    // The next drift check (2 s) plans again and finds nothing.
    let s = scrape_until(&site, Duration::from_secs(30), |s| {
        s.value("etcdplan_plan_changes", None) == Some(0.0)
            && s.value("etcdplan_snapshot_age_seconds", None).is_some()
    });
    assert_eq!(s.must("etcdplan_plan_changes", None), 0.0);
    assert!(s.must("etcdplan_applies_total", SUCCESS) >= 1.0);
    assert_eq!(s.must("etcdplan_applies_total", FAILURE), 0.0);
    let last = s.must("etcdplan_last_apply_success_timestamp_seconds", None);
    assert!(
        last >= started && last <= unix_now(),
        "{last} not within [{started}, now]"
    );
    // The first cycle took the scheduled snapshot (none was there).
    let age = s.must("etcdplan_snapshot_age_seconds", None);
    assert!(
        (0.0..=unix_now() - started).contains(&age),
        "snapshot age {age}"
    );
    let drift_before = s.must("etcdplan_drift_total", None);

    // Drift: a member's etcd killed by its pid; the watch brings it back.
    site.kill_member("etcd-2", "KILL");
    let drift = w.event("drift", Duration::from_secs(10));
    assert_eq!(drift["changes"], 1, "{drift}");
    let s = Scrape::of(&site);
    assert!(
        s.must("etcdplan_drift_total", None) > drift_before,
        "drift_total stayed at {drift_before}"
    );
    w.event("applied", APPLY);
    let s = scrape_until(&site, Duration::from_secs(30), |s| {
        s.value("etcdplan_plan_changes", None) == Some(0.0)
            && s.value("etcdplan_applies_total", SUCCESS) >= Some(2.0)
    });
    assert!(s.must("etcdplan_applies_total", SUCCESS) >= 2.0);
    assert_eq!(s.must("etcdplan_plan_changes", None), 0.0);
    assert!(s.must("etcdplan_last_apply_success_timestamp_seconds", None) >= last);

    assert_eq!(w.terminate(), Some(0), "SIGTERM ends the watch cleanly");
    assert!(get(&site).is_none(), "the metrics outlived the watch");
}

fn etcdplan() -> assert_cmd::Command {
    let mut cmd =
        assert_cmd::Command::cargo_bin("etcdplan").unwrap_or_else(|e| panic!("no binary: {e}"));
    cmd.env_remove("ETCDPLAN_FILE")
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(30));
    cmd
}

#[test]
fn an_address_in_use_ends_the_watch_before_any_plan() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("etcdfile.toml");
    std::fs::write(&file, etcdfile()).unwrap_or_else(|e| panic!("{e}"));
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = held.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let out = etcdplan()
        .arg("-f")
        .arg(&file)
        .args(["watch", "--json", "--metrics-addr", &addr.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot serve metrics on {addr}")),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing was watched or planned: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = etcdplan()
        .arg("-f")
        .arg(&file)
        .args(["watch", "--metrics-addr", "localhost"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--metrics-addr"), "{stderr}");
}
