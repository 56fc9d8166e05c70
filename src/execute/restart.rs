//! A restart's stop and start on the member's host, in one ssh round trip:
//! the service's stop script, then (only when it succeeded) its start
//! script, sent as one script. Between the two, etcdplan used to do
//! nothing but wait for the next command's round trip, which under load
//! costs more than the start itself (issue 21, item 8).
//!
//! Each part keeps its own script, deadline and error: a failed stop never
//! starts etcd, and the error names the part that failed. Where a command
//! costs no round trip ([`Host::round_trips`]: this machine, the test
//! doubles), or where a test
//! holds or pauses etcdplan between the two (the `stopped:MEMBER`
//! failpoint), they are sent one by one as before, so that the failpoint
//! still falls between a stop that is done and a start not yet sent.

use std::time::{Duration, Instant};

use super::{Context, StepError, failpoint, run_checked};
use crate::config::DesiredMember;
use crate::io::{Host, Script};
use crate::model::MemberName;
use crate::service;

/// What the combined script prints once the stop has succeeded, with the
/// host's uptime (seconds, from `/proc/uptime`) before and after the stop.
const STOPPED: &str = "etcdplan-restart-stopped";

/// How long a restart's stop and its start took, as etcdplan saw them.
pub(super) struct Parts {
    /// From sending the stop to its end (in one round trip: the stop's
    /// time on the host).
    pub stop: Duration,
    /// The rest: the start, and the round trip (in one round trip).
    pub start: Duration,
}

/// Stops and starts `m`'s etcd on `host` (see the module), giving etcd
/// `grace` to stop before it is killed.
pub(super) async fn stop_start(
    ctx: &Context<'_>,
    m: &DesiredMember,
    host: &dyn Host,
    name: &MemberName,
    grace: Duration,
) -> Result<Parts, StepError> {
    let stop = service::stop(ctx.desired, m, grace);
    let start = service::start(ctx.desired, m);
    let point = format!("stopped:{name}");
    let t = Instant::now();
    if failpoint::armed(&point) || !host.round_trips() {
        run_checked(host, &stop).await?;
        let stopped = t.elapsed();
        failpoint::reached(&point).await;
        let s = Instant::now();
        run_checked(host, &start).await?;
        return Ok(Parts {
            stop: stopped,
            start: s.elapsed(),
        });
    }
    let out = host.run(&combined(name, &stop, &start)).await?;
    let total = t.elapsed();
    let stopped = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(STOPPED))
        .map(|rest| {
            let mut up = rest
                .split_whitespace()
                .map(|s| s.parse::<f64>().unwrap_or(0.0));
            let (a, b) = (up.next().unwrap_or(0.0), up.next().unwrap_or(0.0));
            Duration::from_secs_f64((b - a).max(0.0)).min(total)
        });
    let failed = |script: &Script| StepError::Command {
        what: script.what.clone(),
        host: host.label(),
        code: out.code,
        tail: out.tail(),
    };
    match stopped {
        None => Err(failed(&stop)),
        Some(_) if !out.success() => Err(failed(&start)),
        Some(stop) => Ok(Parts {
            stop,
            start: total - stop,
        }),
    }
}

/// The stop, then the start, each in a subshell (both `exit`); the marker
/// line between them says the stop succeeded. The deadline is the sum of
/// the two.
fn combined(name: &MemberName, stop: &Script, start: &Script) -> Script {
    let uptime = |var: &str| format!("{var}=; read {var} _ < /proc/uptime 2>/dev/null || true\n");
    Script::new(
        format!("restart {name} (stop, then start)"),
        format!(
            "{t0}(\n{stop}\n) || exit $?\n{t1}echo \"{STOPPED} $t0 $t1\"\n(\n{start}\n)\n",
            t0 = uptime("t0"),
            t1 = uptime("t1"),
            stop = stop.source,
            start = start.source,
        ),
    )
    .timeout(stop.timeout + start.timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::LocalHost;

    fn name() -> MemberName {
        MemberName::parse("etcd-1").unwrap_or_else(|e| panic!("{e}"))
    }

    async fn run(stop: &str, start: &str) -> crate::io::CommandOutput {
        let s = combined(
            &name(),
            &Script::new("stop", stop),
            &Script::new("start", start),
        );
        LocalHost.run(&s).await.unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn a_failed_stop_never_starts() {
        let out = run("echo stopping; exit 4", "echo started").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert!(!out.stdout.contains(STOPPED), "{out:?}");
        assert!(!out.stdout.contains("started"), "{out:?}");
    }

    #[tokio::test]
    async fn a_stop_that_succeeds_is_marked_before_the_start_runs() {
        let out = run(
            "set -e\necho stopped\nexit 0",
            "set -e\necho started; exit 5",
        )
        .await;
        assert_eq!(out.code, 5, "{out:?}");
        let mark = out
            .stdout
            .find(STOPPED)
            .unwrap_or_else(|| panic!("{out:?}"));
        let started = out
            .stdout
            .find("started")
            .unwrap_or_else(|| panic!("{out:?}"));
        assert!(mark < started, "{out:?}");
        let ok = run("echo stopped", "echo started").await;
        assert!(ok.success() && ok.stdout.contains(STOPPED), "{ok:?}");
    }
}
