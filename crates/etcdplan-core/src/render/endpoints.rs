//! `etcdplan endpoints`: the cluster's client endpoints in the form each
//! consumer reads (etcdctl's variables, kube-apiserver's flags, StorageOS's
//! `KV_ADDR`), so a runbook copies a line instead of assembling one by hand.
//!
//! Pure: the command decides which endpoints and which certificate files;
//! this only writes them down.

use std::path::PathBuf;

use crate::config::Desired;
use crate::live::Live;
use crate::model::{Endpoint, shell_quote};

/// The forms `--format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointsFormat {
    /// One URL a line.
    #[default]
    List,
    /// `export ETCDCTL_ENDPOINTS=…` and, with TLS, the certificate variables.
    Etcdctl,
    /// `--etcd-servers=…` and, with TLS, the three file flags, on one line.
    KubeApiserver,
    /// `KV_BACKEND=etcd` and `KV_ADDR=host:port,…` (StorageOS; no scheme).
    KvAddr,
    /// `{"endpoints": [...], "tls": {...}}`.
    Json,
}

/// The files a client presents over https: absolute paths, as the
/// consumers are started from folders of their own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientFiles {
    /// The CA bundle that verifies the members.
    pub cacert: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// What the command found: the endpoints, and the client files when the
/// members serve clients over https.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSet {
    /// The voters' client URLs, in the etcdfile's order.
    pub endpoints: Vec<Endpoint>,
    /// None: plain http.
    pub tls: Option<ClientFiles>,
}

/// Why there is nothing to print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointsError {
    /// No endpoint: the etcdfile has no member, or none answers (`--healthy`).
    #[error("no client endpoint is known{0}")]
    None(&'static str),
}

/// The etcdfile's members that are voters answering now, healthy by
/// [`crate::live::MemberStatus::healthy`]: their client URLs in the
/// etcdfile's order (`endpoints --healthy`). A member is matched by the
/// client URL it advertises, or by its name while a port change rolls out.
pub fn healthy(d: &Desired, live: &Live) -> Vec<Endpoint> {
    let Some(cluster) = &live.cluster else {
        return Vec::new();
    };
    d.members
        .iter()
        .filter(|m| {
            let url = m.client_url(&d.tls);
            cluster.members.iter().any(|l| {
                !l.is_learner && l.healthy() && (l.client_urls.contains(&url) || l.name.is(&m.name))
            })
        })
        .map(|m| m.client_url(&d.tls))
        .collect()
}

/// The endpoints in `format`, each line ending in a newline.
///
/// # Errors
/// [`EndpointsError::None`] when the set is empty: a consumer given an empty
/// list would fail later and less clearly.
pub fn endpoints(set: &EndpointSet, format: EndpointsFormat) -> Result<String, EndpointsError> {
    if set.endpoints.is_empty() {
        return Err(EndpointsError::None(""));
    }
    let urls: Vec<String> = set.endpoints.iter().map(ToString::to_string).collect();
    let text = match format {
        EndpointsFormat::List => urls.iter().map(|u| format!("{u}\n")).collect(),
        EndpointsFormat::Etcdctl => {
            let mut s = format!(
                "export ETCDCTL_ENDPOINTS={}\n",
                shell_quote(&urls.join(","))
            );
            if let Some(t) = &set.tls {
                for (var, path) in [
                    ("ETCDCTL_CACERT", &t.cacert),
                    ("ETCDCTL_CERT", &t.cert),
                    ("ETCDCTL_KEY", &t.key),
                ] {
                    s.push_str(&format!(
                        "export {var}={}\n",
                        shell_quote(&path.to_string_lossy())
                    ));
                }
            }
            s
        }
        EndpointsFormat::KubeApiserver => {
            let mut flags = vec![format!("--etcd-servers={}", urls.join(","))];
            if let Some(t) = &set.tls {
                for (flag, path) in [
                    ("--etcd-cafile", &t.cacert),
                    ("--etcd-certfile", &t.cert),
                    ("--etcd-keyfile", &t.key),
                ] {
                    flags.push(format!("{flag}={}", path.to_string_lossy()));
                }
            }
            // One shell word each: a path with a space stays one flag.
            let words: Vec<String> = flags.iter().map(|f| shell_quote(f)).collect();
            format!("{}\n", words.join(" "))
        }
        EndpointsFormat::KvAddr => {
            let addrs: Vec<String> = set
                .endpoints
                .iter()
                .map(|e| format!("{}:{}", e.host, e.port))
                .collect();
            format!("KV_BACKEND=etcd\nKV_ADDR={}\n", addrs.join(","))
        }
        EndpointsFormat::Json => {
            let doc = serde_json::json!({ "endpoints": urls, "tls": set.tls });
            format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
        }
    };
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(urls: &[&str], tls: bool) -> EndpointSet {
        EndpointSet {
            endpoints: urls
                .iter()
                .map(|u| Endpoint::parse(u).unwrap_or_else(|| panic!("{u}")))
                .collect(),
            tls: tls.then(|| ClientFiles {
                cacert: "/etc/etcd client/ca.crt".into(),
                cert: "/home/ops/kube-apiserver.crt".into(),
                key: "/home/ops/kube-apiserver.key".into(),
            }),
        }
    }

    const TLS: &[&str] = &[
        "https://10.0.0.1:2379",
        "https://etcd-2.example.com:2379",
        "https://[fd00::3]:2479",
    ];
    const PLAIN: &[&str] = &["http://10.0.0.1:2379", "http://10.0.0.2:2379"];

    fn all(s: &EndpointSet) -> String {
        let mut out = String::new();
        for (name, f) in [
            ("list", EndpointsFormat::List),
            ("etcdctl", EndpointsFormat::Etcdctl),
            ("kube-apiserver", EndpointsFormat::KubeApiserver),
            ("kv-addr", EndpointsFormat::KvAddr),
            ("json", EndpointsFormat::Json),
        ] {
            out.push_str(&format!("== {name}\n"));
            out.push_str(&endpoints(s, f).unwrap_or_else(|e| e.to_string()));
        }
        out
    }

    #[test]
    fn every_format_with_tls() {
        insta::assert_snapshot!(all(&set(TLS, true)));
    }

    #[test]
    fn every_format_without_tls() {
        insta::assert_snapshot!(all(&set(PLAIN, false)));
    }

    #[test]
    fn no_endpoint_is_an_error_in_every_format() {
        for f in [
            EndpointsFormat::List,
            EndpointsFormat::Etcdctl,
            EndpointsFormat::KubeApiserver,
            EndpointsFormat::KvAddr,
            EndpointsFormat::Json,
        ] {
            assert_eq!(endpoints(&set(&[], true), f), Err(EndpointsError::None("")));
        }
    }

    #[test]
    fn kv_addr_has_no_scheme_and_keeps_ipv6_brackets() {
        let text = endpoints(&set(TLS, true), EndpointsFormat::KvAddr).unwrap_or_default();
        assert_eq!(
            text,
            "KV_BACKEND=etcd\nKV_ADDR=10.0.0.1:2379,etcd-2.example.com:2379,[fd00::3]:2479\n"
        );
    }

    #[test]
    fn etcdctl_lines_quote_a_path_with_a_space() {
        let text = endpoints(&set(TLS, true), EndpointsFormat::Etcdctl).unwrap_or_default();
        assert!(text.contains("export ETCDCTL_CACERT='/etc/etcd client/ca.crt'\n"));
        assert!(!text.contains("ETCDCTL_CERT=/home/ops/kube-apiserver.crt'"));
        let plain = endpoints(&set(PLAIN, false), EndpointsFormat::Etcdctl).unwrap_or_default();
        assert_eq!(
            plain,
            "export ETCDCTL_ENDPOINTS=http://10.0.0.1:2379,http://10.0.0.2:2379\n"
        );
    }

    #[test]
    fn json_is_endpoints_and_tls() {
        let text = endpoints(&set(TLS, true), EndpointsFormat::Json).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["endpoints"][2], "https://[fd00::3]:2479");
        assert_eq!(v["tls"]["key"], "/home/ops/kube-apiserver.key");
        let text = endpoints(&set(PLAIN, false), EndpointsFormat::Json).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert!(v["tls"].is_null());
    }
}
