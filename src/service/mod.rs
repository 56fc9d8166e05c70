//! How etcd runs on a host, as scripts for [`Host`](crate::io::Host).
//!
//! Two kinds: `process` (a detached etcd with a pid file, for hosts without
//! systemd) and `systemd` (an `etcd.service` unit etcdplan owns). Both record the
//! sha256 of the config etcd was started with, so a config written by an
//! interrupted apply still shows as a pending restart.
//!
//! Each kind is one file implementing [`Service`]; [`for_kind`] is the one
//! place that maps a [`ServiceKind`] to it. Adding a manager means a new file,
//! a `ServiceKind` variant, and answering what the compiler then asks for (the
//! trait's methods here; in the core crate, the exhaustive matches on
//! `ServiceKind` for owned files and members per host).

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

/// Shell lines that print the `started-config` fact (empty when unrecorded)
/// and, when recorded, `started-ca` (see [`crate::observe::parse_probe`]).
fn print_started_config(m: &DesiredMember) -> String {
    let hashf = shell_quote(&started_config_file(m).display().to_string());
    let cas = shell_quote(&started_ca_file(m).display().to_string());
    format!(
        "printf 'started-config\\t%s\\n' \"$(cat {hashf} 2>/dev/null)\"\n\
if [ -f {cas} ]; then printf 'started-ca\\t'; base64 -w0 < {cas}; echo; fi\n"
    )
}

/// Shell that prints the `service running` fact for the pid the shell
/// expression `pid` expands to.
fn print_running(pid: &str) -> String {
    format!("printf 'service\\trunning\\t%s\\n' \"{pid}\"")
}

/// Shell that prints the `service stopped` fact.
const PRINT_STOPPED: &str = "printf 'service\\tstopped\\n'";

/// Shell that prints a `problem` fact: something on the host that stops etcd
/// from being started there, and what to do about it.
fn print_problem(message: &str, help: &str) -> String {
    format!(
        "printf 'problem\\t%s\\t%s\\n' {} {}",
        shell_quote(message),
        shell_quote(help)
    )
}

/// A service manager: how etcd is started, stopped, checked and probed on a
/// host. One implementation per file; [`for_kind`] picks it.
pub trait Service: Send + Sync {
    /// The etcdfile's name for it.
    fn kind(&self) -> ServiceKind;

    /// A probe fragment printing the `service` fact, then `started-config`
    /// (and `started-ca`) when running, and a `problem` fact for anything that
    /// stops etcd from being started on the host (systemd adds its `unit`
    /// fact). Use the `print_*` helpers here: the line format is
    /// [`crate::observe::parse_probe`]'s.
    fn probe_fragment(&self, m: &DesiredMember) -> String;

    /// Starts etcd unless it runs; never waits for it to become healthy (a
    /// first member cannot, until its peers start): the health gate does that.
    /// Records the started config (`record_started_config`).
    fn start(&self, d: &Desired, m: &DesiredMember) -> Script;

    /// Stops etcd with SIGTERM (etcd hands leadership over first), harder
    /// after `grace`.
    fn stop(&self, m: &DesiredMember, grace: Duration) -> Script;

    /// Prints `alive`, or `dead` and the last log lines.
    fn check_alive(&self, m: &DesiredMember) -> Script;

    /// Shell lines that move the manager's own files for a retired member
    /// aside (`$ts` holds a time stamp), so it never starts again; run after
    /// [`Service::stop`]. Empty when the manager owns no such file.
    fn retire_fragment(&self, m: &DesiredMember) -> String;
}

/// The service manager for a kind: the one place a kind is mapped to code.
pub fn for_kind(kind: ServiceKind) -> &'static dyn Service {
    match kind {
        ServiceKind::Process => &process::Process,
        ServiceKind::Systemd => &systemd::Systemd,
    }
}

/// The etcdfile's service manager's probe fragment ([`Service::probe_fragment`]).
pub fn probe_fragment(d: &Desired, m: &DesiredMember) -> String {
    for_kind(d.hosts.service).probe_fragment(m)
}

/// Starts etcd with the etcdfile's service manager ([`Service::start`]).
pub fn start(d: &Desired, m: &DesiredMember) -> Script {
    for_kind(d.hosts.service).start(d, m)
}

/// Stops etcd with the etcdfile's service manager ([`Service::stop`]).
pub fn stop(d: &Desired, m: &DesiredMember, grace: Duration) -> Script {
    for_kind(d.hosts.service).stop(m, grace)
}

/// Whether etcd is alive, by the etcdfile's service manager ([`Service::check_alive`]).
pub fn check_alive(d: &Desired, m: &DesiredMember) -> Script {
    for_kind(d.hosts.service).check_alive(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_maps_to_its_manager() {
        for kind in [ServiceKind::Process, ServiceKind::Systemd] {
            assert_eq!(for_kind(kind).kind(), kind);
        }
    }

    #[test]
    fn problem_line_quotes_both_parts() {
        let line = print_problem("it's not here", "set service = \"process\"");
        assert_eq!(
            line,
            "printf 'problem\\t%s\\t%s\\n' 'it'\\''s not here' 'set service = \"process\"'"
        );
    }
}
