//! End to end over ssh: etcd auth declared in the etcdfile and applied to a
//! running 3-member cluster under a writer that logs in as a declared user,
//! checked through etcdctl; a role's grant and a password changed in the
//! file; the apply history; and no password anywhere etcdplan writes.

mod harness;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use harness::release::etcd_3_5_30_or_skip;
use harness::testbed::{Testbed, up_or_skip};
use harness::text;
use harness::writer::{Writer, WriterAuth};

const ROOT_PW: &str = "r00t-Pw-5f1c9e";
const APP_PW: &str = "app-Pw-a83b2d";
const APP_PW2: &str = "app-Pw-second-77e0";
const READER_PW: &str = "reader-Pw-c4d6aa";

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

/// A password file in the test bed's folder, 0600.
fn secret(tb: &Testbed, name: &str, value: &str) -> PathBuf {
    let p = tb.dir.path().join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("{e}"));
    p
}

/// The etcdfile with `[auth]`: root, an app user with readwrite on `/app/`
/// (`access` to change it), a reader with read on `/app/`.
fn with_auth(tb: &Testbed, release: &Path, access: &str) -> String {
    let base = plain(tb, release);
    let root = tb.dir.path().join("root.pw");
    let app = tb.dir.path().join("app.pw");
    let reader = tb.dir.path().join("reader.pw");
    format!(
        "{base}\n[auth]\nenabled = true\nroot_password_file = \"{}\"\n\n\
         [[auth.role]]\nname = \"app\"\npermissions = [{{ key = \"/app/\", prefix = true, access = \"{access}\" }}]\n\n\
         [[auth.role]]\nname = \"app-read\"\npermissions = [{{ key = \"/app/\", prefix = true, access = \"read\" }}]\n\n\
         [[auth.user]]\nname = \"app\"\npassword_file = \"{}\"\nroles = [\"app\"]\n\n\
         [[auth.user]]\nname = \"reader\"\npassword_file = \"{}\"\nroles = [\"app-read\"]\n",
        root.display(),
        app.display(),
        reader.display(),
    )
}

/// The cluster without `[auth]`, on `release` (3.5.30: the 3.5 line that
/// hashes passwords before they reach the WAL, and needs root for the
/// Maintenance calls etcdplan's gates make).
fn plain(tb: &Testbed, release: &Path) -> String {
    let bin = release.join("usr/bin/etcd");
    tb.etcdfile(
        "auth",
        &format!("binary = \"{}\"\n", bin.display()),
        &tb.all(),
        &[],
    )
}

/// etcdctl against the first member, as `user` (None: no credentials).
fn etcdctl(tb: &Testbed, user: Option<(&str, &str)>, args: &[&str]) -> Output {
    let mut c = Command::new("/usr/bin/etcdctl");
    c.env_remove("ETCDCTL_ENDPOINTS")
        .env("ETCDCTL_API", "3")
        .args([
            "--dial-timeout",
            "3s",
            "--command-timeout",
            "5s",
            "--endpoints",
            &tb.client_endpoints(&[0])[0],
        ]);
    if let Some((u, p)) = user {
        c.arg(format!("--user={u}:{p}"));
    }
    c.args(args)
        .output()
        .unwrap_or_else(|e| panic!("etcdctl: {e}"))
}

/// Every regular file under `dir` (below 64 MiB) that contains one of
/// `needles`, with the needle. Each file is read once and searched with
/// memchr's memmem: a byte-by-byte search per needle, unoptimized, through
/// the hosts' etcd binaries took a minute.
fn files_containing<'a>(dir: &Path, needles: &[&'a str]) -> Vec<(PathBuf, &'a str)> {
    let finders: Vec<(memchr::memmem::Finder<'_>, &str)> = needles
        .iter()
        .map(|n| (memchr::memmem::Finder::new(n.as_bytes()), *n))
        .collect();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() && meta.len() < 64 << 20 {
                let bytes = std::fs::read(&p).unwrap_or_default();
                for (finder, needle) in &finders {
                    if finder.find(&bytes).is_some() {
                        found.push((p.clone(), *needle));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn auth_enabled_on_a_running_cluster_under_a_logged_in_writer() {
    let Some(tb) = up_or_skip(3) else { return };
    let Some(release) = etcd_3_5_30_or_skip() else {
        return;
    };
    ok(tb.etcdplan(&plain(&tb, &release), &["apply", "--auto-approve"]));
    secret(&tb, "root.pw", ROOT_PW);
    secret(&tb, "app.pw", APP_PW);
    secret(&tb, "reader.pw", READER_PW);
    let file = with_auth(&tb, &release, "readwrite");

    let mut outputs = Vec::new();
    let planned = ok(tb.etcdplan(&file, &["plan"]));
    for want in ["+ user app", "+ user reader", "+ role app", "auth"] {
        assert!(planned.contains(want), "{want} missing:\n{planned}");
    }
    // Users, roles and `auth enable` need no restart: etcd's default
    // simple token is left unwritten, so no member's file changes.
    assert!(!planned.contains("restart"), "{planned}");
    outputs.push(planned);
    outputs.push(ok(tb.etcdplan(&file, &["plan", "--json"])));

    // The writer logs in as app throughout, as etcd's own client does: no
    // token while auth is off, a login once it is on.
    let writer = Writer::authenticated(
        tb.client_endpoints(&tb.all()),
        "/app/w",
        Duration::from_millis(20),
        Duration::from_secs(2),
        None,
        WriterAuth {
            user: "app".to_owned(),
            password: APP_PW.to_owned(),
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let applied = ok(tb.etcdplan(&file, &["apply", "--auto-approve"]));
    std::thread::sleep(Duration::from_millis(500));
    let seen = writer.stop();
    eprintln!("enable auth: {}", seen.summary());
    assert!(seen.failed.is_empty(), "failed writes: {:?}", seen.failed);
    assert!(seen.acked.len() > 20, "{}", seen.summary());
    outputs.push(applied);

    // Without credentials: refused.
    let anon = etcdctl(&tb, None, &["put", "/app/anon", "x"]);
    assert!(!anon.status.success(), "{}", text(&anon));
    let anon_get = etcdctl(&tb, None, &["get", "/app/w/000001"]);
    assert!(!anon_get.status.success(), "{}", text(&anon_get));
    // app writes under its prefix and nowhere else.
    let put = etcdctl(&tb, Some(("app", APP_PW)), &["put", "/app/k", "v"]);
    assert!(put.status.success(), "{}", text(&put));
    let outside = etcdctl(&tb, Some(("app", APP_PW)), &["put", "/other/k", "v"]);
    assert!(!outside.status.success(), "{}", text(&outside));
    assert!(
        text(&outside).contains("permission denied"),
        "{}",
        text(&outside)
    );
    // reader reads and cannot write.
    let read = etcdctl(&tb, Some(("reader", READER_PW)), &["get", "/app/k"]);
    assert!(
        read.status.success() && text(&read).contains('v'),
        "{}",
        text(&read)
    );
    let no_write = etcdctl(&tb, Some(("reader", READER_PW)), &["put", "/app/k", "w"]);
    assert!(!no_write.status.success(), "{}", text(&no_write));
    // Every acknowledged write is there (read as root).
    let keys = etcdctl(
        &tb,
        Some(("root", ROOT_PW)),
        &["get", "--prefix", "--keys-only", "/app/w/"],
    );
    let stored = text(&keys);
    let lost: Vec<&String> = seen
        .acked
        .iter()
        .filter(|k| !stored.lines().any(|l| l == k.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but missing: {lost:?}");

    let again = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    outputs.push(text(&again));
    outputs.push(ok(tb.etcdplan(&file, &["status"])));

    // A narrower grant: app may only read now.
    let narrowed = with_auth(&tb, &release, "read");
    let plan = ok(tb.etcdplan(&narrowed, &["plan"]));
    assert!(plan.contains("~ role app"), "{plan}");
    outputs.push(plan);
    outputs.push(ok(tb.etcdplan(&narrowed, &["apply", "--auto-approve"])));
    let role = etcdctl(&tb, Some(("root", ROOT_PW)), &["role", "get", "app"]);
    let role_text = text(&role);
    assert!(
        role.status.success()
            && role_text
                .split("KV Write:")
                .next()
                .is_some_and(|read| read.contains("(prefix /app/)"))
            && role_text
                .split("KV Write:")
                .nth(1)
                .is_some_and(|write| !write.contains("/app/")),
        "{role_text}"
    );
    let refused = etcdctl(&tb, Some(("app", APP_PW)), &["put", "/app/k", "v2"]);
    assert!(!refused.status.success(), "{}", text(&refused));

    // A password changed in its file is found (the declared one no longer
    // logs in) and set.
    secret(&tb, "app.pw", APP_PW2);
    let plan = ok(tb.etcdplan(&narrowed, &["plan"]));
    assert!(
        plan.contains("~ user app") && plan.contains("password"),
        "{plan}"
    );
    outputs.push(plan);
    outputs.push(ok(tb.etcdplan(&narrowed, &["plan", "--json"])));
    outputs.push(ok(tb.etcdplan(&narrowed, &["apply", "--auto-approve"])));
    let new_login = etcdctl(&tb, Some(("app", APP_PW2)), &["get", "/app/k"]);
    assert!(new_login.status.success(), "{}", text(&new_login));
    let old_login = etcdctl(&tb, Some(("app", APP_PW)), &["get", "/app/k"]);
    assert!(!old_login.status.success(), "{}", text(&old_login));
    let empty = tb.etcdplan(&narrowed, &["plan", "--detailed-exitcode"]);
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));

    // Without [auth] and without a login, etcd refuses etcdplan: the plan
    // is blocked, never a restart of members that merely refused to answer.
    let bare = tb.etcdplan(&plain(&tb, &release), &["plan", "--detailed-exitcode"]);
    let said = text(&bare);
    assert_eq!(bare.status.code(), Some(1), "{said}");
    assert!(said.contains("etcd refuses etcdplan's calls"), "{said}");
    assert!(!said.contains("restart"), "{said}");

    // The history lists this test's applies, newest first, with results.
    let history = ok(tb.etcdplan(&narrowed, &["history"]));
    outputs.push(history.clone());
    assert!(
        history.matches("applied").count() >= 4,
        "four applies expected:\n{history}"
    );

    // No password in any output, nor on any host, nor in etcdplan's files.
    let passwords = [ROOT_PW, APP_PW, APP_PW2, READER_PW];
    for pw in passwords {
        for (i, o) in outputs.iter().enumerate() {
            assert!(!o.contains(pw), "a password in output {i}:\n{o}");
        }
    }
    for h in &tb.hosts {
        let leaked = files_containing(&h.file("/"), &passwords);
        assert!(leaked.is_empty(), "a password on a host: {leaked:?}");
    }
    let (secrets, local): (Vec<_>, Vec<_>) = files_containing(tb.dir.path(), &passwords)
        .into_iter()
        .partition(|(p, _)| p.extension().is_some_and(|x| x == "pw"));
    // The search finds what is there: the password files themselves.
    assert_eq!(secrets.len(), 3, "the password files found: {secrets:?}");
    assert!(
        local.is_empty(),
        "a password in etcdplan's files: {local:?}"
    );
}
