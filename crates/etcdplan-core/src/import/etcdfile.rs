//! The etcdfile `etcdplan import` writes: the cluster as it runs, each
//! setting taken from what the members' etcd resolved to ([`super::resolve`]),
//! with a comment naming where it came from. Strict: a setting the etcdfile
//! cannot say (members that differ where the etcdfile has one value, paths no
//! single `{name}`/`{address}` pattern fits, mixed service managers) is a
//! reason to refuse, never a silent pick.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Setting, Settings, Value};
use crate::config::{AuthName, ROOT};
use crate::live::LiveRole;
use crate::model::EtcdVersion;

/// One member as import found it.
#[derive(Debug, Clone)]
pub struct ImportedMember {
    /// Its name in MemberList.
    pub name: String,
    /// The host its peer URL names (IP or DNS name).
    pub address: String,
    /// What its etcd runs with.
    pub settings: Settings,
    /// The etcd version its Status reports.
    pub version: Option<EtcdVersion>,
    /// The user its etcd runs as.
    pub user: Option<String>,
}

/// How etcdplan reaches the hosts, as given to import.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Members on this machine (`transport = "local"`).
    pub local: bool,
    /// ssh user.
    pub ssh_user: Option<String>,
    /// ssh port.
    pub ssh_port: Option<u16>,
    /// ssh identity file.
    pub ssh_identity: Option<String>,
    /// known_hosts file.
    pub ssh_known_hosts: Option<String>,
    /// The CA certificate (on this machine) that issued the members' certificates.
    pub ca_file: Option<String>,
    /// The client certificate and key (on this machine) import connected
    /// with: etcdplan connects with them too (`[client]`).
    pub client_cert: Option<(String, String)>,
}

/// etcd's auth store as import read it, while auth is on. etcd never gives a
/// password back, and does not say which users have none (certificate users).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedAuth {
    /// Every user with its roles (`AuthUserList`/`AuthUserGet`), sorted by name.
    pub users: Vec<(String, Vec<String>)>,
    /// Every role with its grants (`AuthRoleList`/`AuthRoleGet`), sorted by name.
    pub roles: Vec<LiveRole>,
}

/// The environment variable import names for a user's password: the name
/// upper-cased, anything but letters and digits as `_`.
pub fn password_variable(user: &str) -> String {
    let tail: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("ETCDPLAN_PASSWORD_{tail}")
}

/// What import writes, or every reason it cannot describe the cluster exactly.
pub fn render(
    cluster_name: &str,
    members: &[ImportedMember],
    reach: &Reach,
) -> Result<String, Vec<String>> {
    render_with_auth(cluster_name, members, reach, None)
}

/// [`render`], with `[auth]` written from the auth store when auth is on
/// (`auth` is `Some`); without it, no `[auth]`: etcdplan leaves auth as it
/// finds it.
pub fn render_with_auth(
    cluster_name: &str,
    members: &[ImportedMember],
    reach: &Reach,
    auth: Option<&ImportedAuth>,
) -> Result<String, Vec<String>> {
    let mut w = Writer::default();
    if members.is_empty() {
        return Err(vec!["the cluster lists no members".into()]);
    }
    for m in members {
        for e in &m.settings.errors {
            w.refuse(format!("{}: {e}", m.name));
        }
    }

    // Per member: each setting with the member's name and address put back
    // into `{name}`/`{address}`, so that equal patterns compare equal.
    let normal: Vec<BTreeMap<String, (String, &Setting)>> = members
        .iter()
        .map(|m| {
            m.settings
                .values
                .iter()
                .map(|(k, s)| (k.clone(), (pattern(&s.value, m), s)))
                .collect()
        })
        .collect();
    let keys: std::collections::BTreeSet<&String> = normal.iter().flat_map(|n| n.keys()).collect();

    let mut cluster = Section::default();
    let mut etcd = Section::default();
    let mut extra = Section::default();
    let mut tls = Section::default();
    let mut per_member: Vec<Section> = vec![Section::default(); members.len()];
    // The members' token settings, said in [auth] when it is written.
    let mut token = Section::default();

    // The version every member runs.
    let versions: std::collections::BTreeSet<String> = members
        .iter()
        .filter_map(|m| m.version.map(|v| v.to_string()))
        .collect();
    match versions.len() {
        1 => {
            if let Some(v) = versions.first() {
                cluster.set("version", quote(v), "every member runs it (their Status)");
            }
        }
        0 => {}
        _ => w.refuse(format!(
            "the members run different etcd versions ({}): finish that upgrade first",
            versions.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }

    for key in keys {
        let values: Vec<Option<&(String, &Setting)>> = normal.iter().map(|n| n.get(key)).collect();
        let first = values[0];
        let same = values
            .iter()
            .all(|v| v.map(|x| &x.0) == first.map(|x| &x.0));
        let src = |i: usize| -> String {
            values[i].map_or_else(String::new, |(_, s)| format!("from {}", s.source))
        };
        let from_all = || {
            if members.len() > 1 {
                format!("{} (the same on every member)", src(0))
            } else {
                src(0)
            }
        };
        let differ = || {
            let shown: Vec<String> = members
                .iter()
                .zip(&values)
                .map(|(m, v)| {
                    format!(
                        "{}: {}",
                        m.name,
                        v.map_or("(not set)".to_owned(), |(_, s)| s.value.to_string())
                    )
                })
                .collect();
            format!(
                "members differ in {key}, which the etcdfile sets once for all: {}",
                shown.join("; ")
            )
        };
        // The first member that sets it speaks for the value's kind.
        let Some((text, setting)) = values.iter().flatten().next().copied() else {
            continue;
        };
        let value = &setting.value;
        match key.as_str() {
            // Bootstrap-only, or what etcdplan derives itself.
            "name"
            | "initial-cluster"
            | "initial-cluster-state"
            | "config-file"
            | "initial-advertise-peer-urls"
            | "advertise-client-urls"
            | "listen-peer-urls" => {}
            "listen-client-urls" => {
                // Addresses beyond the member's own, as extra listeners.
                let extra_addrs: Vec<Vec<String>> = members
                    .iter()
                    .zip(&values)
                    .map(|(m, v)| {
                        v.map(|(_, s)| list(&s.value))
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|u| url_host(u))
                            .filter(|h| *h != m.address)
                            .collect()
                    })
                    .collect();
                if extra_addrs.iter().all(|e| *e == extra_addrs[0]) {
                    if !extra_addrs[0].is_empty() {
                        etcd.set(
                            "extra_listen_addresses",
                            toml_list(&extra_addrs[0]),
                            &from_all(),
                        );
                    }
                } else {
                    for (i, e) in extra_addrs.iter().enumerate() {
                        if !e.is_empty() {
                            per_member[i].set("extra_listen_addresses", toml_list(e), &src(i));
                        }
                    }
                }
            }
            "data-dir" | "wal-dir" => {
                let name = if key == "data-dir" {
                    "data_dir"
                } else {
                    "wal_dir"
                };
                if same {
                    etcd.set(name, quote(text), &from_all());
                } else if key == "wal-dir" {
                    for (i, v) in values.iter().enumerate() {
                        if let Some((_, s)) = v {
                            per_member[i].set(name, quote(&s.value.to_string()), &src(i));
                        }
                    }
                } else {
                    w.refuse(format!(
                        "{} (no one pattern with {{name}} fits them all)",
                        differ()
                    ));
                }
            }
            "initial-cluster-token" => {
                if same {
                    cluster.set("initial_cluster_token", quote(text), &from_all());
                } else {
                    w.refuse(differ());
                }
            }
            "quota-backend-bytes"
            | "max-request-bytes"
            | "heartbeat-interval"
            | "election-timeout"
            | "auto-compaction-mode"
            | "auto-compaction-retention" => {
                if !same {
                    w.refuse(differ());
                    continue;
                }
                let (k, v) = match key.as_str() {
                    "quota-backend-bytes" => ("quota_backend_bytes", number(value)),
                    "max-request-bytes" => ("max_request_bytes", number(value)),
                    "heartbeat-interval" => {
                        ("heartbeat_interval", quote(&format!("{}ms", number(value))))
                    }
                    "election-timeout" => {
                        ("election_timeout", quote(&format!("{}ms", number(value))))
                    }
                    "auto-compaction-mode" => ("auto_compaction_mode", quote(text)),
                    _ => ("auto_compaction_retention", quote(text)),
                };
                etcd.set(k, v, &from_all());
            }
            "snapshot-count" | "log-level" | "listen-metrics-urls" => {
                let k = key.replace('-', "_");
                let render = |s: &(String, &Setting)| match key.as_str() {
                    "snapshot-count" => number(&s.1.value),
                    "log-level" => quote(&s.0),
                    _ => toml_list(&list_text(&s.0)),
                };
                if same {
                    etcd.set(&k, render(&(text.clone(), setting)), &from_all());
                } else {
                    for (i, v) in values.iter().enumerate() {
                        if let Some(x) = v {
                            per_member[i].set(&k, render(x), &src(i));
                        }
                    }
                }
            }
            "cert-file"
            | "key-file"
            | "trusted-ca-file"
            | "peer-cert-file"
            | "peer-key-file"
            | "peer-trusted-ca-file"
            | "client-cert-auth"
            | "peer-client-cert-auth" => {
                if !same {
                    w.refuse(format!(
                        "{} (no one pattern with {{name}} and {{address}} fits them all)",
                        differ()
                    ));
                    continue;
                }
                match key.as_str() {
                    "cert-file" => tls.set("server_cert", quote(text), &from_all()),
                    "key-file" => tls.set("server_key", quote(text), &from_all()),
                    "peer-cert-file" => tls.set("peer_cert", quote(text), &from_all()),
                    "peer-key-file" => tls.set("peer_key", quote(text), &from_all()),
                    "trusted-ca-file" | "peer-trusted-ca-file" => {
                        if let Some(prev) = tls.get("trusted_ca").filter(|p| *p != quote(text)) {
                            w.refuse(format!(
                                "the members trust one CA file for clients ({prev}) and another for peers ({}); the etcdfile names one",
                                quote(text)
                            ));
                        }
                        tls.set("trusted_ca", quote(text), &from_all());
                    }
                    "client-cert-auth" => tls.set("client_cert_auth", text.clone(), &from_all()),
                    _ => {
                        if *value != Value::Bool(true) {
                            w.refuse("peer-client-cert-auth is off: etcdplan's peer TLS always checks peer certificates".into());
                        }
                    }
                }
            }
            "auth-token" | "auth-token-ttl" if auth.is_some() => {
                if !same {
                    w.refuse(differ());
                    continue;
                }
                if key == "auth-token" {
                    let kind = text.split(',').next().unwrap_or_default();
                    match kind {
                        "simple" => token.set("token", quote("simple"), &from_all()),
                        "jwt" => {
                            token.set("token", quote("jwt"), &format!("{} (etcdplan makes its own key pair in key_dir and places it on every member at the takeover)", from_all()));
                            // A JWT's lifetime is its `ttl=` option; auth-token-ttl is for simple tokens.
                            let ttl = text.split(',').find_map(|o| o.strip_prefix("ttl="));
                            if let Some(ttl) = ttl {
                                match crate::model::parse_duration(ttl) {
                                    Ok(d) => token.set(
                                        "token_ttl",
                                        quote(&format!("{}s", d.as_secs())),
                                        &format!("the ttl option of auth-token, {}", from_all()),
                                    ),
                                    Err(e) => w.refuse(format!(
                                        "auth-token's ttl {ttl:?} ({}): {e}",
                                        src(0)
                                    )),
                                }
                            }
                        }
                        other => w.refuse(format!(
                            "auth-token {other:?} ({}): the etcdfile knows \"simple\" and \"jwt\"",
                            src(0)
                        )),
                    }
                } else if token.get("token") != Some(quote("jwt")) {
                    token.set(
                        "token_ttl",
                        quote(&format!("{}s", number(value))),
                        &from_all(),
                    );
                }
            }
            // What etcdplan always renders: kept as it is when the member agrees.
            "strict-reconfig-check" | "enable-v2" | "logger" | "log-outputs" => {
                w.note(format!(
                    "{key} = {text} ({}): etcdplan writes its own value for it",
                    src(0)
                ));
            }
            _ => {
                if same {
                    extra.set(&quote(key), extra_value(value, text), &from_all());
                } else {
                    for (i, v) in values.iter().enumerate() {
                        if let Some(x) = v {
                            per_member[i].set(&quote(key), extra_value(&x.1.value, &x.0), &src(i));
                        }
                    }
                }
            }
        }
    }

    // Ports and TLS from the URLs each member advertises.
    let ports = |key: &str| -> Vec<Option<(String, u16)>> {
        members
            .iter()
            .map(|m| {
                m.settings
                    .get(key)
                    .and_then(|v| list(v).first().cloned())
                    .and_then(|u| scheme_port(&u))
            })
            .collect()
    };
    for (key, port_key, tls_key) in [
        ("advertise-client-urls", "client_port", "client"),
        ("initial-advertise-peer-urls", "peer_port", "peer"),
    ] {
        let got = ports(key);
        if got.iter().any(Option::is_none) {
            w.refuse(format!("a member's {key} could not be read"));
            continue;
        }
        let got: Vec<(String, u16)> = got.into_iter().flatten().collect();
        let schemes: std::collections::BTreeSet<&str> = got.iter().map(|g| g.0.as_str()).collect();
        if schemes.len() > 1 {
            w.refuse(format!("members mix http and https in {key}"));
        }
        if got.iter().all(|g| g.1 == got[0].1) {
            etcd.set(
                port_key,
                got[0].1.to_string(),
                &format!("from {key} of every member"),
            );
        } else {
            for (i, g) in got.iter().enumerate() {
                per_member[i].set(
                    port_key,
                    g.1.to_string(),
                    &format!("from {key} of {}", members[i].name),
                );
            }
        }
        if got[0].0 == "https" {
            tls.set(tls_key, "true".into(), &format!("{key} is https"));
        }
    }
    if !tls.lines.is_empty() {
        tls.set(
            "issuer",
            quote("external"),
            "the members' certificates are the operator's own",
        );
        match &reach.ca_file {
            Some(ca) => tls.set("ca_file", quote(ca), "given as --cacert"),
            None => w.refuse(
                "the members serve TLS: pass --cacert with the CA that issued their certificates"
                    .into(),
            ),
        }
    }

    // How etcd runs on the hosts.
    let units: Vec<bool> = members.iter().map(|m| m.settings.unit.is_some()).collect();
    let service = if units.iter().all(|u| *u) {
        "systemd"
    } else if units.iter().all(|u| !*u) {
        "process"
    } else {
        w.refuse("some members run under systemd and some as bare processes".into());
        "process"
    };
    let users: std::collections::BTreeSet<String> =
        members.iter().filter_map(|m| m.user.clone()).collect();
    let run_as = match users.len() {
        0 => None,
        1 => users.into_iter().next(),
        _ => {
            w.refuse("the members' etcd runs as different users".into());
            None
        }
    };
    let binaries: std::collections::BTreeSet<String> = members
        .iter()
        .filter_map(|m| m.settings.binary.clone())
        .collect();
    if binaries.len() > 1 {
        w.refuse(format!(
            "the members run etcd from different paths: {}",
            binaries.into_iter().collect::<Vec<_>>().join(", ")
        ));
    } else if let Some(b) = binaries.first().filter(|b| b.as_str() != "/usr/bin/etcd") {
        etcd.set("binary", quote(b), "from argv[0] of every member's etcd");
    }

    if !w.refusals.is_empty() {
        return Err(w.refusals);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by `etcdplan import` from the running cluster: each value says where it came from."
    );
    for n in &w.notes {
        let _ = writeln!(out, "# Note: {n}");
    }
    let _ = writeln!(out, "\n[cluster]\nname = {}", quote(cluster_name));
    cluster.write(&mut out);
    let _ = writeln!(out, "\n[etcd]");
    etcd.write(&mut out);
    if !extra.lines.is_empty() {
        let _ = writeln!(out, "\n[etcd.extra]");
        extra.write(&mut out);
    }
    if !tls.lines.is_empty() {
        let _ = writeln!(out, "\n[tls]");
        tls.write(&mut out);
    }
    if !tls.lines.is_empty() {
        let mut client = Section::default();
        if let Some(ca) = &reach.ca_file {
            client.set("cacert", quote(ca), "given as --cacert");
        }
        if let Some((cert, key)) = &reach.client_cert {
            client.set("cert", quote(cert), "given as --cert");
            client.set("key", quote(key), "given as --key");
        }
        let _ = writeln!(out, "\n[client]");
        client.write(&mut out);
    }
    let _ = writeln!(out, "\n[hosts]");
    let mut hosts = Section::default();
    hosts.set(
        "transport",
        quote(if reach.local { "local" } else { "ssh" }),
        "how import reached the hosts",
    );
    hosts.set(
        "service",
        quote(service),
        if service == "systemd" {
            "a systemd unit runs every member"
        } else {
            "no systemd unit runs the members' etcd"
        },
    );
    if let Some(u) = &run_as {
        hosts.set("run_as", quote(u), "the user the members' etcd runs as");
    }
    if !reach.local {
        if let Some(u) = &reach.ssh_user {
            hosts.set("ssh_user", quote(u), "given as --ssh-user");
        }
        if let Some(p) = reach.ssh_port {
            hosts.set("ssh_port", p.to_string(), "given as --ssh-port");
        }
        if let Some(i) = &reach.ssh_identity {
            hosts.set("ssh_identity", quote(i), "given as --ssh-identity");
        }
        if let Some(k) = &reach.ssh_known_hosts {
            hosts.set("ssh_known_hosts", quote(k), "given as --ssh-known-hosts");
        }
    }
    hosts.write(&mut out);
    if let Some(a) = auth {
        let cert_auth = tls.get("client_cert_auth").as_deref() == Some("true");
        write_auth(&mut out, a, &token, cert_auth)?;
    }
    for (m, own) in members.iter().zip(per_member) {
        let _ = writeln!(
            out,
            "\n[[member]]\nname = {}\naddress = {}",
            quote(&m.name),
            quote(&m.address)
        );
        own.write(&mut out);
    }
    Ok(out)
}

/// `[auth]` and its roles and users, from the store: never a password (etcd
/// gives none back), a variable named for each with a comment saying to set
/// it. Refuses what the etcdfile cannot say (a name it refuses, a grant on a
/// range that is neither one key nor a prefix, roles of root beyond root).
fn write_auth(
    out: &mut String,
    a: &ImportedAuth,
    token: &Section,
    cert_auth: bool,
) -> Result<(), Vec<String>> {
    let mut refusals = Vec::new();
    let named = |n: &str, what: &str, refusals: &mut Vec<String>| {
        if let Err(e) = AuthName::parse(n) {
            refusals.push(format!(
                "the auth store holds a {what} named {n:?}, which the etcdfile cannot name: {e}"
            ));
        }
    };
    let mut roles = Vec::new();
    for r in a.roles.iter().filter(|r| r.name != ROOT) {
        named(&r.name, "role", &mut refusals);
        let mut grants = Vec::new();
        for p in &r.permissions {
            match p.as_declared() {
                Some(g) => grants.push(g),
                None => refusals.push(format!(
                    "role {} grants {} on the range {:?}..{:?}, which is neither one key nor a prefix: the etcdfile cannot say it",
                    r.name,
                    p.access.word(),
                    String::from_utf8_lossy(&p.key),
                    String::from_utf8_lossy(&p.range_end),
                )),
            }
        }
        roles.push((r.name.as_str(), grants));
    }
    let mut users = Vec::new();
    let mut variables: Vec<String> = Vec::new();
    for (name, user_roles) in &a.users {
        if name == ROOT {
            if user_roles.iter().any(|r| r != ROOT) {
                refusals.push(format!(
                    "root has roles besides root ({}): the etcdfile gives root only its own",
                    user_roles.join(", ")
                ));
            }
            continue;
        }
        named(name, "user", &mut refusals);
        let mut var = password_variable(name);
        while variables.contains(&var) || var == password_variable(ROOT) {
            var.push('_');
        }
        variables.push(var.clone());
        users.push((name.as_str(), user_roles, var));
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let _ = writeln!(
        out,
        "\n# etcd auth is on (AuthStatus); its users and roles are below.\n\
         # etcd never gives a password back: set each password_env variable named\n\
         # here before running etcdplan (or name a password_file instead).\n\
         # etcd does not say which users have no password and log in by their\n\
         # certificate's CN{}: drop password_env for those.\n\
         [auth]\nenabled = true\n# set root's password in this variable\nroot_password_env = {}",
        if cert_auth {
            ""
        } else {
            " (only with [tls] client_cert_auth)"
        },
        quote(&password_variable(ROOT)),
    );
    if token.get("token").is_none() {
        let _ = writeln!(out, "# the members set no auth-token: etcd's default");
        let _ = writeln!(out, "token = {}", quote("simple"));
    }
    token.write(out);
    for (name, grants) in roles {
        let shown: Vec<String> = grants
            .iter()
            .map(|g| {
                format!(
                    "{{ key = {}, prefix = {}, access = {} }}",
                    quote(&g.key),
                    g.prefix,
                    quote(g.access.word())
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "\n[[auth.role]]\nname = {}\npermissions = [{}]",
            quote(name),
            shown.join(", ")
        );
    }
    for (name, user_roles, var) in users {
        let _ = writeln!(
            out,
            "\n[[auth.user]]\nname = {}\n# set its password in this variable (or drop it for a certificate user)\npassword_env = {}\nroles = {}",
            quote(name),
            quote(&var),
            toml_list(user_roles)
        );
    }
    Ok(())
}

/// Refusals and notes gathered while rendering.
#[derive(Default)]
struct Writer {
    refusals: Vec<String>,
    notes: Vec<String>,
}

impl Writer {
    fn refuse(&mut self, why: String) {
        if !self.refusals.contains(&why) {
            self.refusals.push(why);
        }
    }
    fn note(&mut self, n: String) {
        self.notes.push(n);
    }
}

/// One table's lines, each with where its value came from.
#[derive(Default, Clone)]
struct Section {
    lines: Vec<(String, String, String)>,
}

impl Section {
    fn set(&mut self, key: &str, value: String, from: &str) {
        self.lines.retain(|l| l.0 != key);
        self.lines.push((key.to_owned(), value, from.to_owned()));
    }
    fn get(&self, key: &str) -> Option<String> {
        self.lines.iter().find(|l| l.0 == key).map(|l| l.1.clone())
    }
    fn write(&self, out: &mut String) {
        for (k, v, from) in &self.lines {
            if !from.is_empty() {
                let _ = writeln!(out, "# {from}");
            }
            let _ = writeln!(out, "{k} = {v}");
        }
    }
}

/// A value as text with the member's name and address made placeholders.
fn pattern(v: &Value, m: &ImportedMember) -> String {
    let text = v.to_string();
    let by_name = replace_word(&text, &m.name, "{name}");
    replace_word(&by_name, &m.address, "{address}")
}

/// `s` with `word` replaced where it stands between separators (so
/// `etcd-1` is not found inside `etcd-10`).
fn replace_word(s: &str, word: &str, by: &str) -> String {
    if word.is_empty() {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let before_ok = rest[..i]
            .chars()
            .last()
            .is_none_or(|c| !c.is_alphanumeric());
        let after = &rest[i + word.len()..];
        let after_ok = after.chars().next().is_none_or(|c| !c.is_alphanumeric());
        out.push_str(&rest[..i]);
        if before_ok && after_ok {
            out.push_str(by);
        } else {
            out.push_str(word);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", quoted.join(", "))
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.clone(),
        other => list_text(&other.to_string()),
    }
}

fn list_text(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn number(v: &Value) -> String {
    match v {
        Value::Uint(n) => n.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Duration(d) => d.as_millis().to_string(),
        other => other.to_string(),
    }
}

fn extra_value(v: &Value, pattern_text: &str) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Uint(n) => n.to_string(),
        Value::Int(n) => n.to_string(),
        // etcd's YAML reads durations as nanoseconds.
        Value::Duration(d) => d.as_nanos().to_string(),
        Value::List(_) => toml_list(&list_text(pattern_text)),
        Value::Str(_) => quote(pattern_text),
    }
}

/// The host of a URL (`http://10.0.0.11:2379` → `10.0.0.11`).
fn url_host(u: &str) -> Option<String> {
    let rest = u.split_once("://")?.1;
    let hostport = rest.split('/').next()?;
    let host = match hostport.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => hostport,
    };
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
}

/// The scheme and port of a URL.
fn scheme_port(u: &str) -> Option<(String, u16)> {
    let (scheme, rest) = u.split_once("://")?;
    let hostport = rest.split('/').next()?;
    let port = hostport.rsplit_once(':')?.1.parse().ok()?;
    Some((scheme.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_replaced_only_as_whole_words() {
        assert_eq!(
            replace_word("/var/lib/etcd/etcd-1", "etcd-1", "{name}"),
            "/var/lib/etcd/{name}"
        );
        assert_eq!(
            replace_word("/data/etcd-10", "etcd-1", "{name}"),
            "/data/etcd-10"
        );
        assert_eq!(url_host("https://[::1]:2379").as_deref(), Some("::1"));
        assert_eq!(
            scheme_port("https://10.0.0.1:2379"),
            Some(("https".into(), 2379))
        );
    }
}
