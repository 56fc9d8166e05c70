//! End to end on the test bed (namespace hosts, `service = "process"`, real
//! etcd and ssh): a 3-member cluster loses two members with their disks;
//! `plan` explains the loss and refuses to act; `apply --recover-from`
//! brings back three healthy voters with every acknowledged write. And a
//! recovery killed right after its forced start is finished by the next
//! `apply --recover-from`.

mod harness;

use std::process::{Command, Output};
use std::time::Duration;

use harness::failpoint::Running;
use harness::testbed::Testbed;
use harness::text;
use harness::writer::{Writer, missing};

type TestResult = Result<(), String>;

fn apply_ok(tb: &Testbed, file: &str, extra: &[&str]) -> Result<String, String> {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(extra);
    let out = tb.etcdplan(file, &args);
    if out.status.success() {
        Ok(text(&out))
    } else {
        Err(format!("apply {extra:?} failed:\n{}", text(&out)))
    }
}

/// `etcdplan ARGS` for a run that only looks (a plan, or an apply that must
/// be refused) while the quorum is lost, with a 2 s etcd request deadline:
/// a refused apply waits out its try of etcd's lock. The test bed's etcd
/// answers in milliseconds; the runs that act keep the default.
fn look(tb: &Testbed, file: &str, args: &[&str]) -> Output {
    let mut args = args.to_vec();
    args.extend_from_slice(&["--etcd-timeout", "2s"]);
    tb.etcdplan(file, &args)
}

/// `etcdctl` against one host, plain http, with a deadline.
fn etcdctl(tb: &Testbed, host: usize, args: &[&str]) -> Output {
    harness::etcdctl(&format!("{}:2379", tb.hosts[host].ip), args)
}

/// The voters' names as host `via` lists them (learners left out), sorted.
fn voters(tb: &Testbed, via: usize) -> Vec<String> {
    harness::voter_names(&format!("{}:2379", tb.hosts[via].ip))
}

/// Kills the etcd of hosts `which` by pid (SIGKILL), waits until each is
/// gone, and wipes its data dir: the disks are lost.
fn lose(tb: &Testbed, which: &[usize]) -> TestResult {
    kill(tb, which)?;
    for &i in which {
        let member = tb.hosts[i].file("/var/lib/etcd/member");
        std::fs::remove_dir_all(&member).map_err(|e| format!("{}: {e}", member.display()))?;
    }
    Ok(())
}

/// Kills the etcd of hosts `which` by pid (SIGKILL) and waits until each is
/// gone; their data stays.
fn kill(tb: &Testbed, which: &[usize]) -> TestResult {
    let pids: Vec<(usize, u32)> = tb
        .etcd_pids()
        .into_iter()
        .filter(|(i, _)| which.contains(i))
        .collect();
    if pids.len() != which.len() {
        return Err(format!("etcd pids of {which:?}: found {pids:?}"));
    }
    for (_, pid) in &pids {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let gone = harness::wait_for(Duration::from_secs(20), || {
        tb.etcd_pids().iter().all(|(i, _)| !which.contains(i))
    });
    if !gone {
        return Err(format!("the killed etcds of {which:?} are still there"));
    }
    Ok(())
}

/// A cluster of three with `n_min` or more acknowledged writes under `prefix`,
/// then hosts 2 and 3 lost; returns the etcdfile and the acknowledged keys.
fn three_then_lose_two(
    tb: &Testbed,
    prefix: &str,
    n_min: usize,
) -> Result<(String, Vec<String>), String> {
    let (file, acked) = three_with_writes(tb, prefix, n_min)?;
    lose(tb, &[1, 2])?;
    Ok((file, acked))
}

/// A cluster of three applied, then `n_min` or more writes acknowledged
/// under `prefix`; returns the etcdfile and the acknowledged keys.
fn three_with_writes(
    tb: &Testbed,
    prefix: &str,
    n_min: usize,
) -> Result<(String, Vec<String>), String> {
    let file = tb.etcdfile("recover", "", &tb.all(), &[]);
    apply_ok(tb, &file, &[])?;
    let writer = Writer::start(
        tb.client_endpoints(&tb.all()),
        prefix,
        Duration::from_millis(10),
        Duration::from_secs(2),
    );
    harness::wait_for(Duration::from_secs(30), || keys_under(tb, prefix) >= n_min);
    let seen = writer.stop();
    if seen.acked.len() < n_min {
        return Err(format!("only {} writes acknowledged", seen.acked.len()));
    }
    Ok((file, seen.acked))
}

/// How many keys are under `prefix/` (through host 0): the count etcd
/// answers with one key (etcdctl 3.4 has no `--count-only`).
fn keys_under(tb: &Testbed, prefix: &str) -> usize {
    let out = etcdctl(
        tb,
        0,
        &[
            "get",
            "--prefix",
            &format!("{prefix}/"),
            "--keys-only",
            "--limit",
            "1",
            "-w",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["count"].as_u64().unwrap_or(0) as usize
}

/// Three healthy voters, every key readable through each, `plan` empty.
fn recovered(
    tb: &Testbed,
    file: &str,
    prefix: &str,
    acked: &[String],
    copies: usize,
) -> TestResult {
    for via in 0..3 {
        let names = voters(tb, via);
        if names != ["etcd-1", "etcd-2", "etcd-3"] {
            return Err(format!("voters through host {via}: {names:?}"));
        }
        let health = etcdctl(tb, via, &["endpoint", "health"]);
        if !health.status.success() {
            return Err(format!("host {via} not healthy: {}", text(&health)));
        }
        let ep = &tb.client_endpoints(&[via])[0];
        let lost = missing(ep, prefix, acked);
        if !lost.is_empty() {
            return Err(format!(
                "{} of {} acknowledged keys missing through {ep}: {:?}",
                lost.len(),
                acked.len(),
                &lost[..lost.len().min(5)]
            ));
        }
    }
    let out = tb.etcdplan(file, &["plan", "--detailed-exitcode"]);
    if out.status.code() != Some(0) {
        return Err(format!("plan is not empty:\n{}", text(&out)));
    }
    if tb.hosts[0]
        .file("/etc/etcd/etcd.force-new-cluster.yml")
        .exists()
    {
        return Err("the forced start's config is still on host 1".into());
    }
    // The survivor's copy is kept beside its data; the lost members' old
    // files were moved aside, never deleted.
    let kept = aside(tb, 0, "/var/lib/etcd", "member.recovery-copy-");
    if kept.len() != copies {
        return Err(format!("recovery copies on host 1: {kept:?}"));
    }
    for i in [1, 2] {
        if aside(tb, i, "/etc/etcd", "etcd.conf.yml.removed-").is_empty() {
            return Err(format!(
                "host {}: its old config was not moved aside",
                i + 1
            ));
        }
    }
    Ok(())
}

/// Names in `dir` on host `i` starting with `prefix`.
fn aside(tb: &Testbed, i: usize, dir: &str, prefix: &str) -> Vec<String> {
    std::fs::read_dir(tb.hosts[i].file(dir))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Two of three members' etcd killed with their data kept: the quorum is
/// lost, and a plain `apply` brings it back by starting them. etcd can
/// neither grant the lease its lock is made of nor list its alarms without
/// a leader: the apply holds the lock files on the hosts instead, and the
/// observation does not wait for the calls that go through raft.
#[test]
fn two_of_three_stopped_with_their_data_are_started_by_a_plain_apply() -> TestResult {
    let Some(tb) = harness::testbed::up_or_skip(3) else {
        return Ok(());
    };
    let (file, acked) = three_with_writes(&tb, "s", 30)?;
    kill(&tb, &[1, 2])?;
    let planned = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    let shown = text(&planned);
    if planned.status.code() != Some(2)
        || !shown.contains("start etcd-2")
        || !shown.contains("start etcd-3")
        || !shown.contains("Starting the stopped members")
    {
        return Err(format!("the plan does not start them:\n{shown}"));
    }
    apply_ok(&tb, &file, &[])?;
    for via in 0..3 {
        let names = voters(&tb, via);
        if names != ["etcd-1", "etcd-2", "etcd-3"] {
            return Err(format!("voters through host {via}: {names:?}"));
        }
        let lost = missing(&tb.client_endpoints(&[via])[0], "s", &acked);
        if !lost.is_empty() {
            return Err(format!(
                "acknowledged keys missing through host {via}: {lost:?}"
            ));
        }
    }
    let again = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    if again.status.code() != Some(0) {
        return Err(format!("plan is not empty:\n{}", text(&again)));
    }
    // Every lock file is gone: the next apply is not held up.
    for i in 0..3 {
        if tb.hosts[i].file("/var/lib/etcdplan/etcdplan.lock").exists() {
            return Err(format!("host {}: a lock file is left", i + 1));
        }
    }
    Ok(())
}

#[test]
fn two_of_three_lost_with_their_disks_are_recovered_from_the_survivor() -> TestResult {
    let Some(tb) = harness::testbed::up_or_skip(3) else {
        return Ok(());
    };
    let t = std::time::Instant::now();
    let (file, acked) = three_then_lose_two(&tb, "q", 50)?;

    // plan explains the loss in one paragraph and proposes nothing.
    let out = look(&tb, &file, &["plan", "--detailed-exitcode"]);
    let said = text(&out);
    if out.status.code() != Some(1) {
        return Err(format!("plan should be blocked:\n{said}"));
    }
    for needle in [
        "lost its quorum: 1 of its 3 voters answers, 2 are needed. Down: etcd-2, etcd-3.",
        "etcd-2 does not answer; its host",
        "etcd is stopped, its data dir /var/lib/etcd is empty",
        "The most up-to-date member that answers is etcd-1",
        "--recover-from etcd-1",
    ] {
        if !said.contains(needle) {
            return Err(format!("plan does not say {needle:?}:\n{said}"));
        }
    }
    if said.contains("add etcd-2") || said.contains("Order:") {
        return Err(format!(
            "plan proposes steps without --recover-from:\n{said}"
        ));
    }
    let out = look(&tb, &file, &["apply", "--auto-approve"]);
    if out.status.success() {
        return Err(format!(
            "apply without --recover-from acted:\n{}",
            text(&out)
        ));
    }
    // Nothing was touched: the survivor still runs, the lost stay lost.
    if tb.etcd_pids().iter().map(|(i, _)| *i).collect::<Vec<_>>() != [0] {
        return Err(format!("etcd runs on {:?}", tb.etcd_pids()));
    }

    // Refusals: a member that does not answer.
    let out = look(&tb, &file, &["plan", "--recover-from", "etcd-2"]);
    if !text(&out).contains("etcd-2: it does not answer") {
        return Err(format!("recovery from a silent member:\n{}", text(&out)));
    }

    // A saved recovery plan needs --recover-from again, then runs as saved.
    let saved = tb.dir.path().join("recovery.plan.json");
    let saved = saved.to_str().ok_or("path")?;
    let out = look(
        &tb,
        &file,
        &["plan", "--recover-from", "etcd-1", "--out", saved],
    );
    if !out.status.success() {
        return Err(format!("plan --out:\n{}", text(&out)));
    }
    let out = tb.etcdplan(&file, &["apply", saved]);
    if out.status.success() || !text(&out).contains("give --recover-from etcd-1 again") {
        return Err(format!(
            "a saved recovery applied without the flag:\n{}",
            text(&out)
        ));
    }
    let out = tb.etcdplan(&file, &["apply", saved, "--recover-from", "etcd-1"]);
    let applied = text(&out);
    if !out.status.success() {
        return Err(format!("apply of the saved recovery failed:\n{applied}"));
    }
    for needle in ["--force-new-cluster", "promote etcd-3 to voter"] {
        if !applied.contains(needle) {
            return Err(format!("apply output lacks {needle:?}:\n{applied}"));
        }
    }
    recovered(&tb, &file, "q", &acked, 1)?;
    eprintln!(
        "quorum loss recovered with {} keys in {:.1}s",
        acked.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The index of the first step of `kind` in the recovery plan.
fn step_index(tb: &Testbed, file: &str, kind: &str) -> Result<usize, String> {
    let out = look(tb, file, &["plan", "--json", "--recover-from", "etcd-1"]);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    v["steps"]
        .as_array()
        .and_then(|s| s.iter().position(|s| s["kind"] == kind))
        .ok_or_else(|| format!("no {kind} step in {}", text(&out)))
}

/// `apply --recover-from etcd-1` held for good by the failpoint once the
/// first step of `kind` is done; `look` runs while it is held, then it is
/// killed by its pid (SIGKILL). Returns what `look` saw.
fn killed_after<T>(
    tb: &Testbed,
    file: &str,
    kind: &str,
    look: impl FnOnce() -> T,
) -> Result<T, String> {
    let n = step_index(tb, file, kind)?;
    let mut run = Running::start(
        tb.dir.path(),
        file,
        &[
            "apply",
            "--auto-approve",
            "--recover-from",
            "etcd-1",
            "--gate-timeout",
            "20s",
        ],
        &format!("after-step:{n}"),
    )?;
    let looked = run.wait_for_failpoint(Duration::from_secs(300)).then(look);
    run.kill();
    looked.ok_or_else(|| format!("the failpoint was not reached:\n{}", run.so_far()))
}

/// The killed apply's lock files still hold (their holder is gone, but they
/// are fresh): the next apply is refused naming the lock, which
/// `force-unlock` removes.
fn unlock_the_killed(tb: &Testbed, file: &str) -> TestResult {
    let out = tb.etcdplan(
        file,
        &["apply", "--auto-approve", "--recover-from", "etcd-1"],
    );
    let said = text(&out);
    if out.status.success() {
        return Err(format!("apply ran despite the lock:\n{said}"));
    }
    let id = said
        .split("lock id ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| format!("apply should be refused by the lock:\n{said}"))?;
    let out = tb.etcdplan(file, &["force-unlock", id]);
    if !out.status.success() || !text(&out).contains("Removed the lock files") {
        return Err(format!("force-unlock {id}:\n{}", text(&out)));
    }
    Ok(())
}

/// Whether etcd-1's process (namespace hosts) runs on the forced config.
fn runs_forced(tb: &Testbed) -> Result<bool, String> {
    let pid = std::fs::read_to_string(tb.hosts[0].file("/var/lib/etcdplan/etcd.pid"))
        .map_err(|e| e.to_string())?;
    let cmdline =
        std::fs::read(format!("/proc/{}/cmdline", pid.trim())).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&cmdline).contains("force-new-cluster"))
}

#[test]
fn a_recovery_killed_after_its_forced_start_is_finished_by_the_next_apply() -> TestResult {
    let Some(tb) = harness::testbed::up_or_skip(3) else {
        return Ok(());
    };
    let (file, acked) = three_then_lose_two(&tb, "k", 20)?;
    killed_after(&tb, &file, "force_new_cluster", || ())?;
    // etcd-1 runs alone on the forced config; plan says the recovery
    // stopped half way and plans nothing without the flag.
    if !runs_forced(&tb)? {
        return Err("etcd-1 is not the forced start".into());
    }
    let out = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    if out.status.code() != Some(1) || !text(&out).contains("stopped half way") {
        return Err(format!("plan after the kill:\n{}", text(&out)));
    }
    unlock_the_killed(&tb, &file)?;
    let applied = apply_ok(&tb, &file, &["--recover-from", "etcd-1"])?;
    if applied.contains("copy its data") || !applied.contains("stop the forced start of etcd-1") {
        return Err(format!(
            "the second apply did not continue from the forced start:\n{applied}"
        ));
    }
    if runs_forced(&tb)? {
        return Err("etcd-1 still runs on the forced config".into());
    }
    recovered(&tb, &file, "k", &acked, 1)
}

#[test]
fn a_recovery_killed_after_its_copy_is_not_started_by_a_plain_apply_and_is_finished() -> TestResult
{
    let Some(tb) = harness::testbed::up_or_skip(3) else {
        return Ok(());
    };
    let (file, acked) = three_then_lose_two(&tb, "c", 20)?;
    killed_after(&tb, &file, "copy_data", || ())?;
    // etcd-1 is stopped, and no member answers: a plain plan would start it
    // beside two members bootstrapping afresh. The recovery mark stops it.
    if !tb.etcd_pids().is_empty() {
        return Err(format!("etcd runs: {:?}", tb.etcd_pids()));
    }
    let out = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    if out.status.code() != Some(1)
        || !text(&out).contains("a quorum-loss recovery from etcd-1 started here")
    {
        return Err(format!("plan after the kill:\n{}", text(&out)));
    }
    unlock_the_killed(&tb, &file)?;
    // No member answers; etcd-1's host is the only one with data its WAL names.
    let applied = apply_ok(&tb, &file, &["--recover-from", "etcd-1"])?;
    if !applied.contains("No member answers the etcd API") {
        return Err(format!("the second apply:\n{applied}"));
    }
    recovered(&tb, &file, "c", &acked, 2)?;
    if tb.hosts[0]
        .file("/var/lib/etcdplan/etcd.recovery-under-way")
        .exists()
    {
        return Err("the recovery mark is still there".into());
    }
    Ok(())
}

/// Runs `command` on booted host `i`; its stdout, trimmed.
fn on(tb: &Testbed, i: usize, command: &str) -> String {
    String::from_utf8_lossy(&tb.ssh(i, command).stdout)
        .trim()
        .to_owned()
}

#[test]
fn under_systemd_the_forced_start_is_a_transient_unit_and_lost_units_are_disabled() -> TestResult {
    let Some(tb) = harness::booted::boot_or_skip(3) else {
        return Ok(());
    };
    let (file, acked) = three_with_writes(&tb, "s", 20)?;
    // Two disks lost: etcd stopped there and the data gone; their units are
    // still enabled (a reboot would start them on an empty data dir).
    for i in [1, 2] {
        let out = tb.ssh(
            i,
            "systemctl stop etcd.service && rm -rf /var/lib/etcd/member",
        );
        if !out.status.success() {
            return Err(format!("host {}: {}", i + 1, text(&out)));
        }
    }
    // Right after the forced start: etcd-1 runs in the transient unit, not
    // in etcd.service, whose unit and config have no force flag; the lost
    // members' units are disabled and moved aside.
    let state = killed_after(&tb, &file, "force_new_cluster", || {
        (
            on(&tb, 0, "systemctl is-active etcd-force-new-cluster.service"),
            on(&tb, 0, "systemctl is-active etcd.service"),
            on(
                &tb,
                0,
                "grep -c force /etc/systemd/system/etcd.service /etc/etcd/etcd.conf.yml || true",
            ),
            on(
                &tb,
                1,
                "systemctl is-enabled etcd.service 2>&1; ls /etc/systemd/system | grep -c 'etcd.service.removed-'",
            ),
        )
    });
    let state = match state {
        Ok(s) => s,
        Err(e) => {
            let journal = on(
                &tb,
                0,
                "journalctl -u etcd-force-new-cluster --no-pager -n 40 2>&1",
            );
            return Err(format!("{e}\n{journal}"));
        }
    };
    if state.0 != "active" || state.1 != "inactive" {
        return Err(format!("after the forced start: {state:?}"));
    }
    if state.2.lines().any(|l| !l.ends_with(":0")) {
        return Err(format!(
            "a file etcd.service reads has the flag: {}",
            state.2
        ));
    }
    if state.3.contains("enabled\n") || !state.3.ends_with('1') {
        return Err(format!("etcd-2's unit after the fence: {:?}", state.3));
    }
    unlock_the_killed(&tb, &file)?;
    apply_ok(&tb, &file, &["--recover-from", "etcd-1"])?;
    for i in 0..3 {
        if tb.unit_state(i) != ("active".into(), "enabled".into()) {
            return Err(format!(
                "host {}: etcd.service {:?}",
                i + 1,
                tb.unit_state(i)
            ));
        }
    }
    let transient = on(&tb, 0, "systemctl is-active etcd-force-new-cluster.service");
    if transient == "active" {
        return Err("the transient unit still runs".into());
    }
    for via in 0..3 {
        let names = voters(&tb, via);
        if names != ["etcd-1", "etcd-2", "etcd-3"] {
            return Err(format!("voters through host {via}: {names:?}"));
        }
        let ep = &tb.client_endpoints(&[via])[0];
        let lost = missing(ep, "s", &acked);
        if !lost.is_empty() {
            return Err(format!("{} keys missing through {ep}", lost.len()));
        }
    }
    let out = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    if out.status.code() != Some(0) {
        return Err(format!("plan is not empty:\n{}", text(&out)));
    }
    Ok(())
}
