//! End to end: clusters built by hand, taken over in place. On booted hosts, a
//! hand-written `etcd.service` with every setting as a flag in `ExecStart`
//! (the 3-node how-to's way), run as Debian's etcd user with a drop-in and an
//! environment file; on namespace hosts, bare etcd processes started by a
//! script. Under a strict writer, each is adopted member by member: the same
//! member IDs, every acknowledged key read back, `plan` empty afterwards; an
//! apply killed while a member's takeover job runs leaves the member running.

mod harness;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::booted::boot_or_skip;
use harness::pki::{etcdctl_tls, issue, make_ca, place};
use harness::testbed::{Testbed, up_or_skip};
use harness::writer::{Writer, WriterTls, disruptions};
use harness::{etcdctl, text, wait_for};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

/// The flags a runbook puts on etcd's command line for member `i`; with
/// `tls`, client and peer TLS with client-certificate auth from the files
/// under /etc/etcd/ssl.
fn flags(tb: &Testbed, i: usize, token: &str, tls: bool) -> String {
    let ip = &tb.hosts[i].ip;
    let s = if tls { "https" } else { "http" };
    let cluster: Vec<String> = tb
        .hosts
        .iter()
        .take(3)
        .enumerate()
        .map(|(k, h)| format!("etcd-{}={s}://{}:2380", k + 1, h.ip))
        .collect();
    let mut f = format!(
        "--name etcd-{n} --data-dir /var/lib/etcd \
--listen-client-urls {s}://{ip}:2379 --advertise-client-urls {s}://{ip}:2379 \
--listen-peer-urls {s}://{ip}:2380 --initial-advertise-peer-urls {s}://{ip}:2380 \
--initial-cluster {c} --initial-cluster-token {token} --initial-cluster-state new",
        n = i + 1,
        c = cluster.join(","),
    );
    if tls {
        f.push_str(&format!(
            " --cert-file /etc/etcd/ssl/etcd-{n}.pem --key-file /etc/etcd/ssl/etcd-{n}-key.pem \
--trusted-ca-file /etc/etcd/ssl/ca.pem --client-cert-auth \
--peer-cert-file /etc/etcd/ssl/etcd-{n}.pem --peer-key-file /etc/etcd/ssl/etcd-{n}-key.pem \
--peer-trusted-ca-file /etc/etcd/ssl/ca.pem --peer-client-cert-auth",
            n = i + 1
        ));
    }
    f
}

/// The operator's CA and client certificate on this machine (made with openssl).
struct OperatorPki {
    ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl OperatorPki {
    fn writer_tls(&self) -> WriterTls {
        let read =
            |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{e}"));
        WriterTls {
            ca_pem: read(&self.ca),
            cert_pem: read(&self.cert),
            key_pem: read(&self.key),
        }
    }
}

/// etcdctl as the operator: plain, or over TLS with the operator's certificate.
fn ctl(endpoints: &str, pki: Option<&OperatorPki>, args: &[&str]) -> Output {
    match pki {
        Some(p) => etcdctl_tls(endpoints, &p.ca, Some((&p.cert, &p.key)), args),
        None => etcdctl(endpoints, args),
    }
}

/// The client URLs of every host, https when `tls`.
fn urls(tb: &Testbed, tls: bool) -> Vec<String> {
    tb.hosts
        .iter()
        .map(|h| format!("{}://{}:2379", if tls { "https" } else { "http" }, h.ip))
        .collect()
}

/// Member name → ID, as MemberList shows them.
fn member_ids(tb: &Testbed, pki: Option<&OperatorPki>) -> Vec<(String, String)> {
    let out = ctl(
        &urls(tb, pki.is_some())[0],
        pki,
        &["member", "list", "-w", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut ids: Vec<(String, String)> = v["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or("").to_owned(),
                        m["ID"].to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn all_healthy(tb: &Testbed, pki: Option<&OperatorPki>) -> bool {
    ctl(
        &urls(tb, pki.is_some()).join(","),
        pki,
        &["endpoint", "health"],
    )
    .status
    .success()
}

/// Whether the first three hosts' members are healthy (the fourth joins later).
fn all_healthy3(tb: &Testbed, pki: Option<&OperatorPki>) -> bool {
    ctl(
        &urls(tb, pki.is_some())[..3].join(","),
        pki,
        &["endpoint", "health"],
    )
    .status
    .success()
}

/// A writer through every member, already writing (over TLS with the
/// operator's certificate when given).
fn writer(tb: &Testbed, prefix: &str, pki: Option<&OperatorPki>) -> Writer {
    // The first three members: a fourth host may not run one yet.
    let w = Writer::start_with(
        urls(tb, pki.is_some())[..3].to_vec(),
        prefix,
        Duration::from_millis(20),
        Duration::from_secs(2),
        pki.map(OperatorPki::writer_tls),
    );
    std::thread::sleep(Duration::from_millis(300));
    w
}

/// Applies `file` under a writer putting `prefix/N` (over TLS with the
/// operator's certificate when given): failures within the apply's
/// disruptions, every acknowledged key read back. Returns the apply's output.
fn apply_under_writer(
    tb: &Testbed,
    file: &str,
    prefix: &str,
    what: &str,
    pki: Option<&OperatorPki>,
) -> String {
    let w = writer(tb, prefix, pki);
    let applied = ok(tb.etcdplan(file, &["apply", "--auto-approve"]));
    std::thread::sleep(Duration::from_millis(300));
    let seen = w.stop();
    seen.assert_within(what, disruptions(&applied));
    read_back(tb, prefix, &seen, what, pki);
    applied
}

/// Every acknowledged key is in the cluster, none it never put (read with
/// the operator's own certificate when given).
fn read_back(
    tb: &Testbed,
    prefix: &str,
    seen: &harness::writer::Writes,
    what: &str,
    pki: Option<&OperatorPki>,
) {
    let tls = pki.map(OperatorPki::writer_tls);
    let found = harness::writer::keys_with(&urls(tb, pki.is_some())[1], prefix, tls.as_ref());
    seen.assert_read_back(what, found.iter().map(String::as_str));
}

/// `etcdplan import` of the test bed's cluster through every member, with
/// the test bed's ssh key; the etcdfile it wrote.
fn import(tb: &Testbed, endpoints: &[String], extra: &[&str]) -> String {
    let (out, file) = import_output(tb, endpoints, extra, &[]);
    assert!(out.status.success(), "import failed:\n{}", text(&out));
    file.unwrap_or_else(|| panic!("import wrote no file"))
}

/// `etcdplan import` with `env` set: what it said, and the file it wrote if any.
fn import_output(
    tb: &Testbed,
    endpoints: &[String],
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Output, Option<String>) {
    let out_file = tb.dir.path().join("imported.toml");
    let _ = std::fs::remove_file(&out_file);
    let endpoints = endpoints.join(",");
    let key = tb.client_key.display().to_string();
    let known = tb.known_hosts.display().to_string();
    let path = out_file.display().to_string();
    let mut args = vec![
        "import",
        "--endpoints",
        &endpoints,
        "--ssh-identity",
        &key,
        "--ssh-known-hosts",
        &known,
        "--out",
        &path,
    ];
    args.extend_from_slice(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(&args)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (out, std::fs::read_to_string(&out_file).ok())
}

/// Builds the how-to's cluster on booted hosts: a hand-written unit in
/// /etc/systemd/system with every setting a flag, client and peer TLS with
/// client-certificate auth from the operator's openssl-made CA, run as
/// Debian's etcd user, extended by a drop-in and reading /etc/default/etcd.
fn hand_built_under_systemd(tb: &Testbed) -> OperatorPki {
    let dir = tb.dir.path().join("operator-pki");
    make_ca(&dir);
    issue(&dir, "operator", None, "clientAuth", "365");
    for (i, h) in tb.hosts.iter().enumerate().take(3) {
        let name = format!("etcd-{}", i + 1);
        issue(
            &dir,
            &name,
            Some(&format!("DNS:{name},IP:{}", h.ip)),
            "serverAuth,clientAuth",
            "365",
        );
        place(
            tb,
            i,
            &dir.join(format!("{name}.crt")),
            &format!("/etc/etcd/ssl/{name}.pem"),
            0o644,
        );
        place(
            tb,
            i,
            &dir.join(format!("{name}.key")),
            &format!("/etc/etcd/ssl/{name}-key.pem"),
            0o600,
        );
        place(tb, i, &dir.join("ca.crt"), "/etc/etcd/ssl/ca.pem", 0o644);
        let unit = format!(
            "[Unit]\nDescription=etcd (set up by hand)\nAfter=network-online.target\n\n\
[Service]\nType=notify\nUser=etcd\nEnvironmentFile=-/etc/default/etcd\n\
ExecStart=/usr/bin/etcd {}\nRestart=always\nRestartSec=5s\nLimitNOFILE=40000\n\n\
[Install]\nWantedBy=multi-user.target\n",
            flags(tb, i, "hand-built-1", true)
        );
        let script = format!(
            "set -e\ncat > /etc/systemd/system/etcd.service <<'EOF'\n{unit}EOF\n\
mkdir -p /etc/systemd/system/etcd.service.d\n\
printf '[Service]\\nLimitNOFILE=65536\\n' > /etc/systemd/system/etcd.service.d/override.conf\n\
printf '# etcd, set up by hand\\nETCD_LOG_LEVEL=info\\n' > /etc/default/etcd\n\
chown etcd:etcd /var/lib/etcd /etc/etcd/ssl/{name}-key.pem && chmod 700 /var/lib/etcd\n\
systemctl daemon-reload && systemctl enable --quiet etcd.service && systemctl start --no-block etcd.service\n"
        );
        let out = tb.ssh(i, &script);
        assert!(out.status.success(), "h{}: {}", i + 1, text(&out));
    }
    let pki = OperatorPki {
        ca: dir.join("ca.crt"),
        cert: dir.join("operator.crt"),
        key: dir.join("operator.key"),
    };
    assert!(
        wait_for(Duration::from_secs(60), || all_healthy3(tb, Some(&pki))),
        "the hand-built cluster did not come up"
    );
    pki
}

#[test]
fn a_hand_written_unit_cluster_with_its_own_tls_on_booted_hosts_is_imported_and_adopted() {
    // Three hosts run the cluster; the fourth joins it after the adoption.
    let Some(tb) = boot_or_skip(4) else { return };
    let pki = hand_built_under_systemd(&tb);
    let pki = Some(&pki);
    let ids = member_ids(&tb, pki);
    assert_eq!(ids.len(), 3, "{ids:?}");
    let (ca, cert, key) = pki
        .map(|p| {
            (
                p.ca.display().to_string(),
                p.cert.display().to_string(),
                p.key.display().to_string(),
            )
        })
        .unwrap_or_default();
    let file = import(
        &tb,
        &urls(&tb, true)[..3],
        &["--cacert", &ca, "--cert", &cert, "--key", &key],
    );
    for line in [
        "service = \"systemd\"",
        "run_as = \"etcd\"",
        "initial_cluster_token = \"hand-built-1\"",
        "issuer = \"external\"",
        "server_cert = \"/etc/etcd/ssl/{name}.pem\"",
        "server_key = \"/etc/etcd/ssl/{name}-key.pem\"",
        "trusted_ca = \"/etc/etcd/ssl/ca.pem\"",
        "client_cert_auth = true",
        "log_level = \"info\"",
    ] {
        assert!(file.lines().any(|l| l == line), "{line:?} missing:\n{file}");
    }
    assert!(
        file.contains("# from ExecStart of etcd.service on "),
        "{file}"
    );
    assert!(
        file.contains("# from ETCD_LOG_LEVEL in /etc/default/etcd on "),
        "{file}"
    );

    // The plan names three adopts and nothing else; never "not running".
    let planned = ok(tb.etcdplan(&file, &["plan"]));
    assert!(
        planned.contains("Plan: 0 to add, 3 to change, 0 to remove."),
        "{planned}"
    );
    for m in 1..=3 {
        assert!(
            planned.contains(&format!("~ etcd-{m}   adopt: runs under etcd.service")),
            "{planned}"
        );
    }
    assert!(
        planned.contains(
            "/etc/systemd/system/etcd.service.d/override.conf, /etc/default/etcd moved aside"
        ),
        "{planned}"
    );
    assert!(!planned.contains("not running"), "{planned}");
    let json: serde_json::Value =
        serde_json::from_slice(&tb.etcdplan(&file, &["plan", "--json"]).stdout).unwrap_or_default();
    let actions: Vec<&str> = json["changes"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(actions, ["adopt", "adopt", "adopt"], "{json}");

    apply_under_writer(&tb, &file, "a", "adopt under systemd with TLS", pki);
    assert_eq!(member_ids(&tb, pki), ids, "member IDs changed");

    for i in 0..3 {
        // etcdplan's unit runs it now; the old unit, drop-in and env file are kept aside.
        let out = tb.ssh(
            i,
            "grep -c 'Written by etcdplan' /etc/systemd/system/etcd.service; \
ls /etc/systemd/system/ | grep -c '^etcd.service.adopted-'; \
ls /etc/systemd/system/etcd.service.d/ | grep -c '^override.conf.adopted-'; \
ls /etc/default | grep -c '^etcd.adopted-'; \
cat /proc/$(systemctl show -p MainPID --value etcd.service)/cmdline | tr '\\0' ' '",
        );
        let said = text(&out);
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(&lines[..4], ["1", "1", "1", "1"], "h{}: {said}", i + 1);
        assert!(
            lines[4].contains("--config-file /etc/etcd/etcd.conf.yml"),
            "h{}: {said}",
            i + 1
        );
    }
    let empty = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));

    // Every host rebooted: etcdplan's members come back, not the old units.
    for i in 0..3 {
        tb.reboot(i).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            wait_for(Duration::from_secs(60), || all_healthy3(&tb, pki)),
            "after rebooting h{}",
            i + 1
        );
        let cmd = tb.ssh(
            i,
            "cat /proc/$(systemctl show -p MainPID --value etcd.service)/cmdline | tr '\\0' ' '",
        );
        assert!(
            text(&cmd).contains("--config-file"),
            "h{}: {}",
            i + 1,
            text(&cmd)
        );
    }
    assert_eq!(member_ids(&tb, pki), ids);
    let empty = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));

    // 3→4 as on a cluster etcdplan made: the operator places the new member's
    // certificate (issued by their CA), etcdplan adds it as a learner.
    let dir = tb.dir.path().join("operator-pki");
    let h4 = &tb.hosts[3];
    issue(
        &dir,
        "etcd-4",
        Some(&format!("DNS:etcd-4,IP:{}", h4.ip)),
        "serverAuth,clientAuth",
        "365",
    );
    place(
        &tb,
        3,
        &dir.join("etcd-4.crt"),
        "/etc/etcd/ssl/etcd-4.pem",
        0o644,
    );
    place(
        &tb,
        3,
        &dir.join("etcd-4.key"),
        "/etc/etcd/ssl/etcd-4-key.pem",
        0o600,
    );
    place(&tb, 3, &dir.join("ca.crt"), "/etc/etcd/ssl/ca.pem", 0o644);
    let own = tb.ssh(3, "chown etcd:etcd /etc/etcd/ssl/etcd-4-key.pem");
    assert!(own.status.success(), "{}", text(&own));
    let four = format!(
        "{file}\n[[member]]\nname = \"etcd-4\"\naddress = \"{}\"\n",
        h4.ip
    );
    let grown = apply_under_writer(&tb, &four, "f", "3→4 after adoption", pki);
    assert!(grown.contains("1 added, 0 changed, 0 removed"), "{grown}");
    assert_eq!(member_ids(&tb, pki).len(), 4);
    assert!(all_healthy(&tb, pki));
    let empty = tb.etcdplan(&four, &["plan", "--detailed-exitcode"]);
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));
}

/// Starts bare etcd processes on namespace hosts, as a script would.
fn hand_built_processes(tb: &Testbed) {
    for i in tb.all() {
        let out = tb.ssh(
            i,
            &format!(
                "mkdir -p /var/lib/etcdplan && cd /var/lib/etcd && (setsid nohup /usr/bin/etcd {} > /var/lib/etcdplan/by-hand.log 2>&1 < /dev/null &) ; echo started",
                flags(tb, i, "by-script", false)
            ),
        );
        assert!(out.status.success(), "h{}: {}", i + 1, text(&out));
    }
    assert!(
        wait_for(Duration::from_secs(30), || all_healthy(tb, None)),
        "the hand-started cluster did not come up"
    );
}

#[test]
fn bare_etcd_processes_are_adopted_into_the_process_service_and_a_killed_apply_leaves_them_running()
{
    let Some(tb) = up_or_skip(3) else { return };
    hand_built_processes(&tb);
    let ids = member_ids(&tb, None);
    let file = import(&tb, &urls(&tb, false), &[]);
    eprintln!("imported:\n{file}");
    assert!(file.contains("service = \"process\""), "{file}");
    assert!(
        file.contains("initial_cluster_token = \"by-script\""),
        "{file}"
    );
    let planned = ok(tb.etcdplan(&file, &["plan"]));
    assert!(
        planned.contains("Plan: 0 to add, 3 to change, 0 to remove."),
        "{planned}"
    );
    assert!(
        planned.contains("adopt: runs under the etcd process"),
        "{planned}"
    );

    // The apply is killed while the first takeover job runs on its host.
    let w = writer(&tb, "p", None);
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, &file).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["apply", "--auto-approve", "-f"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let mut killed_during: Option<usize> = None;
    while start.elapsed() < Duration::from_secs(60) && killed_during.is_none() {
        for (i, h) in tb.hosts.iter().enumerate() {
            let st = h.file(&format!("/var/lib/etcdplan/adopt-etcd-{}.status", i + 1));
            if std::fs::read_to_string(&st).is_ok_and(|s| s.trim() == "running") {
                let _ = child.kill();
                killed_during = Some(i);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.wait();
    let i = killed_during.unwrap_or_else(|| panic!("no takeover job was seen running"));
    // The job finishes on its own: the member runs under etcdplan's service.
    let st = tb.hosts[i].file(&format!("/var/lib/etcdplan/adopt-etcd-{}.status", i + 1));
    assert!(
        wait_for(Duration::from_secs(60), || std::fs::read_to_string(&st)
            .is_ok_and(|s| s.trim() == "done")),
        "the job did not finish: {:?}",
        std::fs::read_to_string(&st)
    );
    assert!(wait_for(Duration::from_secs(30), || all_healthy(&tb, None)));
    // The next plan continues with the others only.
    let rest = ok(tb.etcdplan(&file, &["plan"]));
    assert!(!rest.contains(&format!("etcd-{}   adopt", i + 1)), "{rest}");
    assert!(
        rest.contains("Plan: 0 to add, 2 to change, 0 to remove."),
        "{rest}"
    );
    let applied = ok(tb.etcdplan(&file, &["apply", "--auto-approve", "--lock-timeout", "60s"]));
    std::thread::sleep(Duration::from_millis(300));
    let seen = w.stop();
    // The takeover the killed apply started was one disruption more.
    seen.assert_within("adopt of processes", disruptions(&applied) + 1);
    read_back(&tb, "p", &seen, "adopt of processes", None);
    assert_eq!(member_ids(&tb, None), ids, "member IDs changed");
    assert_eq!(
        tb.etcd_pids().len(),
        3,
        "etcdplan's pid files name the three etcds"
    );
    let empty = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));
}

#[test]
fn debians_packaged_unit_with_etc_default_is_imported_and_adopted_keeping_its_raft_timings() {
    let Some(tb) = boot_or_skip(3) else { return };
    // Debian's own etcd.service, configured the Debian way: ETCD_* in
    // /etc/default/etcd; the member is named after its host (ETCD_NAME=%H in
    // the unit) and keeps its data in /var/lib/etcd/default.
    let cluster: Vec<String> = tb
        .hosts
        .iter()
        .map(|h| format!("{}=http://{}:2380", h.name, h.ip))
        .collect();
    for (i, h) in tb.hosts.iter().enumerate() {
        let ip = &h.ip;
        let defaults = format!(
            "# Set up by hand for the Debian package\n\
ETCD_LISTEN_CLIENT_URLS=\"http://{ip}:2379,http://127.0.0.1:2379\"\n\
ETCD_ADVERTISE_CLIENT_URLS=\"http://{ip}:2379\"\n\
ETCD_LISTEN_PEER_URLS=\"http://{ip}:2380\"\n\
ETCD_INITIAL_ADVERTISE_PEER_URLS=\"http://{ip}:2380\"\n\
ETCD_INITIAL_CLUSTER=\"{}\"\n\
ETCD_INITIAL_CLUSTER_TOKEN=\"debian-1\"\n\
ETCD_INITIAL_CLUSTER_STATE=\"new\"\n\
ETCD_HEARTBEAT_INTERVAL=\"200\"\n\
ETCD_ELECTION_TIMEOUT=\"2000\"\n\
ETCD_SNAPSHOT_COUNT=\"5000\"\n",
            cluster.join(",")
        );
        let out = tb.ssh(
            i,
            &format!(
                "set -e\ncat > /etc/default/etcd <<'EOF'\n{defaults}EOF\n\
systemctl enable --quiet etcd.service && systemctl start --no-block etcd.service\n"
            ),
        );
        assert!(out.status.success(), "h{}: {}", i + 1, text(&out));
    }
    assert!(
        wait_for(Duration::from_secs(60), || all_healthy(&tb, None)),
        "Debian's etcd.service did not bring the cluster up"
    );
    let ids = member_ids(&tb, None);
    assert_eq!(
        ids.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["h1", "h2", "h3"]
    );

    let file = import(&tb, &urls(&tb, false), &[]);
    for line in [
        "heartbeat_interval = \"200ms\"",
        "election_timeout = \"2000ms\"",
        "snapshot_count = 5000",
        "data_dir = \"/var/lib/etcd/default\"",
        "initial_cluster_token = \"debian-1\"",
        "extra_listen_addresses = [\"127.0.0.1\"]",
        "service = \"systemd\"",
        "run_as = \"etcd\"",
        "name = \"h1\"",
    ] {
        assert!(file.lines().any(|l| l == line), "{line:?} missing:\n{file}");
    }
    assert!(
        file.contains("# from ETCD_HEARTBEAT_INTERVAL in /etc/default/etcd on "),
        "{file}"
    );

    let planned = ok(tb.etcdplan(&file, &["plan"]));
    assert!(
        planned.contains("Plan: 0 to add, 3 to change, 0 to remove."),
        "{planned}"
    );
    assert!(
        planned.contains("its package held (apt-mark hold etcd-server"),
        "{planned}"
    );
    apply_under_writer(&tb, &file, "d", "adopt of Debian's unit", None);
    assert_eq!(member_ids(&tb, None), ids, "member IDs changed");
    for i in tb.all() {
        // etcdplan's unit shadows the package's; the settings ride along.
        let out = tb.ssh(
            i,
            "grep -c 'Written by etcdplan' /etc/systemd/system/etcd.service; \
grep -E '^(heartbeat-interval|election-timeout|snapshot-count):' /etc/etcd/etcd.conf.yml; \
ls /etc/default | grep -c '^etcd.adopted-'; \
apt-mark showhold; \
cat /proc/$(systemctl show -p MainPID --value etcd.service)/cmdline | tr '\\0' ' '",
        );
        let said = text(&out);
        assert!(
            said.starts_with(
                "1\nheartbeat-interval: 200\nelection-timeout: 2000\nsnapshot-count: 5000\n1\n"
            ),
            "h{}: {said}",
            i + 1
        );
        assert!(
            said.contains("--config-file /etc/etcd/etcd.conf.yml"),
            "h{}: {said}",
            i + 1
        );
    }
    let empty = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));

    // A normal change afterwards rolls as on a cluster etcdplan made.
    let quota = file.replace("[etcd]\n", "[etcd]\nquota_backend_bytes = \"4GiB\"\n");
    let applied = apply_under_writer(&tb, &quota, "q", "quota after adoption", None);
    assert!(
        applied.contains("0 added, 3 changed, 0 removed"),
        "{applied}"
    );
    for h in &tb.hosts {
        let m = harness::http_get(&h.ip, "/metrics");
        assert!(
            m.lines()
                .any(|l| l == "etcd_server_quota_backend_bytes 4.294967296e+09"),
            "{}",
            h.name
        );
    }
    // A reboot brings etcdplan's member back, not the package's unit.
    tb.reboot(1).unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_for(Duration::from_secs(60), || all_healthy(&tb, None)));
    let cmd = tb.ssh(
        1,
        "cat /proc/$(systemctl show -p MainPID --value etcd.service)/cmdline | tr '\\0' ' '",
    );
    assert!(text(&cmd).contains("--config-file"), "{}", text(&cmd));
    let empty = tb.etcdplan(&quota, &["plan", "--detailed-exitcode"]);
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));
}

#[test]
fn import_reads_a_cluster_with_auth_as_the_given_user_and_writes_no_password() {
    let Some(tb) = up_or_skip(3) else { return };
    hand_built_processes(&tb);
    let ep = &urls(&tb, false)[0];
    for cmd in [
        &["user", "add", "root:imp0rt-s3cret"][..],
        &["auth", "enable"][..],
    ] {
        let out = etcdctl(ep, cmd);
        assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    }
    // A wrong password: etcd refuses the user, and nothing is written.
    let (out, file) = import_output(
        &tb,
        &urls(&tb, false),
        &["--user", "root"],
        &[("ETCDCTL_PASSWORD", "bad-pw-x9")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(file.is_none());
    assert!(!text(&out).contains("bad-pw-x9"), "{}", text(&out));
    // As root, with the password in ETCDCTL_PASSWORD only.
    let (out, file) = import_output(
        &tb,
        &urls(&tb, false),
        &["--user", "root"],
        &[("ETCDCTL_PASSWORD", "imp0rt-s3cret")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let file = file.unwrap_or_default();
    // The store becomes [auth]: root's password named by a variable to set.
    assert!(
        file.contains("[auth]\nenabled = true\n")
            && file.contains("root_password_env = \"ETCDPLAN_PASSWORD_ROOT\""),
        "{file}"
    );
    assert!(
        file.contains("initial_cluster_token = \"by-script\""),
        "{file}"
    );
    assert!(!file.contains("imp0rt-s3cret") && !text(&out).contains("imp0rt-s3cret"));
    common_validates(&file);
}

/// The etcdfile parses as etcdplan reads it.
fn common_validates(text: &str) {
    let ctx = etcdplan::config::Context {
        base_dir: std::path::PathBuf::from("/tmp"),
        home: None,
        file_hash: etcdplan::config::hash(text),
        ..Default::default()
    };
    if let Err(e) = etcdplan::config::parse("etcdfile.toml", text.to_owned(), &ctx) {
        panic!("{e:?}\n{text}");
    }
}
