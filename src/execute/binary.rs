//! Version steps: upload a release to a host, point a member's binary at it,
//! and check what the members and the cluster then run.

use std::convert::Infallible;
use std::path::Path;
use std::time::{Duration, Instant};

use super::wait::{Check, WaitError, wait_until};
use super::{Context, StepError, member, run_checked};
use crate::io::{Script, shell_quote};
use crate::model::{EtcdVersion, MemberName, MinorVersion};

/// How long an upload of a release (tens of MB) may take.
const UPLOAD_DEADLINE: Duration = Duration::from_secs(300);

/// Uploads `source` to `<binary>-<version>` on the member's host, unless the
/// host has it with that sha256 already; checked there by sha256 and
/// `--version` before it is renamed into place.
pub(super) async fn install(
    ctx: &Context<'_>,
    transfers: &super::transfer::Transfers,
    name: &MemberName,
    version: EtcdVersion,
    source: &Path,
    sha256: &str,
    etcdutl: Option<&crate::config::ReleaseTool>,
) -> Result<Option<String>, StepError> {
    let (_, host) = member(ctx, name)?;
    let dst = ctx.desired.etcd.installed_path(version);
    let check = format!(
        "v=$(timeout 10 \"$tmp\" --version 2>&1 | sed -n 's/^etcd Version: //p' | head -n 1)\n\
if [ \"$v\" != {ver} ]; then echo \"the uploaded binary says it is etcd '$v'\" >&2; exit 4; fi\n",
        ver = shell_quote(&version.to_string()),
    );
    let done = super::upload::upload(
        host.as_ref(),
        transfers,
        super::upload::Upload {
            what: format!("etcd {version}"),
            source,
            sha256,
            dest: &dst,
            mode: 0o755,
            check,
            deadline: UPLOAD_DEADLINE,
        },
    )
    .await?;
    let Some(tool) = etcdutl else {
        return Ok(Some(done));
    };
    let tool_dst = ctx.desired.etcd.installed_tool_path("etcdutl", version);
    let check = format!(
        "v=$(timeout 10 \"$tmp\" version 2>&1 | sed -n 's/^etcdutl version: //p' | head -n 1)\n\
if [ \"$v\" != {ver} ]; then echo \"the uploaded etcdutl says it is of etcd '$v'\" >&2; exit 4; fi\n",
        ver = shell_quote(&version.to_string()),
    );
    let tool_done = super::upload::upload(
        host.as_ref(),
        transfers,
        super::upload::Upload {
            what: format!("etcdutl {version}"),
            source: &tool.path,
            sha256: &tool.sha256,
            dest: &tool_dst,
            mode: 0o755,
            check,
            deadline: UPLOAD_DEADLINE,
        },
    )
    .await?;
    Ok(Some(format!("{done}; {tool_done}")))
}

/// Points `binary` at `<binary>-<version>`: a symlink swapped with a rename.
/// A plain file found at `binary` is kept as `<binary>-<its version>`, so the
/// release it was stays there for a rollback.
pub(super) async fn use_release(
    ctx: &Context<'_>,
    name: &MemberName,
    version: EtcdVersion,
) -> Result<Option<String>, StepError> {
    let (_, host) = member(ctx, name)?;
    let bin = &ctx.desired.etcd.binary;
    let dst = ctx.desired.etcd.installed_path(version);
    let script = format!(
        "set -e\nbin={b}\ndst={d}\n\
[ -x \"$dst\" ] || {{ echo \"$dst is not there\" >&2; exit 3; }}\n\
if [ -f \"$bin\" ] && [ ! -L \"$bin\" ]; then\n\
  v=$(timeout 10 \"$bin\" --version 2>/dev/null | sed -n 's/^etcd Version: //p' | head -n 1)\n\
  if [ -n \"$v\" ] && [ ! -e \"$bin-$v\" ]; then cp -p \"$bin\" \"$bin-$v\"; fi\n\
fi\n\
mkdir -p \"$(dirname \"$bin\")\"\n\
ln -sfn \"$dst\" \"$bin.etcdplan-new\"\nmv -Tf \"$bin.etcdplan-new\" \"$bin\"\n",
        b = shell_quote(&bin.display().to_string()),
        d = shell_quote(&dst.display().to_string()),
    );
    run_checked(
        host.as_ref(),
        &Script::new(format!("point {} at etcd {version}", bin.display()), script),
    )
    .await?;
    Ok(Some(format!("{} → {}", bin.display(), dst.display())))
}

/// Polls the member's Status until it reports `version`.
pub(super) async fn check_version(
    ctx: &Context<'_>,
    name: &MemberName,
    version: EtcdVersion,
) -> Result<Option<String>, StepError> {
    let (m, _) = member(ctx, name)?;
    let ep = m.client_url(&ctx.desired.tls);
    let what = format!("check {name} runs etcd {version}");
    poll(ctx, what, ctx.deadlines.poll, async || {
        match ctx.etcd.status(&ep).await {
            Ok(s) if s.version == Some(version) => Ok(format!("{name} runs etcd {version}")),
            Ok(s) => Err(format!(
                "it reports {}",
                s.version.map_or("no version".into(), |v| v.to_string())
            )),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// Polls until a member reports the cluster version `want` (the leader
/// raises it every few seconds once every member runs the new version).
pub(super) async fn cluster_version(
    ctx: &Context<'_>,
    want: MinorVersion,
) -> Result<Option<String>, StepError> {
    let start = Instant::now();
    let what = format!("wait until the cluster version is {want}");
    let every = ctx.deadlines.poll.max(Duration::from_millis(500));
    poll(ctx, what, every, async || {
        let mut last = "no member answered".to_owned();
        for ep in ctx.endpoints() {
            match ctx.etcd.cluster_version(&ep).await {
                Ok(Some(v)) if v == want => {
                    return Ok(format!(
                        "cluster version {v} after {:.1}s",
                        start.elapsed().as_secs_f64()
                    ));
                }
                Ok(v) => {
                    last = format!(
                        "the cluster version is {}",
                        v.map_or("not decided".into(), |v| v.to_string())
                    );
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    })
    .await
}

/// Runs `attempt` every `every` until it succeeds or the gate deadline
/// passes; then the last reason it gave is the step's failure.
async fn poll(
    ctx: &Context<'_>,
    what: String,
    every: Duration,
    mut attempt: impl AsyncFnMut() -> Result<String, String>,
) -> Result<Option<String>, StepError> {
    let waited: Result<_, WaitError<Infallible>> =
        wait_until(&what, ctx.deadlines.gate, every, async || {
            match attempt().await {
                Ok(done) => Check::Ready(done),
                Err(why) => Check::NotYet(why),
            }
        })
        .await;
    match waited {
        Ok(done) => Ok(Some(done)),
        Err(WaitError::TimedOut { last, .. }) => Err(StepError::Refused { what, why: last }),
        Err(WaitError::Failed(never)) => match never {},
    }
}

/// How long `etcdutl check v2store` may read a member's WAL and snapshots.
const V2_CHECK_DEADLINE: Duration = Duration::from_secs(300);

/// Stops the member (leadership moved away first), runs `etcdutl check
/// v2store` on its data dir with the tool of the release it runs, and starts
/// it again on the same binary whatever the check said; then fails when the
/// check found custom v2 content, with etcd's three ways out.
pub(super) async fn check_v2store(
    ctx: &Context<'_>,
    name: &MemberName,
) -> Result<super::StepOutcome, StepError> {
    let (m, host) = member(ctx, name)?;
    super::check_may_disrupt(ctx, name, &format!("check {name}'s v2 store")).await?;
    super::membership::step_down(ctx, name).await?;
    run_checked(
        host.as_ref(),
        &crate::service::stop(ctx.desired, m, super::membership::stop_grace(ctx)),
    )
    .await?;
    let wal = m
        .wal_dir
        .as_ref()
        .map(|w| format!(" --wal-dir {}", shell_quote(&w.display().to_string())))
        .unwrap_or_default();
    let script = format!(
        "set -e\n{}\
if ! timeout 10 \"$t\" check v2store --help >/dev/null 2>&1; then echo \"$t has no 'check v2store' (etcdutl 3.5.32 or later has it)\" >&2; exit 5; fi\n\
\"$t\" check v2store --data-dir {}{wal} 2>&1\n",
        super::restore::find_tool(&ctx.desired.etcd.binary, "etcdutl"),
        shell_quote(&m.data_dir.display().to_string()),
    );
    let checked = run_checked(
        host.as_ref(),
        &Script::new(format!("check {name}'s v2 store"), script).timeout(V2_CHECK_DEADLINE),
    )
    .await;
    // Back up on the binary it ran, whatever the check found.
    run_checked(host.as_ref(), &crate::service::start(ctx.desired, m)).await?;
    match checked {
        Ok(out) => Ok(super::StepOutcome::from(format!(
            "{name}: {}",
            out.lines().last().unwrap_or("v2 store clean").trim()
        ))),
        Err(StepError::Command {
            what,
            host,
            code,
            tail,
        }) => Err(StepError::Command {
            what,
            host,
            code,
            tail: format!(
                "{tail}; etcd 3.6 would refuse this data dir. Ways out (etcd's 3.6 upgrade guide): custom data in the v2 snapshot: migrate it, or run 3.6 with v2-deprecation write-only-skip-check at your own risk; custom data only in the WAL: restart the member with snapshot-count 1 so a v2 snapshot is cut, restore the value, restart again; then plan again ({name} was started again on its old binary)"
            ),
        }),
        Err(e) => Err(e),
    }
}
