//! End to end over ssh: membership changes on the test bed while a client keeps
//! writing; every acknowledged write must survive, and plan must end empty.

mod harness;

use std::process::Output;
use std::time::Duration;

use harness::testbed::Testbed;
use harness::writer::{Writer, missing};
use harness::{text, wait_for};

fn testbed(n: usize) -> Option<Testbed> {
    harness::testbed::up_or_skip(n)
}

/// An etcdfile naming hosts `which` (0-based) as etcd-(i+1).
fn etcdfile(tb: &Testbed, which: &[usize]) -> String {
    tb.etcdfile("membership", "", which, &[])
}

fn etcdplan(tb: &Testbed, file: &str, args: &[&str]) -> Output {
    tb.etcdplan(file, args)
}

fn apply(tb: &Testbed, file: &str, extra: &[&str]) -> String {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(extra);
    let out = etcdplan(tb, file, &args);
    assert!(out.status.success(), "apply failed:\n{}", text(&out));
    text(&out)
}

fn member_names(tb: &Testbed, via: usize) -> Vec<String> {
    harness::voter_names(&format!("{}:2379", tb.hosts[via].ip))
}

fn endpoints(tb: &Testbed, which: &[usize]) -> Vec<String> {
    tb.client_endpoints(which)
}

#[test]
fn three_to_five_to_three_with_a_writer_and_a_removed_member_stays_out() {
    let Some(tb) = testbed(5) else { return };
    let three = etcdfile(&tb, &[0, 1, 2]);
    let five = etcdfile(&tb, &[0, 1, 2, 3, 4]);
    apply(&tb, &three, &[]);

    let writer = Writer::start(
        endpoints(&tb, &[0, 1, 2]),
        "w",
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    std::thread::sleep(Duration::from_millis(300));

    let out = apply(&tb, &five, &[]);
    assert!(out.contains("2 added, 0 changed, 0 removed"), "{out}");
    assert!(out.contains("snapshot saved to"), "{out}");
    assert_eq!(
        member_names(&tb, 0),
        ["etcd-1", "etcd-2", "etcd-3", "etcd-4", "etcd-5"]
    );

    let shrink = apply(&tb, &three, &[]);
    assert!(shrink.contains("0 added, 0 changed, 2 removed"), "{shrink}");
    assert_eq!(member_names(&tb, 0), ["etcd-1", "etcd-2", "etcd-3"]);

    std::thread::sleep(Duration::from_millis(300));
    let seen = writer.stop();
    assert!(
        seen.acked.len() > 50,
        "only {} writes acknowledged",
        seen.acked.len()
    );
    let lost = missing(&endpoints(&tb, &[1])[0], "w", &seen.acked);
    assert!(
        lost.is_empty(),
        "{} acknowledged keys are missing: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "3→5→3: {}: {:?}",
        seen.summary(),
        &seen.failed[..seen.failed.len().min(3)]
    );
    let out = etcdplan(&tb, &three, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The removed etcd-4: its data and config were moved aside, nothing deleted.
    assert!(!shrink.contains("warning"), "{shrink}");
    let h4 = &tb.hosts[3];
    assert!(!h4.file("/etc/etcd/etcd.conf.yml").exists());
    let aside: Vec<String> = std::fs::read_dir(h4.file("/var/lib/etcd"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        aside.iter().any(|n| n.starts_with("member.removed-")),
        "{aside:?}"
    );
    assert!(!aside.iter().any(|n| n == "member"), "{aside:?}");

    // Restarted by hand, as its service would start it: it cannot come back.
    let by_hand = tb.ssh(3, "cd /var/lib/etcdplan && nohup setsid /usr/bin/etcd --config-file /etc/etcd/etcd.conf.yml >> by-hand.log 2>&1 < /dev/null & sleep 2; echo started");
    assert!(by_hand.status.success(), "{}", text(&by_hand));
    // Even with its old config put back: its identity is gone with its data.
    let restore = tb.ssh(
        3,
        "cd /etc/etcd && mv \"$(ls -d etcd.conf.yml.removed-* | head -n 1)\" etcd.conf.yml && cd /var/lib/etcdplan && \
         (nohup setsid /usr/bin/etcd --config-file /etc/etcd/etcd.conf.yml >> by-hand.log 2>&1 < /dev/null & echo $! > by-hand.pid) && sleep 3; echo tried",
    );
    assert!(restore.status.success(), "{}", text(&restore));
    assert_eq!(member_names(&tb, 0), ["etcd-1", "etcd-2", "etcd-3"]);
    let pid = std::fs::read_to_string(h4.file("/var/lib/etcdplan/by-hand.pid")).unwrap_or_default();
    let pid = pid.trim().parse::<u32>().unwrap_or(0);
    let alive = pid > 0
        && std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !harness::is_zombie(pid);
    if alive {
        // Whatever it does, it is not a member; end it by its pid.
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .output();
    }
    let log = std::fs::read_to_string(h4.file("/var/lib/etcdplan/by-hand.log")).unwrap_or_default();
    eprintln!(
        "etcd-4 started by hand said: {}",
        log.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
    );
}

#[test]
fn a_member_whose_host_lost_etcd_and_data_is_replaced_under_writes() {
    let Some(tb) = testbed(3) else { return };
    let three = etcdfile(&tb, &[0, 1, 2]);
    apply(&tb, &three, &[]);
    let writer = Writer::start(
        endpoints(&tb, &[0, 2]),
        "r",
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    std::thread::sleep(Duration::from_millis(300));

    // etcd-2's host loses its etcd and its data.
    let lost = tb.ssh(
        1,
        "kill -9 $(cat /var/lib/etcdplan/etcd.pid); sleep 0.5; rm -rf /var/lib/etcd/member",
    );
    assert!(lost.status.success(), "{}", text(&lost));
    assert!(wait_for(Duration::from_secs(10), || tb.etcd_pids().len() == 2));
    // The survivors elect a new leader (about one election timeout).
    let survivors = format!("{}:2379,{}:2379", tb.hosts[0].ip, tb.hosts[2].ip);
    assert!(wait_for(Duration::from_secs(15), || {
        std::process::Command::new("/usr/bin/etcdctl")
            .env_remove("ETCDCTL_ENDPOINTS")
            .args([
                "--endpoints",
                &survivors,
                "--command-timeout=2s",
                "endpoint",
                "health",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    }));

    let out = etcdplan(&tb, &three, &["plan"]);
    assert!(
        text(&out).contains("-/+ etcd-2   replace: its host lost its data"),
        "{}",
        text(&out)
    );
    let out = apply(&tb, &three, &[]);
    assert!(out.contains("1 added, 0 changed, 1 removed"), "{out}");
    assert_eq!(member_names(&tb, 0), ["etcd-1", "etcd-2", "etcd-3"]);

    std::thread::sleep(Duration::from_millis(300));
    let seen = writer.stop();
    let lost = missing(&endpoints(&tb, &[1])[0], "r", &seen.acked);
    assert!(
        lost.is_empty(),
        "{} acknowledged keys are missing",
        lost.len()
    );
    eprintln!(
        "replace: {}: {:?}",
        seen.summary(),
        &seen.failed[..seen.failed.len().min(3)]
    );
    let out = etcdplan(&tb, &three, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn an_apply_killed_mid_join_is_resumed_by_the_next_plan() {
    use std::io::BufRead as _;
    let Some(tb) = testbed(4) else { return };
    let three = etcdfile(&tb, &[0, 1, 2]);
    let four = etcdfile(&tb, &[0, 1, 2, 3]);
    apply(&tb, &three, &[]);
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, &four).unwrap_or_else(|e| panic!("{e}"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["apply", "--auto-approve", "-f"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Kill it (SIGKILL, no chance to clean up) right after the learner is added.
    let mut added = false;
    if let Some(err) = child.stderr.take() {
        let mut lines = std::io::BufReader::new(err).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("added etcd-4 as learner") {
                added = true;
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(added, "the apply never added the learner");

    let out = etcdplan(&tb, &four, &["plan"]);
    let t = text(&out);
    assert!(
        t.contains("+ etcd-4   add: added as a learner earlier but never started"),
        "{t}"
    );
    assert!(
        !t.contains("add etcd-4 as a learner"),
        "the learner would be added twice:\n{t}"
    );
    // The killed apply's lock lives until its lease expires (20 s): wait for it.
    let out = apply(&tb, &four, &["--lock-timeout", "40"]);
    assert!(out.contains("1 added"), "{out}");
    assert_eq!(
        member_names(&tb, 0),
        ["etcd-1", "etcd-2", "etcd-3", "etcd-4"]
    );
    let out = etcdplan(&tb, &four, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
