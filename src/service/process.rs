//! The `process` service: etcd as a detached process (new session, so it
//! outlives etcdplan and the ssh connection) with a pid file and a log file in
//! the member's state dir. A pid is only trusted while `/proc/PID/cmdline` still
//! names our config file, so a recycled pid is never signalled. With
//! `[hosts] run_as` etcd runs as that user (see [`launcher`]); the pid, log
//! and state files stay root's.

use std::time::Duration;

use crate::config::{Desired, DesiredMember, ServiceKind};
use crate::io::{Script, shell_quote};

use super::Service;

/// etcd as a detached process: the manager for hosts without systemd.
#[derive(Debug, Clone, Copy)]
pub struct Process;

/// Shell functions shared by the scripts: `ours PID` is true while PID is a live
/// (non-zombie) etcd started with our config file. The probe runs this on
/// every plan, so the shell reads the pid file and the process state itself
/// and one `grep -z` reads the NUL-separated command line.
fn prelude(m: &DesiredMember) -> String {
    let cfg = shell_quote(&m.config_file().display().to_string());
    let fcfg = shell_quote(&forced_config_file(m).display().to_string());
    let pidf = shell_quote(&m.pid_file().display().to_string());
    format!(
        "cfg={cfg}\nfcfg={fcfg}\npidf={pidf}\n\
ours() {{ [ -n \"$1\" ] && [ -r \"/proc/$1/cmdline\" ] || return 1; \
while read -r os_k os_v; do case \"$os_k\" in State:) case \"$os_v\" in Z*) return 1;; esac; break;; esac; done 2>/dev/null < \"/proc/$1/status\"; \
grep -qzxF -e \"$cfg\" -e \"$fcfg\" \"/proc/$1/cmdline\"; }}\n\
pid=; if [ -f \"$pidf\" ]; then {{ IFS= read -r pid < \"$pidf\"; }} 2>/dev/null; fi\n"
    )
}

/// What etcd's command line starts with to run as `[hosts] run_as`
/// (nothing for root): `setpriv`, which execs etcd in place, so the pid the
/// shell records is etcd's own and the `ours` check finds it. (`runuser` and
/// `su` fork and wait, and the pid file would name them.) The user's primary
/// group is `$run_gid`, set by [`super::prepare_run_as`].
fn launcher(d: &Desired) -> String {
    if d.hosts.run_as.is_root() {
        String::new()
    } else {
        "setpriv --reuid=\"$run_user\" --regid=\"$run_gid\" --init-groups ".to_owned()
    }
}

use etcdplan_core::diff::quorum_loss::forced_config_file;

/// Shell functions for the stop's poll, builtins only: `alive PID` is true
/// while PID exists and is not a zombie (the stop checked it was ours
/// before signalling it); `now` sets `$now` to the host's uptime in
/// hundredths of a second.
const ALIVE: &str = "alive() { [ -r \"/proc/$1/status\" ] || return 1; \
while read -r k v; do case $k in State:) case $v in Z*) return 1;; esac; return 0;; esac; done 2>/dev/null < \"/proc/$1/status\"; return 1; }\n\
now() { read -r u _ < /proc/uptime; now=${u%.*}${u#*.}; while [ \"${now#0}\" != \"$now\" ]; do now=${now#0}; done; now=${now:-0}; }\n";

/// Shell lines that write the forced start's config (`$fcfg`): the member's
/// config (`$cfg`, its mode and owner kept) with `force-new-cluster: true`
/// added, since etcd ignores command-line flags next to `--config-file`.
/// Shared with systemd.
pub(super) const WRITE_FORCED_CONFIG: &str = "cp -p \"$cfg\" \"$fcfg.tmp\" && printf '\\nforce-new-cluster: true\\n' >> \"$fcfg.tmp\" && mv -f \"$fcfg.tmp\" \"$fcfg\"\n";

/// The start script; `forced` starts etcd on the forced start's config.
fn launch(d: &Desired, m: &DesiredMember, forced: bool) -> Script {
    let state = shell_quote(&m.state_dir.display().to_string());
    let log = shell_quote(&m.log_file().display().to_string());
    let bin = shell_quote(&d.etcd.binary.display().to_string());
    let (running, config, what) = if forced {
        (
            format!(
                "if ours \"$pid\"; then if tr '\\000' '\\n' < \"/proc/$pid/cmdline\" | grep -qxF -- \"$fcfg\"; then echo \"running $pid\"; exit 0; fi; \
echo \"etcd runs (pid $pid) without force-new-cluster; stop it first\" >&2; exit 3; fi\n{WRITE_FORCED_CONFIG}"
            ),
            "$fcfg",
            format!("start {} with force-new-cluster", m.name),
        )
    } else {
        (
            "if ours \"$pid\"; then echo \"running $pid\"; exit 0; fi\n".to_owned(),
            "$cfg",
            format!("start {}", m.name),
        )
    };
    let source = format!(
        "set -e\n{prelude}{running}\
    [ -x {bin} ] || {{ echo 'etcd binary {bin} not found or not executable' >&2; exit 3; }}\n\
    umask 077\nmkdir -p {state}\ncd {state}\n{run_as}\
    nohup setsid {launch}{bin} --config-file \"{config}\" >> {log} 2>&1 < /dev/null &\n\
    started=$!\necho $started > \"$pidf.tmp\"\nmv -f \"$pidf.tmp\" \"$pidf\"\n{record}\
    echo \"started $started\"\n",
        prelude = prelude(m),
        record = super::record_started_config(d, m),
        run_as = super::prepare_run_as(d, m),
        launch = launcher(d),
    );
    Script::new(what, source).timeout(Duration::from_secs(20))
}

impl Service for Process {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Process
    }

    /// Running while the pid file names a live etcd with our config file.
    fn probe_fragment(&self, m: &DesiredMember) -> String {
        format!(
            "{}if ours \"$pid\"; then {}\n{}else {}; fi\n",
            prelude(m),
            super::print_running("$pid"),
            super::print_started_config(m),
            super::PRINT_STOPPED
        )
    }

    /// Starts etcd detached, unless it already runs; prints `started PID` or `running PID`.
    fn start(&self, d: &Desired, m: &DesiredMember) -> Script {
        launch(d, m, false)
    }

    /// The same start on a copy of the config with `force-new-cluster: true`
    /// that only this start reads (etcd ignores command-line flags next to
    /// `--config-file`); the member's config, which every later start reads,
    /// does not have it.
    /// Refuses while etcd runs without it; prints `running PID` when a
    /// forced start already runs.
    fn start_forced(&self, d: &Desired, m: &DesiredMember) -> Script {
        launch(d, m, true)
    }

    /// The forced start has the same pid file; its config goes with it.
    fn stop_forced(&self, m: &DesiredMember, grace: Duration) -> Script {
        let stop = self.stop(m, grace);
        let source = format!(
            "(\n{}) || exit $?\n{}rm -f \"$fcfg\"\n",
            stop.source,
            prelude(m)
        );
        Script::new(format!("stop the forced start of {}", m.name), source)
            .timeout(grace + Duration::from_secs(10))
    }

    /// SIGTERM (etcd hands leadership over), SIGKILL after `grace`. The
    /// pid is checked to be ours ([`prelude`]) before each signal; while
    /// etcd stops, a 20 ms poll asks only whether that process still lives
    /// (`alive`, shell builtins only: under load each fork costs several
    /// milliseconds), and the grace is measured on `/proc/uptime`, not by
    /// counting polls.
    fn stop(&self, m: &DesiredMember, grace: Duration) -> Script {
        let centis = grace.as_millis() / 10;
        let source = format!(
            "{prelude}if ! ours \"$pid\"; then rm -f \"$pidf\"; echo stopped; exit 0; fi\n{ALIVE}\
    kill -TERM \"$pid\"\nnow; end=$((now + {centis}))\n\
    while alive \"$pid\" && now && [ \"$now\" -lt \"$end\" ]; do sleep 0.02; done\n\
    if ours \"$pid\"; then kill -KILL \"$pid\"; echo killed; else echo stopped; fi\nrm -f \"$pidf\"\n",
            prelude = prelude(m)
        );
        Script::new(format!("stop {}", m.name), source).timeout(grace + Duration::from_secs(10))
    }

    /// Alive while the pid file names our etcd; else the log's tail.
    fn check_alive(&self, m: &DesiredMember) -> Script {
        let log = shell_quote(&m.log_file().display().to_string());
        let source = format!(
            "{prelude}if ours \"$pid\"; then echo alive; else echo dead; tail -n 20 {log} 2>/dev/null; fi\n",
            prelude = prelude(m)
        );
        Script::new(format!("check {}", m.name), source).timeout(Duration::from_secs(10))
    }

    /// Nothing starts a process-service etcd at boot.
    fn hold_fragment(&self) -> String {
        String::new()
    }

    /// The pid file goes with the state files the caller removes.
    fn retire_fragment(&self, _m: &DesiredMember) -> String {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(hosts_extra: &str) -> Desired {
        let text = format!(
            "[cluster]\nname = \"main\"\n[hosts]\nservice = \"process\"\n{hosts_extra}\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n"
        );
        let ctx = crate::config::Context {
            base_dir: "/srv".into(),
            home: None,
            file_hash: crate::config::hash(&text),
            ..Default::default()
        };
        match crate::config::parse("etcdfile.toml", text, &ctx) {
            Ok(l) => l.desired,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn only_the_forced_start_reads_the_config_with_force_new_cluster() {
        let d = desired("");
        let m = &d.members[0];
        let normal = Process.start(&d, m).source;
        assert!(
            !normal.contains("force-new-cluster: true")
                && normal.contains("--config-file \"$cfg\""),
            "{normal}"
        );
        let forced = Process.start_forced(&d, m).source;
        let at = |needle: &str| {
            forced
                .find(needle)
                .unwrap_or_else(|| panic!("{needle}: {forced}"))
        };
        // The copy is written first, from the member's config, then started.
        assert!(at("fcfg=/etc/etcd/etcd.force-new-cluster.yml") < at("cp -p \"$cfg\""));
        assert!(at("force-new-cluster: true") < at("--config-file \"$fcfg\""));
        // A normal etcd running is refused, a forced one is left running.
        assert!(forced.contains("without force-new-cluster; stop it first"));
        let stop = Process.stop_forced(m, Duration::from_secs(1)).source;
        assert!(stop.ends_with("rm -f \"$fcfg\"\n"), "{stop}");
    }

    /// The stop's poll: `alive` is false for a zombie (exited, not yet
    /// reaped) and for a pid gone; `now` counts hundredths of a second.
    #[test]
    fn the_stop_poll_sees_a_process_go_and_measures_time() {
        let script = format!(
            "{ALIVE}sleep 5 & p=$!\nalive $p && echo up\nkill $p; sleep 0.2\nalive $p || echo zombie\n\
wait $p || true\nalive $p || echo gone\nnow; a=$now; sleep 0.3; now; echo $((now - a))\n"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.get(..3),
            Some(&["up", "zombie", "gone"][..]),
            "{text}"
        );
        let waited: u32 = lines
            .get(3)
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("{text}"));
        assert!((25..300).contains(&waited), "{text}");
    }

    #[test]
    fn root_starts_etcd_itself_and_a_user_through_setpriv() {
        let root = desired("");
        let src = Process.start(&root, &root.members[0]).source;
        assert!(
            src.contains("nohup setsid /usr/bin/etcd --config-file"),
            "{src}"
        );
        assert!(!src.contains("setpriv") && !src.contains("chown"), "{src}");

        let etcd = desired("run_as = \"etcd\"");
        let src = Process.start(&etcd, &etcd.members[0]).source;
        let launch = "nohup setsid setpriv --reuid=\"$run_user\" --regid=\"$run_gid\" --init-groups /usr/bin/etcd --config-file";
        let at = |needle: &str| {
            src.find(needle)
                .unwrap_or_else(|| panic!("{needle}: {src}"))
        };
        // The data dir changes hands before etcd starts.
        assert!(at("chown -R -- \"$run_user:$run_gid\" /var/lib/etcd") < at(launch));
        assert!(at("chmod 700 -- /var/lib/etcd") < at(launch));
        assert!(at("run_user=etcd") < at("chown -R"));
    }
}
