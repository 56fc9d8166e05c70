//! How etcd runs on a host, as scripts for [`Host`](crate::io::Host).
//!
//! The `process` service keeps etcd as a detached process (new session, so it
//! outlives etcdplan) with a pid file and a log file in the member's state dir.
//! A pid is only trusted while `/proc/PID/cmdline` still names our config file,
//! so a recycled pid is never signalled.

use std::path::Path;
use std::time::Duration;

use crate::config::DesiredMember;
use crate::io::{Script, shell_quote};

/// Whether etcd is running for a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "pid")]
pub enum ServiceState {
    /// Running with this pid.
    Running(u32),
    /// Not running.
    Stopped,
}

/// Shell functions shared by the scripts: `ours PID` is true while PID is a live
/// (non-zombie) etcd started with our config file.
fn prelude(m: &DesiredMember) -> String {
    let cfg = shell_quote(&m.config_file().display().to_string());
    let pidf = shell_quote(&m.pid_file().display().to_string());
    format!(
        "cfg={cfg}\npidf={pidf}\n\
ours() {{ [ -n \"$1\" ] && [ -r \"/proc/$1/cmdline\" ] || return 1; \
grep -q '^State:[[:space:]]*Z' \"/proc/$1/status\" 2>/dev/null && return 1; \
tr '\\000' '\\n' < \"/proc/$1/cmdline\" | grep -qxF -- \"$cfg\"; }}\n\
pid=; [ -f \"$pidf\" ] && pid=$(cat \"$pidf\" 2>/dev/null)\n"
    )
}

/// A fragment that prints `service running PID` or `service stopped`.
pub fn probe_fragment(m: &DesiredMember) -> String {
    format!(
        "{}if ours \"$pid\"; then echo \"service running $pid\"; echo \"started-config $(cat {} 2>/dev/null)\"; \
else echo 'service stopped'; fi\n",
        prelude(m),
        shell_quote(&started_config_file(m).display().to_string())
    )
}

/// Where the sha256 of the config a running etcd was started with is kept, so
/// a config written but not yet in effect (an interrupted apply) still shows
/// as a pending restart.
pub fn started_config_file(m: &DesiredMember) -> std::path::PathBuf {
    m.state_dir.join("etcd.started-config.sha256")
}

/// Parses the `started-config HASH` probe line.
pub fn parse_started_config(line: &str) -> Option<Option<String>> {
    let rest = line.strip_prefix("started-config")?.trim();
    Some((rest.len() == 64 && rest.chars().all(|c| c.is_ascii_hexdigit())).then(|| rest.to_owned()))
}

/// Parses the fragment's line.
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

/// Starts etcd detached, unless it already runs; prints `started PID` or `running PID`.
pub fn start(m: &DesiredMember, binary: &Path) -> Script {
    let state = shell_quote(&m.state_dir.display().to_string());
    let log = shell_quote(&m.log_file().display().to_string());
    let bin = shell_quote(&binary.display().to_string());
    let source = format!(
        "set -e\n{prelude}if ours \"$pid\"; then echo \"running $pid\"; exit 0; fi\n\
[ -x {bin} ] || {{ echo 'etcd binary {bin} not found or not executable' >&2; exit 3; }}\n\
umask 077\nmkdir -p {state}\ncd {state}\n\
nohup setsid {bin} --config-file \"$cfg\" >> {log} 2>&1 < /dev/null &\n\
echo $! > \"$pidf.tmp\"\nmv -f \"$pidf.tmp\" \"$pidf\"\n\
sha256sum \"$cfg\" | cut -c1-64 > {hashf}.tmp && mv -f {hashf}.tmp {hashf}\n\
echo \"started $(cat \"$pidf\")\"\n",
        prelude = prelude(m),
        hashf = shell_quote(&started_config_file(m).display().to_string()),
    );
    Script::new(format!("start {}", m.name), source).timeout(Duration::from_secs(20))
}

/// Stops etcd with SIGTERM (etcd hands leadership over), SIGKILL after `grace`.
pub fn stop(m: &DesiredMember, grace: Duration) -> Script {
    let tenths = grace.as_millis() / 100;
    let source = format!(
        "{prelude}if ! ours \"$pid\"; then rm -f \"$pidf\"; echo stopped; exit 0; fi\n\
kill -TERM \"$pid\"\ni=0\nwhile ours \"$pid\" && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done\n\
if ours \"$pid\"; then kill -KILL \"$pid\"; echo killed; else echo stopped; fi\nrm -f \"$pidf\"\n",
        prelude = prelude(m)
    );
    Script::new(format!("stop {}", m.name), source).timeout(grace + Duration::from_secs(10))
}

/// Whether the member's process is still alive; prints `alive` or `dead` and the log tail.
pub fn check_alive(m: &DesiredMember) -> Script {
    let log = shell_quote(&m.log_file().display().to_string());
    let source = format!(
        "{prelude}if ours \"$pid\"; then echo alive; else echo dead; tail -n 20 {log} 2>/dev/null; fi\n",
        prelude = prelude(m)
    );
    Script::new(format!("check {}", m.name), source).timeout(Duration::from_secs(10))
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
    }
}
