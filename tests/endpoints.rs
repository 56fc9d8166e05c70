//! `etcdplan endpoints` end to end through the binary, reading only the
//! etcdfile: every format for a TLS cluster and a plain one, the files named
//! after `--cacert/--cert/--key` when given and after `etcdplan pki client`'s
//! defaults otherwise, and exit 1 when the etcdfile names no member.
//!
//! kube-apiserver is not installed here, so its flag parser (spf13/pflag
//! through cobra) is emulated: the line is split as a shell splits it, and
//! every word must be `--name=value` with a name pflag accepts
//! (`[a-z0-9-]`, no leading dash after the two), no whitespace inside, the
//! value of `--etcd-servers` a comma list without spaces of URLs that parse
//! (pflag's StringSlice is a CSV read; kube-apiserver then `url.Parse`s each
//! and wants a scheme and a host), and the three file flags absolute paths.

use assert_cmd::Command;

fn etcdplan(dir: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("etcdplan").unwrap_or_else(|e| panic!("no binary: {e}"));
    cmd.env_remove("ETCDPLAN_FILE")
        .env_remove("ETCDCTL_CACERT")
        .env_remove("ETCDCTL_CERT")
        .env_remove("ETCDCTL_KEY")
        .current_dir(dir)
        .timeout(std::time::Duration::from_secs(30));
    cmd
}

fn etcdfile(tls: bool, members: usize) -> String {
    let mut s = String::from("[cluster]\nname = \"prod\"\n\n");
    if tls {
        s.push_str("[tls]\nclient = true\npeer = true\nclient_cert_auth = true\n\n");
    }
    s.push_str("[hosts]\nservice = \"process\"\n");
    for i in 1..=members {
        s.push_str(&format!(
            "\n[[member]]\nname = \"m{i}\"\naddress = \"10.0.0.{i}\"\n"
        ));
    }
    s
}

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = etcdplan(dir)
        .args(["-f", "etcdfile.toml", "endpoints"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dir_with(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("etcdfile.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// The words of a line as POSIX sh splits them (single quotes, as
/// `model::shell_quote` writes them, and plain words).
fn sh_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                }
                in_word = false;
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in {line:?}");
    if in_word {
        words.push(cur);
    }
    words
}

/// pflag's rules for `--name=value` (see the module comment); returns the
/// flags by name.
fn pflag_accepts(line: &str) -> std::collections::BTreeMap<String, String> {
    let mut flags = std::collections::BTreeMap::new();
    for word in sh_words(line.trim_end_matches('\n')) {
        let Some(rest) = word.strip_prefix("--") else {
            panic!("{word:?} is not a long flag");
        };
        let Some((name, value)) = rest.split_once('=') else {
            panic!("{word:?} has no =value");
        };
        assert!(
            !name.is_empty()
                && !name.starts_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "bad flag name in {word:?}"
        );
        assert!(!value.is_empty(), "{word:?} has an empty value");
        assert!(
            flags.insert(name.to_owned(), value.to_owned()).is_none(),
            "{name} twice"
        );
    }
    flags
}

fn check_url(u: &str) {
    assert!(!u.contains(char::is_whitespace), "{u:?}");
    let Some((scheme, rest)) = u.split_once("://") else {
        panic!("{u:?} has no scheme");
    };
    assert!(scheme == "http" || scheme == "https", "{u:?}");
    let Some((host, port)) = rest.rsplit_once(':') else {
        panic!("{u:?} has no port");
    };
    assert!(!host.is_empty(), "{u:?}");
    assert!(port.parse::<u16>().is_ok(), "{u:?}");
}

#[test]
fn kube_apiserver_line_for_a_tls_cluster_passes_pflags_rules() {
    let dir = dir_with(&etcdfile(true, 3));
    let (code, out, err) = run(dir.path(), &["--format", "kube-apiserver"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let flags = pflag_accepts(&out);
    let names: Vec<&str> = flags.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "etcd-cafile",
            "etcd-certfile",
            "etcd-keyfile",
            "etcd-servers"
        ]
    );
    let servers: Vec<&str> = flags["etcd-servers"].split(',').collect();
    assert_eq!(
        servers,
        [
            "https://10.0.0.1:2379",
            "https://10.0.0.2:2379",
            "https://10.0.0.3:2379"
        ]
    );
    servers.iter().for_each(|u| check_url(u));
    // Not given: the files `etcdplan pki client kube-apiserver` writes here.
    let here = dir.path().canonicalize().unwrap_or_else(|e| panic!("{e}"));
    for (flag, file) in [
        ("etcd-cafile", "ca.crt"),
        ("etcd-certfile", "kube-apiserver.crt"),
        ("etcd-keyfile", "kube-apiserver.key"),
    ] {
        let p = std::path::Path::new(&flags[flag]);
        assert!(p.is_absolute(), "{flag}: {p:?}");
        assert_eq!(
            p.parent().and_then(|p| p.canonicalize().ok()).as_deref(),
            Some(here.as_path()),
            "{flag}"
        );
        assert_eq!(p.file_name().and_then(|f| f.to_str()), Some(file));
    }
}

#[test]
fn given_certificates_are_named_and_relative_ones_made_absolute() {
    let dir = dir_with(&etcdfile(true, 2));
    let (code, out, err) = run(
        dir.path(),
        &[
            "--format",
            "kube-apiserver",
            "--cacert",
            "/etc/kubernetes/pki/etcd/ca.crt",
            "--cert",
            "/etc/kubernetes/pki/apiserver-etcd-client.crt",
            "--key",
            "keys/apiserver-etcd-client.key",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let flags = pflag_accepts(&out);
    assert_eq!(flags["etcd-cafile"], "/etc/kubernetes/pki/etcd/ca.crt");
    assert_eq!(
        flags["etcd-certfile"],
        "/etc/kubernetes/pki/apiserver-etcd-client.crt"
    );
    let key = std::path::Path::new(&flags["etcd-keyfile"]);
    assert!(key.is_absolute() && key.ends_with("keys/apiserver-etcd-client.key"));

    let (code, out, _) = run(dir.path(), &["--format", "etcdctl", "--client-name", "ops"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "export ETCDCTL_ENDPOINTS=https://10.0.0.1:2379,https://10.0.0.2:2379"
    );
    assert!(lines[1].starts_with("export ETCDCTL_CACERT=/") && lines[1].ends_with("/ca.crt"));
    assert!(lines[2].starts_with("export ETCDCTL_CERT=/") && lines[2].ends_with("/ops.crt"));
    assert!(lines[3].starts_with("export ETCDCTL_KEY=/") && lines[3].ends_with("/ops.key"));
    assert_eq!(lines.len(), 4);
}

#[test]
fn plain_cluster_formats() {
    let dir = dir_with(&etcdfile(false, 3));
    let (code, out, _) = run(dir.path(), &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "http://10.0.0.1:2379\nhttp://10.0.0.2:2379\nhttp://10.0.0.3:2379\n"
    );
    // StorageOS reads exactly these two lines: no scheme, comma separated.
    let (_, out, _) = run(dir.path(), &["--format", "kv-addr"]);
    assert_eq!(
        out,
        "KV_BACKEND=etcd\nKV_ADDR=10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379\n"
    );
    let (_, out, _) = run(dir.path(), &["--format", "kube-apiserver"]);
    let flags = pflag_accepts(&out);
    assert_eq!(flags.len(), 1, "no file flags without TLS: {out}");
    let (_, out, _) = run(dir.path(), &["--format", "etcdctl"]);
    assert_eq!(out.lines().count(), 1, "no certificate variables: {out}");
    let (_, out, _) = run(dir.path(), &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["endpoints"].as_array().map(Vec::len), Some(3));
    assert!(v["tls"].is_null());
}

/// The validator refuses an etcdfile without members, so "none known" is
/// `--healthy` with nothing answering: a member on this machine on a port
/// nothing listens on (local transport, so no ssh is tried).
#[test]
fn healthy_with_nothing_answering_is_exit_1_with_a_message() {
    let dir = dir_with(
        "[cluster]\nname = \"prod\"\n\n[hosts]\nservice = \"process\"\ntransport = \"local\"\n\n\
         [[member]]\nname = \"a\"\naddress = \"127.0.0.1\"\nclient_port = 1\npeer_port = 2\n",
    );
    let (code, out, _) = run(dir.path(), &[]);
    assert_eq!((code, out.as_str()), (0, "http://127.0.0.1:1\n"));
    let (code, out, err) = run(dir.path(), &["--healthy", "--format", "kv-addr"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("no endpoint: no member of the etcdfile answers as a healthy voter now"),
        "{err}"
    );
}
