//! End to end over ssh on namespace hosts, etcd 3.5.30: etcdplan killed with
//! SIGKILL at every step boundary of two plans, and in the middle of steps,
//! then run again until the plan is empty (issue 21, "Proof under fire").
//!
//! Each chain starts `apply --auto-approve` held at `after-step:0`, kills it
//! there, removes its lock with `force-unlock` (the id from the refusal of
//! the next apply), and runs again, each run doing one step of the plan made
//! then; some runs also arm a mid-step failpoint (a restart's member stopped,
//! a learner added and not started). Meanwhile a quorum probe reads
//! linearizably from every member each 100 ms and the strict writer puts
//! keys. At the end: no probe round went unanswered, every acknowledged key
//! is there, the member list and the hosts' files are what the etcdfile
//! says, and `plan` is empty.
//!
//! The chains: a 3→5 scale-up (its learners killed between MemberAdd and
//! their start), and the plain → https peer migration of 3 members (the
//! leader's restart and a follower's killed while stopped).

mod harness;

use std::time::{Duration, Instant};

use harness::failpoint::{Held, run_held};
use harness::probe::Probe;
use harness::release::etcd_3_5_30_or_skip;
use harness::testbed::{Testbed, up_or_skip};
use harness::text;
use harness::writer::{Writer, keys};

/// Where the members' binary lives on each host (uploaded by etcdplan).
const BIN: &str = "/var/lib/etcdplan/bin/etcd";

/// The longest one held run may take: a step with its gates, and the
/// observation before it, on a loaded machine.
const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// `[etcd]` keys for 3.5.30 from `source`, and `tables` after them.
fn etcdfile(tb: &Testbed, source: &str, which: &[usize], tables: &str) -> String {
    tb.etcdfile(
        "kill",
        &format!("binary = \"{BIN}\"\nbinary_source = \"{source}\"\n{tables}"),
        which,
        &[],
    )
}

/// A step a run started: (index, total, description), from `apply --json`.
fn steps_started(held: &Held) -> Vec<(usize, usize, String)> {
    held.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step_started")
        .map(|v| {
            (
                v["index"].as_u64().unwrap_or(0) as usize,
                v["total"].as_u64().unwrap_or(0) as usize,
                v["description"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Where a run's time went: the observation (its progress line on stderr)
/// and the step (`step_finished`'s seconds), for the log.
fn timings(held: &Held) -> String {
    let observe = held
        .stderr
        .lines()
        .find(|l| l.starts_with("Observing cluster"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("?");
    let step = held
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "step_finished")
        .and_then(|v| v["seconds"].as_f64())
        .map_or_else(|| "?".to_owned(), |s| format!("{s:.1}s"));
    format!("observe {observe}, step {step}")
}

/// The plan's steps now, from `plan --json`.
fn planned(tb: &Testbed, file: &str) -> Vec<String> {
    let out = tb.etcdplan(file, &["plan", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan --json: {e}: {}", text(&out)));
    v["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| s["description"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The id of the lock a killed run left in etcd, read from its key (what
/// `force-unlock` checks), through any of `endpoints`.
fn lock_id(endpoints: &[String]) -> Option<String> {
    endpoints.iter().find_map(|ep| {
        let out = harness::etcdctl(
            ep,
            &["get", etcdplan::execute::lock::KEY, "--print-value-only"],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["id"].as_str().map(str::to_owned)
    })
}

/// Removes a killed run's locks with `force-unlock ID`: the lock in etcd and
/// the lock files on the hosts. The first time in a chain (`refused`), the
/// id is taken from the next apply's refusal, as an operator would, and that
/// refusal is checked; later the id is read from the lock's key, which
/// costs no observation of the cluster. A refused apply is itself held at
/// `after-step:0`, so that if the lock had expired meanwhile it does one
/// step and stops like any run (returned, for the chain to count).
fn unlock(
    tb: &Testbed,
    file: &str,
    endpoints: &[String],
    refused: bool,
) -> Result<Option<Held>, String> {
    let id = if refused {
        let held = run_held(
            tb,
            file,
            &["apply", "--auto-approve", "--json"],
            "after-step:0",
            RUN_DEADLINE,
        )?;
        if held.reached.is_some() {
            eprintln!("  (the killed run's lock had expired: this run did a step)");
            return Ok(Some(held));
        }
        let said = held.text();
        said.split("lock id ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .map(str::to_owned)
            .ok_or_else(|| format!("the next apply was not refused by the lock:\n{said}"))?
    } else {
        match lock_id(endpoints) {
            Some(id) => id,
            // Its lease ended already: the host lock files may still refuse.
            None => return unlock(tb, file, endpoints, true),
        }
    };
    let out = tb.etcdplan(file, &["force-unlock", &id]);
    let t = text(&out);
    if !out.status.success() || !t.contains("Removed the lock") {
        return Err(format!("force-unlock {id}:\n{t}"));
    }
    Ok(None)
}

/// What a chain did.
#[derive(Debug, Default)]
struct Chain {
    /// Runs killed right after their first step.
    boundaries: usize,
    /// Mid-step failpoints reached.
    mid_step: Vec<String>,
    /// One line per run.
    log: Vec<String>,
    /// Each killed run's plan length, and whether it was killed mid-step.
    totals: Vec<(usize, bool)>,
    /// The steps the killed runs started.
    ran: Vec<String>,
}

impl Chain {
    /// Every run got further than the one before (its plan is shorter:
    /// no step comes back on every rerun); the first plan's steps that no
    /// killed run started (found done or folded by a later plan) are
    /// printed.
    fn assert_progress(&self, what: &str, first: &[String]) {
        // A run killed in the middle of a step may leave a short repair
        // plan (start the member it stopped) before the rest: after it,
        // a run need only be shorter than the plan that was cut.
        let mut bound = usize::MAX;
        let mut cut = 0;
        for (total, mid) in &self.totals {
            assert!(
                *total < bound || *total < cut,
                "{what}: a rerun did not get further (plan lengths {:?}): {self:?}",
                self.totals
            );
            bound = *total;
            if *mid {
                cut = *total;
            }
        }
        // The first plan's steps no killed run started (a multiset
        // difference): a later plan found them done (a wait whose condition
        // held) or folded them (a member whose next phases were written at
        // once). Every rerun being shorter is what proves the chain moved.
        let mut left: Vec<&String> = self.ran.iter().collect();
        let skipped: Vec<&String> = first
            .iter()
            .filter(|s| match left.iter().position(|r| r == s) {
                Some(i) => {
                    left.swap_remove(i);
                    false
                }
                None => true,
            })
            .collect();
        eprintln!(
            "{what}: {} runs killed at {} boundaries and {} mid-step points; the first plan had {} steps, {} not run by a killed run (found done or folded by a later plan): {skipped:?}",
            self.totals.len(),
            self.boundaries,
            self.mid_step.len(),
            first.len(),
            skipped.len()
        );
    }
}

/// Runs `file`'s plan to the end one step per run, each run killed after
/// that step; `mid_step` failpoints are armed until each has been reached
/// once. Fails after `max_runs` runs, with the steps seen.
fn chain(
    tb: &Testbed,
    file: &str,
    what: &str,
    mut mid_step: Vec<String>,
    max_runs: usize,
) -> Result<Chain, String> {
    let mut c = Chain::default();
    let mut pending: Option<Held> = None;
    let endpoints = tb.client_endpoints(&tb.all());
    for run in 0..max_runs {
        let held = match pending.take() {
            Some(h) => h,
            None => {
                let mut points = vec!["after-step:0".to_owned()];
                points.extend(mid_step.iter().cloned());
                let t = Instant::now();
                let h = run_held(
                    tb,
                    file,
                    &["apply", "--auto-approve", "--json"],
                    &points.join(";"),
                    RUN_DEADLINE,
                )?;
                eprintln!(
                    "  run {run}: {:.1}s ({})",
                    t.elapsed().as_secs_f64(),
                    timings(&h)
                );
                h
            }
        };
        let started = steps_started(&held);
        let (index, total, description) = started.first().cloned().unwrap_or((0, 0, String::new()));
        if let Some(point) = held.point() {
            c.totals.push((total, point != "after-step:0"));
            c.ran.push(description.clone());
        }
        let line = match held.point() {
            Some("after-step:0") => {
                c.boundaries += 1;
                format!(
                    "{what} run {run}: killed after step {} of {total}: {description}",
                    index + 1
                )
            }
            Some(point) => {
                let point = point.to_owned();
                mid_step.retain(|p| *p != point);
                c.mid_step.push(point.clone());
                format!("{what} run {run}: killed at {point} in step 1 of {total}: {description}")
            }
            None => {
                let ok = held.exited.is_some_and(|s| s.success());
                if ok && started.is_empty() {
                    c.log.push(format!("{what} run {run}: nothing left to do"));
                    eprintln!("{}", c.log.join("\n"));
                    return Ok(c);
                }
                return Err(format!(
                    "{what} run {run} ended by itself ({:?}) after steps {started:?}:\n{}\nruns so far:\n{}",
                    held.exited,
                    held.text(),
                    c.log.join("\n")
                ));
            }
        };
        eprintln!("{line}");
        c.log.push(line);
        let t = Instant::now();
        pending = unlock(tb, file, &endpoints, run == 0)?;
        eprintln!("  unlock: {:.1}s", t.elapsed().as_secs_f64());
    }
    Err(format!(
        "{what}: no empty plan after {max_runs} runs; the runs:\n{}",
        c.log.join("\n")
    ))
}

/// The members as etcd lists them: (name, is learner), sorted.
fn member_list(endpoint: &str) -> Vec<(String, bool)> {
    let out = harness::etcdctl(endpoint, &["member", "list", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("member list: {e}: {}", text(&out)));
    let mut m: Vec<(String, bool)> = v["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or("").to_owned(),
                        m["isLearner"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    m.sort();
    m
}

/// Each member's etcd config on its host, as etcdplan wrote it.
fn host_config(tb: &Testbed, host: usize) -> String {
    let p = tb.hosts[host].file("/etc/etcd/etcd.conf.yml");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The end state: the member list, the hosts' files, an empty plan, every
/// acknowledged key, and a quorum kept throughout.
fn assert_end_state(tb: &Testbed, file: &str, what: &str, members: usize) {
    let eps = tb.client_endpoints(&(0..members).collect::<Vec<_>>());
    let want: Vec<(String, bool)> = (1..=members)
        .map(|i| (format!("etcd-{i}"), false))
        .collect();
    for ep in &eps {
        assert_eq!(
            member_list(ep),
            want,
            "{what}: the member list through {ep}"
        );
    }
    let again = tb.etcdplan(file, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{what}: {}", text(&again));
    for (i, h) in tb.hosts.iter().enumerate().take(members) {
        let config = host_config(tb, i);
        assert!(
            config.contains(&format!("name: 'etcd-{}'", i + 1)),
            "{what}: {}: {config}",
            h.name
        );
        assert!(config.contains(&h.ip), "{what}: {}: {config}", h.name);
    }
    let _ = eps;
}

/// Processes stopped with SIGSTOP, by pid; continued on drop, so that a
/// failed assertion leaves no member frozen.
struct Frozen(Vec<u32>);

impl Frozen {
    fn new(pids: Vec<u32>) -> Self {
        for pid in &pids {
            let _ = std::process::Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status();
        }
        Self(pids)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
    }
}

/// The probe's assertion can fail: with `n` of the cluster's etcd processes
/// (followers first) frozen for 3 s, how many rounds go unanswered?
fn probe_with_frozen(tb: &Testbed, n: usize) -> usize {
    let probe = Probe::start(
        tb.client_endpoints(&tb.all()),
        Duration::from_millis(100),
        Duration::from_secs(1),
    );
    std::thread::sleep(Duration::from_millis(500));
    // Followers first: a frozen leader would also cost an election.
    let eps = tb.client_endpoints(&tb.all());
    let led = leader(&eps[0]);
    let mut all = tb.etcd_pids();
    all.sort_by_key(|(i, _)| format!("etcd-{}", i + 1) == led);
    let pids: Vec<u32> = all.into_iter().map(|(_, p)| p).take(n).collect();
    assert_eq!(pids.len(), n, "etcd pids: {:?}", tb.etcd_pids());
    {
        let _frozen = Frozen::new(pids);
        std::thread::sleep(Duration::from_secs(3));
    }
    // The cluster answers again before the probe stops.
    std::thread::sleep(Duration::from_secs(2));
    let seen = probe.stop();
    eprintln!("{n} of 5 frozen for 3 s: {}", seen.summary());
    seen.unanswered.len()
}

#[test]
fn a_scale_up_from_three_to_five_killed_at_every_step_boundary_and_mid_join_ends_as_declared() {
    let Some(source) = etcd_3_5_30_or_skip() else {
        return;
    };
    let Some(tb) = up_or_skip(5) else { return };
    let took = Instant::now();
    let source = source.display().to_string();
    let three = etcdfile(&tb, &source, &[0, 1, 2], "");
    let five = etcdfile(&tb, &source, &[0, 1, 2, 3, 4], "");
    let out = tb.etcdplan(&three, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "bootstrap:\n{}", text(&out));
    let first = planned(&tb, &five);
    eprintln!("3→5: {} steps:\n  {}", first.len(), first.join("\n  "));
    assert!(!first.is_empty());

    let probe = Probe::start(
        tb.client_endpoints(&tb.all()),
        Duration::from_millis(100),
        Duration::from_secs(1),
    );
    let writer = Writer::start(
        tb.client_endpoints(&[0, 1, 2]),
        "w",
        Duration::from_millis(50),
        Duration::from_secs(2),
    );
    let c = chain(
        &tb,
        &five,
        "3→5",
        vec!["learner-added:etcd-4".into(), "learner-added:etcd-5".into()],
        first.len() * 2 + 6,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let writes = writer.stop();
    let probes = probe.stop();

    eprintln!("3→5: strict writer: {}", writes.summary());
    for f in &writes.failed {
        eprintln!("3→5: failed write: {f}");
    }
    probes.assert_quorum_kept("3→5");
    assert!(writes.acked.len() > 20, "{}", writes.summary());
    let found = keys(&tb.client_endpoints(&[3])[0], "w");
    writes.assert_read_back("3→5", found.iter().map(String::as_str));
    assert_eq!(
        c.mid_step,
        ["learner-added:etcd-4", "learner-added:etcd-5"],
        "{c:?}"
    );
    // A step killed in its middle is finished by the rerun: its kill stands
    // for its boundary.
    c.assert_progress("3→5", &first);
    assert_end_state(&tb, &five, "3→5", 5);
    // The probe tells a lost quorum from one member gone: three of five
    // frozen leave no member answering; one frozen changes nothing.
    assert!(probe_with_frozen(&tb, 3) >= 2, "a lost quorum went unseen");
    assert_eq!(
        probe_with_frozen(&tb, 1),
        0,
        "one member frozen is no outage"
    );
    eprintln!("3→5: {:.1}s in all", took.elapsed().as_secs_f64());
}

/// The name of the member that leads now, through `endpoint`.
fn leader(endpoint: &str) -> String {
    let out = harness::etcdctl(endpoint, &["endpoint", "status", "--cluster", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("endpoint status: {e}: {}", text(&out)));
    let statuses = v.as_array().cloned().unwrap_or_default();
    let id = statuses
        .iter()
        .find_map(|s| s["Status"]["leader"].as_u64())
        .unwrap_or_else(|| panic!("no leader in {v}"));
    let list = harness::etcdctl(endpoint, &["member", "list", "-w", "json"]);
    let members: serde_json::Value = serde_json::from_slice(&list.stdout)
        .unwrap_or_else(|e| panic!("member list: {e}: {}", text(&list)));
    members["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["ID"].as_u64() == Some(id)))
        .and_then(|m| m["name"].as_str())
        .unwrap_or_else(|| panic!("leader {id} not in {members}"))
        .to_owned()
}

#[test]
fn a_peer_tls_migration_killed_at_every_step_boundary_and_mid_restart_ends_as_declared() {
    let Some(source) = etcd_3_5_30_or_skip() else {
        return;
    };
    let Some(tb) = up_or_skip(3) else { return };
    let took = Instant::now();
    let source = source.display().to_string();
    let plain = etcdfile(&tb, &source, &tb.all(), "");
    let peer = etcdfile(&tb, &source, &tb.all(), "\n[tls]\npeer = true\n");
    let out = tb.etcdplan(&plain, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "bootstrap:\n{}", text(&out));
    let first = planned(&tb, &peer);
    eprintln!("peer TLS: {} steps:\n  {}", first.len(), first.join("\n  "));
    assert!(!first.is_empty());
    let eps = tb.client_endpoints(&tb.all());
    let led = leader(&eps[0]);
    let follower = ["etcd-1", "etcd-2", "etcd-3"]
        .into_iter()
        .find(|m| *m != led)
        .unwrap_or("etcd-1");
    eprintln!("peer TLS: {led} leads; its restart and {follower}'s are killed while stopped");

    let probe = Probe::start(
        eps.clone(),
        Duration::from_millis(100),
        Duration::from_secs(1),
    );
    let writer = Writer::start(
        eps.clone(),
        "w",
        Duration::from_millis(50),
        Duration::from_secs(2),
    );
    let c = chain(
        &tb,
        &peer,
        "peer TLS",
        vec![format!("stopped:{led}"), format!("stopped:{follower}")],
        first.len() * 2 + 6,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let writes = writer.stop();
    let probes = probe.stop();

    eprintln!("peer TLS: strict writer: {}", writes.summary());
    for f in &writes.failed {
        eprintln!("peer TLS: failed write: {f}");
    }
    probes.assert_quorum_kept("peer TLS");
    assert!(writes.acked.len() > 20, "{}", writes.summary());
    let found = keys(&eps[1], "w");
    writes.assert_read_back("peer TLS", found.iter().map(String::as_str));
    assert_eq!(c.mid_step.len(), 2, "{c:?}");
    // A step killed in its middle is finished by the rerun: its kill stands
    // for its boundary.
    c.assert_progress("peer TLS", &first);
    assert_end_state(&tb, &peer, "peer TLS", 3);
    for (i, h) in tb.hosts.iter().enumerate() {
        let config = host_config(&tb, i);
        assert!(
            config.contains(&format!("https://{}:2380", h.ip)) && !config.contains(":2381"),
            "peer TLS: {}: {config}",
            h.name
        );
        for f in [
            "/etc/etcd/pki/peer.crt",
            "/etc/etcd/pki/peer.key",
            "/etc/etcd/pki/ca.crt",
        ] {
            assert!(h.file(f).exists(), "peer TLS: {}: no {f}", h.name);
        }
    }
    eprintln!("peer TLS: {:.1}s in all", took.elapsed().as_secs_f64());
}
