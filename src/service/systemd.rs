//! The `systemd` service: an `etcd.service` unit that etcdplan renders and owns.
//!
//! The unit follows etcd's own example unit (`Type=notify`, no start timeout,
//! a high file limit) with `Restart=on-failure`: a member removed from the
//! cluster exits 0 and must stay down (`Restart=always` would loop it). etcd reads
//! every setting from the config file, so the unit carries none of its own.
//! Starts never wait for readiness (`--no-block`): a first member cannot become
//! ready until its peers start; the health gate waits instead.

use std::time::Duration;

use crate::config::{Desired, DesiredMember, ServiceKind};
use crate::io::{Script, shell_quote};

use super::Service;

/// etcd as the `etcd.service` unit etcdplan owns.
#[derive(Debug, Clone, Copy)]
pub struct Systemd;

pub use etcdplan_core::hostfiles::systemd_unit::{UNIT, unit, unit_path};

use etcdplan_core::diff::quorum_loss::forced_config_file;

/// The transient unit of a quorum-loss recovery's one forced start.
pub const FORCED_UNIT: &str = "etcd-force-new-cluster.service";

/// Sets `st`, `sub` and `pid` (and `ufs`, `ndr` for [`unit_line`]) from one
/// `systemctl show` (each a D-Bus round trip; the probe runs on every
/// plan); prints a `problem` fact without systemctl.
fn state_lines() -> String {
    format!(
        "st=; sub=; pid=; ufs=; ndr=\n\
if ! command -v systemctl >/dev/null 2>&1; then {}; st=none; pid=0\n\
else while IFS='=' read -r sk sv; do case \"$sk\" in ActiveState) st=$sv;; SubState) sub=$sv;; MainPID) pid=$sv;; \
UnitFileState) ufs=$sv;; NeedDaemonReload) ndr=$sv;; esac; done <<EOF\n\
$(systemctl show -p ActiveState -p SubState -p MainPID -p UnitFileState -p NeedDaemonReload {UNIT} 2>/dev/null)\n\
EOF\n\
fi\n",
        super::print_problem(
            "systemctl not found",
            "this host does not run systemd; set service = \"process\" in [hosts]"
        )
    )
}

/// Prints the `unit` fact once systemd has answered (from [`state_lines`]):
/// ActiveState, SubState, UnitFileState, NeedDaemonReload.
fn unit_line() -> String {
    "if [ -n \"$st\" ] && [ \"$st\" != none ]; then printf 'unit\\t%s\\t%s\\t%s\\t%s\\n' \"$st\" \"$sub\" \"$ufs\" \"$ndr\"; fi\n"
        .to_owned()
}

impl Service for Systemd {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Systemd
    }

    /// Running while the unit is active, activating or reloading; the
    /// unit's own state as the `unit` fact.
    fn probe_fragment(&self, m: &DesiredMember) -> String {
        format!(
            "{}{}case \"$st\" in active|activating|reloading) {}; {};; *) {};; esac\n",
            state_lines(),
            unit_line(),
            super::print_running("${pid:-0}"),
            super::print_started_config(m).trim_end(),
            super::PRINT_STOPPED
        )
    }

    /// daemon-reload (the unit may have changed), enable, start without waiting.
    /// With `run_as`, the data dir and keys are given to the user first
    /// (the unit's `User=` runs etcd as that user).
    fn start(&self, d: &Desired, m: &DesiredMember) -> Script {
        let cfg = shell_quote(&m.config_file().display().to_string());
        let source = format!(
            "set -e\ncfg={cfg}\n{run_as}systemctl daemon-reload\nsystemctl enable --quiet {UNIT}\n\
systemctl start --no-block {UNIT}\n{record}echo started\n",
            record = super::record_started_config(d, m),
            run_as = super::prepare_run_as(d, m),
        );
        Script::new(format!("start {}", m.name), source).timeout(Duration::from_secs(30))
    }

    /// Stops the unit; systemd sends SIGTERM and waits up to the unit's stop timeout.
    fn stop(&self, m: &DesiredMember, grace: Duration) -> Script {
        let source = format!("set -e\nsystemctl stop {UNIT}\necho stopped\n");
        Script::new(format!("stop {}", m.name), source).timeout(grace + Duration::from_secs(40))
    }

    /// A transient unit (`systemd-run`) running etcd on a copy of the
    /// member's config with `force-new-cluster: true` (etcd ignores flags
    /// next to `--config-file`): nothing `etcd.service` or a reboot reads
    /// has it; `--collect` unloads the unit once stopped. Refuses while
    /// `etcd.service` runs.
    fn start_forced(&self, d: &Desired, m: &DesiredMember) -> Script {
        let cfg = shell_quote(&m.config_file().display().to_string());
        let fcfg = shell_quote(&forced_config_file(m).display().to_string());
        let bin = shell_quote(&d.etcd.binary.display().to_string());
        let user = if d.hosts.run_as.is_root() {
            String::new()
        } else {
            "--uid=\"$run_user\" --gid=\"$run_gid\" ".to_owned()
        };
        let source = format!(
            "set -e\ncfg={cfg}\nfcfg={fcfg}\n\
if systemctl is-active --quiet {UNIT}; then echo '{UNIT} runs; stop it first' >&2; exit 3; fi\n\
if systemctl is-active --quiet {FORCED_UNIT}; then echo running; exit 0; fi\n\
systemctl reset-failed {FORCED_UNIT} 2>/dev/null || true\n{write}{run_as}\
systemd-run --unit={FORCED_UNIT} --collect --no-block --property=Type=notify --property=TimeoutStartSec=infinity \
--property=LimitNOFILE=40000 {user}{bin} --config-file \"$fcfg\"\n{record}echo started\n",
            write = super::process::WRITE_FORCED_CONFIG,
            run_as = super::prepare_run_as(d, m),
            record = super::record_started_config(d, m),
        );
        Script::new(format!("start {} with force-new-cluster", m.name), source)
            .timeout(Duration::from_secs(30))
    }

    /// Stops the transient unit (gone already: nothing to do) and removes
    /// the forced start's config.
    fn stop_forced(&self, m: &DesiredMember, grace: Duration) -> Script {
        let fcfg = shell_quote(&forced_config_file(m).display().to_string());
        let source = format!(
            "set -e\nif systemctl is-active --quiet {FORCED_UNIT}; then systemctl stop {FORCED_UNIT}; fi\nrm -f {fcfg}\necho stopped\n"
        );
        Script::new(format!("stop the forced start of {}", m.name), source)
            .timeout(grace + Duration::from_secs(40))
    }

    /// `alive`, or `dead` with the journal's last lines (a crash waiting to be
    /// restarted counts as dead: the gate should report it, not wait it out).
    fn check_alive(&self, m: &DesiredMember) -> Script {
        let source = format!(
            "{}if [ \"$st\" = active ] || {{ [ \"$st\" = activating ] && [ \"$sub\" != auto-restart ]; }}; then echo alive; \
else echo dead; journalctl -u {UNIT} -n 20 --no-pager 2>/dev/null || true; fi\n",
            state_lines()
        );
        Script::new(format!("check {}", m.name), source).timeout(Duration::from_secs(10))
    }

    /// Disables the unit (the next start enables it again).
    fn hold_fragment(&self) -> String {
        format!("systemctl disable --quiet {UNIT} 2>/dev/null || true\n")
    }

    /// Disables the unit and moves its file aside, so the member never starts
    /// again at boot.
    fn retire_fragment(&self, _m: &DesiredMember) -> String {
        let unit = shell_quote(&unit_path().display().to_string());
        format!(
            "if [ -f {unit} ]; then systemctl disable --quiet {UNIT} || true; mv {unit} {unit}.removed-$ts; systemctl daemon-reload || true; echo \"moved {unit} aside\"; fi\n"
        )
    }
}
