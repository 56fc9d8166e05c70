//! The figures benches print about client writes during an apply: latency
//! percentiles, what the apply did to the cluster (restarts, leader moves,
//! elections), and one aligned line per run plus a total, so that every
//! bench prints them alike and two benches' figures can be read side by side.

use std::fmt::Write as _;
use std::time::Duration;

use super::writer::Writes;

/// The value at quantile `p` (0 to 1) of `sorted`, by nearest rank; zero
/// when there is none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted[i]
}

/// p50, p99 and max of a set of latencies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

impl Latency {
    /// The figures of `latencies`, in any order.
    pub fn of(latencies: &[Duration]) -> Self {
        let mut sorted = latencies.to_vec();
        sorted.sort();
        Self {
            p50: percentile(&sorted, 0.5),
            p99: percentile(&sorted, 0.99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// What an apply did to the members: the restarts and leader moves its
/// progress lines name, and the elections the raft term counts (every
/// leader change, a MoveLeader, a graceful stop's own transfer or an
/// election after a lost leader, bumps the term; etcd 3.5's pre-vote keeps
/// a restarted follower from bumping it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Disturbance {
    /// `restart` steps (takeovers included).
    pub restarts: usize,
    /// `move leader` steps the plan made.
    pub moves: usize,
    /// Restarts of the member that led when it stopped: leader changes
    /// etcd's graceful stop made, with no move before them.
    pub leader_restarts: usize,
    /// The raft term's rise over the apply: leader changes, whoever made them.
    pub elections: u64,
}

impl Disturbance {
    /// Counts `applied`'s step lines (`… 3/10 restart etcd-1 …`); the term
    /// before and after come from the cluster.
    pub fn of(applied: &str, term_before: u64, term_after: u64) -> Self {
        Self {
            restarts: steps(applied, |l| {
                l.contains(" restart ") || (l.contains(" take ") && l.contains(" over from "))
            }),
            moves: steps(applied, |l| l.contains(" move leader ")),
            leader_restarts: super::writer::leader_restarts(applied),
            elections: term_after.saturating_sub(term_before),
        }
    }
}

/// How many started steps of an apply's output match `f`.
fn steps(applied: &str, f: impl Fn(&str) -> bool) -> usize {
    applied
        .lines()
        .filter(|l| l.trim_end().ends_with('…'))
        .filter(|l| f(l))
        .count()
}

/// One run of a scenario under the two writers.
pub struct Run<'a> {
    /// The scenario's name.
    pub scenario: &'a str,
    /// Its number, from 1.
    pub run: usize,
    /// The apply's wall time.
    pub apply: Duration,
    /// The strict writer's writes (retries only what was never sent).
    pub strict: &'a Writes,
    /// The retrying writer's writes (retries anything).
    pub retrying: &'a Writes,
    /// What the apply did to the cluster.
    pub disturbance: Disturbance,
}

/// The column names of [`Run::line`].
pub const HEADER: &str = "scenario  run  apply_s  writes  failed_strict  failed_retrying  p50_ms  p99_ms  max_ms  restarts  moves  lead_restarts  elections";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Run<'_> {
    /// The run's figures on one line under [`HEADER`]; latencies are the
    /// strict writer's, as a real client sees them.
    pub fn line(&self) -> String {
        let l = Latency::of(&self.strict.latencies);
        format!(
            "{:<8}  {:>3}  {:>7.1}  {:>6}  {:>13}  {:>15}  {:>6.1}  {:>6.1}  {:>6.1}  {:>8}  {:>5}  {:>13}  {:>9}",
            self.scenario,
            self.run,
            self.apply.as_secs_f64(),
            self.strict.acked.len() + self.strict.failed.len(),
            self.strict.failed.len(),
            self.retrying.failed.len(),
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            self.disturbance.restarts,
            self.disturbance.moves,
            self.disturbance.leader_restarts,
            self.disturbance.elections,
        )
    }

    /// Each failed write, strict then retrying, with its error.
    pub fn failures(&self) -> String {
        let mut s = String::new();
        for f in &self.strict.failed {
            let _ = writeln!(s, "      failed (strict): {f}");
        }
        for f in &self.retrying.failed {
            let _ = writeln!(s, "      failed (retrying): {f}");
        }
        s
    }
}

/// Runs of one scenario added up: failures summed, latencies pooled.
#[derive(Default)]
pub struct Total {
    runs: usize,
    writes: usize,
    failed_strict: usize,
    failed_retrying: usize,
    runs_with_failure: usize,
    latencies: Vec<Duration>,
    restarts: usize,
    moves: usize,
    leader_restarts: usize,
    elections: u64,
}

impl Total {
    /// Adds one run.
    pub fn add(&mut self, r: &Run<'_>) {
        self.runs += 1;
        self.writes += r.strict.acked.len() + r.strict.failed.len();
        self.failed_strict += r.strict.failed.len();
        self.failed_retrying += r.retrying.failed.len();
        self.runs_with_failure += usize::from(!r.strict.failed.is_empty());
        self.latencies.extend_from_slice(&r.strict.latencies);
        self.restarts += r.disturbance.restarts;
        self.moves += r.disturbance.moves;
        self.leader_restarts += r.disturbance.leader_restarts;
        self.elections += r.disturbance.elections;
    }

    /// The total on one line, per-apply averages of the disturbance.
    pub fn line(&self, scenario: &str) -> String {
        let l = Latency::of(&self.latencies);
        let per = |n: f64| n / self.runs.max(1) as f64;
        format!(
            "total {scenario}: {} runs, {} writes, failed strict {} (in {} runs), failed retrying {}, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; per apply {:.1} restarts, {:.1} planned moves, {:.1} leader restarts, {:.1} elections",
            self.runs,
            self.writes,
            self.failed_strict,
            self.runs_with_failure,
            self.failed_retrying,
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            per(self.restarts as f64),
            per(self.moves as f64),
            per(self.leader_restarts as f64),
            per(self.elections as f64),
        )
    }
}
