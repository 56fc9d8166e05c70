//! One test per source of settings etcd can be given on a hand-built host, each
//! with etcd's precedence, on real unit files (Debian bookworm's `etcd.service`
//! and `/etc/default/etcd` are copied verbatim into `testdata/`).

use std::time::Duration;

use super::*;

const HOST: &str = "10.0.0.11";
const DEBIAN_UNIT: &str = include_str!("testdata/debian-bookworm-etcd.service");
const DEBIAN_DEFAULT: &str = include_str!("testdata/debian-bookworm-default-etcd");
const HOWTO_UNIT: &str = include_str!("testdata/howto-etcd.service");
const ANSIBLE_CONF: &str = include_str!("testdata/ansible-etcd.conf");
const CONFIG_YAML: &str = include_str!("testdata/etcd.yml");

fn unit_text(path: &str, text: &str) -> UnitText {
    UnitText {
        path: path.into(),
        text: text.into(),
    }
}

fn host(unit: Option<UnitSources>, process: Option<ProcessSources>) -> HostSources {
    HostSources {
        host: HOST.into(),
        hostname: "node1".into(),
        process,
        unit,
        config_file: None,
        other_env_files: Vec::new(),
    }
}

fn unit(
    path: &str,
    text: &str,
    dropins: Vec<UnitText>,
    env_files: &[(&str, Option<&str>)],
) -> UnitSources {
    UnitSources {
        name: "etcd.service".into(),
        unit: unit_text(path, text),
        dropins,
        environment_files: env_files
            .iter()
            .map(|(p, t)| EnvironmentFileText {
                path: (*p).into(),
                text: t.map(str::to_owned),
            })
            .collect(),
    }
}

fn process(cmdline: &[&str], environ: &[(&str, &str)]) -> ProcessSources {
    ProcessSources {
        cmdline: cmdline.iter().map(|&s| s.to_owned()).collect(),
        environ: environ
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

/// The value and the source in words, for compact assertions.
fn at(s: &Settings, key: &str) -> (Value, String) {
    let v = s.values.get(key).unwrap_or_else(|| {
        panic!(
            "{key} not set; have {:?}",
            s.values.keys().collect::<Vec<_>>()
        )
    });
    (v.value.clone(), v.source.to_string())
}

fn clean(s: &Settings) {
    assert!(s.errors.is_empty(), "errors: {:#?}", s.errors);
    assert!(s.warnings.is_empty(), "warnings: {:#?}", s.warnings);
}

fn str_(s: &str) -> Value {
    Value::Str(s.into())
}

#[test]
fn exec_start_flags_of_a_hand_written_unit() {
    let u = unit("/etc/systemd/system/etcd.service", HOWTO_UNIT, vec![], &[]);
    let s = resolve(&host(Some(u.clone()), None), None);
    clean(&s);
    let exec = "ExecStart of etcd.service on 10.0.0.11".to_owned();
    assert_eq!(at(&s, "name"), (str_("infra1"), exec.clone()));
    assert_eq!(
        at(&s, "heartbeat-interval"),
        (Value::Uint(250), exec.clone())
    );
    assert_eq!(at(&s, "election-timeout").0, Value::Uint(2500));
    assert_eq!(at(&s, "snapshot-count").0, Value::Uint(5000));
    assert_eq!(at(&s, "quota-backend-bytes").0, Value::Int(8_589_934_592));
    assert_eq!(at(&s, "client-cert-auth").0, Value::Bool(true));
    assert_eq!(at(&s, "peer-client-cert-auth").0, Value::Bool(true));
    assert_eq!(
        at(&s, "experimental-initial-corrupt-check").0,
        Value::Bool(true)
    );
    assert_eq!(
        at(&s, "grpc-keepalive-interval").0,
        Value::Duration(Duration::from_secs(3600))
    );
    assert_eq!(
        at(&s, "listen-client-urls").0,
        Value::List(vec![
            "https://10.0.0.11:2379".into(),
            "https://127.0.0.1:2379".into()
        ])
    );
    assert_eq!(at(&s, "peer-key-file").0, str_("/etc/etcd/pki/peer.key"));
    assert_eq!(s.values.len(), 25);
    assert_eq!(s.binary.as_deref(), Some("/usr/local/bin/etcd"));
    assert_eq!(
        s.unit.as_ref().and_then(|u| u.user.as_deref()),
        Some("etcd")
    );

    // The running process with the same command line: same settings, same sources.
    let argv: Vec<String> = s
        .unit
        .as_ref()
        .map(|u| u.exec_start.argv.clone())
        .unwrap_or_default();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let running = resolve(&host(Some(u), Some(process(&argv, &[("HOME", "/")]))), None);
    clean(&running);
    assert_eq!(running.values, s.values);
}

#[test]
fn debian_unit_with_its_default_file() {
    // Debian's own files, untouched: Environment= in the unit gives name and data dir.
    let u = unit(
        "/lib/systemd/system/etcd.service",
        DEBIAN_UNIT,
        vec![],
        &[("/etc/default/etcd", Some(DEBIAN_DEFAULT))],
    );
    let s = resolve(&host(Some(u), None), None);
    clean(&s);
    assert_eq!(
        at(&s, "name"),
        (
            str_("node1"),
            "Environment=ETCD_NAME of etcd.service on 10.0.0.11".into()
        )
    );
    assert_eq!(at(&s, "data-dir").0, str_("/var/lib/etcd/default"));
    assert_eq!(s.values.len(), 2);
    assert_eq!(
        s.unit.as_ref().and_then(|u| u.user.as_deref()),
        Some("etcd")
    );

    // The file edited as the runbooks do: ETCD_* lines, DAEMON_ARGS, a name that
    // overrides the unit's Environment=.
    let default = concat!(
        "## etcd(1) daemon options\n",
        "ETCD_NAME=\"infra1\"\n",
        "ETCD_HEARTBEAT_INTERVAL=250\n",
        "ETCD_ELECTION_TIMEOUT='2500'\n",
        "DAEMON_ARGS=\"--snapshot-count=5000 --log-level warn\"\n",
    );
    let u = unit(
        "/lib/systemd/system/etcd.service",
        DEBIAN_UNIT,
        vec![],
        &[("/etc/default/etcd", Some(default))],
    );
    let s = resolve(&host(Some(u.clone()), None), None);
    clean(&s);
    let file = |v: &str| format!("{v} in /etc/default/etcd on 10.0.0.11");
    assert_eq!(at(&s, "name"), (str_("infra1"), file("ETCD_NAME")));
    assert_eq!(
        at(&s, "heartbeat-interval"),
        (Value::Uint(250), file("ETCD_HEARTBEAT_INTERVAL"))
    );
    assert_eq!(at(&s, "election-timeout").0, Value::Uint(2500));
    assert_eq!(
        at(&s, "snapshot-count"),
        (Value::Uint(5000), file("DAEMON_ARGS"))
    );
    assert_eq!(at(&s, "log-level"), (str_("warn"), file("DAEMON_ARGS")));

    // The running etcd, as /proc shows it: the same, traced to the same files.
    let p = process(
        &[
            "/usr/bin/etcd",
            "--snapshot-count=5000",
            "--log-level",
            "warn",
        ],
        &[
            ("PATH", "/usr/bin"),
            ("DAEMON_ARGS", "--snapshot-count=5000 --log-level warn"),
            ("ETCD_NAME", "infra1"),
            ("ETCD_DATA_DIR", "/var/lib/etcd/default"),
            ("ETCD_HEARTBEAT_INTERVAL", "250"),
            ("ETCD_ELECTION_TIMEOUT", "2500"),
        ],
    );
    let running = resolve(&host(Some(u), Some(p)), None);
    clean(&running);
    assert_eq!(running.values, s.values);
}

#[test]
fn a_dropin_replaces_exec_start_and_adds_environment() {
    let dropin = unit_text(
        "/etc/systemd/system/etcd.service.d/override.conf",
        concat!(
            "[Service]\n",
            "ExecStart=\n",
            "ExecStart=/usr/bin/etcd --name infra1 --heartbeat-interval 300 \\\n",
            "    --data-dir /srv/etcd\n",
            "Environment=ETCD_ELECTION_TIMEOUT=3000 \"ETCD_LOG_LEVEL=debug\"\n",
        ),
    );
    let u = unit(
        "/lib/systemd/system/etcd.service",
        DEBIAN_UNIT,
        vec![dropin],
        &[("/etc/default/etcd", Some(DEBIAN_DEFAULT))],
    );
    let s = resolve(&host(Some(u), None), None);
    let dropin = |what: &str| {
        format!("{what} in drop-in /etc/systemd/system/etcd.service.d/override.conf on 10.0.0.11")
    };
    assert_eq!(
        at(&s, "heartbeat-interval"),
        (Value::Uint(300), dropin("ExecStart"))
    );
    assert_eq!(
        at(&s, "election-timeout"),
        (
            Value::Uint(3000),
            dropin("Environment=ETCD_ELECTION_TIMEOUT")
        )
    );
    assert_eq!(at(&s, "log-level").0, str_("debug"));
    // The drop-in's --name and --data-dir meet the unit's ETCD_NAME and ETCD_DATA_DIR:
    // etcd refuses to start with both.
    let conflicts: Vec<&str> = s
        .errors
        .iter()
        .filter_map(|e| match e {
            ImportError::FlagAndEnv { var, .. } => Some(var.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(conflicts, ["ETCD_DATA_DIR", "ETCD_NAME"]);
}

#[test]
fn ansible_style_etc_etcd_conf() {
    let text = concat!(
        "[Service]\n",
        "Type=notify\n",
        "User=etcd\n",
        "EnvironmentFile=-/etc/etcd/etcd.conf\n",
        "ExecStart=/usr/local/bin/etcd\n",
    );
    let u = unit(
        "/etc/systemd/system/etcd.service",
        text,
        vec![],
        &[("/etc/etcd/etcd.conf", Some(ANSIBLE_CONF))],
    );
    let s = resolve(&host(Some(u), None), None);
    clean(&s);
    let conf = |v: &str| format!("{v} in /etc/etcd/etcd.conf on 10.0.0.11");
    assert_eq!(at(&s, "name"), (str_("etcd2"), conf("ETCD_NAME")));
    assert_eq!(
        at(&s, "initial-cluster-token"),
        (str_("k8s_etcd"), conf("ETCD_INITIAL_CLUSTER_TOKEN"))
    );
    assert_eq!(at(&s, "election-timeout").0, Value::Uint(5000));
    assert_eq!(at(&s, "enable-v2").0, Value::Bool(false));
    assert_eq!(
        at(&s, "listen-client-urls").0,
        Value::List(vec![
            "http://10.0.0.12:2379".into(),
            "http://127.0.0.1:2379".into()
        ])
    );
    assert_eq!(s.values.len(), 13);

    // etcd 3.6 has no --enable-v2: with the member's version known, that is an error.
    let u = unit(
        "/etc/systemd/system/etcd.service",
        text,
        vec![],
        &[("/etc/etcd/etcd.conf", Some(ANSIBLE_CONF))],
    );
    let v36 = MinorVersion { major: 3, minor: 6 };
    let s = resolve(&host(Some(u), None), Some(v36));
    assert!(matches!(
        s.errors.as_slice(),
        [ImportError::NotInVersion { flag, .. }] if flag == "enable-v2"
    ));

    // A bare process started by a script that sourced the file: the file is named
    // as the source of the variables whose values match.
    let environ: Vec<(String, String)> = envfile::parse(ANSIBLE_CONF)
        .assignments
        .into_iter()
        .map(|a| (a.key, a.value))
        .collect();
    let mut h = host(
        None,
        Some(ProcessSources {
            cmdline: vec!["/usr/local/bin/etcd".into()],
            environ,
        }),
    );
    h.other_env_files.push(FileText {
        path: "/etc/etcd/etcd.conf".into(),
        text: ANSIBLE_CONF.replace("etcd2", "elsewhere"),
    });
    let s = resolve(&h, None);
    clean(&s);
    assert_eq!(at(&s, "data-dir").1, conf("ETCD_DATA_DIR"));
    assert_eq!(
        at(&s, "name"),
        (
            str_("etcd2"),
            "ETCD_NAME in the running etcd's environment on 10.0.0.11".into()
        )
    );
}

#[test]
fn a_config_file_makes_etcd_ignore_flags_and_environment() {
    let text = concat!(
        "[Service]\n",
        "Environment=ETCD_DATA_DIR=/elsewhere\n",
        "ExecStart=/usr/bin/etcd --config-file /etc/etcd/etcd.yml --name ignored --raft-read-timeout=10s\n",
    );
    let mut h = host(
        Some(unit("/etc/systemd/system/etcd.service", text, vec![], &[])),
        None,
    );
    h.config_file = Some(FileText {
        path: "/etc/etcd/etcd.yml".into(),
        text: CONFIG_YAML.into(),
    });
    let s = resolve(&h, None);
    assert!(s.errors.is_empty(), "{:#?}", s.errors);
    assert_eq!(s.config_file.as_deref(), Some("/etc/etcd/etcd.yml"));
    let yml = "--config-file /etc/etcd/etcd.yml on 10.0.0.11".to_owned();
    assert_eq!(at(&s, "name"), (str_("infra2"), yml.clone()));
    assert_eq!(at(&s, "data-dir").0, str_("/var/lib/etcd/infra2"));
    assert_eq!(at(&s, "wal-dir").0, str_("/var/lib/etcd-wal/infra2"));
    assert_eq!(at(&s, "heartbeat-interval").0, Value::Uint(100));
    assert_eq!(at(&s, "peer-cert-file").0, str_("/etc/etcd/pki/peer.crt"));
    assert_eq!(at(&s, "peer-client-cert-auth").0, Value::Bool(true));
    assert_eq!(at(&s, "log-outputs").0, Value::List(vec!["stderr".into()]));
    // A global set while flags are parsed: it applies with a config file too.
    assert_eq!(
        at(&s, "raft-read-timeout"),
        (
            Value::Duration(Duration::from_secs(10)),
            "ExecStart of etcd.service on 10.0.0.11".into()
        )
    );
    let ignored: Vec<&str> = s
        .warnings
        .iter()
        .filter_map(|w| match w {
            Warning::IgnoredForConfigFile { what, .. } => Some(what.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ignored, ["--name", "ETCD_DATA_DIR"]);
    assert_eq!(s.warnings.len(), 2);

    // Named by ETCD_CONFIG_FILE instead, and not handed in: an error naming it.
    let text =
        "[Service]\nEnvironment=ETCD_CONFIG_FILE=/etc/etcd/etcd.yml\nExecStart=/usr/bin/etcd\n";
    let h = host(
        Some(unit("/etc/systemd/system/etcd.service", text, vec![], &[])),
        None,
    );
    assert_eq!(
        config_file_path(
            &["/usr/bin/etcd".into()],
            &[("ETCD_CONFIG_FILE".into(), "/etc/etcd/etcd.yml".into())]
        ),
        Some("/etc/etcd/etcd.yml".into())
    );
    let s = resolve(&h, None);
    assert!(matches!(
        s.errors.as_slice(),
        [ImportError::ConfigFileNotRead { path, .. }] if path == "/etc/etcd/etcd.yml"
    ));
}

#[test]
fn an_environment_variable_duplicating_a_flag_is_an_error() {
    let text = concat!(
        "[Service]\n",
        "Environment=ETCD_SNAPSHOT_COUNT=5000 ETCD_WAL_DIR=\n",
        "ExecStart=/usr/bin/etcd --name a --snapshot-count=10000 --wal-dir /w\n",
    );
    let s = resolve(
        &host(
            Some(unit("/etc/systemd/system/etcd.service", text, vec![], &[])),
            None,
        ),
        None,
    );
    let msgs: Vec<String> = s.errors.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(msgs[0].starts_with(
        "ETCD_SNAPSHOT_COUNT (from Environment=ETCD_SNAPSHOT_COUNT of etcd.service on 10.0.0.11) and --snapshot-count (from ExecStart of etcd.service on 10.0.0.11)"
    ));
    // Even an empty variable: etcd's check is on the name.
    assert!(msgs[1].starts_with("ETCD_WAL_DIR "), "{}", msgs[1]);
}

#[test]
fn the_running_process_wins_over_a_unit_edited_since() {
    let u = unit(
        "/etc/systemd/system/etcd.service",
        "[Service]\nEnvironment=ETCD_LOG_LEVEL=info ETCD_FOO=1\nExecStart=/usr/bin/etcd --name a --snapshot-count 100\n",
        vec![],
        &[],
    );
    let p = process(
        &["/usr/bin/etcd", "--name", "a", "--snapshot-count", "200"],
        &[("ETCD_LOG_LEVEL", "debug")],
    );
    let s = resolve(&host(Some(u), Some(p)), None);
    assert!(s.errors.is_empty(), "{:#?}", s.errors);
    assert_eq!(
        at(&s, "snapshot-count"),
        (
            Value::Uint(200),
            "the running etcd's command line on 10.0.0.11".into()
        )
    );
    assert_eq!(
        at(&s, "log-level"),
        (
            str_("debug"),
            "ETCD_LOG_LEVEL in the running etcd's environment on 10.0.0.11".into()
        )
    );
    let kinds: Vec<&str> = s
        .warnings
        .iter()
        .map(|w| match w {
            Warning::CommandLineDiffers { .. } => "command line",
            Warning::EnvDiffers { .. } => "env differs",
            Warning::EnvNotInProcess { .. } => "env missing",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["command line", "env differs", "env missing"]);
}

#[test]
fn unknown_variables_warn_and_bad_values_are_errors() {
    let text = concat!(
        "[Service]\n",
        "Environment=ETCD_NOT_A_FLAG=1 ETCD_HEARTBEAT_INTERVAL=fast\n",
        "ExecStart=/usr/bin/etcd --force\n",
    );
    let s = resolve(
        &host(
            Some(unit("/etc/systemd/system/etcd.service", text, vec![], &[])),
            None,
        ),
        None,
    );
    assert!(matches!(
        s.errors.as_slice(),
        [ImportError::BadValue { key, .. }] if key == "heartbeat-interval"
    ));
    let w: Vec<String> = s.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].contains("--force"), "{}", w[0]);
    assert!(w[1].contains("ETCD_NOT_A_FLAG"), "{}", w[1]);

    let s = resolve(&host(None, None), None);
    assert_eq!(s.errors, [ImportError::NothingToRead]);
}

#[test]
fn differences_between_members() {
    let member = |name: &str, heartbeat: &str, extra: &str| {
        let text = format!(
            "[Service]\nExecStart=/usr/bin/etcd --name {name} --heartbeat-interval={heartbeat} --snapshot-count=5000 {extra}\n"
        );
        resolve(
            &host(
                Some(unit("/etc/systemd/system/etcd.service", &text, vec![], &[])),
                None,
            ),
            None,
        )
    };
    let a = member("a", "250", "");
    let b = member("b", "250", "");
    let c = member("c", "300", "--log-level=debug");
    let d = differences([("a", &a), ("b", &b), ("c", &c)]);
    let keys: Vec<&str> = d.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["heartbeat-interval", "log-level", "name"]);
    let heartbeat: Vec<(&str, Option<&Value>)> = d[0]
        .values
        .iter()
        .map(|(m, s)| (m.as_str(), s.as_ref().map(|s| &s.value)))
        .collect();
    assert_eq!(
        heartbeat,
        [
            ("a", Some(&Value::Uint(250))),
            ("b", Some(&Value::Uint(250))),
            ("c", Some(&Value::Uint(300)))
        ]
    );
    assert_eq!(d[1].values[0].1, None);
    assert!(differences([("a", &a), ("a2", &a)]).is_empty());
}
