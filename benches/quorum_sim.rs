//! Benchmark: the quorum simulator at scale. Generates 100,000 (live,
//! desired, failures) cases with the proptest strategy of
//! `tests/quorum_sim.rs`, checks every one (no stopping and shrinking at the
//! first failure), and prints the count, every violation with its case, and
//! the time taken. Pure: no root, no etcd.
//!
//! ```sh
//! cargo bench --bench quorum_sim                    # 100,000 cases, a fixed seed
//! CASES=1000000 SEED=7 cargo bench --bench quorum_sim
//! ```

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/quorum_sim.rs"]
mod sim;

use std::time::Instant;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let cases = env_u64("CASES", 100_000);
    let seed = env_u64("SEED", 21);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let strategy = sim::case();
    let started = Instant::now();
    let (mut held, mut rejected, mut violations) = (0u64, 0u64, Vec::new());
    let mut why_rejected = std::collections::BTreeMap::new();
    for i in 0..cases {
        let case = match strategy.new_tree(&mut runner) {
            Ok(tree) => tree.current(),
            Err(e) => panic!("case {i}: the strategy failed: {e}"),
        };
        match sim::check(&case) {
            sim::Verdict::Held => held += 1,
            sim::Verdict::Rejected(why) => {
                rejected += 1;
                *why_rejected.entry(why).or_insert(0u64) += 1;
            }
            sim::Verdict::Violation(what) => violations.push((i, what, case)),
        }
    }
    let took = started.elapsed();
    println!("quorum simulator: {cases} generated cases, seed {seed}");
    println!(
        "checked {held}, rejected {rejected} {why_rejected:?}, violations {}",
        violations.len()
    );
    for (i, what, case) in &violations {
        println!("violation in case {i}: {what}\n    case: {case:?}");
    }
    println!(
        "time {:.2} s, {:.0} µs per case",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / cases.max(1) as f64
    );
    if !violations.is_empty() {
        std::process::exit(1);
    }
}
