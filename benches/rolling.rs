//! Benchmark: a rolling change of quota and compaction on a 3-member test bed
//! cluster over ssh, while a client writes at a steady rate with a short
//! per-request deadline. Prints the apply's wall time, the sum of the members'
//! own restart-to-healthy times in the same run, and write latency p50/p99/max.
//! Two writers run side by side on their own keys: a strict one that retries
//! only puts that were never sent (as etcd's Go client does), and the old loose
//! one that retries any failure on the next member; failed writes are printed
//! for both, the strict figure being the one a real client would see. Needs
//! root (network namespaces):
//!
//! ```sh
//! cargo bench --bench rolling            # ROUNDS=3 by default
//! ```

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::testbed::{Testbed, up_or_skip};
use harness::writer::Writer;

fn etcdfile(tb: &Testbed, etcd: &str) -> String {
    tb.etcdfile("bench", etcd, &tb.all(), &[])
}

/// Runs apply, returning its wall time and the restart + gate times per member.
fn apply(tb: &Testbed, file: &str) -> (Duration, Vec<(String, f64)>) {
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, file).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["apply", "--auto-approve", "-f"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut per_member: Vec<(String, f64)> = Vec::new();
    let mut current: Option<String> = None;
    if let Some(err) = child.stderr.take() {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if let Some((_, rest)) = line.split_once("] ") {
                let desc = rest
                    .split_once(' ')
                    .map_or("", |(_, d)| d)
                    .trim_end_matches(" …");
                current = desc
                    .strip_prefix("restart ")
                    .map(str::to_owned)
                    .or_else(|| {
                        desc.strip_prefix("wait until ")
                            .and_then(|d| d.strip_suffix(" healthy"))
                            .map(str::to_owned)
                    });
            } else {
                let secs = line
                    .trim()
                    .strip_prefix("done in ")
                    .and_then(|r| r.split('s').next())
                    .and_then(|t| t.parse::<f64>().ok());
                if let (Some(m), Some(secs)) = (&current, secs) {
                    match per_member.iter_mut().find(|(n, _)| n == m) {
                        Some((_, t)) => *t += secs,
                        None => per_member.push((m.clone(), secs)),
                    }
                }
            }
        }
    }
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "apply failed");
    (started.elapsed(), per_member)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let Some(tb) = up_or_skip(3) else { return };
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
    println!(
        "rolling change of quota + compaction, 3 members over ssh, two writers (strict, retrying) each every 10 ms with a 1 s deadline; latencies are the strict writer's"
    );
    println!(
        "round  apply_s  restart_to_healthy_sum_s  writes  failed_strict  retried_never_sent  failed_retrying  retried_maybe_sent  p50_ms  p99_ms  max_ms"
    );
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
        let (wall, per_member) = apply(&tb, target);
        std::thread::sleep(Duration::from_millis(300));
        let seen = strict.stop();
        let retrying = loose.stop();
        let mut lat = seen.latencies.clone();
        lat.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let sum: f64 = per_member.iter().map(|(_, t)| t).sum();
        println!(
            "{round:>5}  {:>7.2}  {:>24.2}  {:>6}  {:>13}  {:>18}  {:>15}  {:>18}  {:>6.1}  {:>6.1}  {:>6.1}",
            wall.as_secs_f64(),
            sum,
            seen.acked.len() + seen.failed.len(),
            seen.failed.len(),
            seen.retried_never_sent,
            retrying.failed.len(),
            retrying.retried_maybe_sent,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default()),
        );
        for f in seen.failed.iter().take(5) {
            println!("       failed (strict): {f}");
        }
        for f in retrying.failed.iter().take(3) {
            println!("       failed (retrying): {f}");
        }
    }
}
