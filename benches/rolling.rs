//! Benchmark: a rolling change of quota and compaction on a 3-member test bed
//! cluster over ssh, while a client writes at a steady rate with a short
//! per-request deadline. Per round it prints the apply's wall time, where that
//! time went, and the ratio of the wall time to the members' restart-to-healthy.
//!
//! **Restart-to-healthy**, per member, is the restart step's seconds plus its
//! wait-healthy step's seconds, as `apply --json` reports them: from the
//! restart step's start (its quorum re-check and, for the leader, its
//! step-down, then the stop) to the gate passing, less the writing of the
//! member's files where the restart step does that first (its `write`
//! part: apply overhead, not restart). The ratio is the process's
//! wall time (spawn to exit) over the sum of that for the three members, both
//! from the same round, so load on the machine weighs on both.
//!
//! The breakdown: the steps' seconds by kind come from the JSON Lines events;
//! the phases outside the steps (connecting, observing, planning, locking,
//! the history record, unlocking, closing) from etcdplan's debug lines under
//! `ETCDPLAN_LOG=etcdplan::timing=debug`; "other" is the wall time none of
//! them covers (the process's start, reading the etcdfile, rendering). The
//! lock in etcd is taken while the ssh connections open (`lock_etcd`, shown
//! apart): its time is inside `connect`, and `lock` is the lock files on
//! the hosts; a build that takes them alongside the observation says
//! `lock_with_observe` instead, shown apart too (its time is inside
//! `observe`).
//!
//! Two writers run side by side on their own keys: a strict one that retries
//! only puts that were never sent (as etcd's Go client does), and the old loose
//! one that retries any failure on the next member; failed writes are printed
//! for both, the strict figure being the one a real client would see. Needs
//! root (network namespaces):
//!
//! Before the rounds it prints the floor an apply's host commands stand on:
//! a bare process spawn here, and a bare `true` over ssh through the
//! executor's host session ([`SshHost`]), through the `openssh` session
//! alone, and the session's liveness check by itself.
//!
//! ```sh
//! cargo bench --bench rolling            # ROUNDS=3 by default
//! ETCDPLAN_BIN=/tmp/etcdplan-other cargo bench --bench rolling   # another build
//! TRACE=1 BENCH_LOG=etcdplan=debug cargo bench --bench rolling   # each apply's log lines
//! KEYS=100000 cargo bench --bench rolling   # members with data, as in production
//! ```
//!
//! `KEYS` (default 0) puts that many keys of `VALUE_BYTES` (default 256)
//! before the rounds, so that each restart replays a WAL and rebuilds an
//! index as a member with data does: on the empty test bed etcd restarts in
//! a tenth of a second, and the apply's fixed cost (observing under the
//! lock, the history record, unlocking) weighs more than it does on a
//! member with data. The figures of both are worth reading: the fixed cost
//! in seconds is the same.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcdplan::io::{Host as _, LocalHost, Script, SshHost, SshOptions};
use harness::testbed::{Testbed, up_or_skip};
use harness::writer::Writer;

/// The etcdplan binary the rounds run: `ETCDPLAN_BIN`, else this build's.
fn etcdplan_bin() -> String {
    std::env::var("ETCDPLAN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_etcdplan").to_owned())
}

fn etcdfile(tb: &Testbed, etcd: &str) -> String {
    tb.etcdfile("bench", etcd, &tb.all(), &[])
}

/// One step of the walk as `apply --json` reported it.
struct StepTime {
    /// The step's kind in the plan (`restart`, `wait_healthy`, …).
    kind: String,
    /// Its member (for a gate, its members joined), when it names any.
    member: String,
    seconds: f64,
}

/// What one apply reported.
#[derive(Default)]
struct Run {
    wall: f64,
    steps: Vec<StepTime>,
    /// `phase=NAME seconds=S` lines: the work outside the steps.
    phases: Vec<(String, f64)>,
    /// Each restart's member and parts: quorum check, step-down, files,
    /// stop, start. Where they go in one ssh command
    /// (`src/execute/restart.rs`), files and stop are the host's time for
    /// them and start the rest of that command (the start and the round
    /// trip).
    restarts: Vec<(String, [f64; 5])>,
    /// Polls each gate took.
    polls: Vec<u32>,
}

impl Run {
    fn steps_of(&self, kind: &str) -> f64 {
        self.steps
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.seconds)
            .sum()
    }

    fn phases_of(&self, names: &[&str]) -> f64 {
        self.phases
            .iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .map(|(_, s)| s)
            .sum()
    }

    /// Per member: its restart step plus its wait-healthy step, less the
    /// writing of its files that a restart step does first (a write step
    /// folded into it): that is apply overhead, not restart.
    fn restart_to_healthy(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = Vec::new();
        for s in self
            .steps
            .iter()
            .filter(|s| s.kind == "restart" || s.kind == "wait_healthy")
        {
            match out.iter_mut().find(|(m, _)| *m == s.member) {
                Some((_, t)) => *t += s.seconds,
                None => out.push((s.member.clone(), s.seconds)),
            }
        }
        for (m, parts) in &self.restarts {
            if let Some((_, t)) = out.iter_mut().find(|(x, _)| x == m) {
                *t -= parts[2];
            }
        }
        out
    }
}

/// `key=value` pairs of a `etcdplan::timing` debug line, if it is one.
fn timing_fields(line: &str) -> Option<Vec<(String, String)>> {
    // Colours off (NO_COLOR), but strip escapes in case a terminal forced them.
    let mut clean = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            clean.push(c);
        }
    }
    let (_, rest) = clean.split_once("etcdplan::timing:")?;
    Some(
        rest.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect(),
    )
}

/// Runs `apply --auto-approve --json` and gathers its timings.
fn apply(tb: &Testbed, file: &str) -> Run {
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, file).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut child = Command::new(etcdplan_bin())
        .args(["apply", "--auto-approve", "--json", "-f"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .env(
            "ETCDPLAN_LOG",
            std::env::var("BENCH_LOG").unwrap_or_else(|_| "etcdplan::timing=debug".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = child.stderr.take();
    let stderr = std::thread::spawn(move || {
        err.map(|e| {
            std::io::BufReader::new(e)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    });
    let mut run = Run::default();
    let mut kinds: Vec<(String, String)> = Vec::new();
    let mut events = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            match v["event"].as_str() {
                Some("plan") => {
                    kinds = v["plan"]["steps"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| {
                            let member = match s["members"].as_array() {
                                Some(ms) => ms
                                    .iter()
                                    .filter_map(|m| m.as_str())
                                    .collect::<Vec<_>>()
                                    .join(","),
                                None => s["member"].as_str().unwrap_or("").to_owned(),
                            };
                            (s["kind"].as_str().unwrap_or("?").to_owned(), member)
                        })
                        .collect();
                }
                Some("step_finished") => {
                    let i = v["index"].as_u64().unwrap_or(u64::MAX) as usize;
                    let (kind, member) = kinds.get(i).cloned().unwrap_or_default();
                    run.steps.push(StepTime {
                        kind,
                        member,
                        seconds: v["seconds"].as_f64().unwrap_or(0.0),
                    });
                }
                _ => {}
            }
            events.push(line);
        }
    }
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    run.wall = started.elapsed().as_secs_f64();
    let stderr = stderr.join().unwrap_or_default();
    assert!(
        status.success(),
        "apply failed:\n{}\n{}",
        events.join("\n"),
        stderr.join("\n")
    );
    let num = |fields: &[(String, String)], k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    if std::env::var_os("TRACE").is_some() {
        for l in &stderr {
            println!("       | {l}");
        }
    }
    for f in stderr.iter().filter_map(|l| timing_fields(l)) {
        let has = |k: &str| f.iter().any(|(n, _)| n == k);
        if let Some((_, name)) = f.iter().find(|(n, _)| n == "phase") {
            run.phases.push((name.clone(), num(&f, "seconds")));
        } else if has("restart") {
            let member = f
                .iter()
                .find(|(n, _)| n == "restart")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            run.restarts.push((
                member,
                [
                    num(&f, "check"),
                    num(&f, "step_down"),
                    num(&f, "write"),
                    num(&f, "stop"),
                    num(&f, "start"),
                ],
            ));
        } else if has("gate") {
            run.polls.push(num(&f, "polls") as u32);
        }
    }
    run
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Prints where one apply's wall time went.
fn breakdown(run: &Run) {
    let rth: f64 = run.restart_to_healthy().iter().map(|(_, t)| t).sum();
    let known_kinds = ["write_files", "restart", "wait_healthy", "move_leader"];
    let rows = [
        (
            "connect+observe",
            run.phases_of(&["connect", "observe", "observe_again", "plan"]),
        ),
        ("lock", run.phases_of(&["lock"])),
        (
            "write files",
            run.steps_of("write_files") + run.restarts.iter().map(|(_, p)| p[2]).sum::<f64>(),
        ),
        (
            "restart",
            run.steps_of("restart") - run.restarts.iter().map(|(_, p)| p[2]).sum::<f64>(),
        ),
        ("gate", run.steps_of("wait_healthy")),
        ("move leader", run.steps_of("move_leader")),
        (
            "history/unlock",
            run.phases_of(&["history_start", "history_finish", "unlock", "close"]),
        ),
        (
            "other steps",
            run.steps
                .iter()
                .filter(|s| !known_kinds.contains(&s.kind.as_str()))
                .map(|s| s.seconds)
                .sum(),
        ),
    ];
    let accounted: f64 = rows.iter().map(|(_, s)| s).sum();
    let other = run.wall - accounted;
    for (name, secs) in rows.iter().copied().chain([("other", other)]) {
        println!(
            "       {name:<16} {secs:>6.3}  {:>5.1}%",
            100.0 * secs / run.wall
        );
    }
    let detail = |names: &[&str]| {
        names
            .iter()
            .map(|n| {
                let phase = n.split(' ').next().unwrap_or(n);
                format!("{n} {:.3}", run.phases_of(&[phase]))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "       phases: {}",
        detail(&[
            "connect",
            "lock_etcd (within connect)",
            "observe",
            "lock",
            "lock_with_observe (within observe)",
            "observe_again",
            "plan",
            "history_start",
            "history_finish",
            "unlock",
            "close"
        ])
    );
    let parts = run.restarts.iter().fold([0.0; 5], |mut a, (_, r)| {
        for (x, y) in a.iter_mut().zip(r) {
            *x += y;
        }
        a
    });
    println!(
        "       restart steps: quorum check {:.3}, step-down {:.3}, files {:.3}, stop {:.3}, start {:.3}; gates: {} polls",
        parts[0],
        parts[1],
        parts[2],
        parts[3],
        parts[4],
        run.polls
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("+"),
    );
    // A one-file write step is one ssh command: the machine's round trip now.
    let writes: Vec<f64> = run
        .steps
        .iter()
        .filter(|s| s.kind == "write_files")
        .map(|s| s.seconds)
        .collect();
    if !writes.is_empty() {
        let rtt = writes.iter().sum::<f64>() / writes.len() as f64;
        println!(
            "       ssh round trip (mean write step) {rtt:.3}; overhead (apply − restart-to-healthy) {:.3} = {:.1} round trips",
            run.wall - rth,
            (run.wall - rth) / rtt,
        );
    }
    println!(
        "       restart-to-healthy (restart step + its wait-healthy step): {} = {rth:.3}; apply / that = {:.2}",
        run.restart_to_healthy()
            .iter()
            .map(|(m, t)| format!("{m} {t:.3}"))
            .collect::<Vec<_>>()
            .join(" + "),
        run.wall / rth,
    );
}

/// Puts `KEYS` keys of `VALUE_BYTES` bytes (see the module), 64 at a time,
/// and says how long that took and how large the backend is.
fn preload(endpoints: &[String]) {
    let keys: usize = std::env::var("KEYS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(0);
    if keys == 0 {
        return;
    }
    let size: usize = std::env::var("VALUE_BYTES")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let db = rt.block_on(async {
        let opts = etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(10));
        let client = etcd_client::Client::connect(endpoints, Some(opts))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let value = "v".repeat(size);
        let mut i = 0;
        while i < keys {
            let batch: Vec<_> = (i..keys.min(i + 64))
                .map(|k| {
                    let mut kv = client.kv_client();
                    let v = value.clone();
                    async move { kv.put(format!("data/{k:08}"), v, None).await }
                })
                .collect();
            for r in futures::future::join_all(batch).await {
                r.unwrap_or_else(|e| panic!("preload: {e}"));
            }
            i += 64;
        }
        let mut m = client.maintenance_client();
        m.status().await.map(|s| s.db_size()).unwrap_or(0)
    });
    println!(
        "preloaded {keys} keys of {size} bytes in {:.1}s; backend {:.1} MB",
        t.elapsed().as_secs_f64(),
        db as f64 / 1e6
    );
}

/// Mean and median of `n` timed runs of `f`, in milliseconds.
async fn timed<F: AsyncFnMut()>(n: usize, mut f: F) -> (f64, f64) {
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        f().await;
        t.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    t.sort_by(f64::total_cmp);
    (t.iter().sum::<f64>() / n as f64, t[n / 2])
}

/// Prints the floor under an apply's host commands (see the module doc).
fn floor(tb: &Testbed) {
    const N: usize = 30;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let host = &tb.hosts[0];
    let address = etcdplan::model::Address::parse(&host.ip).unwrap_or_else(|e| panic!("{e}"));
    let opts = SshOptions {
        user: "root".into(),
        port: etcdplan::model::Port::new(22).unwrap_or_else(|| panic!("port 22")),
        identity: tb.client_key.clone(),
        known_hosts: tb.known_hosts.clone(),
        accept_new: false,
        connect_timeout: Duration::from_secs(10),
        persist: None,
    };
    let rows = rt.block_on(async {
        let ssh = SshHost::connect(&address, &opts).await;
        if let Some(f) = ssh.failure() {
            panic!("ssh to {}: {f}", host.ip);
        }
        async fn run(h: &dyn etcdplan::io::Host) {
            let out = h
                .run(&Script::new("true", "true"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(out.success(), "{out:?}");
        }
        let spawn = timed(N, async || {
            let s = tokio::process::Command::new("true")
                .status()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(s.success());
        })
        .await;
        let local = timed(N, async || run(&LocalHost).await).await;
        let host_true = timed(N, async || run(&ssh).await).await;
        let mut b = openssh::SessionBuilder::default();
        b.user("root".into())
            .keyfile(&tb.client_key)
            .user_known_hosts_file(&tb.known_hosts)
            .known_hosts_check(openssh::KnownHosts::Strict)
            .control_directory(std::env::temp_dir());
        let session = b
            .connect_mux(&host.ip)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let check = timed(N, async || {
            session.check().await.unwrap_or_else(|e| panic!("{e}"));
        })
        .await;
        let raw = timed(N, async || {
            let out = session
                .command("true")
                .output()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(out.status.success());
        })
        .await;
        let _ = session.close().await;
        ssh.close().await;
        [
            ("process spawn here (true)", spawn),
            ("LocalHost::run(sh -c true)", local),
            ("SshHost::run(true)", host_true),
            ("openssh session check", check),
            ("openssh command(true)", raw),
        ]
    });
    println!("floor: {N} runs each, mean / median ms (noisy under load)");
    for (what, (mean, median)) in rows {
        println!("       {what:<28} {mean:>7.1} / {median:>7.1}");
    }
}

fn main() {
    let Some(tb) = up_or_skip(3) else { return };
    floor(&tb);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let base = etcdfile(&tb, "");
    let changed = etcdfile(
        &tb,
        "quota_backend_bytes = \"4GiB\"\nauto_compaction_mode = \"periodic\"\nauto_compaction_retention = \"2h\"\n",
    );
    apply(&tb, &base);
    let endpoints: Vec<String> = tb
        .hosts
        .iter()
        .map(|h| format!("http://{}:2379", h.ip))
        .collect();
    preload(&endpoints);
    println!(
        "rolling change of quota + compaction, 3 members over ssh, two writers (strict, retrying) each every 10 ms with a 1 s deadline; latencies are the strict writer's"
    );
    println!(
        "restart-to-healthy = per member, its restart step's seconds + its wait-healthy step's seconds (apply --json); ratio = apply wall time / their sum"
    );
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let target = if round % 2 == 1 { &changed } else { &base };
        let strict = Writer::start(
            endpoints.clone(),
            &format!("b{round}"),
            Duration::from_millis(10),
            Duration::from_secs(1),
        );
        let loose = Writer::retrying(
            endpoints.clone(),
            &format!("b{round}r"),
            Duration::from_millis(10),
            Duration::from_secs(1),
            None,
        );
        std::thread::sleep(Duration::from_millis(300));
        let run = apply(&tb, target);
        std::thread::sleep(Duration::from_millis(300));
        let seen = strict.stop();
        let retrying = loose.stop();
        let mut lat = seen.latencies.clone();
        lat.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let sum: f64 = run.restart_to_healthy().iter().map(|(_, t)| t).sum();
        ratios.push(run.wall / sum);
        println!(
            "\nround  apply_s  restart_to_healthy_sum_s  ratio  writes  failed_strict  retried_never_sent  failed_retrying  retried_maybe_sent  p50_ms  p99_ms  max_ms"
        );
        println!(
            "{round:>5}  {:>7.2}  {:>24.2}  {:>5.2}  {:>6}  {:>13}  {:>18}  {:>15}  {:>18}  {:>6.1}  {:>6.1}  {:>6.1}",
            run.wall,
            sum,
            run.wall / sum,
            seen.acked.len() + seen.failed.len(),
            seen.failed.len(),
            seen.retried_never_sent,
            retrying.failed.len(),
            retrying.retried_maybe_sent,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default()),
        );
        breakdown(&run);
        for f in seen.failed.iter().take(5) {
            println!("       failed (strict): {f}");
        }
        for f in retrying.failed.iter().take(3) {
            println!("       failed (retrying): {f}");
        }
    }
    if !ratios.is_empty() {
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        let max = ratios.iter().copied().fold(f64::MIN, f64::max);
        println!(
            "\napply / sum of restart-to-healthy over {} rounds: mean {mean:.2}, worst {max:.2} (goal 1.20)",
            ratios.len()
        );
    }
}
