//! etcd's `--config-file` YAML, read as etcd reads it (`embed.ConfigFromFile` and
//! `etcdmain`'s `configFromFile`: sigs.k8s.io/yaml into the `json:` tags), with each
//! key mapped to the flag it stands for, so that [`super::Settings`] has one key per
//! setting whichever way it was given.
//!
//! What differs from flags: TLS settings sit under `client-transport-security` and
//! `peer-transport-security` (`cert-file`, …, `allowed-cn`, `allowed-hostname`);
//! `socket-options` holds `reuse-port` and `reuse-address`; durations are integer
//! nanoseconds (JSON's `time.Duration`); list settings are a YAML list or a
//! comma-separated string; keys etcd does not know are silently ignored by etcd,
//! so they are warnings here. Some flags have no key at all (`client-crl-file`,
//! `peer-crl-file`, `experimental-peer-skip-client-san-verification`, …): etcd
//! ignores them in the file too.

use std::time::Duration;

use yaml_rust2::{Yaml, YamlLoader};

use super::Value;
use super::flags::{self, Kind};

/// One setting read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSetting {
    /// The setting's key (the flag's name).
    pub key: String,
    /// The YAML key path it was written under (`peer-transport-security.cert-file`).
    pub yaml_key: String,
    /// The value.
    pub value: Value,
}

/// What the file gives and what etcd would make of the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigFile {
    /// Settings in file order.
    pub settings: Vec<FileSetting>,
    /// Keys etcd ignores.
    pub ignored: Vec<String>,
    /// Values etcd would refuse, or keys import cannot describe.
    pub errors: Vec<String>,
}

/// Flags that are not keys of the config file (etcd ignores them there).
const FLAG_ONLY: &[&str] = &[
    "cert-file",
    "key-file",
    "client-cert-file",
    "client-key-file",
    "client-cert-auth",
    "trusted-ca-file",
    "auto-tls",
    "peer-cert-file",
    "peer-key-file",
    "peer-client-cert-file",
    "peer-client-key-file",
    "peer-client-cert-auth",
    "peer-trusted-ca-file",
    "peer-auto-tls",
    "peer-cert-allowed-cn",
    "peer-cert-allowed-hostname",
    "client-cert-allowed-hostname",
    "client-crl-file",
    "peer-crl-file",
    "experimental-peer-skip-client-san-verification",
    "peer-skip-client-san-verification",
    "config-file",
    "version",
    "raft-read-timeout",
    "raft-write-timeout",
    "socket-reuse-port",
    "socket-reuse-address",
    "experimental-snapshot-catchup-entries",
    "discovery-endpoints",
    "discovery-token",
    "discovery-dial-timeout",
    "discovery-request-timeout",
    "discovery-keepalive-time",
    "discovery-keepalive-timeout",
    "discovery-insecure-transport",
    "discovery-insecure-skip-tls-verify",
    "discovery-cert",
    "discovery-key",
    "discovery-cacert",
    "discovery-user",
    "discovery-password",
];

/// Keys etcd knows that import does not read (it refuses to guess).
const UNSUPPORTED: &[&str] = &["discovery-config", "grpc-additional-server-options"];

/// The flag a key under a `*-transport-security` section stands for.
fn security_key(peer: bool, key: &str) -> Option<String> {
    let client = match key {
        "cert-file" | "key-file" | "client-cert-file" | "client-key-file" | "client-cert-auth"
        | "trusted-ca-file" | "auto-tls" => key.to_owned(),
        "allowed-cn" if !peer => return Some("client-transport-security.allowed-cn".to_owned()),
        "allowed-hostname" if !peer => "client-cert-allowed-hostname".to_owned(),
        "allowed-cn" => "cert-allowed-cn".to_owned(),
        "allowed-hostname" => "cert-allowed-hostname".to_owned(),
        _ => return None,
    };
    Some(if peer {
        format!("peer-{client}")
    } else {
        client
    })
}

/// Reads a config file's text.
pub fn parse(text: &str) -> Result<ConfigFile, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let mut out = ConfigFile::default();
    let doc = match docs.as_slice() {
        [] => return Ok(out),
        [d] => d,
        _ => return Err("holds several YAML documents".to_owned()),
    };
    let map = match doc {
        Yaml::Hash(h) => h,
        Yaml::Null => return Ok(out),
        _ => return Err("is not a YAML mapping of settings".to_owned()),
    };
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            out.errors.push(format!("key {k:?} is not a string"));
            continue;
        };
        match key {
            "client-transport-security" | "peer-transport-security" => {
                let peer = key.starts_with("peer");
                match v {
                    Yaml::Hash(inner) => {
                        for (ik, iv) in inner {
                            let ik = ik.as_str().unwrap_or_default();
                            let path = format!("{key}.{ik}");
                            match security_key(peer, ik) {
                                Some(flag) => add(&mut out, &flag, path, iv),
                                None => out.ignored.push(path),
                            }
                        }
                    }
                    Yaml::Null => {}
                    _ => out.errors.push(format!("{key} is not a mapping")),
                }
            }
            "socket-options" => match v {
                Yaml::Hash(inner) => {
                    for (ik, iv) in inner {
                        let ik = ik.as_str().unwrap_or_default();
                        let path = format!("{key}.{ik}");
                        match ik {
                            "reuse-port" | "reuse-address" => {
                                add(&mut out, &format!("socket-{ik}"), path, iv);
                            }
                            _ => out.ignored.push(path),
                        }
                    }
                }
                Yaml::Null => {}
                _ => out.errors.push(format!("{key} is not a mapping")),
            },
            "experimental-snapshot-catch-up-entries" => {
                add(
                    &mut out,
                    "experimental-snapshot-catchup-entries",
                    key.to_owned(),
                    v,
                );
            }
            k if UNSUPPORTED.contains(&k) => out
                .errors
                .push(format!("import does not read {k:?} in etcd's config file")),
            k if FLAG_ONLY.contains(&k) => out.ignored.push(k.to_owned()),
            k => match flags::lookup(k) {
                Some(f) if f.kind != Kind::Ignored => add(&mut out, k, k.to_owned(), v),
                _ => out.ignored.push(k.to_owned()),
            },
        }
    }
    Ok(out)
}

fn add(out: &mut ConfigFile, key: &str, yaml_key: String, v: &Yaml) {
    if matches!(v, Yaml::Null) {
        // JSON null leaves etcd's default.
        return;
    }
    let kind = flags::lookup(key).map_or(Kind::Strings, |f| f.kind);
    match value(kind, v) {
        Ok(value) => out.settings.push(FileSetting {
            key: key.to_owned(),
            yaml_key,
            value,
        }),
        Err(e) => out.errors.push(format!("{yaml_key}: {e}")),
    }
}

/// A YAML scalar's text, for settings etcd reads as strings.
fn scalar_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn value(kind: Kind, v: &Yaml) -> Result<Value, String> {
    match (kind, v) {
        (Kind::Bool, Yaml::Boolean(b)) => Ok(Value::Bool(*b)),
        (Kind::Uint, Yaml::Integer(i)) => u64::try_from(*i)
            .map(Value::Uint)
            .map_err(|_| format!("{i} is negative")),
        (Kind::Int, Yaml::Integer(i)) => Ok(Value::Int(*i)),
        (Kind::Duration, Yaml::Integer(i)) => u64::try_from(*i)
            .map(|n| Value::Duration(Duration::from_nanos(n)))
            .map_err(|_| format!("{i} is negative")),
        (Kind::Duration, _) => Err(format!(
            "{v:?}: etcd reads durations in its config file as integer nanoseconds"
        )),
        (Kind::Urls | Kind::Strings, Yaml::Array(items)) => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| format!("{i:?} is not a string")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        (k, other) => match scalar_text(other) {
            Some(t) => flags::parse_value(k, &t),
            None => Err(format!("{other:?} is not a value etcd reads here")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_tls_and_socket_keys_map_to_flags() {
        let f = parse(concat!(
            "name: infra0\n",
            "heartbeat-interval: 200\n",
            "listen-peer-urls: https://10.0.0.1:2380\n",
            "log-outputs: [stderr]\n",
            "grpc-keepalive-interval: 7200000000000\n",
            "client-transport-security:\n",
            "  cert-file: /etc/etcd/server.crt\n",
            "  client-cert-auth: true\n",
            "peer-transport-security:\n",
            "  trusted-ca-file: /etc/etcd/ca.crt\n",
            "  allowed-cn: [etcd-peer]\n",
            "socket-options:\n",
            "  reuse-port: true\n",
            "peer-cert-file: /ignored/by/etcd\n",
            "no-such-key: 1\n",
            "initial-cluster-token:\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(&str, &Value)> = f
            .settings
            .iter()
            .map(|s| (s.key.as_str(), &s.value))
            .collect();
        assert_eq!(
            got,
            [
                ("name", &Value::Str("infra0".into())),
                ("heartbeat-interval", &Value::Uint(200)),
                (
                    "listen-peer-urls",
                    &Value::List(vec!["https://10.0.0.1:2380".into()])
                ),
                ("log-outputs", &Value::List(vec!["stderr".into()])),
                (
                    "grpc-keepalive-interval",
                    &Value::Duration(Duration::from_secs(7200))
                ),
                ("cert-file", &Value::Str("/etc/etcd/server.crt".into())),
                ("client-cert-auth", &Value::Bool(true)),
                (
                    "peer-trusted-ca-file",
                    &Value::Str("/etc/etcd/ca.crt".into())
                ),
                (
                    "peer-cert-allowed-cn",
                    &Value::List(vec!["etcd-peer".into()])
                ),
                ("socket-reuse-port", &Value::Bool(true)),
            ]
        );
        assert_eq!(f.ignored, ["peer-cert-file", "no-such-key"]);
        assert!(f.errors.is_empty(), "{:?}", f.errors);
    }

    #[test]
    fn values_etcd_would_refuse_are_errors() {
        let f = parse(
            "grpc-keepalive-interval: 2h\ninitial-cluster-state: old\ndiscovery-config: {}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.errors.len(), 3, "{:?}", f.errors);
        assert!(parse("- a\n- b\n").is_err());
    }
}
