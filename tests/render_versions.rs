//! The config rendered for a release is one that release starts with: the
//! etcdfile with every setting (`hostfiles/testdata/every_setting.toml`: TLS
//! on both sides, renamed experimental keys, feature gates) rendered for 3.4
//! and for 3.5 and started for real, one member on 127.0.0.1 each, on
//! Debian's etcd 3.4.23 (`/usr/bin/etcd`, scripts/setup.sh) and the 3.5.16
//! and 3.5.30 releases of the harness. 3.6 and 3.7 cannot be had on this
//! machine: their renderings are checked against their key tables only
//! (the goldens in `crates/etcdplan-core/src/hostfiles/snapshots/`).
//!
//! The corruption checks etcdplan turns on by default are seen working: the
//! file leaves them to the defaults (the testdata's explicit initial check is
//! taken out), etcd logs them on in its configuration, a restart of the
//! initialized member runs the initial check, and 3.5's leader runs the
//! compact-hash check (its period cut to 1 s). The metrics listener of this
//! TLS member with client-certificate auth serves `/metrics` over plain http
//! to a client with no certificate, while its client port refuses plain http.

mod harness;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use etcdplan::config::{self, Context, Desired};
use etcdplan::hostfiles::{self, Initial};
use etcdplan::model::{EtcdVersion, MinorVersion};
use etcdplan::pki::{Ca, Role};
use harness::release::{etcd_3_5_16_or_skip, etcd_3_5_30_or_skip};
use harness::wait_for;

/// How long a member gets to answer healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
/// How long a stopped member gets to exit before it is killed.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Debian bookworm's etcd, or a skip (a failure under `CI=true`).
fn system_etcd_or_skip() -> Option<PathBuf> {
    let etcd = PathBuf::from("/usr/bin/etcd");
    if etcd.exists() {
        return Some(etcd);
    }
    let msg = "/usr/bin/etcd is missing (apt-get install etcd-server, see scripts/setup.sh)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: a skipped test is a failure)");
    }
    eprintln!("skipping: {msg}");
    None
}

/// A port free on 127.0.0.1 and 127.0.0.2 now.
fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or_default();
        if port != 0 && TcpListener::bind(("127.0.0.2", port)).is_ok() {
            return port;
        }
    }
}

/// What `etcd --version` says.
fn version_of(etcd: &Path) -> EtcdVersion {
    let out = Command::new(etcd)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", etcd.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))
        .and_then(|v| EtcdVersion::parse(v.trim()))
        .unwrap_or_else(|| panic!("no version in {text}"))
}

/// A started etcd, stopped by its pid when dropped.
struct Running {
    child: Child,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).output();
        let exited = wait_for(EXIT_WITHIN, || matches!(self.child.try_wait(), Ok(Some(_))));
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The etcdfile with every setting, for one member under `dir`, with the
/// corruption checks left to etcdplan's defaults and the compact-hash
/// check's period cut to 1 s (in nanoseconds, as etcd's YAML takes it; 3.4
/// has no such check and its file leaves the key out).
fn every_setting(dir: &Path, client: u16, peer: u16, metrics: u16) -> Desired {
    let text = include_str!("../crates/etcdplan-core/src/hostfiles/testdata/every_setting.toml")
        .replace(
            "experimental-initial-corrupt-check = true\n",
            "experimental-compact-hash-check-time = 1000000000\n",
        )
        .replace("@DIR@", &dir.display().to_string())
        .replace("@CLIENT@", &client.to_string())
        .replace("@PEER@", &peer.to_string())
        .replace("@METRICS@", &metrics.to_string());
    let ctx = Context {
        base_dir: dir.to_path_buf(),
        home: None,
        file_hash: config::hash(&text),
        ..Default::default()
    };
    match config::parse("etcdfile.toml", text.clone(), &ctx) {
        Ok(l) => l.desired,
        Err(e) => panic!("every_setting.toml invalid: {e:?}"),
    }
}

/// Writes a PEM file with `mode`.
fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// etcdctl over TLS with the client certificate, under short deadlines.
fn etcdctl(endpoint: &str, client: &(PathBuf, PathBuf, PathBuf), args: &[&str]) -> String {
    let (ca, cert, key) = client;
    let out = Command::new("/usr/bin/etcdctl")
        .env_remove("ETCDCTL_ENDPOINTS")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg(format!("--cacert={}", ca.display()))
        .arg(format!("--cert={}", cert.display()))
        .arg(format!("--key={}", key.display()))
        .args(["--dial-timeout=2s", "--command-timeout=5s"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("etcdctl: {e}"));
    harness::text(&out)
}

/// The body of `GET /metrics` on `port` of 127.0.0.1 (plain http), empty
/// when nothing answers within 5 s.
fn metrics(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// `GET /metrics` over plain http on the client port: the status line, or
/// empty when the connection is refused or closed without one.
fn plain_http_status(port: u16) -> String {
    let body = metrics(port);
    body.lines().next().unwrap_or_default().to_owned()
}

/// Starts `etcd` with `config_file`, its output appended to `log_path`.
fn start(etcd: &Path, config_file: &Path, log_path: &Path) -> Running {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .unwrap_or_else(|e| panic!("{e}"));
    let err = log.try_clone().unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new(etcd)
        .arg("--config-file")
        .arg(config_file)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", etcd.display()));
    Running { child }
}

/// Renders the etcdfile for the release `etcd` is, starts it with that file,
/// and checks it serves on both client listeners with the settings written.
fn starts_with_its_rendering(etcd: &Path) {
    let version = version_of(etcd);
    let release: MinorVersion = version.minor();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path();
    let (client, peer, metrics_port) = (free_port(), free_port(), free_port());
    let d = every_setting(dir, client, peer, metrics_port);
    let m = &d.members[0];

    // The member's certificates from a CA of the test's own, where the
    // rendered file points.
    let ca = Ca::create(&dir.join("ca"), d.cluster.as_str()).unwrap_or_else(|e| panic!("{e}"));
    let paths = m.tls_paths(&d.tls);
    let sans = hostfiles::member_sans(m);
    let server = ca
        .issue(Role::Server, m.name.as_str(), &sans, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let peer_cert = ca
        .issue(Role::Peer, m.name.as_str(), &sans, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let user = ca
        .issue(Role::Client, "root", &[], 1)
        .unwrap_or_else(|e| panic!("{e}"));
    write(&paths.ca, ca.cert_pem(), 0o644);
    write(&paths.server_cert, &server.cert_pem, 0o644);
    write(&paths.server_key, &server.key_pem, 0o600);
    write(&paths.peer_cert, &peer_cert.cert_pem, 0o644);
    write(&paths.peer_key, &peer_cert.key_pem, 0o600);
    let client_files = (
        paths.ca.clone(),
        dir.join("client.crt"),
        dir.join("client.key"),
    );
    write(&client_files.1, &user.cert_pem, 0o644);
    write(&client_files.2, &user.key_pem, 0o600);

    let yaml = hostfiles::etcd_config(&d, m, &Initial::bootstrap(&d), release);
    // The rendering is the release's own (the goldens show it whole).
    assert_eq!(yaml.contains("enable-v2: false\n"), release.minor <= 5);
    assert!(!yaml.contains("feature-gates"), "{yaml}");
    // The corruption checks, on by default under this release's names.
    assert!(
        yaml.contains("experimental-initial-corrupt-check: true\n"),
        "{yaml}"
    );
    assert_eq!(
        yaml.contains("experimental-compact-hash-check-enabled: true\n"),
        release.minor == 5,
        "{yaml}"
    );
    let config_file = m.config_file();
    write(&config_file, &yaml, 0o644);

    let log_path = dir.join("etcd.log");
    let mut running = start(etcd, &config_file, &log_path);
    let log = || fs::read_to_string(&log_path).unwrap_or_default();

    // Healthy on its address and on the extra listener, over TLS with a
    // client certificate (client-cert-auth), within the deadline.
    for host in ["127.0.0.1", "127.0.0.2"] {
        let endpoint = format!("https://{host}:{client}");
        let healthy = wait_for(HEALTHY_WITHIN, || {
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!(
                    "etcd {version} exited ({status}) on its rendering:\n{yaml}\n{}",
                    log()
                );
            }
            etcdctl(&endpoint, &client_files, &["endpoint", "health"]).contains("is healthy")
        });
        assert!(
            healthy,
            "etcd {version} not healthy at {endpoint} within {HEALTHY_WITHIN:?}:\n{}",
            log()
        );
    }
    let put = etcdctl(
        &format!("https://127.0.0.1:{client}"),
        &client_files,
        &["put", "k", "v"],
    );
    assert!(put.contains("OK"), "{put}");

    // The rendered settings took: the quota in /metrics on the metrics
    // listener, the others in the configuration etcd logs when it starts.
    let body = metrics(metrics_port);
    assert!(
        body.lines()
            .any(|l| l == "etcd_server_quota_backend_bytes 3.221225472e+09"),
        "etcd {version}: no 3 GiB quota in /metrics:\n{}",
        body.lines()
            .filter(|l| l.contains("quota"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let started = log();
    for field in [
        "\"snapshot-count\":50000",
        "\"heartbeat-interval\":\"150ms\"",
        "\"election-timeout\":\"1.5s\"",
        "\"pre-vote\":true",
        "\"initial-corrupt-check\":true",
    ] {
        assert!(
            started.contains(field),
            "etcd {version}: {field} not in its log:\n{started}"
        );
    }

    // No certificate is needed on the metrics listener (plain http), while
    // the TLS client port does not answer plain http.
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "etcd {version}: /metrics over plain http: {:?}",
        body.lines().next()
    );
    assert!(
        body.lines().any(|l| l == "etcd_server_has_leader 1"),
        "etcd {version}: no leader in /metrics"
    );
    let plain = plain_http_status(client);
    assert!(
        !plain.contains(" 200"),
        "etcd {version}: the TLS client port answered plain http: {plain}"
    );

    // 3.5's leader runs the compact-hash check (every second here): 3.4
    // has no such check, and logs no such setting.
    if release.minor == 5 {
        assert!(
            started.contains("\"compact-check-time-enabled\":true"),
            "etcd {version}: compact-hash check not on in its log:\n{started}"
        );
        let checked = wait_for(Duration::from_secs(15), || {
            log().contains("starting compact hash check")
        });
        assert!(
            checked,
            "etcd {version}: no compact hash check within 15s:\n{}",
            log()
        );
    } else {
        assert!(!started.contains("compact-check-time-enabled"), "{started}");
    }

    // A fresh member skips the initial check; a restart of this one (now
    // initialized) runs it, and it passes.
    assert!(
        !started.contains("starting initial corruption check"),
        "etcd {version}: initial check on fresh data:\n{started}"
    );
    drop(running);
    let mut running = start(etcd, &config_file, &log_path);
    let endpoint = format!("https://127.0.0.1:{client}");
    let healthy = wait_for(HEALTHY_WITHIN, || {
        if let Ok(Some(status)) = running.child.try_wait() {
            panic!("etcd {version} exited ({status}) on restart:\n{}", log());
        }
        etcdctl(&endpoint, &client_files, &["endpoint", "health"]).contains("is healthy")
    });
    assert!(
        healthy,
        "etcd {version} not healthy after a restart:\n{}",
        log()
    );
    let restarted = log();
    for line in [
        "starting initial corruption check",
        "initial corruption checking passed; no corruption",
    ] {
        assert!(
            restarted.contains(line),
            "etcd {version}: {line:?} not in its log after a restart:\n{restarted}"
        );
    }

    let pid = running.pid();
    drop(running);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || harness::is_zombie(pid),
        "etcd {version} (pid {pid}) still runs"
    );
}

#[test]
fn the_3_4_rendering_starts_on_etcd_3_4() {
    let Some(etcd) = system_etcd_or_skip() else {
        return;
    };
    assert_eq!(version_of(&etcd).minor().to_string(), "3.4");
    starts_with_its_rendering(&etcd);
}

#[test]
fn the_3_5_rendering_starts_on_etcd_3_5_16() {
    let Some(dir) = etcd_3_5_16_or_skip() else {
        return;
    };
    starts_with_its_rendering(&dir.join("usr/bin/etcd"));
}

#[test]
fn the_3_5_rendering_starts_on_etcd_3_5_30() {
    let Some(dir) = etcd_3_5_30_or_skip() else {
        return;
    };
    starts_with_its_rendering(&dir.join("usr/bin/etcd"));
}
