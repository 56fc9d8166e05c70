//! The `etcd.service` unit etcdplan renders and owns for the `systemd` service.
//!
//! It follows etcd's own example unit (`Type=notify`, no start timeout, a high
//! file limit) with `Restart=on-failure`: a member removed from the cluster
//! exits 0 and must stay down (`Restart=always` would loop it). etcd reads every
//! setting from the config file, so the unit carries none of its own.
//!
//! With `[hosts] run_as` other than root the unit says `User=` and, as
//! Debian's own etcd unit does, no `Group=`: systemd then runs etcd with the
//! user's primary group, whatever that group is called. The unit for root is
//! the one etcdplan always wrote, byte for byte.

use std::path::{Path, PathBuf};

use crate::config::{Desired, DesiredMember};

/// The unit's name. One etcd per host under systemd (validation enforces it).
pub const UNIT: &str = "etcd.service";

/// Where the unit lives.
pub fn unit_path() -> PathBuf {
    PathBuf::from("/etc/systemd/system").join(UNIT)
}

/// Quotes a path for an `ExecStart=` line when it needs it.
fn exec_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// The unit file for a member.
pub fn unit(d: &Desired, m: &DesiredMember) -> String {
    format!(
        "# etcd member {name} of cluster {cluster}.\n\
{header}\n\
[Unit]\n\
Description=etcd member {name} of cluster {cluster}\n\
Documentation=https://etcd.io/docs/\n\
Wants=network-online.target\n\
After=network-online.target\n\
\n\
[Service]\n\
Type=notify\n\
{user}ExecStart={bin} --config-file {cfg}\n\
Restart=on-failure\n\
RestartSec=5s\n\
TimeoutStartSec=0\n\
TimeoutStopSec={stop}s\n\
LimitNOFILE=65536\n\
IOSchedulingClass=best-effort\n\
IOSchedulingPriority=0\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n",
        header = super::OWNED_HEADER,
        name = m.name,
        cluster = d.cluster,
        bin = exec_quote(&d.etcd.binary),
        // 30 s, or etcd's own worst case for a graceful stop when longer
        // (a long election timeout): systemd's SIGKILL must not cut the
        // leadership handover short.
        stop = d.etcd.graceful_stop().as_secs_f64().ceil().max(30.0),
        cfg = exec_quote(&m.config_file()),
        user = if d.hosts.run_as.is_root() {
            String::new()
        } else {
            format!("User={}\n", d.hosts.run_as)
        },
    )
}
