//! A restart's files, stop and start on the member's host, in one ssh
//! round trip: the member's new files (each checked and renamed into place,
//! fed one after another on stdin), then the service's stop script, then
//! (only when it succeeded) its start script, sent as one script. A failed
//! write stops nothing. Between the two, etcdplan used to do
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

use super::{Context, StepError, failpoint, run_checked, write_files};
use crate::config::DesiredMember;
use crate::diff::FileChange;
use crate::io::{Host, Script, write_file_part_script};
use crate::model::MemberName;
use crate::service;

/// What the combined script prints once the stop has succeeded, with the
/// host's uptime (seconds, from `/proc/uptime`) before the files, before
/// the stop and after it.
const STOPPED: &str = "etcdplan-restart-stopped";

/// What the combined script prints once the member's files are in place.
const WRITTEN: &str = "etcdplan-restart-written";

/// How long each file's write may take, as a write step's has (a
/// script's default deadline).
const WRITE_DEADLINE: Duration = Duration::from_secs(30);

/// How long a restart's parts took, as etcdplan saw them.
pub(super) struct Parts {
    /// Writing the member's files (the restart's own, folded in from a
    /// write step; zero without files).
    pub write: Duration,
    /// From sending the stop to its end (in one round trip: the stop's
    /// time on the host).
    pub stop: Duration,
    /// The rest: the start, and the round trip (in one round trip).
    pub start: Duration,
}

/// Writes `files`, then stops and starts `m`'s etcd on `host` (see the
/// module), giving etcd `grace` to stop before it is killed.
pub(super) async fn stop_start(
    ctx: &Context<'_>,
    m: &DesiredMember,
    host: &dyn Host,
    name: &MemberName,
    grace: Duration,
    files: &[FileChange],
) -> Result<Parts, StepError> {
    let stop = service::stop(ctx.desired, m, grace);
    let start = service::start(ctx.desired, m);
    let point = format!("stopped:{name}");
    let t = Instant::now();
    if failpoint::armed(&point) || !host.round_trips() {
        write_files(host, files).await?;
        let written = t.elapsed();
        run_checked(host, &stop).await?;
        let stopped = t.elapsed() - written;
        failpoint::reached(&point).await;
        let s = Instant::now();
        run_checked(host, &start).await?;
        return Ok(Parts {
            write: written,
            stop: stopped,
            start: s.elapsed(),
        });
    }
    let write = write_parts(files);
    let out = host.run(&combined(name, &write, &stop, &start)).await?;
    let total = t.elapsed();
    let ups = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(STOPPED))
        .map(|rest| {
            let up: Vec<f64> = rest
                .split_whitespace()
                .map(|s| s.parse::<f64>().unwrap_or(0.0))
                .collect();
            let at = |i: usize| up.get(i).copied().unwrap_or(0.0);
            let secs = |a: f64, b: f64| Duration::from_secs_f64((b - a).max(0.0)).min(total);
            (secs(at(0), at(1)), secs(at(1), at(2)))
        });
    let failed = |script: &Script| StepError::Command {
        what: script.what.clone(),
        host: host.label(),
        code: out.code,
        tail: out.tail(),
    };
    match ups {
        None if !out.stdout.lines().any(|l| l == WRITTEN) => Err(failed(&write)),
        None => Err(failed(&stop)),
        Some(_) if !out.success() => Err(failed(&start)),
        Some((write, stop)) => Ok(Parts {
            write,
            stop,
            start: total.saturating_sub(write + stop),
        }),
    }
}

/// One script writing every file from one stdin, each checked and renamed
/// into place in a subshell of its own (the first that fails ends it).
fn write_parts(files: &[FileChange]) -> Script {
    let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    let mut source = String::new();
    let mut stdin = Vec::new();
    for f in files {
        source.push_str(&format!(
            "(\n{}\n) || exit $?\n",
            write_file_part_script(&f.path, f.mode, f.after.as_bytes())
        ));
        stdin.extend_from_slice(f.after.as_bytes());
    }
    Script::new(format!("write {}", paths.join(", ")), source)
        .stdin(stdin)
        .timeout(WRITE_DEADLINE * u32::try_from(files.len()).unwrap_or(u32::MAX))
}

/// The files, then the stop, then the start, each in a subshell (all
/// `exit`); marker lines say the files are in place and the stop
/// succeeded. The deadline is the sum of the three.
fn combined(name: &MemberName, write: &Script, stop: &Script, start: &Script) -> Script {
    let uptime = |var: &str| format!("{var}=; read {var} _ < /proc/uptime 2>/dev/null || true\n");
    let what = if write.source.is_empty() {
        format!("restart {name} (stop, then start)")
    } else {
        format!("restart {name} (files, stop, then start)")
    };
    let mut script = Script::new(
        what,
        format!(
            "{tw}{write}echo {WRITTEN}\n{t0}(\n{stop}\n) || exit $?\n{t1}echo \"{STOPPED} $tw $t0 $t1\"\n(\n{start}\n)\n",
            tw = uptime("tw"),
            t0 = uptime("t0"),
            t1 = uptime("t1"),
            write = write.source,
            stop = stop.source,
            start = start.source,
        ),
    )
    .timeout(write.timeout + stop.timeout + start.timeout);
    script.stdin = write.stdin.clone().filter(|b| !b.is_empty());
    script
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
            &write_parts(&[]),
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

    fn file(path: &std::path::Path, after: &str) -> FileChange {
        FileChange {
            path: path.to_owned(),
            mode: 0o644,
            host: "here".into(),
            before: None,
            after: after.into(),
        }
    }

    /// Two files on one stdin land whole, each at its path, before the stop.
    #[tokio::test]
    async fn the_files_land_whole_before_the_stop() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = dir.path().join("etcd.conf.yml");
        let b = dir.path().join("sub/etcd.env");
        let (big, small) = ("name: etcd-1\n".repeat(2000), "X=1");
        let files = [file(&a, &big), file(&b, small)];
        let stop = format!(
            "cat {} {} > {}/seen",
            a.display(),
            b.display(),
            dir.path().display()
        );
        let s = combined(
            &name(),
            &write_parts(&files),
            &Script::new("stop", stop),
            &Script::new("start", "echo started"),
        );
        let out = LocalHost.run(&s).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(out.success() && out.stdout.contains(STOPPED), "{out:?}");
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(&a), big);
        assert_eq!(read(&b), small);
        assert_eq!(read(&dir.path().join("seen")), format!("{big}{small}"));
    }

    /// A file that cannot be written stops nothing, and the files before it
    /// are whole.
    #[tokio::test]
    async fn a_failed_write_never_stops() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let blocker = dir.path().join("not-a-folder");
        std::fs::write(&blocker, "").unwrap_or_else(|e| panic!("{e}"));
        let a = dir.path().join("a.yml");
        let files = [file(&a, "a: 1\n"), file(&blocker.join("b.yml"), "b: 2\n")];
        let s = combined(
            &name(),
            &write_parts(&files),
            &Script::new("stop", "echo stopping"),
            &Script::new("start", "echo started"),
        );
        let out = LocalHost.run(&s).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.success(), "{out:?}");
        assert!(
            !out.stdout.contains(WRITTEN) && !out.stdout.contains("stopping"),
            "{out:?}"
        );
        assert_eq!(std::fs::read_to_string(&a).unwrap_or_default(), "a: 1\n");
    }
}
