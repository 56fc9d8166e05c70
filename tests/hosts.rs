//! End to end over ssh: etcdplan in the root namespace manages members on test
//! bed hosts (network namespaces with their own sshd and private folders).

mod harness;

use std::process::Output;
use std::time::{Duration, Instant};

use harness::testbed::Testbed;
use harness::{etcdctl, text};

fn testbed(n: usize) -> Option<Testbed> {
    harness::testbed::up_or_skip(n)
}

fn etcdfile(tb: &Testbed, etcd: &str) -> String {
    tb.etcdfile("testbed", etcd, &tb.all(), &[])
}

fn etcdplan(tb: &Testbed, file: &str, args: &[&str]) -> Output {
    tb.etcdplan(file, args)
}

#[test]
fn three_hosts_over_ssh_with_the_process_service() {
    let Some(tb) = testbed(3) else { return };
    let file = etcdfile(&tb, "");
    let endpoints: Vec<String> = tb.hosts.iter().map(|h| format!("{}:2379", h.ip)).collect();
    let all = endpoints.join(",");

    let out = etcdplan(&tb, &file, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "apply failed:\n{}", text(&out));
    assert!(
        text(&out).contains("3 added, 0 changed, 0 removed"),
        "{}",
        text(&out)
    );

    // From outside, through the etcd API: three started voters, all healthy.
    let list = etcdctl(&all, &["member", "list", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap_or_default();
    let members = v["members"].as_array().cloned().unwrap_or_default();
    assert_eq!(members.len(), 3, "{}", text(&list));
    assert!(
        members
            .iter()
            .all(|m| m["name"].as_str().is_some_and(|n| n.starts_with("etcd-")))
    );
    assert!(
        members
            .iter()
            .all(|m| m.get("isLearner").is_none_or(|l| l == false))
    );
    let health = etcdctl(&all, &["endpoint", "health"]);
    assert!(health.status.success(), "{}", text(&health));
    assert_eq!(
        text(&health).matches("is healthy").count(),
        3,
        "{}",
        text(&health)
    );
    let put = etcdctl(&endpoints[0], &["put", "k", "v"]);
    assert!(put.status.success(), "{}", text(&put));

    // Each host has its own config file, with the right mode, invisible to the others.
    for (i, h) in tb.hosts.iter().enumerate() {
        let cfg = std::fs::read_to_string(h.file("/etc/etcd/etcd.conf.yml")).unwrap_or_default();
        assert!(cfg.contains(&format!("name: 'etcd-{}'", i + 1)), "{cfg}");
        let mode = std::fs::metadata(h.file("/etc/etcd/etcd.conf.yml")).map(|m| {
            use std::os::unix::fs::PermissionsExt as _;
            m.permissions().mode() & 0o777
        });
        assert_eq!(mode.ok(), Some(0o644));
    }
    assert_eq!(tb.etcd_pids().len(), 3);

    // Nothing to do afterwards.
    let out = etcdplan(&tb, &file, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Stop one host's etcd by hand, over ssh: status and plan report it.
    let stop = tb.ssh(1, "kill $(cat /var/lib/etcdplan/etcd.pid)");
    assert!(stop.status.success(), "{}", text(&stop));
    assert!(harness::wait_for(Duration::from_secs(10), || tb
        .etcd_pids()
        .len()
        == 2));
    let status = etcdplan(&tb, &file, &["status"]);
    let st = text(&status);
    let line = st
        .lines()
        .find(|l| l.contains("etcd-2"))
        .unwrap_or_default();
    assert!(
        line.contains("unreachable") || line.contains("unhealthy"),
        "{st}"
    );
    let out = etcdplan(&tb, &file, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("~ etcd-2   start: member of the cluster, but its etcd is not running"),
        "{}",
        text(&out)
    );

    // And apply repairs it; the data is still there.
    let out = etcdplan(&tb, &file, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    let get = etcdctl(&endpoints[1], &["get", "k", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "v");
}

#[test]
fn wrong_host_key_is_refused_and_hosts_stay_untouched() {
    let Some(tb) = testbed(3) else { return };
    // Replace host 2's known key with another key.
    let other = tb.dir.path().join("other_key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(keygen.status.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap_or_default();
    let known = std::fs::read_to_string(&tb.known_hosts).unwrap_or_default();
    let ip2 = tb.hosts[1].ip.clone();
    let replaced: String = known
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{ip2} ")) {
                let mut p = other_pub.split_whitespace();
                format!(
                    "{ip2} {} {}\n",
                    p.next().unwrap_or(""),
                    p.next().unwrap_or("")
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&tb.known_hosts, replaced).unwrap_or_else(|e| panic!("{e}"));
    let real_fp = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(tb.hosts[1].root.join("ssh_host_ed25519_key.pub"))
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    assert!(real_fp.starts_with("SHA256:"));

    let out = etcdplan(&tb, &etcdfile(&tb, ""), &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!("ssh root@{ip2}:22: host key verification failed")),
        "{t}"
    );
    assert!(
        t.contains(&real_fp),
        "the offered fingerprint {real_fp} is not named:\n{t}"
    );
    assert!(
        t.contains("check the offered fingerprint out of band"),
        "{t}"
    );
    // The plan for the other hosts is still shown.
    assert!(t.contains("+ etcd-1") && t.contains("+ etcd-3"), "{t}");
    // Nothing changed anywhere.
    for h in &tb.hosts {
        assert!(
            !h.file("/etc/etcd/etcd.conf.yml").exists(),
            "{} was written",
            h.name
        );
    }
    assert!(tb.etcd_pids().is_empty());
}

#[test]
fn unreachable_and_unauthorised_hosts_are_one_line_each() {
    let Some(tb) = testbed(3) else { return };
    // Host 3 is cut off; a wrong key for everyone would fail all three.
    let down = std::process::Command::new("ip")
        .args(["link", "set", &tb.hosts[2].veth, "down"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(down.status.success());
    let started = Instant::now();
    let out = etcdplan(&tb, &etcdfile(&tb, ""), &["--ssh-timeout", "2", "plan"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "plan took {:?}",
        started.elapsed()
    );
    let t = text(&out);
    assert!(
        t.contains(&format!("ssh root@{}:22:", tb.hosts[2].ip)),
        "{t}"
    );
    assert!(t.contains("✗ etcd-3: ssh root@"), "{t}");
    assert!(t.contains("+ etcd-1") && t.contains("+ etcd-2"), "{t}");
    let status = etcdplan(&tb, &etcdfile(&tb, ""), &["--ssh-timeout", "2", "status"]);
    assert!(
        text(&status).contains(&format!(
            "✗ etcd-3: host unreachable: ssh root@{}:22",
            tb.hosts[2].ip
        )),
        "{}",
        text(&status)
    );

    // A missing etcd binary on the reachable hosts: named per host.
    let file = etcdfile(&tb, "binary = \"/opt/none/etcd\"\n");
    let out = etcdplan(&tb, &file, &["--ssh-timeout", "2", "plan"]);
    let t = text(&out);
    for h in &tb.hosts[..2] {
        assert!(
            t.contains(&format!(
                "the etcd binary /opt/none/etcd is missing on {}",
                h.ip
            )),
            "{t}"
        );
    }

    // A key the hosts do not accept: one clear line per host.
    let stranger = tb.dir.path().join("stranger");
    let _ = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .output();
    let file = etcdfile(&tb, "").replace(
        &format!("ssh_identity = \"{}\"", tb.client_key.display()),
        &format!("ssh_identity = \"{}\"", stranger.display()),
    );
    let out = etcdplan(&tb, &file, &["--ssh-timeout", "2", "plan"]);
    let t = text(&out);
    for h in &tb.hosts[..2] {
        assert!(
            t.contains(&format!("ssh root@{}:22: authentication failed", h.ip)),
            "{t}"
        );
    }
}

#[test]
fn a_hanging_command_hits_its_deadline() {
    use etcdplan::io::{Host, HostError, Script, SshHost, SshOptions};
    let Some(tb) = testbed(1) else { return };
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let opts = SshOptions {
            user: "root".into(),
            port: etcdplan::model::Port::new(22).unwrap_or_else(|| panic!("port")),
            identity: tb.client_key.clone(),
            known_hosts: tb.known_hosts.clone(),
            accept_new: false,
            connect_timeout: Duration::from_secs(5),
            persist: None,
        };
        let addr =
            etcdplan::model::Address::parse(&tb.hosts[0].ip).unwrap_or_else(|e| panic!("{e}"));
        let host = SshHost::connect(&addr, &opts).await;
        assert!(host.failure().is_none(), "{:?}", host.failure());
        let ok = host.run(&Script::new("echo", "hostname")).await;
        assert!(ok.is_ok_and(|o| o.stdout.trim() == "h1"));
        let started = Instant::now();
        let r = host
            .run(&Script::new("sleep", "sleep 60").timeout(Duration::from_secs(1)))
            .await;
        assert!(matches!(r, Err(HostError::Timeout { .. })), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // stdin is delivered whole (how files are uploaded).
        let data = "x".repeat(200_000);
        let r = host
            .run(&Script::new("wc", "wc -c").stdin(data.clone().into_bytes()))
            .await;
        assert!(r.is_ok_and(|o| o.stdout.trim() == "200000"));
        host.close().await;
    });
}

#[test]
fn a_non_root_ssh_user_works_through_sudo_and_a_password_prompt_is_refused() {
    let Some(tb) = testbed(3) else { return };
    if std::process::Command::new("sudo")
        .arg("--version")
        .output()
        .is_err()
    {
        let msg = "sudo is not installed";
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let user = harness::testbed::TestUser::create(true).unwrap_or_else(|e| panic!("{e}"));
    let file = etcdfile(&tb, "").replace(
        "ssh_user = \"root\"",
        &format!("ssh_user = \"{}\"", user.name),
    );

    let out = etcdplan(&tb, &file, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    let all: Vec<String> = tb.hosts.iter().map(|h| format!("{}:2379", h.ip)).collect();
    let health = etcdctl(&all.join(","), &["endpoint", "health"]);
    assert_eq!(
        text(&health).matches("is healthy").count(),
        3,
        "{}",
        text(&health)
    );
    // Written as root through sudo, not as the login user.
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(tb.hosts[0].file("/etc/etcd/etcd.conf.yml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.uid(), 0);

    // Without passwordless sudo: one clear line per host, nothing done.
    user.allow_sudo(false).unwrap_or_else(|e| panic!("{e}"));
    let out = etcdplan(&tb, &file, &["plan"]);
    let t = text(&out);
    for i in 1..=3 {
        assert!(
            t.contains(&format!(
                "etcd-{i}: {}: the ssh user needs passwordless sudo",
                tb.hosts[i - 1].ip
            )),
            "{t}"
        );
    }
}

/// The uid of a user of this machine (the test bed's hosts share its /etc/passwd).
fn uid_of(user: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap_or_else(|e| panic!("id: {e}"));
    text(&out)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("id -u {user}: {e}: {}", text(&out)))
}

/// The real uid in `/proc/PID/status`.
fn process_uid(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("no Uid in /proc/{pid}/status:\n{status}"))
}

/// Owner uid and mode (permission bits) of a host path.
fn owner_and_mode(h: &harness::testbed::TbHost, path: &str) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(h.file(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    (meta.uid(), meta.mode() & 0o777)
}

#[test]
fn run_as_a_user_with_the_process_service() {
    if !harness::prerequisites() {
        return;
    }
    // Made before the test bed so that it is dropped after it: userdel
    // refuses a user whose etcd still runs.
    let user = harness::testbed::TestUser::create(false).unwrap_or_else(|e| panic!("{e}"));
    let Some(tb) = testbed(3) else { return };
    let uid = uid_of(&user.name);
    let as_root =
        etcdfile(&tb, "").replace("[hosts]", "[tls]\nclient = true\npeer = true\n\n[hosts]");
    let run_as =
        |name: &str| as_root.replace("[hosts]\n", &format!("[hosts]\nrun_as = \"{name}\"\n"));

    // A user the hosts do not have blocks the plan, naming each host.
    let out = etcdplan(&tb, &run_as("epnosuchuser"), &["apply", "--auto-approve"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    for (i, h) in tb.hosts.iter().enumerate() {
        assert!(
            t.contains(&format!(
                "etcd-{}: user epnosuchuser (run_as) does not exist on {}",
                i + 1,
                h.ip
            )),
            "{t}"
        );
    }
    assert!(tb.etcd_pids().is_empty());

    // Created as root, as etcdplan always did.
    let out = etcdplan(&tb, &as_root, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    for (_, pid) in tb.etcd_pids() {
        assert_eq!(process_uid(pid), 0);
    }
    assert_eq!(owner_and_mode(&tb.hosts[0], "/var/lib/etcd").0, 0);

    // root → the user: the plan says why each member restarts, then does it.
    let file = run_as(&user.name);
    let out = etcdplan(&tb, &file, &["plan"]);
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "etcd runs as root, the etcdfile says run_as = \"{0}\": it restarts as {0}; its data dir /var/lib/etcd (owned by root) is given to {0} first (chown -R)",
            user.name
        )),
        "{t}"
    );
    let out = etcdplan(&tb, &file, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));

    let pids = tb.etcd_pids();
    assert_eq!(pids.len(), 3);
    for (i, pid) in pids {
        let h = &tb.hosts[i];
        // The pid file names etcd itself (setpriv execs it), run as the user.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&cmdline).contains("--config-file"),
            "{}: pid {pid} is not etcd",
            h.name
        );
        assert_eq!(process_uid(pid), uid, "{}", h.name);
        assert_eq!(
            owner_and_mode(h, "/var/lib/etcd"),
            (uid, 0o700),
            "{}",
            h.name
        );
        assert_eq!(
            owner_and_mode(h, "/var/lib/etcd/member/wal").0,
            uid,
            "{}: chown -R",
            h.name
        );
        for key in ["/etc/etcd/pki/server.key", "/etc/etcd/pki/peer.key"] {
            assert_eq!(owner_and_mode(h, key), (uid, 0o600), "{} {key}", h.name);
        }
        assert_eq!(
            owner_and_mode(h, "/etc/etcd/pki/peer.crt"),
            (0, 0o644),
            "{}",
            h.name
        );
    }
    let out = etcdplan(&tb, &file, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
