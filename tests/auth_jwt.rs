//! JWT auth tokens on real etcd (Debian's 3.4.23, three members on the test
//! bed, the process service): etcdplan makes the ES256 key pair in
//! `key_dir`, places it on each member before its first start (key 0600,
//! never in the plan), renders `auth-token: jwt,…` and turns auth on (root's
//! password from a file); a login returns a JWT (three dot-separated
//! base64url parts, signed ES256) that works for a put, while no token is
//! refused. A new key pair in `key_dir` is placed and rolled one member at a
//! time, gated, with auth on (etcdplan's client logs in again when a
//! restarted member refuses its token); after it the old token is refused
//! and a new login works.
//!
//! `[auth]` is set in code on the Desired parsed from a plain etcdfile (the
//! etcdfile keys land separately), so the walk runs in-process through the
//! real edges (ssh, the etcd client) rather than through the CLI.

mod harness;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use etcdplan::config::{Auth, Desired, Login, SecretSource, TokenKind};
use etcdplan::io::{EtcdClient, Timeouts};
use harness::testbed::{Testbed, up_or_skip};
use harness::text;

const ROOT_PASSWORD: &str = "jwt-root-Pw-7391";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The test bed's etcdfile parsed, with `[auth]` (JWT from `key_dir`, a
/// 10 minute TTL, auth on with root's password in a file) set in code.
fn desired_with_jwt(tb: &Testbed, file: &str, key_dir: &Path) -> Desired {
    let path = tb.dir.path().join("etcdfile.toml");
    std::fs::write(&path, file).unwrap_or_else(|e| panic!("{e}"));
    let mut d = etcdplan::config::load(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .desired;
    // Root's password in a file beside the etcdfile: etcdplan turns auth on.
    let secret = tb.dir.path().join("root-password");
    std::fs::write(&secret, format!("{ROOT_PASSWORD}\n")).unwrap_or_else(|e| panic!("{e}"));
    d.auth = Some(Auth {
        enabled: true,
        root: Login::Password(SecretSource::File(secret)),
        token: TokenKind::Jwt {
            key_dir: key_dir.to_owned(),
        },
        token_ttl: Duration::from_secs(600),
        prune: false,
        roles: Vec::new(),
        users: Vec::new(),
    });
    d
}

/// Observes, plans and applies `d` through ssh and the etcd API; returns
/// the plan's step descriptions and its JSON.
async fn plan_and_apply(d: &Desired, root: bool) -> (Vec<String>, String) {
    let mut etcd = EtcdClient::new(Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(10),
    });
    if root {
        etcd = etcd.with_user("root".into(), ROOT_PASSWORD.into());
    }
    harness::inproc::plan_and_apply(d, &etcd).await
}

fn etcdctl(endpoint: &str, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .args([
            "20",
            "etcdctl",
            "--endpoints",
            endpoint,
            "--dial-timeout",
            "3s",
            "--command-timeout",
            "5s",
        ])
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap_or_else(|e| panic!("etcdctl: {e}"))
}

/// POSTs JSON to etcd's gRPC gateway, with a token when given.
fn gateway(endpoint: &str, path: &str, body: &str, token: Option<&str>) -> String {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "10", "-X", "POST", "-d", body]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: {t}")]);
    }
    let out = c
        .arg(format!("{endpoint}{path}"))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A login through the gateway: the token etcd hands out.
fn login(endpoint: &str) -> String {
    let body = format!(r#"{{"name":"root","password":"{ROOT_PASSWORD}"}}"#);
    let answer = gateway(endpoint, "/v3/auth/authenticate", &body, None);
    let v: serde_json::Value =
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    v["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {answer}"))
        .to_owned()
}

fn b64url(part: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("{e}: {part}"))
}

/// A put through the gateway with `token`: whether etcd took it, and its answer.
fn put(endpoint: &str, token: Option<&str>, key: &str, value: &str) -> (bool, String) {
    use base64::Engine as _;
    let e = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, e(key), e(value));
    let answer = gateway(endpoint, "/v3/kv/put", &body, token);
    (
        answer.contains("\"header\"") && !answer.contains("\"error\""),
        answer,
    )
}

#[test]
fn a_cluster_rendered_with_jwt_hands_out_signed_tokens_that_work() {
    let Some(tb) = up_or_skip(3) else { return };
    // The gRPC gateway (off with a config file in 3.4) lets the test see
    // the token etcd hands out and send it back as it is.
    let file = tb.etcdfile(
        "jwt",
        "extra = { enable-grpc-gateway = true }\n",
        &tb.all(),
        &[],
    );
    let endpoint = tb.client_endpoints(&[0])[0].clone();
    let key_dir = tb.dir.path().join("jwt");
    let d = desired_with_jwt(&tb, &file, &key_dir);
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));

    // Created with JWT tokens: the key pair is made at apply and placed on
    // each member before its first start.
    let (steps, json) = rt.block_on(plan_and_apply(&d, false));
    let at = |what: &str| {
        steps
            .iter()
            .position(|s| s == what)
            .unwrap_or_else(|| panic!("no {what:?} in {steps:#?}"))
    };
    for i in 1..=3 {
        assert!(
            at(&format!(
                "place the JWT signing key pair on etcd-{i}'s host"
            )) < at(&format!("start etcd-{i}")),
            "{steps:#?}"
        );
    }
    assert_eq!(mode(&key_dir), 0o700);
    assert_eq!(mode(&key_dir.join("jwt.key")), 0o600);
    let private =
        std::fs::read_to_string(key_dir.join("jwt.key")).unwrap_or_else(|e| panic!("{e}"));
    let body_lines: Vec<&str> = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!body_lines.is_empty());
    for l in &body_lines {
        assert!(!json.contains(l), "the plan holds key material");
    }
    // On the host: the same key, 0600, in a 0700 folder; the config names it.
    let m = &d.members[0];
    let paths = etcdplan::hostfiles::auth_paths(m);
    let on_host = tb.ssh(
        0,
        &format!(
            "stat -c %a {k} {dir}; sha256sum < {k} | cut -d' ' -f1; grep '^auth-token' {cfg}",
            k = paths.jwt_key.display(),
            dir = paths
                .jwt_key
                .parent()
                .unwrap_or_else(|| panic!("no folder"))
                .display(),
            cfg = m.config_file().display()
        ),
    );
    let on_host = String::from_utf8_lossy(&on_host.stdout).into_owned();
    let lines: Vec<&str> = on_host.lines().collect();
    assert_eq!(lines.first().copied(), Some("600"), "{on_host}");
    assert_eq!(lines.get(1).copied(), Some("700"), "{on_host}");
    assert_eq!(
        lines.get(2).copied(),
        Some(etcdplan::pki::sha256_hex(private.as_bytes()).as_str()),
        "{on_host}"
    );
    assert!(
        lines.get(3).is_some_and(|l| l.contains("jwt,pub-key=") && l.contains("sign-method=ES256,ttl=600s")),
        "{on_host}"
    );

    // The same plan turned auth on once the members were healthy: root
    // first, enable last. Nothing is left to do: the probe's digests match
    // key_dir's, and etcdplan now logs in as root.
    assert!(
        at("wait until etcd-1, etcd-2, etcd-3 healthy")
            < at("auth enable (etcdplan logs in as root from here on)"),
        "{steps:#?}"
    );
    let (steps, _) = rt.block_on(plan_and_apply(&d, true));
    assert!(steps.is_empty(), "{steps:#?}");
    let token = login(&endpoint);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let header: serde_json::Value =
        serde_json::from_slice(&b64url(parts[0])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(header["alg"], "ES256", "{header}");
    let claims: serde_json::Value =
        serde_json::from_slice(&b64url(parts[1])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(claims["username"], "root", "{claims}");
    assert!(!b64url(parts[2]).is_empty());
    let (took, answer) = put(&endpoint, Some(&token), "/jwt/k", "v1");
    assert!(took, "{answer}");
    let (took, answer) = put(&endpoint, None, "/jwt/k", "anonymous");
    assert!(!took, "a put without a token was taken: {answer}");
    let got = etcdctl(
        &endpoint,
        &[
            "--user",
            &format!("root:{ROOT_PASSWORD}"),
            "get",
            "/jwt/k",
            "--print-value-only",
        ],
    );
    assert_eq!(text(&got).trim(), "v1");

    // A new key pair in key_dir: placed and rolled, one member at a time,
    // with auth on (etcdplan's client logs in as root, and again when a
    // restarted member refuses the token of its cached connection); then the
    // old token (signed by the old key) is refused, a new login works.
    std::fs::remove_file(key_dir.join("jwt.key")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(key_dir.join("jwt.pub")).unwrap_or_else(|e| panic!("{e}"));
    etcdplan::pki::JwtKeys::create(&key_dir).unwrap_or_else(|e| panic!("{e}"));
    let (steps, _) = rt.block_on(plan_and_apply(&d, true));
    let places: Vec<&String> = steps
        .iter()
        .filter(|s| s.starts_with("place the JWT"))
        .collect();
    let restarts: Vec<&String> = steps
        .iter()
        .filter(|s| s.contains("restart etcd-"))
        .collect();
    assert_eq!((places.len(), restarts.len()), (3, 3), "{steps:#?}");
    // One member at a time: each placement is followed by that member's
    // restart and gate before the next placement.
    for (i, s) in steps.iter().enumerate() {
        if let Some(name) = s
            .strip_prefix("place the JWT signing key pair on ")
            .and_then(|r| r.strip_suffix("'s host"))
        {
            let rest = &steps[i + 1..];
            let next_place = rest.iter().position(|x| x.starts_with("place the JWT"));
            let healthy = rest
                .iter()
                .position(|x| *x == format!("wait until {name} healthy"))
                .unwrap_or_else(|| panic!("no gate for {name}: {steps:#?}"));
            assert!(next_place.is_none_or(|n| healthy < n), "{steps:#?}");
        }
    }
    let (took, answer) = put(&endpoint, Some(&token), "/jwt/k", "old-token");
    assert!(!took, "a token of the old key was taken: {answer}");
    let fresh = login(&endpoint);
    assert_ne!(fresh, token);
    let (took, answer) = put(&endpoint, Some(&fresh), "/jwt/k", "v2");
    assert!(took, "{answer}");
}
