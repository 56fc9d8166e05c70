//! The command line itself, without a cluster: the man page, and the duration
//! flags read the way etcd reads its own (`5s`, `2m`, `1h30m`, bare seconds).

use assert_cmd::Command;
use clap::CommandFactory as _;

fn etcdplan() -> Command {
    let mut cmd = Command::cargo_bin("etcdplan").unwrap_or_else(|e| panic!("no binary: {e}"));
    cmd.env_remove("ETCDPLAN_FILE")
        .timeout(std::time::Duration::from_secs(30));
    cmd
}

/// An etcdfile in a folder that does not exist, so that a command that got
/// past argument parsing fails on it (exit 1: `watch` cannot watch the folder,
/// the others cannot read the file), not on a flag (exit 2).
fn missing_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir
        .path()
        .join("absent-dir/absent.toml")
        .display()
        .to_string();
    (dir, path)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn man_page_is_roff_naming_etcdplan_and_every_command() {
    let out = etcdplan()
        .arg("man")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    // roff's apostrophe string first, once (as clap_mangen writes it), then the title.
    let mut lines = page
        .lines()
        .skip_while(|l| l.starts_with(".ie ") || l.starts_with(".el "));
    let title = lines.next().unwrap_or_default();
    assert!(
        title.starts_with(".TH etcdplan 1 "),
        "{}",
        &page[..page.len().min(300)]
    );
    assert_eq!(page.matches(".ds Aq").count(), 2, "one preamble");
    assert_eq!(page.matches(".TH ").count(), 1, "one page");
    // Every command from the same clap definitions has its subsection,
    // nested ones under their parent's name.
    let cli = etcdplan::cli::Cli::command();
    let mut names = Vec::new();
    for sub in cli.get_subcommands() {
        names.push(format!("etcdplan {}", sub.get_name()));
        for nested in sub.get_subcommands() {
            names.push(format!("etcdplan {} {}", sub.get_name(), nested.get_name()));
        }
    }
    assert!(names.len() >= 12, "{names:?}");
    for name in [
        "etcdplan plan",
        "etcdplan watch",
        "etcdplan pki rotate-ca",
        "etcdplan man",
        "etcdplan restart",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    for name in &names {
        assert!(
            page.contains(&format!(".SS \"{name}\"\n")),
            "no section for {name}"
        );
    }
    // Options appear with their readable defaults: the global ones once, a
    // command's own in its section.
    let watch = page
        .split(".SS \"etcdplan watch\"")
        .nth(1)
        .and_then(|rest| rest.split(".SS ").next())
        .unwrap_or_else(|| panic!("no watch section"));
    assert!(
        watch.contains(r"\fB\-\-interval\fR \fI<DURATION>\fR [default: 30s]"),
        "{watch}"
    );
    assert!(!watch.contains("etcd\\-timeout"), "{watch}");
    let global = r"\fB\-\-etcd\-timeout\fR \fI<DURATION>\fR [default: 5s]";
    assert_eq!(page.matches(global).count(), 1, "global option listed once");
}

#[test]
fn interval_takes_durations_and_names_itself_when_wrong() {
    let (_dir, file) = missing_file();
    for ok in ["5s", "2m", "1h30m", "500ms", "5"] {
        let out = etcdplan()
            .args(["--file", &file, "watch", "--interval", ok])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = text(&out.stderr);
        // Parsing passed: the failure is the missing etcdfile, exit 1.
        assert_eq!(out.status.code(), Some(1), "--interval {ok}: {err}");
        assert!(err.contains("absent-dir"), "--interval {ok}: {err}");
        assert!(!err.contains("--interval"), "--interval {ok}: {err}");
    }
    for bad in ["5x", "1.5h", "", "99999999999999999999"] {
        let out = etcdplan()
            .args(["--file", &file, "watch", "--interval", bad])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--interval {bad:?}: {err}");
        assert!(err.contains("--interval <DURATION>"), "{err}");
        assert!(err.contains("1h30m") && err.contains("seconds"), "{err}");
        assert!(!err.contains("absent-dir"), "{err}");
    }
}

#[test]
fn global_etcd_timeout_takes_durations_and_names_itself_when_wrong() {
    let (_dir, file) = missing_file();
    let out = etcdplan()
        .args(["--file", &file, "--etcd-timeout", "1m30s", "status"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("absent-dir"), "{err}");

    let out = etcdplan()
        .args(["--file", &file, "status", "--etcd-timeout", "5x"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("'5x'") && err.contains("--etcd-timeout <DURATION>"),
        "{err}"
    );
    assert!(err.contains("500ms"), "{err}");
}

#[test]
fn help_shows_readable_default_durations() {
    let out = etcdplan()
        .args(["watch", "--help"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let help = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for default in [
        "[default: 30s]",
        "[default: 60s]",
        "[default: 5s]",
        "[default: 10s]",
        "[default: 0s]",
    ] {
        assert!(help.contains(default), "{default} missing:\n{help}");
    }
}

#[test]
fn restart_names_one_member_and_refuses_what_it_cannot_do_before_reading_the_file() {
    let (_dir, file) = missing_file();
    // MEMBER is required: a usage error of clap's (exit 2).
    let out = etcdplan()
        .args(["--file", &file, "restart"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("<MEMBER>"),
        "{}",
        text(&out.stderr)
    );
    // JSON Lines cannot carry a question; a name etcd could not carry is no
    // member; neither gets as far as the etcdfile.
    for (args, says) in [
        (
            vec!["restart", "--json", "etcd-1"],
            "approval inside its output",
        ),
        (vec!["restart", "etcd 1"], "is not a member name"),
        (
            vec!["--recover-from", "etcd-1", "restart", "etcd-2"],
            "never recovers a lost quorum",
        ),
    ] {
        let out = etcdplan()
            .args(["--file", &file])
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("absent-dir"), "{args:?}: {err}");
    }
    // Past those checks, the etcdfile is read first.
    let out = etcdplan()
        .args(["--file", &file, "restart", "etcd-1", "--auto-approve"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("absent-dir"),
        "{}",
        text(&out.stderr)
    );
}

/// While `[auth]` is managed, `pki client` issues only for `root` and the
/// declared users, and refuses any other name naming them, writing nothing.
#[test]
fn pki_client_refuses_a_name_auth_does_not_declare() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = dir.path().join("etcdfile.toml");
    let etcdfile = r#"[cluster]
name = "main"

[tls]
client = true
client_cert_auth = true

[auth]
token = "jwt"

[[auth.role]]
name = "app"
permissions = [{ key = "/app/", prefix = true, access = "readwrite" }]

[[auth.user]]
name = "app"
roles = ["app"]

[[member]]
name = "etcd-1"
address = "10.0.0.11"
"#;
    std::fs::write(&file, etcdfile).unwrap_or_else(|e| panic!("{e}"));
    let certs = dir.path().join("certs");
    let run = |name: &str| {
        etcdplan()
            .arg("-f")
            .arg(&file)
            .args(["pki", "client", name, "--out"])
            .arg(&certs)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let refused = run("apps");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    let err = text(&refused.stderr);
    assert!(
        err.contains("\"apps\" is not a user [auth] declares (the users are root, app)"),
        "{err}"
    );
    assert!(!certs.exists(), "nothing is written for a refused name");
    let issued = run("app");
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    assert!(certs.join("app.crt").exists() && certs.join("app.key").exists());
}
