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
fn record_started_config(d: &Desired, m: &DesiredMember) -> String {
    let hashf = shell_quote(&started_config_file(m).display().to_string());
    let dir = shell_quote(&m.state_dir.display().to_string());
    let ca = shell_quote(&m.tls_paths(&d.tls).ca.display().to_string());
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
        "h=; {{ IFS= read -r h < {hashf}; }} 2>/dev/null; printf 'started-config\\t%s\\n' \"$h\"\n\
if [ -f {cas} ]; then printf 'started-ca\\t'; base64 -w0 < {cas}; echo; fi\n"
    )
}

/// Shell that prints the `service running` fact for the pid the shell
/// expression `pid` expands to, then the `service-user` fact: who owns
/// `/proc/PID`, the user etcd runs as.
fn print_running(pid: &str) -> String {
    format!(
        "printf 'service\\trunning\\t%s\\n' \"{pid}\"; \
printf 'service-user\\t%s\\n' \"$(stat -c %U \"/proc/{pid}\" 2>/dev/null)\""
    )
}

/// Shell that prints a `problem` fact when `[hosts] run_as` names a user the
/// host does not have (nothing for root).
pub fn print_run_as_problem(d: &Desired) -> String {
    let user = &d.hosts.run_as;
    if user.is_root() {
        return String::new();
    }
    format!(
        "if ! id -u -- {u} >/dev/null 2>&1; then {}; fi\n",
        print_problem(
            &format!("user {user} (run_as) does not exist"),
            &format!(
                "create the user (Debian's etcd-server package creates `etcd`; or: useradd --system --home-dir /var/lib/etcd --shell /usr/sbin/nologin {user}), or set run_as in [hosts] to a user that exists (without it, etcd runs as root)"
            ),
        ),
        u = shell_quote(user.as_str()),
    )
}

/// Shell lines run before etcd starts as `[hosts] run_as` (nothing for
/// root): the user's primary group in `$run_gid`, the data dir owned by the
/// user (all of it: a member that ran as root left root's files) with mode
/// 0700, its TLS keys owned by the user with mode 0600, and etcdplan's
/// folders searchable; then a check, as the user, that etcd will be able to
/// read its config and keys and write its data, which fails the start with
/// the path to fix rather than leaving etcd to crash.
///
/// The group is the user's primary group, as systemd picks it for `User=`
/// without `Group=` (Debian's etcd-server package makes an `etcd` group for
/// the `etcd` user).
fn prepare_run_as(d: &Desired, m: &DesiredMember) -> String {
    let user = &d.hosts.run_as;
    if user.is_root() {
        return String::new();
    }
    let q = |p: &std::path::Path| shell_quote(&p.display().to_string());
    let u = shell_quote(user.as_str());
    let data = q(&m.data_dir);
    // A separate WAL folder is etcd's to write as much as its data dir.
    let wal = m.wal_dir.as_deref().map_or_else(String::new, |w| {
        let w = q(w);
        format!(
            "(umask 022; mkdir -p -- \"$(dirname -- {w})\")\nmkdir -p -- {w}\nchown -R -- \"$run_user:$run_gid\" {w}\nchmod 700 -- {w}\n"
        )
    });
    let cfg_dir = q(&m.config_dir);
    let tls = m.tls_paths(&d.tls);
    let pki = q(tls.server_key.parent().unwrap_or(&m.config_dir));
    let keys = format!("{} {}", q(&tls.server_key), q(&tls.peer_key));
    let readable = if d.tls.any() {
        format!("{} {}", keys, q(&tls.ca))
    } else {
        String::new()
    };
    // The operator's own certificates are never moved, re-owned or
    // re-moded: etcd, run as this user, must be able to read them as placed.
    let give_keys = if d.tls.external().is_some() {
        String::new()
    } else {
        format!(
            "for f in {keys}; do if [ -f \"$f\" ]; then chown -- \"$run_user:$run_gid\" \"$f\"; chmod 600 -- \"$f\"; fi; done\n\
for f in {cfg_dir} {pki}; do if [ -d \"$f\" ]; then chmod go+x -- \"$f\"; fi; done\n"
        )
    };
    let readable = if d.tls.external().is_some() {
        // Only the files the enabled TLS uses are there to read.
        let mut files = Vec::new();
        if d.tls.client {
            files.extend([q(&tls.server_cert), q(&tls.server_key)]);
        }
        if d.tls.peer {
            files.extend([q(&tls.peer_cert), q(&tls.peer_key)]);
        }
        if d.tls.peer || d.tls.client_cert_auth {
            files.push(q(&tls.ca));
        }
        files.join(" ")
    } else {
        readable
    };
    format!(
        "run_user={u}\n\
run_gid=$(id -g -- \"$run_user\" 2>/dev/null) || {{ echo \"user $run_user (run_as) does not exist on this host\" >&2; exit 3; }}\n\
(umask 022; mkdir -p -- \"$(dirname -- {data})\")\n\
mkdir -p -- {data}\nchown -R -- \"$run_user:$run_gid\" {data}\nchmod 700 -- {data}\n{wal}\
{give_keys}\
setpriv --reuid=\"$run_user\" --regid=\"$run_gid\" --init-groups sh -c \
'for f in \"$@\"; do [ -r \"$f\" ] || {{ echo \"etcd, run as $0, cannot read $f: give $0 search permission (chmod o+x) on the folders above it\" >&2; exit 3; }}; done' \
\"$run_user\" \"$cfg\" {readable}\n\
setpriv --reuid=\"$run_user\" --regid=\"$run_gid\" --init-groups test -w {data} -a -x {data} || \
{{ echo \"etcd, run as $run_user, cannot write {data}: give $run_user search permission (chmod o+x) on the folders above it\" >&2; exit 3; }}\n"
    )
}

/// Shell that prints the `service stopped` fact.
const PRINT_STOPPED: &str = "printf 'service\\tstopped\\n'";

/// Shell that prints a `problem` fact: something on the host that stops etcd
/// from being started there, and what to do about it.
pub(crate) fn print_problem(message: &str, help: &str) -> String {
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

    /// Starts etcd once with `--force-new-cluster` (a quorum-loss recovery),
    /// the flag given to this start only and written nowhere a later start
    /// reads; refuses while etcd runs normally. Does not wait for health.
    fn start_forced(&self, d: &Desired, m: &DesiredMember) -> Script;

    /// Stops what [`Service::start_forced`] started.
    fn stop_forced(&self, m: &DesiredMember, grace: Duration) -> Script;

    /// Prints `alive`, or `dead` and the last log lines.
    fn check_alive(&self, m: &DesiredMember) -> Script;

    /// Shell lines that keep etcd from starting at boot until etcdplan
    /// starts it again (a member stopped for a restore: a reboot half way
    /// must not start it on a data dir being replaced); the next start
    /// undoes it. Empty when the manager starts nothing at boot.
    fn hold_fragment(&self) -> String;

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

/// Keeps etcd from starting at boot ([`Service::hold_fragment`]).
pub fn hold_fragment(d: &Desired) -> String {
    for_kind(d.hosts.service).hold_fragment()
}

/// Starts etcd once with `--force-new-cluster` ([`Service::start_forced`]).
pub fn start_forced(d: &Desired, m: &DesiredMember) -> Script {
    for_kind(d.hosts.service).start_forced(d, m)
}

/// Stops a forced start ([`Service::stop_forced`]).
pub fn stop_forced(d: &Desired, m: &DesiredMember, grace: Duration) -> Script {
    for_kind(d.hosts.service).stop_forced(m, grace)
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
