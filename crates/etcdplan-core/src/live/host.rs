//! What a member's host shows: owned files, data dir, service, binary,
//! certificates. The probe on the edge fills these in.

use std::path::PathBuf;

use crate::model::EtcdVersion;

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
    pub listening: Option<Vec<String>>,
    /// Problems the probe found that stop etcd from being started here.
    pub problems: Vec<String>,
    /// The member's certificate files (read only when the etcdfile asks for TLS).
    pub certs: HostCerts,
    /// The CA bundle the running etcd was started with, when recorded (it
    /// builds its trust pool at start; `certs.ca` is the file now).
    pub started_ca: Option<String>,
    /// Releases etcdplan installed on the host (`<binary>-<version>`), with
    /// their sha256; read only when the etcdfile sets `binary_source`.
    pub installed: std::collections::BTreeMap<EtcdVersion, String>,
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
