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
    Ok(Some(done))
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
