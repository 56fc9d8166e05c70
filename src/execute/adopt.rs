//! Taking a running member over from the unit or process that runs it now
//! ([`Step::Adopt`](crate::plan::Step::Adopt)).
//!
//! Everything that touches the member happens in one job on its host,
//! detached from etcdplan's ssh session (`setsid nohup`): put etcdplan's files
//! in place (what was there kept as `*.adopted-<time>`), stop the old etcd,
//! move its unit, drop-ins and environment files aside, start etcdplan's
//! service and wait until it listens. If that start fails, the job puts the
//! old files back and starts the old etcd again. etcdplan or its connection
//! dying in between cannot leave the member stopped: the job finishes alone,
//! and the next plan sees whichever etcd runs. etcdplan follows the job
//! through its status file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Desired, DesiredMember};
use crate::diff::FileChange;
use crate::io::{Script, shell_quote, write_file_script};
use crate::live::Listener;
use crate::model::MemberName;
use crate::service;

use super::wait::{Check, WaitError, wait_until};
use super::{Context, StepError, StepOutcome, check_may_disrupt, member, membership, run_checked};

/// How long the job may take: the old etcd's stop, etcdplan's start, and
/// etcd answering on its client port.
const JOB_DEADLINE: Duration = Duration::from_secs(180);

/// How long the job waits for the new etcd to listen before it gives up and
/// starts the old one again.
const LISTEN_DEADLINE_SECS: u32 = 90;

fn q(p: &Path) -> String {
    shell_quote(&p.display().to_string())
}

/// The job's files on the host: (script, status, log).
fn job_paths(m: &DesiredMember) -> (PathBuf, PathBuf, PathBuf) {
    let base = m.state_dir.join(format!("adopt-{}", m.name));
    (
        base.with_extension("sh"),
        base.with_extension("status"),
        base.with_extension("log"),
    )
}

/// Takes member `name` over from `foreign`, writing `files`.
pub(super) async fn adopt(
    ctx: &Context<'_>,
    name: &MemberName,
    foreign: &Listener,
    files: &[FileChange],
) -> Result<StepOutcome, StepError> {
    let (m, host) = member(ctx, name)?;
    check_may_disrupt(ctx, name, &format!("take {name} over")).await?;
    membership::step_down(ctx, name).await?;
    let ts = membership::stamp();
    let (job, status, log) = job_paths(m);
    let source = job_script(ctx.desired, m, foreign, files, &ts, &status);
    run_checked(
        host.as_ref(),
        &Script::new(format!("takeover {name} write-job"), {
            format!(
                "mkdir -p {}\n{}",
                q(&m.state_dir),
                write_file_script(&job, 0o700, source.as_bytes())
            )
        })
        .stdin(source.into_bytes()),
    )
    .await?;
    run_checked(
        host.as_ref(),
        &Script::new(
            format!("takeover {name} start-job"),
            format!(
                "rm -f {st}\nsetsid nohup /bin/sh {job} > {log} 2>&1 < /dev/null &\necho started\n",
                st = q(&status),
                job = q(&job),
                log = q(&log),
            ),
        ),
    )
    .await?;
    let read = Script::new(
        format!("takeover {name} job-status"),
        format!("cat {} 2>/dev/null || true\n", q(&status)),
    )
    .timeout(Duration::from_secs(15));
    let waited = wait_until(
        &format!("takeover of {name}"),
        JOB_DEADLINE,
        Duration::from_millis(500),
        async || match run_checked(host.as_ref(), &read).await {
            Ok(out) => {
                let said = out.trim().to_owned();
                if said == "done" {
                    Check::Ready(())
                } else if let Some(why) = said.strip_prefix("failed: ") {
                    Check::Fail(why.to_owned())
                } else if said.is_empty() {
                    Check::NotYet("the job has not started".to_owned())
                } else {
                    Check::NotYet(format!("the job is {said}"))
                }
            }
            // The host may be busy for a moment; the job runs on regardless.
            Err(e) => Check::NotYet(e.to_string()),
        },
    )
    .await;
    match waited {
        Ok(()) => Ok(StepOutcome::from(format!(
            "{name} runs under etcdplan's service; what ran it before is kept aside as *.adopted-{ts}"
        ))),
        Err(WaitError::Failed(why)) => Err(StepError::Refused {
            what: format!("take {name} over"),
            why: format!("{why} (the job's log: {} on {})", log.display(), m.address),
        }),
        Err(WaitError::TimedOut { waited, last }) => Err(StepError::Refused {
            what: format!("take {name} over"),
            why: format!(
                "the job on {} did not finish within {:.0}s ({last}); it goes on there: see {}",
                m.address,
                waited.as_secs_f64(),
                log.display()
            ),
        }),
    }
}

/// The job: files, stop, start, and the way back.
fn job_script(
    d: &Desired,
    m: &DesiredMember,
    foreign: &Listener,
    files: &[FileChange],
    ts: &str,
    status: &Path,
) -> String {
    let mut s = format!(
        "#!/bin/sh\n# etcdplan: take {name} over from {what} (job {ts}). Runs on its own; its status is in {st}.\n\
set -u\n{fresh}st={st}\nts={ts}\nsay() {{ printf '%s\\n' \"$*\" > \"$st.tmp\" && mv -f \"$st.tmp\" \"$st\"; }}\n\
say running\nundo=\n",
        name = m.name,
        what = foreign.describe(),
        st = q(status),
        fresh = crate::io::FRESH_NAME,
    );
    // 1. etcdplan's files; what was at their paths kept, to put back on failure.
    for f in files {
        let p = q(&f.path);
        let dir = q(f.path.parent().unwrap_or(Path::new("/")));
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &f.after);
        s.push_str(&format!(
            "p={p}\nif [ -e \"$p\" ]; then a=$(fresh_name \"$p.adopted-$ts\") && cp -p \"$p\" \"$a\" || {{ say \"failed: could not keep $p\"; exit 1; }}; \
undo=\"$undo mv -f '$a' '$p';\"; else undo=\"$undo mv -f '$p' \\\"\\$(fresh_name '$p.failed-$ts')\\\";\"; fi\n\
mkdir -p {dir} && printf '%s' '{b64}' | base64 -d > \"$p.etcdplan-tmp\" && chmod {mode:o} \"$p.etcdplan-tmp\" && mv -f \"$p.etcdplan-tmp\" \"$p\" \
|| {{ eval \"$undo\"; say \"failed: could not write $p\"; exit 1; }}\n",
            mode = f.mode,
        ));
    }
    // Debian's etcd-server package, when installed, is held: `apt upgrade`
    // would otherwise replace the binary and restart etcd.service (etcdplan's
    // unit now) behind the plan's back. Upgrades go through the etcdfile.
    s.push_str(
        "if command -v apt-mark >/dev/null 2>&1 && dpkg-query -W -f='${Status}' etcd-server 2>/dev/null | grep -q 'install ok installed' \
&& ! apt-mark showhold 2>/dev/null | grep -qx etcd-server; then apt-mark hold etcd-server >/dev/null && undo=\"$undo apt-mark unhold etcd-server >/dev/null;\"; fi\n",
    );
    // 2. The old etcd stopped, and what would start it again moved aside.
    match &foreign.unit {
        Some(u) => {
            let unit = shell_quote(&u.name);
            s.push_str(&format!(
                "u={unit}\nwas_enabled=$(systemctl is-enabled \"$u\" 2>/dev/null || true)\n\
timeout 90 systemctl stop \"$u\" || {{ eval \"$undo\"; say \"failed: systemctl stop $u did not succeed; nothing else was changed\"; exit 1; }}\n\
systemctl disable --quiet \"$u\" 2>/dev/null || true\n"
            ));
            let mut aside: Vec<&Path> = Vec::new();
            if let Some(frag) = &u.fragment {
                if frag.starts_with("/etc") {
                    if *frag != crate::hostfiles::systemd_unit::unit_path() {
                        aside.push(frag);
                    }
                } else if u.name != crate::hostfiles::systemd_unit::UNIT {
                    // A packaged unit of another name: masked, so neither a
                    // boot nor the package's scripts start it again.
                    s.push_str("systemctl mask --quiet \"$u\" 2>/dev/null && undo=\"$undo systemctl unmask --quiet '$u';\"\n");
                }
            }
            aside.extend(u.dropins.iter().map(PathBuf::as_path));
            aside.extend(
                u.env_files
                    .iter()
                    .map(PathBuf::as_path)
                    .filter(|p| p.starts_with("/etc")),
            );
            for p in aside {
                let p = q(p);
                s.push_str(&format!(
                    "if [ -e {p} ]; then a=$(fresh_name {p}.adopted-$ts) && mv -f {p} \"$a\" && undo=\"$undo mv -f '$a' {p};\"; fi\n"
                ));
            }
            s.push_str(&format!(
                "systemctl daemon-reload\n\
back() {{ systemctl stop {ours} 2>/dev/null; eval \"$undo\"; systemctl daemon-reload; \
case \"$was_enabled\" in enabled) systemctl enable --quiet \"$u\";; esac; systemctl start \"$u\"; }}\n",
                ours = crate::hostfiles::systemd_unit::UNIT,
            ));
        }
        None => {
            let pid = foreign.pid;
            let cmdline = foreign.cmdline.join("\0") + "\0";
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, cmdline);
            let relaunch = q(&m.state_dir.join(format!("adopt-{}.relaunch", m.name)));
            s.push_str(&format!(
                "pid={pid}\nif [ -e /proc/$pid ] && [ \"$(base64 -w0 < /proc/$pid/cmdline 2>/dev/null)\" != '{b64}' ]; then \
eval \"$undo\"; say \"failed: pid $pid is no longer the etcd the plan saw; nothing was changed\"; exit 1; fi\n\
if [ -e /proc/$pid ]; then\n\
  cwd=$(readlink /proc/$pid/cwd); printf 'env\\0-i\\0' > {relaunch}; cat /proc/$pid/environ >> {relaunch}; cat /proc/$pid/cmdline >> {relaunch}\n\
  kill -TERM $pid\n\
  n=0; while [ -e /proc/$pid ] && ! grep -q '^State:.*Z' /proc/$pid/status 2>/dev/null; do n=$((n+1)); \
if [ $n -gt 600 ]; then eval \"$undo\"; say \"failed: the etcd process $pid did not stop within 60s; it still runs\"; exit 1; fi; sleep 0.1; done\n\
else cwd=/; fi\n\
back() {{ eval \"$undo\"; if [ -s {relaunch} ]; then (cd \"$cwd\" && setsid nohup xargs -0 -a {relaunch} > /dev/null 2>&1 < /dev/null &); fi; }}\n"
            ));
        }
    }
    // 3. etcdplan's service started, and etcd listening on its client port.
    let start = service::start(d, m);
    let alive = service::check_alive(d, m);
    s.push_str(&format!(
        "if ! ( {start}\n) > /dev/null; then back; say \"failed: etcdplan's service did not start; the old etcd was started again\"; exit 1; fi\n\
n=0; while :; do\n\
  if ss -Hltn 'sport = :{port}' 2>/dev/null | grep -q . && ( {alive}\n) | grep -qx alive; then break; fi\n\
  n=$((n+1)); if [ $n -gt {tries} ]; then back; say \"failed: etcd did not come up under etcdplan's service within {LISTEN_DEADLINE_SECS}s; the old etcd was started again\"; exit 1; fi\n\
  sleep 0.5\ndone\nsay done\n",
        start = start.source,
        alive = alive.source,
        port = m.client_port,
        tries = LISTEN_DEADLINE_SECS * 2,
    ));
    s
}
