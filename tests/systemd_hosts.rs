//! End to end on booted hosts: Debian systems with systemd as PID 1 (booted
//! with systemd-nspawn in the test bed's network namespaces), etcd run by the
//! `etcd.service` unit etcdplan writes (`service = "systemd"`). Each scenario
//! boots its own hosts; what systemd decides (readiness through `Type=notify`,
//! `Restart=` after a removal, enablement across a reboot) is read back from
//! systemctl on the host.

mod harness;

use std::process::Output;
use std::time::Duration;

use harness::booted::boot_or_skip;
use harness::testbed::Testbed;
use harness::text;
use harness::writer::{Writer, disruptions};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

/// The plan for `file` is empty (exit 0 with `--detailed-exitcode`).
fn assert_plan_empty(tb: &Testbed, file: &str) {
    let out = tb.etcdplan(file, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan not empty:\n{}",
        text(&out)
    );
}

/// `status --json`, parsed.
fn status_json(tb: &Testbed, file: &str) -> serde_json::Value {
    let out = tb.etcdplan(file, &["status", "--json"]);
    assert!(out.status.success(), "status failed:\n{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// Every acknowledged key is in the cluster, none it never put.
fn read_back(
    tb: &Testbed,
    which: &[usize],
    prefix: &str,
    seen: &harness::writer::Writes,
    what: &str,
) {
    let endpoint = &tb.client_endpoints(which)[0];
    let found = harness::writer::keys(endpoint, prefix);
    seen.assert_read_back(what, found.iter().map(String::as_str));
}

#[test]
fn bootstrap_under_systemd() {
    let Some(tb) = boot_or_skip(3) else { return };
    let file = tb.etcdfile("booted", "", &tb.all(), &[]);
    let applied = ok(tb.etcdplan(&file, &["apply", "--auto-approve"]));
    assert!(
        applied.contains("3 added, 0 changed, 0 removed"),
        "{applied}"
    );

    for i in tb.all() {
        // systemd runs etcd: the unit is active (Type=notify: etcd said READY)
        // and enabled (it comes back at boot).
        let (active, enabled) = tb.unit_state(i);
        assert_eq!(
            (active.as_str(), enabled.as_str()),
            ("active", "enabled"),
            "h{}",
            i + 1
        );
        let main_pid = tb.ssh(i, "systemctl show -p MainPID --value etcd.service");
        let pid = String::from_utf8_lossy(&main_pid.stdout).trim().to_owned();
        let hostname = tb.ssh(i, "hostname");
        assert_eq!(
            String::from_utf8_lossy(&hostname.stdout).trim(),
            format!("h{}", i + 1)
        );
        let comm = tb.ssh(i, &format!("cat /proc/{pid}/comm"));
        assert_eq!(
            String::from_utf8_lossy(&comm.stdout).trim(),
            "etcd",
            "h{}",
            i + 1
        );
    }
    assert_eq!(tb.etcd_pids().len(), 3);
    assert_plan_empty(&tb, &file);

    // status shows what systemctl says of each unit, in JSON and for people.
    let v = status_json(&tb, &file);
    for m in 1..=3 {
        let unit = &v["hosts"][format!("etcd-{m}")]["unit"];
        assert_eq!(unit["name"], "etcd.service", "{unit}");
        assert_eq!(unit["active"], "active", "{unit}");
        assert_eq!(unit["sub"], "running", "{unit}");
        assert_eq!(unit["enabled"], "enabled", "{unit}");
        assert_eq!(unit["needs_daemon_reload"], false, "{unit}");
    }
    // Disabled by hand on one host: status says so, and plan notes it.
    let disabled = tb.ssh(1, "systemctl disable --quiet etcd.service");
    assert!(disabled.status.success(), "{}", text(&disabled));
    let human = ok(tb.etcdplan(&file, &["status"]));
    assert!(
        human.contains("etcd-1  etcd.service active (running), enabled"),
        "{human}"
    );
    assert!(
        human.contains(
            "etcd-2  etcd.service active (running), disabled: the member would not start at boot"
        ),
        "{human}"
    );
    let v = status_json(&tb, &file);
    assert_eq!(v["hosts"]["etcd-2"]["unit"]["enabled"], "disabled");
}

/// Applies `file` while a writer puts `prefix/N` every 20 ms through hosts
/// `which`; checks the writer's failures against the apply's disruptions
/// (plus `extra` for disruptions the test caused itself) and reads every
/// acknowledged key back. Returns the apply's output.
fn apply_under_writer(
    tb: &Testbed,
    file: &str,
    which: &[usize],
    prefix: &str,
    what: &str,
) -> String {
    let writer = writer(tb, which, prefix);
    let applied = ok(tb.etcdplan(file, &["apply", "--auto-approve"]));
    std::thread::sleep(Duration::from_millis(300));
    let seen = writer.stop();
    assert!(
        seen.acked.len() > 20,
        "{what}: only {} writes acknowledged",
        seen.acked.len()
    );
    seen.assert_within(what, disruptions(&applied));
    read_back(tb, which, prefix, &seen, what);
    applied
}

/// etcd's MainPID under systemd on host `i` (0 when not running).
fn main_pid(tb: &Testbed, i: usize) -> u32 {
    let out = tb.ssh(i, "systemctl show -p MainPID --value etcd.service");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Whether the member on host `i` answers as healthy.
fn healthy(tb: &Testbed, i: usize) -> bool {
    harness::etcdctl(&tb.client_endpoints(&[i])[0], &["endpoint", "health"])
        .status
        .success()
}

/// A strict writer putting `prefix/N` every 20 ms through hosts `which`,
/// each put under a 2 s deadline, already writing when it is returned.
fn writer(tb: &Testbed, which: &[usize], prefix: &str) -> Writer {
    let w = Writer::start(
        tb.client_endpoints(which),
        prefix,
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    std::thread::sleep(Duration::from_millis(300));
    w
}

#[test]
fn a_rolling_settings_change_and_a_changed_unit_under_systemd() {
    let Some(tb) = boot_or_skip(3) else { return };
    ok(tb.etcdplan(
        &tb.etcdfile("booted", "", &tb.all(), &[]),
        &["apply", "--auto-approve"],
    ));
    let before: Vec<u32> = tb.all().iter().map(|&i| main_pid(&tb, i)).collect();

    // 1. A settings change rolls through, one restart by systemd at a time.
    let quota = tb.etcdfile("booted", "quota_backend_bytes = \"4GiB\"\n", &tb.all(), &[]);
    let applied = apply_under_writer(&tb, &quota, &tb.all(), "q", "quota under systemd");
    assert!(
        applied.contains("0 added, 3 changed, 0 removed"),
        "{applied}"
    );
    for i in tb.all() {
        let pid = main_pid(&tb, i);
        assert!(
            pid != 0 && pid != before[i],
            "h{}: etcd was not restarted ({pid})",
            i + 1
        );
        let m = harness::http_get(&tb.hosts[i].ip, "/metrics");
        assert!(
            m.lines()
                .any(|l| l == "etcd_server_quota_backend_bytes 4.294967296e+09"),
            "h{}: quota not in effect",
            i + 1
        );
    }
    assert_plan_empty(&tb, &quota);

    // 2. The unit itself changes (etcd's binary moves) while etcd runs: the
    // plan shows the unit's diff, and the restart reloads systemd first, so
    // the new ExecStart is what runs.
    for i in tb.all() {
        let out = tb.ssh(
            i,
            "install -d /opt/etcd/bin && ln -sf /usr/bin/etcd /opt/etcd/bin/etcd",
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let moved = tb.etcdfile(
        "booted",
        "quota_backend_bytes = \"4GiB\"\nbinary = \"/opt/etcd/bin/etcd\"\n",
        &tb.all(),
        &[],
    );
    let planned = ok(tb.etcdplan(&moved, &["plan"]));
    assert!(
        planned.contains("/etc/systemd/system/etcd.service"),
        "{planned}"
    );
    assert!(
        planned.contains("+ExecStart=/opt/etcd/bin/etcd"),
        "{planned}"
    );
    apply_under_writer(&tb, &moved, &tb.all(), "u", "unit change under systemd");
    for i in tb.all() {
        let out = tb.ssh(
            i,
            "systemctl show -p NeedDaemonReload --value etcd.service; systemctl show -p ExecStart --value etcd.service",
        );
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(said.starts_with("no\n"), "h{}: {said}", i + 1);
        assert!(said.contains("/opt/etcd/bin/etcd"), "h{}: {said}", i + 1);
        assert_eq!(tb.unit_state(i).0, "active");
    }
    assert_plan_empty(&tb, &moved);

    // 3. etcd moves from root to Debian's etcd user: the unit gains User=,
    // the data dir is given to etcd before each restart, one member at a time.
    let as_etcd = moved.replace(
        "ssh_user = \"root\"",
        "ssh_user = \"root\"\nrun_as = \"etcd\"",
    );
    let planned = ok(tb.etcdplan(&as_etcd, &["plan"]));
    assert!(planned.contains("+User=etcd"), "{planned}");
    apply_under_writer(&tb, &as_etcd, &tb.all(), "e", "root to etcd under systemd");
    for i in tb.all() {
        let owner = tb.ssh(i, "stat -c '%U %a' /var/lib/etcd /var/lib/etcd/member/wal");
        assert_eq!(
            String::from_utf8_lossy(&owner.stdout),
            "etcd 700\netcd 700\n",
            "h{}",
            i + 1
        );
        let pid = main_pid(&tb, i);
        let user = tb.ssh(i, &format!("ps -o user= -p {pid}"));
        assert_eq!(
            String::from_utf8_lossy(&user.stdout).trim(),
            "etcd",
            "h{}",
            i + 1
        );
    }
    assert_plan_empty(&tb, &as_etcd);
}

#[test]
fn three_to_five_to_three_under_systemd_and_removed_members_stay_down_across_a_reboot() {
    let Some(tb) = boot_or_skip(5) else { return };
    let three = tb.etcdfile("booted", "", &[0, 1, 2], &[]);
    let five = tb.etcdfile("booted", "", &[0, 1, 2, 3, 4], &[]);
    ok(tb.etcdplan(&three, &["apply", "--auto-approve"]));

    let w = writer(&tb, &[0, 1, 2], "m");
    let grown = ok(tb.etcdplan(&five, &["apply", "--auto-approve"]));
    assert!(grown.contains("2 added, 0 changed, 0 removed"), "{grown}");
    for i in [3, 4] {
        assert_eq!(
            tb.unit_state(i),
            ("active".into(), "enabled".into()),
            "h{}",
            i + 1
        );
    }
    let shrunk = ok(tb.etcdplan(&three, &["apply", "--auto-approve"]));
    assert!(shrunk.contains("0 added, 0 changed, 2 removed"), "{shrunk}");
    std::thread::sleep(Duration::from_millis(300));
    let seen = w.stop();
    seen.assert_within(
        "3→5→3 under systemd",
        disruptions(&grown) + disruptions(&shrunk),
    );
    read_back(&tb, &[0], "m", &seen, "3→5→3 under systemd");
    assert_plan_empty(&tb, &three);

    // A removed member exits 0: Restart=on-failure leaves it down, and its
    // unit is disabled and moved aside, so a reboot does not bring it back.
    for i in [3, 4] {
        let (active, enabled) = tb.unit_state(i);
        assert_eq!(active, "inactive", "h{}", i + 1);
        assert_ne!(enabled, "enabled", "h{}", i + 1);
    }
    tb.reboot(3).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(3));
    let (active, enabled) = tb.unit_state(3);
    assert_ne!(active, "active", "h4 after its reboot");
    assert_ne!(enabled, "enabled", "h4 after its reboot");
    assert!(harness::booted::etcd_pids_in(&tb.hosts[3].ns).is_empty());
    assert_plan_empty(&tb, &three);
}

#[test]
fn a_member_whose_host_lost_its_data_is_replaced_under_systemd() {
    let Some(tb) = boot_or_skip(3) else { return };
    let three = tb.etcdfile("booted", "", &tb.all(), &[]);
    ok(tb.etcdplan(&three, &["apply", "--auto-approve"]));
    let w = writer(&tb, &[0, 2], "r");
    // etcd-2's disk is lost: etcd stopped, its data gone.
    let lost = tb.ssh(
        1,
        "systemctl stop etcd.service && rm -rf /var/lib/etcd/member",
    );
    assert!(lost.status.success(), "{}", text(&lost));
    assert!(harness::wait_for(Duration::from_secs(15), || healthy(
        &tb, 0
    ) && healthy(
        &tb, 2
    )));
    let planned = ok(tb.etcdplan(&three, &["plan"]));
    assert!(
        planned.contains("-/+ etcd-2   replace: its host lost its data"),
        "{planned}"
    );
    let applied = ok(tb.etcdplan(&three, &["apply", "--auto-approve"]));
    assert!(
        applied.contains("1 added, 0 changed, 1 removed"),
        "{applied}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let seen = w.stop();
    // The stop by hand was one more disruption than the apply's own.
    seen.assert_within("replace under systemd", disruptions(&applied) + 1);
    read_back(&tb, &[1], "r", &seen, "replace under systemd");
    assert_eq!(tb.unit_state(1), ("active".into(), "enabled".into()));
    assert_plan_empty(&tb, &three);
}

#[test]
fn peer_tls_switched_on_under_systemd() {
    let Some(tb) = boot_or_skip(3) else { return };
    let plain = tb.etcdfile("booted", "", &tb.all(), &[]);
    ok(tb.etcdplan(&plain, &["apply", "--auto-approve"]));
    let peer = tb.etcdfile("booted", "\n[tls]\npeer = true\n", &tb.all(), &[]);
    apply_under_writer(&tb, &peer, &tb.all(), "t", "peer TLS under systemd");
    for (i, h) in tb.hosts.iter().enumerate() {
        let key = h.file("/etc/etcd/pki/peer.key");
        let mode = std::fs::metadata(&key)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", key.display()));
        assert_eq!(mode, 0o600, "h{}", i + 1);
        assert_eq!(tb.unit_state(i).0, "active");
    }
    let list = harness::etcdctl(&tb.client_endpoints(&[0])[0], &["member", "list"]);
    for h in &tb.hosts {
        assert!(
            text(&list).contains(&format!("https://{}:2380", h.ip)),
            "{}",
            text(&list)
        );
    }
    assert_plan_empty(&tb, &peer);
}

#[test]
fn a_host_rebooted_mid_apply_stops_the_next_restart_and_its_member_comes_back_by_itself() {
    use std::io::BufRead as _;
    let Some(tb) = boot_or_skip(3) else { return };
    let plain = tb.etcdfile("booted", "", &tb.all(), &[]);
    ok(tb.etcdplan(&plain, &["apply", "--auto-approve"]));

    let w = writer(&tb, &tb.all(), "b");
    let quota = tb.etcdfile("booted", "quota_backend_bytes = \"3GiB\"\n", &tb.all(), &[]);
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, &quota).unwrap_or_else(|e| panic!("{e}"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["apply", "--auto-approve", "-f"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut log = String::new();
    let mut away: Option<usize> = None;
    let mut restarted: Vec<String> = Vec::new();
    if let Some(err) = child.stderr.take() {
        let mut lines = std::io::BufReader::new(err).lines();
        let mut gate = false;
        while let Some(Ok(line)) = lines.next() {
            log.push_str(&line);
            log.push('\n');
            // Progress lines: `[  3.6s] 5/10 restart etcd-3 …`.
            if line.starts_with('[')
                && let Some(rest) = line.split(" restart ").nth(1)
            {
                restarted.push(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
            if line.contains("wait until etcd-") && line.contains("healthy") {
                gate = true;
            } else if gate && away.is_none() && line.trim_start().starts_with("done in") {
                // Between two restarts, a host not yet restarted goes away:
                // etcdplan is held (SIGSTOP by its pid) until the host is down.
                let i = (0..3)
                    .find(|i| !restarted.contains(&format!("etcd-{}", i + 1)))
                    .unwrap_or_else(|| panic!("every member restarted already:\n{log}"));
                let pid = child.id().to_string();
                let _ = std::process::Command::new("kill")
                    .args(["-STOP", &pid])
                    .output();
                let off = tb.power_off(i);
                let _ = std::process::Command::new("kill")
                    .args(["-CONT", &pid])
                    .output();
                off.unwrap_or_else(|e| panic!("{e}"));
                away = Some(i);
            }
        }
    }
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    let away = away.unwrap_or_else(|| panic!("never reached the first gate:\n{log}"));
    let name = format!("etcd-{}", away + 1);
    assert!(
        !status.success(),
        "the apply went on with {name}'s host away:\n{log}"
    );
    assert!(log.contains("Not started:"), "{log}");
    // What the recap says was restarted (a refused restart is not; with
    // its files written in the same step: `✓ write 1 file and restart …`).
    let recap = |mark: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| l.trim_start().strip_prefix(mark))
            .filter_map(|l| l.split_once("restart "))
            .filter_map(|(_, m)| m.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    let done = recap("✓ ");
    // The away member's restart was never started, or it is the step that
    // failed (it could not reach the host): never done.
    assert!(
        !done.contains(&name) && (!restarted.contains(&name) || recap("✗ ").contains(&name)),
        "{name} was restarted while away:\n{log}"
    );

    // The host comes back; systemd starts its member by itself, and it rejoins.
    tb.power_on(away).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        harness::wait_for(Duration::from_secs(30), || healthy(&tb, away)),
        "{name} did not come back after its host booted"
    );
    assert_eq!(tb.unit_state(away), ("active".into(), "enabled".into()));
    // The next plan shows exactly the rest: the members not restarted yet.
    let rest = ok(tb.etcdplan(&quota, &["plan"]));
    for m in 1..=3 {
        let member = format!("etcd-{m}");
        let pending = rest.contains(&format!("~ {member}   restart"));
        assert_eq!(
            pending,
            !done.contains(&member),
            "{member}:\n{rest}\nfirst apply:\n{log}"
        );
    }
    // The first apply could not remove its lock file on the host that was
    // away: it holds until it goes stale (20 s after the apply ended).
    let applied = ok(tb.etcdplan(
        &quota,
        &["apply", "--auto-approve", "--lock-timeout", "30s"],
    ));
    std::thread::sleep(Duration::from_millis(300));
    let seen = w.stop();
    // The host's shutdown stopped its member (and maybe moved the leader).
    seen.assert_within(
        "reboot mid-apply",
        disruptions(&log) + disruptions(&applied) + 2,
    );
    read_back(&tb, &[0], "b", &seen, "reboot mid-apply");
    assert_plan_empty(&tb, &quota);

    // After the apply: a reboot of any host brings its member back by itself,
    // with the settings etcdplan wrote, and nothing left to do.
    tb.reboot(0).unwrap_or_else(|e| panic!("{e}"));
    assert!(harness::wait_for(Duration::from_secs(30), || healthy(
        &tb, 0
    )));
    assert_plan_empty(&tb, &quota);
}

#[test]
fn a_non_root_ssh_user_installs_the_unit_through_sudo_and_etcd_runs_as_etcd() {
    let Some(tb) = boot_or_skip(3) else { return };
    for i in tb.all() {
        tb.add_user(i, "ops", true)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let file = tb
        .etcdfile("booted", "\n[tls]\npeer = true\n", &tb.all(), &[])
        .replace(
            "ssh_user = \"root\"",
            "ssh_user = \"ops\"\nrun_as = \"etcd\"",
        );
    let applied = ok(tb.etcdplan(&file, &["apply", "--auto-approve"]));
    assert!(
        applied.contains("3 added, 0 changed, 0 removed"),
        "{applied}"
    );
    for i in tb.all() {
        assert_eq!(
            tb.unit_state(i),
            ("active".into(), "enabled".into()),
            "h{}",
            i + 1
        );
        // The unit and the config are root's, not the ssh user's; etcd's
        // data and private key are etcd's, 0700 and 0600 (Debian's etcd user).
        let owners = tb.ssh(
            i,
            "stat -c '%U %a %n' /etc/systemd/system/etcd.service /etc/etcd/etcd.conf.yml /var/lib/etcd /var/lib/etcd/member /etc/etcd/pki/peer.key",
        );
        assert_eq!(
            String::from_utf8_lossy(&owners.stdout),
            "root 644 /etc/systemd/system/etcd.service\nroot 644 /etc/etcd/etcd.conf.yml\n\
etcd 700 /var/lib/etcd\netcd 700 /var/lib/etcd/member\netcd 600 /etc/etcd/pki/peer.key\n",
            "h{}",
            i + 1
        );
        // systemd runs it as etcd (User= in the unit).
        let pid = main_pid(&tb, i);
        let uid = tb.ssh(
            i,
            &format!("awk '/^Uid:/ {{print $2}}' /proc/{pid}/status; id -u etcd"),
        );
        let uids = String::from_utf8_lossy(&uid.stdout).into_owned();
        let mut lines = uids.lines();
        assert_eq!(lines.next(), lines.next(), "h{}: {uids}", i + 1);
    }
    assert_plan_empty(&tb, &file);
    // Without sudo rights the user is refused, and nothing changes.
    let revoke = tb.ssh(0, "rm /etc/sudoers.d/ops");
    assert!(revoke.status.success());
    let out = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "etcd-1: {}: the ssh user needs passwordless sudo",
            tb.hosts[0].ip
        )),
        "{}",
        text(&out)
    );
}
