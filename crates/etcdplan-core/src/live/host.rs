//! What a member's host shows: owned files, data dir, service, binary,
//! certificates. The probe on the edge fills these in.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::model::{Address, EtcdVersion, Port};

/// Whether etcd is running for a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "pid")]
pub enum ServiceState {
    /// Running with this pid.
    Running(u32),
    /// Not running.
    Stopped,
}

/// What the data dir holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataDir {
    /// It does not exist.
    Absent,
    /// It exists and is empty.
    Empty,
    /// It holds an etcd member (member/wal or member/snap).
    Member,
    /// It holds something else.
    Other,
}

/// The etcd binary on the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum Binary {
    /// Present; the version when `--version` could be read.
    Found {
        /// Parsed version.
        version: Option<EtcdVersion>,
    },
    /// Not present or not executable.
    Missing,
}

/// What a reachable host shows for one member.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostFacts {
    /// Each owned file and its content (None: absent).
    pub files: Vec<(PathBuf, Option<String>)>,
    /// The data dir.
    pub data: DataDir,
    /// The etcd process.
    pub service: ServiceState,
    /// sha256 of the config the running etcd was started with, when known.
    pub started_config: Option<String>,
    /// The configured binary.
    pub binary: Binary,
    /// Local addresses listening on the member's ports (None: `ss` unavailable).
    pub listening: Option<Vec<ListenAddr>>,
    /// The member and cluster the data dir's WAL belongs to, when it could be read.
    pub data_owner_id: Option<(crate::model::MemberId, crate::model::ClusterId)>,
    /// The etcd listening on the member's ports, whoever started it (None:
    /// none, or `ss` could not tell).
    pub listener: Option<super::Listener>,
    /// Problems the probe found that stop etcd from being started here.
    pub problems: Vec<ProbeProblem>,
    /// The member's certificate files (read only when the etcdfile asks for TLS).
    pub certs: HostCerts,
    /// The CA bundle the running etcd was started with, when recorded (it
    /// builds its trust pool at start; `certs.ca` is the file now).
    pub started_ca: Option<String>,
    /// Releases etcdplan installed on the host (`<binary>-<version>`), with
    /// their sha256; read only when the etcdfile sets `binary_source`.
    pub installed: std::collections::BTreeMap<EtcdVersion, String>,
    /// The member's systemd unit as systemd shows it; `None` for the
    /// `process` service, or when systemd did not answer.
    pub unit: Option<super::UnitState>,
    /// Who owns the data dir, when it exists: etcd running as another user
    /// than root needs it to own its data (`[hosts] run_as`).
    pub data_owner: Option<String>,
    /// The user the running etcd runs as, when it runs and that could be read.
    pub service_user: Option<String>,
    /// The JWT key pair and the CRL etcdplan placed for the member, as
    /// digests (read only when the etcdfile asks for them).
    pub auth_files: HostAuthFiles,
    /// A restore this member is part of that has not been verified yet
    /// (`<stamp>\t<token>` from [`super::RESTORE_PENDING`] in its state dir).
    pub restore_pending: Option<String>,
}

/// Something on a host that stops etcd from being started there, as the
/// service manager's probe reports it (e.g. no systemd on the host).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeProblem {
    /// What is wrong, without the host ("systemctl not found").
    pub message: String,
    /// What to do about it.
    pub help: String,
}

/// A local address a TCP socket listens on, as `ss` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenAddr {
    /// The bound IP; None for `*` (every address, both families).
    pub ip: Option<IpAddr>,
    /// The port.
    pub port: u16,
}

/// Why a listening address could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address:port")]
pub struct ListenAddrError(String);

impl ListenAddr {
    /// Whether the socket takes connections on every local address (`*`,
    /// `0.0.0.0` or `[::]`).
    pub fn is_wildcard(&self) -> bool {
        self.ip.is_none_or(|ip| ip.is_unspecified())
    }

    /// Whether a connection to `address`:`port` would reach this socket.
    /// A host name never matches a bound IP: `ss -n` prints numbers only.
    pub fn takes(&self, address: &Address, port: Port) -> bool {
        self.port == port.get()
            && (self.is_wildcard()
                || matches!((address, self.ip), (Address::Ip(a), Some(b)) if *a == b))
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = ListenAddrError;

    /// Reads `ss`'s local address: `1.2.3.4:80`, `[::1]:80`, `*:80`, with an
    /// optional `%interface` after the address (`127.0.0.53%lo:53`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ListenAddrError(s.to_owned());
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host = host.split_once('%').map_or(host, |(h, _)| h);
        let ip = match host {
            "*" => None,
            h => Some(h.parse().map_err(|_| bad())?),
        };
        Ok(Self { ip, port })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            None => write!(f, "*:{}", self.port),
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Some(ip) => write!(f, "{ip}:{}", self.port),
        }
    }
}

impl serde::Serialize for ListenAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The certificate files etcdplan writes for a member, as found on its host.
///
/// Certificates are public and read whole; of the keys only the mode is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostCerts {
    /// `ca.crt` (PEM; a bundle while a CA rotation is under way).
    pub ca: Option<String>,
    /// `server.crt` (PEM).
    pub server: Option<String>,
    /// `peer.crt` (PEM).
    pub peer: Option<String>,
    /// Mode of `server.key` (None: absent).
    pub server_key_mode: Option<u32>,
    /// Mode of `peer.key` (None: absent).
    pub peer_key_mode: Option<u32>,
}

/// The auth files etcdplan places for a member (`hostfiles::auth_paths`), as
/// found on its host: sha256 of each, so the key never leaves the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostAuthFiles {
    /// sha256 of `jwt.pub` (None: absent).
    pub jwt_pub: Option<String>,
    /// sha256 of `jwt.key` (None: absent).
    pub jwt_key: Option<String>,
    /// Mode of `jwt.key` (None: absent).
    pub jwt_key_mode: Option<u32>,
    /// sha256 of `crl.pem` (None: absent).
    pub crl: Option<String>,
}

/// The same files on this machine, as digests: the JWT key pair in
/// `[auth] key_dir` and `[tls] crl_file`. `None` where the file is not there
/// (the key pair is made at apply time).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LocalAuthFiles {
    /// sha256 of the public key.
    pub jwt_pub: Option<String>,
    /// sha256 of the private key.
    pub jwt_key: Option<String>,
    /// sha256 of the CRL.
    pub crl: Option<String>,
}

impl Binary {
    /// Its version, when present and readable.
    pub fn version(&self) -> Option<EtcdVersion> {
        match self {
            Self::Found { version } => *version,
            Self::Missing => None,
        }
    }
}

impl HostFacts {
    /// The CAs the running etcd trusts: what it was started with when that was
    /// recorded, else the file on disk.
    pub fn running_trust(&self) -> Option<&str> {
        self.started_ca.as_deref().or(self.certs.ca.as_deref())
    }

    /// The live content of an owned file.
    pub fn file(&self, path: &std::path::Path) -> Option<&str> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, c)| c.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> ListenAddr {
        match s.parse() {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn listen_addresses_as_ss_prints_them() {
        let port = |n| Port::new(n).unwrap_or_else(|| panic!("port {n}"));
        let member = Address::Ip("10.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")));
        for wild in ["0.0.0.0:2379", "*:2379", "[::]:2379"] {
            let a = addr(wild);
            assert!(a.is_wildcard(), "{wild}");
            assert!(a.takes(&member, port(2379)), "{wild}");
            assert!(!a.takes(&member, port(2380)), "{wild}");
        }
        let own = addr("10.0.0.1:2379");
        assert!(!own.is_wildcard());
        assert!(own.takes(&member, port(2379)));
        assert!(!addr("10.0.0.2:2379").takes(&member, port(2379)));
        assert!(!addr("127.0.0.1:2379").takes(&member, port(2379)));
        let v6 = Address::Ip("fd00::1".parse().unwrap_or_else(|e| panic!("{e}")));
        assert!(addr("[fd00::1]:2380").takes(&v6, port(2380)));
        assert!(!own.takes(&Address::Dns("node1".into()), port(2379)));
        assert_eq!(addr("127.0.0.53%lo:53").to_string(), "127.0.0.53:53");
        assert_eq!(addr("[::1]:2379").to_string(), "[::1]:2379");
        for bad in ["", "2379", "host:2379", "1.2.3.4:port", "1.2.3.4:70000"] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }
}
