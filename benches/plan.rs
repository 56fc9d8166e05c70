//! Benchmark: how long a no-op `etcdplan plan` takes over ssh, cold (no ssh
//! master left by an earlier command) and warm (`--ssh-persist` masters
//! reused), against a shell floor: a script doing the same reads (the same
//! host probe scripts over fresh ssh connections opened in parallel, and the
//! same etcd calls through etcdctl and curl, all at once), and etcdctl alone
//! (`endpoint status` of the 5 members). Then the plan time for 1, 3, 5, 7
//! and 9 members, the cluster grown by `apply`. Prints medians of ROUNDS
//! runs and the ratios against the goals (cold ≤ 1.0× the floor, warm ≤ 0.5×,
//! 1 → 9 members within 20%). Needs root (network namespaces):
//!
//! ```sh
//! cargo bench --bench plan              # ROUNDS=7 by default
//! PROFILE=1 cargo bench --bench plan    # also prints one cold and one warm plan's phases
//! SIZES=9 PROFILE=1 cargo bench --bench plan   # only these cluster sizes (1 to 9)
//! ETCDPLAN_BIN_BEFORE=/tmp/etcdplan-old cargo bench --bench plan   # and an earlier build's, side by side
//! ```
//!
//! `ETCDPLAN_BIN_BEFORE` also times another etcdplan binary (an earlier
//! commit's, saved aside) on the same clusters right after this one, so a
//! before and an after are measured in the same period of load.
//! `ETCDPLAN_BIN` replaces this build's binary. The floor runs this build's
//! probe either way.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::release::etcd_3_5_30_or_skip;
use harness::testbed::{Testbed, up_or_skip};

/// The bench's etcdplan runs: one etcdfile, one private runtime folder.
struct Bench<'a> {
    tb: &'a Testbed,
    xdg: tempfile::TempDir,
    release: PathBuf,
    /// The etcdplan binary timed.
    bin: PathBuf,
}

impl Bench<'_> {
    fn file(&self, n: usize) -> PathBuf {
        let path = self.tb.dir.path().join(format!("etcdfile-{n}.toml"));
        let bin = self.release.join("usr/bin/etcd");
        let which: Vec<usize> = (0..n).collect();
        let text = self.tb.etcdfile(
            "planbench",
            &format!("binary = \"{}\"\n", bin.display()),
            &which,
            &[],
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    fn command(&self, file: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .arg("-f")
            .arg(file)
            .env("XDG_RUNTIME_DIR", self.xdg.path())
            .env_remove("ETCDPLAN_SSH_PERSIST")
            .env("NO_COLOR", "1");
        c
    }

    fn run_ok(&self, file: &Path, args: &[&str]) {
        let out = self
            .command(file, args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "etcdplan {args:?}:\n{}",
            harness::text(&out)
        );
    }

    /// One no-op plan's wall time (it must find nothing to change).
    fn plan(&self, file: &Path) -> Duration {
        let started = Instant::now();
        let out = self
            .command(file, &["plan", "--detailed-exitcode"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let took = started.elapsed();
        assert_eq!(
            out.status.code(),
            Some(0),
            "not a no-op plan:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    /// The CPU one no-op plan costs on this machine: etcdplan and the ssh
    /// clients it starts (user + system, from the shell that waited for
    /// them: `/proc/$$/stat` cutime + cstime, in clock ticks). The hosts'
    /// side (sshd, the probe, etcd) is not in it: on real hosts it runs on
    /// each host, here on these same 2 cores.
    fn local_cpu(&self, file: &Path) -> Duration {
        let out = Command::new("sh")
            .args([
                "-c",
                "\"$@\" >/dev/null 2>&1; set -- $(cat /proc/$$/stat); echo \"${16} ${17} $(getconf CLK_TCK)\"",
                "sh",
            ])
            .arg(&self.bin)
            .args(["plan", "--detailed-exitcode", "-f"])
            .arg(file)
            .env("XDG_RUNTIME_DIR", self.xdg.path())
            .env_remove("ETCDPLAN_SSH_PERSIST")
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<f64> = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        match v.as_slice() {
            [u, s, hz] if *hz > 0.0 => Duration::from_secs_f64((u + s) / hz),
            _ => panic!("cannot read the plan's CPU time from {text:?}"),
        }
    }

    fn disconnect(&self, file: &Path) {
        self.run_ok(file, &["disconnect"]);
    }

    /// The phases of one plan, from etcdplan's debug log.
    fn profile(&self, file: &Path, what: &str) {
        let out = self
            .command(file, &["plan"])
            .env("ETCDPLAN_LOG", "etcdplan=debug")
            .stdout(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        println!("--- {what} plan, debug log:");
        for l in String::from_utf8_lossy(&out.stderr).lines() {
            if l.contains("DEBUG") || l.contains("Observing") {
                println!("    {l}");
            }
        }
    }
}

/// The etcdplan binary timed: `ETCDPLAN_BIN`, else this build's.
fn etcdplan_bin() -> PathBuf {
    std::env::var_os("ETCDPLAN_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_etcdplan")),
        PathBuf::from,
    )
}

/// A runtime folder of its own (ssh masters are per binary).
fn runtime_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ep-bench")
        .tempdir()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The median cold plan (masters closed first) and warm plan of `b`.
fn cold_warm(b: &Bench, file: &Path, rounds: usize) -> (Duration, Duration) {
    let cold = median(rounds, || {
        b.disconnect(file);
        b.plan(file)
    });
    b.plan(file);
    let warm = median(rounds, || b.plan(file));
    (cold, warm)
}

/// Median of `rounds` runs of `f`.
fn median(rounds: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut t: Vec<Duration> = (0..rounds).map(|_| f()).collect();
    t.sort();
    t[t.len() / 2]
}

/// The shell floor for the members of `file`: every host's probe script
/// (etcdplan's own, from `observe::probe_script`) over a fresh ssh
/// connection, and the etcd reads etcdplan makes (MemberList from every
/// member, each member's Status, linearizable read and /metrics, the alarms,
/// the auth store), all in parallel; writes the script, returns its path.
fn floor_script(tb: &Testbed, file: &Path, etcdctl: &Path, dir: &Path) -> PathBuf {
    let loaded = etcdplan::config::load(file).unwrap_or_else(|e| panic!("{e:?}"));
    let d = &loaded.desired;
    let ssh = format!(
        "ssh -F none -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o IdentitiesOnly=yes -i {} -o ConnectTimeout=10 -l root",
        tb.known_hosts.display(),
        tb.client_key.display()
    );
    let e = etcdctl.display();
    let mut s = String::from("#!/bin/sh\n");
    for (i, m) in d.members.iter().enumerate() {
        let probe = dir.join(format!("probe-{i}.sh"));
        std::fs::write(&probe, etcdplan::observe::probe_script(d, m).source)
            .unwrap_or_else(|e| panic!("{e}"));
        s.push_str(&format!(
            "{ssh} {} sh < {} > /dev/null &\n",
            m.address,
            probe.display()
        ));
    }
    let eps: Vec<String> = d.client_urls().iter().map(ToString::to_string).collect();
    for ep in &eps {
        s.push_str(&format!(
            "{e} --endpoints={ep} member list > /dev/null &\n\
{e} --endpoints={ep} endpoint status > /dev/null &\n\
{e} --endpoints={ep} get etcdplan-health > /dev/null &\n\
curl -s {ep}/metrics > /dev/null &\n"
        ));
    }
    let first = &eps[0];
    for call in ["alarm list", "auth status", "user list", "role list"] {
        s.push_str(&format!("{e} --endpoints={first} {call} > /dev/null &\n"));
    }
    s.push_str("wait\n");
    let path = dir.join("floor.sh");
    std::fs::write(&path, s).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn time_sh(script: &str) -> Duration {
    let started = Instant::now();
    let st = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success(), "{script}");
    started.elapsed()
}

fn main() {
    let Some(release) = etcd_3_5_30_or_skip() else {
        return;
    };
    let Some(tb) = up_or_skip(9) else { return };
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7)
        .max(1);
    let profile = std::env::var_os("PROFILE").is_some();
    let b = Bench {
        tb: &tb,
        xdg: runtime_dir(),
        release: release.clone(),
        bin: etcdplan_bin(),
    };
    let before = std::env::var_os("ETCDPLAN_BIN_BEFORE").map(|bin| Bench {
        tb: &tb,
        xdg: runtime_dir(),
        release: release.clone(),
        bin: PathBuf::from(bin),
    });
    let etcdctl = release.join("usr/bin/etcdctl");
    println!(
        "no-op plan over ssh (namespace hosts, etcd 3.5.30), median of {rounds}; a shared machine: compare figures within this run only"
    );
    println!("etcdplan: {}", b.bin.display());
    if let Some(old) = &before {
        println!("before:   {}", old.bin.display());
        println!("members  cold_s  warm_s  before_cold_s  before_warm_s");
    } else {
        println!("members  cold_s  warm_s  warm_local_cpu_s");
    }
    let mut sizes: Vec<(usize, Duration, Duration)> = Vec::new();
    let mut cpus: Vec<Duration> = Vec::new();
    let mut old_sizes: Vec<(Duration, Duration)> = Vec::new();
    let mut at5 = None;
    let sizes_asked: Vec<usize> = std::env::var("SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty() && v.iter().all(|n| (1..=9).contains(n)))
        .unwrap_or_else(|| vec![1, 3, 5, 7, 9]);
    for n in sizes_asked {
        let file = b.file(n);
        b.run_ok(&file, &["apply", "--auto-approve"]);
        let (cold, warm) = cold_warm(&b, &file, rounds);
        let cpu = median(rounds.max(3), || b.local_cpu(&file));
        cpus.push(cpu);
        let old = before.as_ref().map(|old| {
            let t = cold_warm(old, &file, rounds);
            old.disconnect(&file);
            t
        });
        let old_cols = old.map_or_else(
            || format!("  {:>16.3}", cpu.as_secs_f64()),
            |(c, w)| format!("  {:>13.3}  {:>13.3}", c.as_secs_f64(), w.as_secs_f64()),
        );
        println!(
            "{n:>7}  {:>6.3}  {:>6.3}{old_cols}",
            cold.as_secs_f64(),
            warm.as_secs_f64()
        );
        sizes.push((n, cold, warm));
        if let Some(o) = old {
            old_sizes.push(o);
        }
        if n == 5 {
            let floor = floor_script(&tb, &file, &etcdctl, tb.dir.path());
            let floor_t = median(rounds, || time_sh(&format!("sh {}", floor.display())));
            let eps = tb.client_endpoints(&(0..5).collect::<Vec<_>>()).join(",");
            let alone = median(rounds, || {
                time_sh(&format!(
                    "{} --endpoints={eps} endpoint status",
                    etcdctl.display()
                ))
            });
            at5 = Some((cold, warm, floor_t, alone, old));
        }
        if profile {
            b.disconnect(&file);
            b.profile(&file, "cold");
            b.profile(&file, "warm");
        }
    }
    let last = sizes.last().map(|s| s.0);
    if let Some(file) = last.map(|n| b.file(n)) {
        b.disconnect(&file);
    }
    if let Some((cold, warm, floor, alone, old)) = at5 {
        let s = |d: Duration| d.as_secs_f64();
        println!("\n5 members:");
        println!("  cold plan                      {:>6.3} s", s(cold));
        println!("  warm plan                      {:>6.3} s", s(warm));
        println!("  shell floor (ssh + etcdctl)    {:>6.3} s", s(floor));
        println!("  etcdctl endpoint status alone  {:>6.3} s", s(alone));
        println!(
            "  cold / floor = {:.2} (goal <= 1.00), warm / floor = {:.2} (goal <= 0.50)",
            s(cold) / s(floor),
            s(warm) / s(floor)
        );
        if let Some((c, w)) = old {
            println!(
                "  before: cold {:.3} s = {:.2} x floor, warm {:.3} s = {:.2} x floor",
                s(c),
                s(c) / s(floor),
                s(w),
                s(w) / s(floor)
            );
        }
    }
    if let (Some(one), Some(nine)) = (sizes.first(), sizes.last()) {
        println!(
            "  9 / 1 members: cold {:.2}, warm {:.2} (goal: within 1.20)",
            nine.1.as_secs_f64() / one.1.as_secs_f64(),
            nine.2.as_secs_f64() / one.2.as_secs_f64()
        );
    }
    if let (Some(one), Some(nine)) = (cpus.first(), cpus.last()) {
        println!(
            "  etcdplan's own CPU on this machine (warm, with its ssh clients): {:.3} s -> {:.3} s ({:.2}); the rest of the growth is the hosts' sshd, probe and etcd, which share these 2 cores here and run on each host in a real cluster",
            one.as_secs_f64(),
            nine.as_secs_f64(),
            nine.as_secs_f64() / one.as_secs_f64().max(0.001)
        );
    }
    if let (Some(one), Some(nine)) = (old_sizes.first(), old_sizes.last()) {
        println!(
            "  before, 9 / 1 members: cold {:.2}, warm {:.2}",
            nine.0.as_secs_f64() / one.0.as_secs_f64(),
            nine.1.as_secs_f64() / one.1.as_secs_f64()
        );
    }
}
