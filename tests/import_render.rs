//! `etcdplan import`'s etcdfile, from what hand-built members run with (their
//! command lines, through the same resolution `import` uses): each setting
//! where the etcdfile says it, with its source; a setting the etcdfile cannot
//! say is a refusal naming the members and values.

mod common;

use etcdplan::config::{Access, Login, SecretSource, TokenKind};
use etcdplan::import::etcdfile::{ImportedAuth, ImportedMember, Reach, render, render_with_auth};
use etcdplan::import::{HostSources, ProcessSources, resolve};
use etcdplan::live::{LivePermission, LiveRole};
use etcdplan::model::EtcdVersion;

/// Member `i` (1-based) started with the how-to's flags plus `extra`.
fn member(i: usize, extra: &[String]) -> ImportedMember {
    member_with(i, "http", extra, &[])
}

fn member_with(i: usize, scheme: &str, extra: &[String], env: &[(&str, &str)]) -> ImportedMember {
    let ip = format!("10.0.0.1{i}");
    let cluster: Vec<String> = (1..=3)
        .map(|k| format!("etcd-{k}={scheme}://10.0.0.1{k}:2380"))
        .collect();
    let mut cmdline: Vec<String> = vec![
        "/usr/bin/etcd".into(),
        format!("--name=etcd-{i}"),
        format!("--data-dir=/var/lib/etcd/etcd-{i}"),
        format!("--listen-client-urls={scheme}://{ip}:2379,{scheme}://127.0.0.1:2379"),
        format!("--advertise-client-urls={scheme}://{ip}:2379"),
        format!("--listen-peer-urls={scheme}://{ip}:2380"),
        format!("--initial-advertise-peer-urls={scheme}://{ip}:2380"),
        format!("--initial-cluster={}", cluster.join(",")),
        "--initial-cluster-token=prod-1".into(),
        "--initial-cluster-state=new".into(),
    ];
    cmdline.extend(extra.iter().cloned());
    let src = HostSources {
        host: ip.clone(),
        hostname: format!("h{i}"),
        process: Some(ProcessSources {
            cmdline,
            environ: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }),
        ..HostSources::default()
    };
    let version = EtcdVersion::parse("3.5.16");
    ImportedMember {
        name: format!("etcd-{i}"),
        address: ip,
        settings: resolve(&src, version.map(|v| v.minor())),
        version,
        user: Some("etcd".into()),
    }
}

fn all(extra: &[String]) -> Vec<ImportedMember> {
    (1..=3).map(|i| member(i, extra)).collect()
}

fn reach() -> Reach {
    Reach {
        ssh_user: Some("ops".into()),
        ..Reach::default()
    }
}

#[test]
fn equal_settings_go_once_into_etcd_with_name_patterns_and_sources() {
    let extra: Vec<String> = [
        "--heartbeat-interval=200",
        "--election-timeout=2000",
        "--snapshot-count=5000",
        "--quota-backend-bytes=4294967296",
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=1h",
        "--experimental-initial-corrupt-check=true",
    ]
    .map(String::from)
    .to_vec();
    let text = render("prod", &all(&extra), &reach()).unwrap_or_else(|e| panic!("{e:?}"));
    for line in [
        "initial_cluster_token = \"prod-1\"",
        "version = \"3.5.16\"",
        "data_dir = \"/var/lib/etcd/{name}\"",
        "heartbeat_interval = \"200ms\"",
        "election_timeout = \"2000ms\"",
        "snapshot_count = 5000",
        "quota_backend_bytes = 4294967296",
        "auto_compaction_mode = \"periodic\"",
        "auto_compaction_retention = \"1h\"",
        "extra_listen_addresses = [\"127.0.0.1\"]",
        "\"experimental-initial-corrupt-check\" = true",
        "run_as = \"etcd\"",
        "service = \"process\"",
        "# from the running etcd's command line on 10.0.0.11 (the same on every member)",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }
    // What import writes is an etcdfile etcdplan accepts.
    let d = common::desired_from(&text);
    assert_eq!(d.members.len(), 3);
    insta::assert_snapshot!("import-equal-settings", text);
}

#[test]
fn a_setting_that_must_be_equal_but_differs_is_refused_naming_members_and_values() {
    let mut ms = all(&[]);
    ms[1] = member(2, &["--heartbeat-interval=250".into()]);
    let why = render("prod", &ms, &reach()).err().unwrap_or_default();
    assert!(
        why.iter()
            .any(|w| w.contains("members differ in heartbeat-interval")
                && w.contains("etcd-1: (not set)")
                && w.contains("etcd-2: 250")),
        "{why:?}"
    );
}

#[test]
fn a_setting_members_may_differ_in_goes_per_member() {
    let mut ms = all(&[]);
    ms[2] = member(3, &["--snapshot-count=20000".into()]);
    let text = render("prod", &ms, &reach()).unwrap_or_else(|e| panic!("{e:?}"));
    let member3 = text.split("name = \"etcd-3\"").nth(1).unwrap_or_default();
    assert!(member3.contains("snapshot_count = 20000"), "{text}");
    common::desired_from(&text);
}

#[test]
fn a_flag_and_a_variable_for_one_setting_is_refused_as_etcd_refuses_it() {
    let mut ms = all(&[]);
    ms[0] = member_with(
        1,
        "http",
        &["--snapshot-count=5000".into()],
        &[("ETCD_SNAPSHOT_COUNT", "6000")],
    );
    let why = render("prod", &ms, &reach()).err().unwrap_or_default();
    assert!(
        why.iter()
            .any(|w| w.starts_with("etcd-1: ") && w.contains("ETCD_SNAPSHOT_COUNT")),
        "{why:?}"
    );
}

#[test]
fn tls_members_become_the_external_issuer_with_path_patterns() {
    let tls = |i: usize| -> Vec<String> {
        vec![
            format!("--cert-file=/etc/etcd/ssl/etcd-{i}.pem"),
            format!("--key-file=/etc/etcd/ssl/etcd-{i}-key.pem"),
            "--trusted-ca-file=/etc/etcd/ssl/ca.pem".into(),
            "--client-cert-auth=true".into(),
            format!("--peer-cert-file=/etc/etcd/ssl/etcd-{i}.pem"),
            format!("--peer-key-file=/etc/etcd/ssl/etcd-{i}-key.pem"),
            "--peer-trusted-ca-file=/etc/etcd/ssl/ca.pem".into(),
            "--peer-client-cert-auth=true".into(),
        ]
    };
    let ms: Vec<ImportedMember> = (1..=3)
        .map(|i| member_with(i, "https", &tls(i), &[]))
        .collect();
    let refused = render("prod", &ms, &reach()).err().unwrap_or_default();
    assert!(
        refused.iter().any(|w| w.contains("pass --cacert")),
        "{refused:?}"
    );
    let with_ca = Reach {
        ca_file: Some("/srv/pki/ca.pem".into()),
        ..reach()
    };
    let text = render("prod", &ms, &with_ca).unwrap_or_else(|e| panic!("{e:?}"));
    for line in [
        "issuer = \"external\"",
        "ca_file = \"/srv/pki/ca.pem\"",
        "server_cert = \"/etc/etcd/ssl/{name}.pem\"",
        "peer_key = \"/etc/etcd/ssl/{name}-key.pem\"",
        "trusted_ca = \"/etc/etcd/ssl/ca.pem\"",
        "client_cert_auth = true",
        "client = true",
        "peer = true",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }
}

/// An auth store as `auth_users`/`auth_roles` return it: root, an app user
/// with a prefix grant and a reader with a one-key grant.
fn store() -> ImportedAuth {
    let grant = |key: &str, range_end: &[u8], access| LivePermission {
        key: key.as_bytes().to_vec(),
        range_end: range_end.to_vec(),
        access,
    };
    ImportedAuth {
        users: vec![
            ("app".into(), vec!["app".into()]),
            ("read-only".into(), vec!["reader".into()]),
            ("root".into(), vec!["root".into()]),
        ],
        roles: vec![
            LiveRole {
                name: "app".into(),
                permissions: vec![grant("/app/", b"/app0", Access::ReadWrite)],
            },
            LiveRole {
                name: "reader".into(),
                permissions: vec![grant("/config", b"", Access::Read)],
            },
            LiveRole {
                name: "root".into(),
                permissions: Vec::new(),
            },
        ],
    }
}

#[test]
fn an_auth_store_becomes_auth_with_password_variables_never_passwords() {
    let extra: Vec<String> = [
        "--auth-token=jwt,pub-key=/etc/etcd/jwt.pub,priv-key=/etc/etcd/jwt.key,sign-method=ES256,ttl=10m",
        // etcd reads a JWT's lifetime from its ttl option; this is for simple tokens.
        "--auth-token-ttl=300",
    ]
    .map(String::from)
    .to_vec();
    let text = render_with_auth("prod", &all(&extra), &reach(), Some(&store()))
        .unwrap_or_else(|e| panic!("{e:?}"));
    for line in [
        "[auth]",
        "enabled = true",
        "root_password_env = \"ETCDPLAN_PASSWORD_ROOT\"",
        "token = \"jwt\"",
        "token_ttl = \"600s\"",
        "permissions = [{ key = \"/app/\", prefix = true, access = \"readwrite\" }]",
        "permissions = [{ key = \"/config\", prefix = false, access = \"read\" }]",
        "password_env = \"ETCDPLAN_PASSWORD_READ_ONLY\"",
        "roles = [\"reader\"]",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }
    assert!(
        !text.lines().any(|l| l.starts_with("\"auth-token")),
        "the token is said in [auth], not [etcd.extra]:\n{text}"
    );
    assert!(
        !text.contains("name = \"root\""),
        "root is not a declared user or role:\n{text}"
    );
    // What import writes is an etcdfile etcdplan accepts, with the store in it.
    let d = common::desired_from(&text);
    let Some(auth) = d.auth else {
        panic!("no [auth] in the model")
    };
    assert_eq!(
        auth.root,
        Login::Password(SecretSource::Env("ETCDPLAN_PASSWORD_ROOT".into()))
    );
    assert!(matches!(auth.token, TokenKind::Jwt { .. }));
    assert_eq!(auth.users.len(), 2);
    assert_eq!(auth.roles.len(), 2);
    insta::assert_snapshot!("import-auth", text);
}

#[test]
fn without_auth_on_no_auth_is_written_and_a_grant_the_etcdfile_cannot_say_is_refused() {
    let plain = render("prod", &all(&[]), &reach()).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!plain.contains("[auth]"));
    let mut odd = store();
    odd.roles[0].permissions[0].range_end = b"/b".to_vec();
    let refused = render_with_auth("prod", &all(&[]), &reach(), Some(&odd))
        .err()
        .unwrap_or_default();
    assert!(
        refused
            .iter()
            .any(|r| r.contains("role app grants readwrite on the range \"/app/\"..\"/b\"")),
        "{refused:?}"
    );
}
