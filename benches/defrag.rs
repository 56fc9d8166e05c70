//! Benchmark: the defragmentations `[maintenance] defrag_rule` plans, on a
//! 3-member test bed cluster (etcd 3.5.30) over ssh, at a few backend sizes.
//! For each size every member's backend is filled, half of it deleted and the
//! history compacted (so half the file is free pages), then `etcdplan apply
//! --json` runs the rule's plan (compaction, the followers, the leader last
//! after a move) while the strict writer (it retries a put only when it never
//! left the client, as etcd's Go client does) writes every 10 ms with a 1 s
//! deadline. Prints per member the dbSize before → after and the seconds its
//! defragmentation took (from the apply's `step_finished` events), and the
//! writer's p50/p99/max latency and failed writes during the apply. Needs root
//! (network namespaces):
//!
//! ```sh
//! cargo bench --bench defrag             # SIZES=32,128,256 (MiB) by default
//! SIZES=16,64 cargo bench --bench defrag
//! ```

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::fill::{Kv, backends, mib, value};
use harness::release::etcd_3_5_30_or_skip;
use harness::testbed::{Testbed, up_or_skip};
use harness::writer::Writer;

/// Where the members' binary lives: per host (the test bed's hosts share /usr).
const BIN: &str = "/var/lib/etcdplan/bin/etcd";

/// Fill values: 512 KiB each (etcd takes requests up to 1.5 MiB).
const VALUE: usize = 512 * 1024;

fn etcdfile(tb: &Testbed, source: &str) -> String {
    tb.etcdfile(
        "defragbench",
        &format!(
            "binary = \"{BIN}\"\nbinary_source = \"{source}\"\nquota_backend_bytes = \"4GiB\"\n\
auto_compaction_mode = \"revision\"\nauto_compaction_retention = \"10\"\n"
        ),
        &tb.all(),
        &[],
    )
    .replacen(
        "name = \"defragbench\"\n",
        "name = \"defragbench\"\nversion = \"3.5.30\"\n",
        1,
    )
    .replacen(
        "[hosts]\n",
        "[maintenance]\ndefrag_rule = \"dbSizeFree > 1MiB\"\n\n[hosts]\n",
        1,
    )
}

/// What one apply did: its wall time and, per member, the seconds of its
/// defragment step.
struct Applied {
    wall: Duration,
    defrag: BTreeMap<String, f64>,
    ok: bool,
    steps: Vec<String>,
}

/// Runs `apply --auto-approve --json` and reads its JSON Lines.
fn apply(tb: &Testbed, file: &str) -> Applied {
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, file).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["apply", "--auto-approve", "--json", "-f"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut described: BTreeMap<u64, String> = BTreeMap::new();
    let mut defrag = BTreeMap::new();
    let mut steps = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let index = v["index"].as_u64().unwrap_or(u64::MAX);
            match v["event"].as_str() {
                Some("step_started") => {
                    let d = v["description"].as_str().unwrap_or_default().to_owned();
                    steps.push(d.clone());
                    described.insert(index, d);
                }
                Some("step_finished") => {
                    let d = described.get(&index).cloned().unwrap_or_default();
                    if let Some(m) = d
                        .strip_prefix("defragment ")
                        .and_then(|r| r.split_once(' '))
                        .map(|(m, _)| m.to_owned())
                    {
                        defrag.insert(m, v["seconds"].as_f64().unwrap_or(f64::NAN));
                    }
                }
                Some("apply_failed" | "error") => eprintln!("apply: {line}"),
                _ => {}
            }
        }
    }
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    Applied {
        wall: started.elapsed(),
        defrag,
        ok: status.success(),
        steps,
    }
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
    let Some(source) = etcd_3_5_30_or_skip() else {
        return;
    };
    let sizes: Vec<u64> = std::env::var("SIZES")
        .unwrap_or_else(|_| "32,128,256".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let file = etcdfile(&tb, &source.display().to_string());
    let boot = apply(&tb, &file);
    assert!(boot.ok, "bootstrap failed: {:?}", boot.steps);
    let eps: Vec<String> = tb.client_endpoints(&tb.all());
    let mut kv = Kv::connect(&eps);
    println!(
        "defragmentation by rule (dbSizeFree > 1MiB), 3 members of etcd 3.5.30 over ssh, half of each fill deleted and compacted; strict writer every 10 ms, 1 s deadline"
    );
    println!(
        "size_MiB  member  leader  db_before  in_use_before  db_after  defrag_s  | apply_s  writes  failed  p50_ms  p99_ms  max_ms"
    );
    for (round, size) in sizes.iter().enumerate() {
        let prefix = format!("fill{round}");
        let n = (size * 1024 * 1024 / VALUE as u64) as usize;
        let fill_started = Instant::now();
        for k in 0..n {
            let key = format!("{prefix}/{k:06}");
            if let Err(e) = kv.put(&key, value(&key, VALUE)) {
                panic!("fill {key}: {e}");
            }
        }
        // Every other key deleted, then the history compacted away.
        for k in (0..n).step_by(2) {
            let key = format!("{prefix}/{k:06}");
            let _ = kv
                .delete_prefix(&key)
                .unwrap_or_else(|e| panic!("delete {key}: {e}"));
        }
        kv.compact_now().unwrap_or_else(|e| panic!("compact: {e}"));
        let want_free = size * 1024 * 1024 / 4;
        // bbolt counts the freed pages as free only from a later write
        // transaction on: a few small writes, as a live cluster has.
        let mut before = Vec::new();
        let mut tick = 0;
        let freed = harness::wait_for(Duration::from_secs(60), || {
            tick += 1;
            let _ = kv.put("tick", format!("{tick}").into_bytes());
            before = backends(&eps);
            before.iter().all(|b| b.db_size - b.in_use >= want_free)
        });
        if !freed {
            eprintln!(
                "size {size} MiB: not every member shows {} free",
                mib(want_free)
            );
        }
        eprintln!(
            "size {size} MiB: filled in {:.1}s",
            fill_started.elapsed().as_secs_f64()
        );

        let writer = Writer::start(
            eps.clone(),
            &format!("w{round}"),
            Duration::from_millis(10),
            Duration::from_secs(1),
        );
        std::thread::sleep(Duration::from_millis(300));
        let applied = apply(&tb, &file);
        std::thread::sleep(Duration::from_millis(300));
        let seen = writer.stop();
        let after = backends(&eps);
        let mut lat = seen.latencies.clone();
        lat.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            let name = format!("etcd-{}", i + 1);
            let tail = if i == 0 {
                format!(
                    "| {:>7.2}  {:>6}  {:>6}  {:>6.1}  {:>6.1}  {:>6.1}",
                    applied.wall.as_secs_f64(),
                    seen.acked.len() + seen.failed.len(),
                    seen.failed.len(),
                    ms(percentile(&lat, 0.5)),
                    ms(percentile(&lat, 0.99)),
                    ms(lat.last().copied().unwrap_or_default()),
                )
            } else {
                String::new()
            };
            println!(
                "{size:>8}  {name:>6}  {:>6}  {:>9}  {:>13}  {:>8}  {:>8}  {tail}",
                if b.is_leader() { "yes" } else { "" },
                mib(b.db_size),
                mib(b.in_use),
                mib(a.db_size),
                applied
                    .defrag
                    .get(&name)
                    .map_or("-".to_owned(), |s| format!("{s:.2}")),
            );
        }
        if !applied.ok {
            println!("          apply FAILED; steps started: {:?}", applied.steps);
        }
        for f in seen.failed.iter().take(5) {
            println!("          failed (strict): {f}");
        }
        // The rest deleted: the next size starts from free pages.
        let _ = kv.delete_prefix(&format!("{prefix}/"));
    }
}
