//! How etcd runs on a host, as scripts for [`Host`](crate::io::Host).
//!
//! Two kinds: `process` (a detached etcd with a pid file, for hosts without
//! systemd) and `systemd` (an `etcd.service` unit etcdplan owns). Both record the
//! sha256 of the config etcd was started with, so a config written by an
//! interrupted apply still shows as a pending restart.

pub mod process;
pub mod systemd;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Desired, DesiredMember, ServiceKind};
use crate::io::{Script, shell_quote};

pub use etcdplan_core::live::ServiceState;

/// Where the sha256 of the config a running etcd was started with is kept.
pub fn started_config_file(m: &DesiredMember) -> PathBuf {
    m.state_dir.join("etcd.started-config.sha256")
}

/// Where a copy of the CA bundle a running etcd was started with is kept:
/// etcd builds its trust pool once, at start (etcd-ops R3.7), so during a CA
/// rotation the file on disk may say more than the process trusts.
pub fn started_ca_file(m: &DesiredMember) -> PathBuf {
    m.state_dir.join("etcd.started-ca.crt")
}

/// Shell lines that record the started config's hash and trusted CAs (`$cfg`
/// must be set).
fn record_started_config(m: &DesiredMember) -> String {
    let hashf = shell_quote(&started_config_file(m).display().to_string());
    let dir = shell_quote(&m.state_dir.display().to_string());
    let ca = shell_quote(&m.tls_paths().ca.display().to_string());
    let cas = shell_quote(&started_ca_file(m).display().to_string());
    format!(
        "mkdir -p {dir}\nsha256sum \"$cfg\" | cut -c1-64 > {hashf}.tmp && mv -f {hashf}.tmp {hashf}\n\
if [ -f {ca} ]; then cp {ca} {cas}.tmp && mv -f {cas}.tmp {cas}; else rm -f {cas}; fi\n"
    )
}

/// Shell lines that print `started-config HASH` (or nothing known) and,
/// when recorded, `started-ca\tBASE64`.
fn print_started_config(m: &DesiredMember) -> String {
    let hashf = shell_quote(&started_config_file(m).display().to_string());
    let cas = shell_quote(&started_ca_file(m).display().to_string());
    format!(
        "echo \"started-config $(cat {hashf} 2>/dev/null)\"\n\
if [ -f {cas} ]; then printf 'started-ca\\t'; base64 -w0 < {cas}; echo; fi\n"
    )
}

/// A probe fragment printing `service running PID` or `service stopped`, then
/// `started-config HASH` when running.
pub fn probe_fragment(d: &Desired, m: &DesiredMember) -> String {
    match d.hosts.service {
        ServiceKind::Process => process::probe_fragment(m),
        ServiceKind::Systemd => systemd::probe_fragment(m),
    }
}

/// Parses the fragment's `service …` line.
pub fn parse_probe(line: &str) -> Option<ServiceState> {
    let rest = line.strip_prefix("service ")?;
    if rest == "stopped" {
        return Some(ServiceState::Stopped);
    }
    rest.strip_prefix("running ")?
        .trim()
        .parse()
        .ok()
        .map(ServiceState::Running)
}

/// Parses the `started-config HASH` probe line.
pub fn parse_started_config(line: &str) -> Option<Option<String>> {
    let rest = line.strip_prefix("started-config")?.trim();
    Some((rest.len() == 64 && rest.chars().all(|c| c.is_ascii_hexdigit())).then(|| rest.to_owned()))
}

/// Starts etcd unless it runs; never waits for it to become healthy (a first
/// member cannot, until its peers start): the health gate does that.
pub fn start(d: &Desired, m: &DesiredMember) -> Script {
    match d.hosts.service {
        ServiceKind::Process => process::start(m, &d.etcd.binary),
        ServiceKind::Systemd => systemd::start(m),
    }
}

/// Stops etcd with SIGTERM (etcd hands leadership over first).
pub fn stop(d: &Desired, m: &DesiredMember, grace: Duration) -> Script {
    match d.hosts.service {
        ServiceKind::Process => process::stop(m, grace),
        ServiceKind::Systemd => systemd::stop(m, grace),
    }
}

/// Prints `alive`, or `dead` and the last log lines.
pub fn check_alive(d: &Desired, m: &DesiredMember) -> Script {
    match d.hosts.service {
        ServiceKind::Process => process::check_alive(m),
        ServiceKind::Systemd => systemd::check_alive(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lines() {
        assert_eq!(
            parse_probe("service running 42"),
            Some(ServiceState::Running(42))
        );
        assert_eq!(parse_probe("service stopped"), Some(ServiceState::Stopped));
        assert_eq!(parse_probe("service ???"), None);
        assert_eq!(parse_started_config("started-config "), Some(None));
        let h = "a".repeat(64);
        assert_eq!(
            parse_started_config(&format!("started-config {h}")),
            Some(Some(h))
        );
    }
}
