//! The etcd that listens on a member's ports, as the probe found it: its pid,
//! command line and the systemd unit that runs it, if one does. The diff
//! compares it with etcdplan's own service to tell a member etcdplan runs
//! from one it must take over ("adopt").

use std::path::PathBuf;

/// An etcd process listening on a member's client or peer port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Listener {
    /// Its pid on the host.
    pub pid: u32,
    /// Its command line (`/proc/PID/cmdline`), argv\[0\] first.
    pub cmdline: Vec<String>,
    /// The systemd unit whose main process it is, if any.
    pub unit: Option<ListenerUnit>,
}

/// The systemd unit that runs a listening etcd, with what must be moved aside
/// so that it never starts again once etcdplan's service runs the member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListenerUnit {
    /// The unit's name (`etcd.service`).
    pub name: String,
    /// The unit file systemd loaded it from (`FragmentPath`).
    pub fragment: Option<PathBuf>,
    /// Drop-ins that extend it (`DropInPaths`).
    pub dropins: Vec<PathBuf>,
    /// The environment files it reads (`EnvironmentFiles`).
    pub env_files: Vec<PathBuf>,
}

impl Listener {
    /// How people know it: "etcd.service" or "the etcd process 1234".
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.unit {
            Some(u) => u.name.clone(),
            None => format!("the etcd process {}", self.pid),
        }
    }
}
