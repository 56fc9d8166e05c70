//! Benchmark: client writes during etcdplan's applies (issue 21), on the
//! namespace test bed with etcd 3.5.30 over ssh. Two writers run side by
//! side on their own keys, each putting every 10 ms under a 2 s deadline
//! (etcdctl's `--command-timeout` in the issue): the strict one retries only
//! what provably never left the client, as etcd's Go client does; the
//! retrying one retries anything. For each run it prints the failed writes
//! of both with their errors, the strict writer's p50/p99/max latency, and
//! the restarts, planned leader moves, leader restarts (etcd hands over as it
//! stops) and elections (the raft term's rise)
//! of the apply; then a total per scenario. Needs root.
//!
//! ```sh
//! cargo bench --bench writes                      # every scenario, RUNS=3
//! SCENARIOS=tls RUNS=10 cargo bench --bench writes
//! ```
//!
//! Scenarios (`SCENARIOS`, comma-separated):
//! - `rolling`: a quota change rolled over 3 members (one cluster, the quota
//!   toggled each run);
//! - `tls`: plain → peer TLS with etcdplan's CA (a fresh cluster each run);
//! - `scale`: 3 → 5 members (a fresh cluster each run);
//! - `transfer`: `TRANSFERS` (10) MoveLeader calls a second apart, no apply:
//!   the failures per leader transfer;
//! - `follower`: `etcdplan restart` of a follower, `TRANSFERS` times: the
//!   failures per follower restart.
//!
//! `ETCDPLAN_BIN=PATH` runs another etcdplan binary (a copy saved before a
//! change) so that before and after are measured by the same bench.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness::figures::{Disturbance, HEADER, Run, Total};
use harness::release::etcd_3_5_30_or_skip;
use harness::testbed::{Testbed, up_or_skip};
use harness::text;
use harness::writer::{Writer, Writes};

/// Where the members' etcd lives on each host.
const BIN: &str = "/var/lib/etcdplan/bin/etcd";
/// How often each writer puts.
const EVERY: Duration = Duration::from_millis(10);
/// Each put's deadline (etcdctl's 2 s command timeout in the issue).
const DEADLINE: Duration = Duration::from_secs(2);

fn etcdplan_bin() -> PathBuf {
    std::env::var_os("ETCDPLAN_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_etcdplan")),
        PathBuf::from,
    )
}

/// Writes `file` as the test bed's etcdfile and runs etcdplan on it; its
/// output, failing the bench when it fails.
fn etcdplan(tb: &Testbed, file: &str, args: &[&str]) -> String {
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, file).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(etcdplan_bin())
        .args(args)
        .arg("-f")
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("etcdplan: {e}"));
    let t = text(&out);
    assert!(out.status.success(), "etcdplan {args:?} failed:\n{t}");
    t
}

/// An etcdfile for etcd 3.5.30 on hosts `which`, with `etcd` under [etcd]
/// and `tables` (say `[tls]`) after it.
fn etcdfile(tb: &Testbed, release: &Path, which: &[usize], etcd: &str, tables: &str) -> String {
    tb.etcdfile(
        "writes",
        &format!(
            "binary = \"{BIN}\"\nbinary_source = \"{}\"\n{etcd}\n{tables}\n",
            release.display()
        ),
        which,
        &[],
    )
    .replacen(
        "name = \"writes\"\n",
        "name = \"writes\"\nversion = \"3.5.30\"\n",
        1,
    )
}

/// The cluster as its members answer Status, through etcd-client.
struct Probe {
    rt: tokio::runtime::Runtime,
}

/// One member's Status.
struct Seen {
    endpoint: String,
    id: u64,
    leader: u64,
    term: u64,
}

impl Probe {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// Status of every member of `eps` that answers within a second.
    fn status(&self, eps: &[String]) -> Vec<Seen> {
        self.rt.block_on(async {
            let mut seen = Vec::new();
            for ep in eps {
                let opts = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_millis(500))
                    .with_timeout(Duration::from_secs(1));
                let Ok(mut c) = etcd_client::Client::connect([ep.as_str()], Some(opts)).await
                else {
                    continue;
                };
                if let Ok(s) = c.status().await {
                    seen.push(Seen {
                        endpoint: ep.clone(),
                        id: s.header().map_or(0, |h| h.member_id()),
                        leader: s.leader(),
                        term: s.raft_term(),
                    });
                }
            }
            seen
        })
    }

    /// The highest raft term any member reports.
    fn term(&self, eps: &[String]) -> u64 {
        self.status(eps).iter().map(|s| s.term).max().unwrap_or(0)
    }

    /// MoveLeader from the current leader to the next member in id order;
    /// how long the call took.
    fn move_leader(&self, eps: &[String]) -> Result<Duration, String> {
        let seen = self.status(eps);
        let leader = seen.iter().find(|s| s.id == s.leader).ok_or("no leader")?;
        let mut ids: Vec<u64> = seen.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        let at = ids.iter().position(|i| *i == leader.id).unwrap_or(0);
        let to = ids[(at + 1) % ids.len()];
        self.rt.block_on(async {
            let opts = etcd_client::ConnectOptions::new()
                .with_connect_timeout(Duration::from_millis(500))
                .with_timeout(Duration::from_secs(10));
            let mut c = etcd_client::Client::connect([leader.endpoint.as_str()], Some(opts))
                .await
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            c.move_leader(to).await.map_err(|e| e.to_string())?;
            Ok(t.elapsed())
        })
    }

    /// The name-less id of the leader and a follower's endpoint index.
    fn follower(&self, eps: &[String]) -> Option<usize> {
        let seen = self.status(eps);
        let leader = seen.iter().find(|s| s.id == s.leader)?;
        eps.iter().position(|e| *e != leader.endpoint)
    }
}

/// Runs `act` between two writers started 300 ms before and stopped 300 ms
/// after; returns both writers' writes, how long `act` took and its text.
fn under_writers(
    eps: &[String],
    prefix: &str,
    act: impl FnOnce() -> String,
) -> (Writes, Writes, Duration, String) {
    let strict = Writer::start(eps.to_vec(), prefix, EVERY, DEADLINE);
    let retrying = Writer::retrying(eps.to_vec(), &format!("{prefix}r"), EVERY, DEADLINE, None);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let out = act();
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    (strict.stop(), retrying.stop(), took, out)
}

/// One apply of `to` under the writers, printed; added to `total`.
fn measured_apply(
    tb: &Testbed,
    probe: &Probe,
    scenario: &str,
    run: usize,
    to: &str,
    eps: &[String],
    total: &mut Total,
) {
    let before = probe.term(eps);
    let (strict, retrying, took, applied) = under_writers(eps, &format!("{scenario}{run}"), || {
        etcdplan(tb, to, &["apply", "--auto-approve"])
    });
    let after = probe.term(eps);
    let r = Run {
        scenario,
        run,
        apply: took,
        strict: &strict,
        retrying: &retrying,
        disturbance: Disturbance::of(&applied, before, after),
    };
    println!("{}", r.line());
    print!("{}", r.failures());
    if std::env::var_os("SHOW_APPLY").is_some() {
        println!("{applied}");
    }
    total.add(&r);
}

fn rolling(release: &Path, runs: usize) {
    let Some(tb) = up_or_skip(3) else { return };
    let probe = Probe::new();
    let eps = tb.client_endpoints(&tb.all());
    let quota = |q: &str| {
        etcdfile(
            &tb,
            release,
            &tb.all(),
            &format!("quota_backend_bytes = \"{q}\""),
            "",
        )
    };
    etcdplan(&tb, &quota("2GiB"), &["apply", "--auto-approve"]);
    let mut total = Total::default();
    for run in 1..=runs {
        let to = quota(if run % 2 == 1 { "4GiB" } else { "2GiB" });
        measured_apply(&tb, &probe, "rolling", run, &to, &eps, &mut total);
    }
    println!("{}", total.line("rolling"));
}

/// `runs` runs of `scenario`, each on a fresh test bed of `hosts` hosts:
/// `files` gives the etcdfile applied first, the one applied under the
/// writers, and the hosts whose members the writers use; then the total.
fn fresh_each_run(
    scenario: &str,
    hosts: usize,
    runs: usize,
    files: impl Fn(&Testbed) -> (String, String, Vec<usize>),
) {
    let mut total = Total::default();
    for run in 1..=runs {
        let Some(tb) = up_or_skip(hosts) else { return };
        let probe = Probe::new();
        let (from, to, writers_on) = files(&tb);
        etcdplan(&tb, &from, &["apply", "--auto-approve"]);
        let eps = tb.client_endpoints(&writers_on);
        measured_apply(&tb, &probe, scenario, run, &to, &eps, &mut total);
    }
    println!("{}", total.line(scenario));
}

fn tls(release: &Path, runs: usize) {
    fresh_each_run("tls", 3, runs, |tb| {
        (
            etcdfile(tb, release, &tb.all(), "", ""),
            etcdfile(tb, release, &tb.all(), "", "[tls]\npeer = true\n"),
            tb.all(),
        )
    });
}

fn scale(release: &Path, runs: usize) {
    // The writers use the three members that exist throughout.
    fresh_each_run("scale", 5, runs, |tb| {
        (
            etcdfile(tb, release, &[0, 1, 2], "", ""),
            etcdfile(tb, release, &tb.all(), "", ""),
            vec![0, 1, 2],
        )
    });
}

/// `n` disruptions made by `disrupt` a second apart under the writers; the
/// strict failures per disruption, each with its time and error.
fn per_disruption(
    scenario: &str,
    release: &Path,
    n: usize,
    disrupt: impl Fn(&Testbed, &Probe, &[String], &str) -> String,
) {
    let Some(tb) = up_or_skip(3) else { return };
    let probe = Probe::new();
    let eps = tb.client_endpoints(&tb.all());
    let file = etcdfile(&tb, release, &tb.all(), "", "");
    etcdplan(&tb, &file, &["apply", "--auto-approve"]);
    let before = probe.term(&eps);
    let began = Instant::now();
    let (strict, retrying, took, log) = under_writers(&eps, scenario, || {
        let mut log = String::new();
        for i in 1..=n {
            // The writers start 300 ms before `began`'s offsets.
            let at = began.elapsed() + Duration::from_millis(300);
            let what = disrupt(&tb, &probe, &eps, &file);
            log.push_str(&format!(
                "      {scenario} {i} at {:.2}s: {what}\n",
                at.as_secs_f64()
            ));
            std::thread::sleep(Duration::from_secs(1));
        }
        log
    });
    let after = probe.term(&eps);
    let r = Run {
        scenario,
        run: 1,
        apply: took,
        strict: &strict,
        retrying: &retrying,
        disturbance: Disturbance {
            elections: after.saturating_sub(before),
            ..Disturbance::default()
        },
    };
    println!("{}", r.line());
    print!("{log}");
    print!("{}", r.failures());
    println!(
        "total {scenario}: {n} disruptions, {} elections, failed strict {} ({:.2} per disruption), failed retrying {}",
        r.disturbance.elections,
        strict.failed.len(),
        strict.failed.len() as f64 / n.max(1) as f64,
        retrying.failed.len()
    );
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let transfers: usize = std::env::var("TRANSFERS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let scenarios =
        std::env::var("SCENARIOS").unwrap_or_else(|_| "rolling,tls,scale,transfer,follower".into());
    let Some(release) = etcd_3_5_30_or_skip() else {
        return;
    };
    println!(
        "client writes during applies, etcd 3.5.30, two writers (strict, retrying) each every {EVERY:?} under a {DEADLINE:?} deadline; latencies are the strict writer's; etcdplan {}",
        etcdplan_bin().display()
    );
    println!("{HEADER}");
    for s in scenarios.split(',').map(str::trim) {
        match s {
            "rolling" => rolling(&release, runs),
            "tls" => tls(&release, runs),
            "scale" => scale(&release, runs),
            "transfer" => {
                per_disruption(
                    "transfer",
                    &release,
                    transfers,
                    |_, probe, eps, _| match probe.move_leader(eps) {
                        Ok(took) => format!(
                            "MoveLeader answered in {:.0} ms",
                            took.as_secs_f64() * 1000.0
                        ),
                        Err(e) => format!("MoveLeader failed: {e}"),
                    },
                )
            }
            "follower" => {
                per_disruption("follower", &release, transfers, |tb, probe, eps, file| {
                    let Some(i) = probe.follower(eps) else {
                        return "no leader seen".into();
                    };
                    let member = format!("etcd-{}", i + 1);
                    let t = Instant::now();
                    etcdplan(tb, file, &["restart", &member, "--auto-approve"]);
                    format!("restarted {member} in {:.1}s", t.elapsed().as_secs_f64())
                })
            }
            other => {
                eprintln!("unknown scenario {other:?} (rolling, tls, scale, transfer, follower)")
            }
        }
    }
}
