//! The steps of a downgrade through etcd's downgrade API (3.6 → 3.5, 3.7 →
//! 3.6): validate and enable it through the leader, wait until every member
//! has migrated its data to the target, check it completed once the
//! binaries rolled back; and `downgrade cancel`, both as a planned step and
//! when a step fails while the downgrade is half way.

use super::wait::{Check, WaitError, wait_until};
use super::{Context, StepError, StepOutcome, membership};
use crate::io::{DowngradeAction, EtcdErrorKind};
use crate::model::{EtcdVersion, MinorVersion};

/// Sends one `downgrade` call to the leader; returns the cluster version it
/// answered with.
async fn call(
    ctx: &Context<'_>,
    action: DowngradeAction,
    target: MinorVersion,
) -> Result<Option<MinorVersion>, StepError> {
    let view = membership::leader(ctx).await?;
    Ok(ctx.etcd.downgrade(&view.endpoint, action, target).await?)
}

/// `downgrade validate`: refused unless the cluster version is one minor
/// above `target` and no downgrade is in progress.
pub(super) async fn validate(
    ctx: &Context<'_>,
    target: MinorVersion,
) -> Result<StepOutcome, StepError> {
    let cv = call(ctx, DowngradeAction::Validate, target).await?;
    Ok(StepOutcome::from(format!(
        "the cluster (version {}) can downgrade to {target}",
        shown(cv)
    )))
}

/// `downgrade enable`: the cluster version drops to `target`.
pub(super) async fn enable(
    ctx: &Context<'_>,
    target: MinorVersion,
) -> Result<StepOutcome, StepError> {
    let cv = call(ctx, DowngradeAction::Enable, target).await?;
    Ok(StepOutcome::from(format!(
        "downgrade enabled: the cluster version goes from {} to {target}",
        shown(cv)
    )))
}

/// `downgrade cancel` as a planned step: a downgrade found in progress that
/// the etcdfile no longer wants. One already gone is not a failure.
pub(super) async fn cancel(
    ctx: &Context<'_>,
    target: MinorVersion,
) -> Result<StepOutcome, StepError> {
    match call(ctx, DowngradeAction::Cancel, target).await {
        Ok(_) => Ok(StepOutcome::from(format!(
            "the downgrade to {target} is cancelled"
        ))),
        Err(StepError::Etcd(e)) if e.kind() == EtcdErrorKind::NoDowngradeInProgress => Ok(
            StepOutcome::from("no downgrade was in progress any more".to_owned()),
        ),
        Err(e) => Err(e),
    }
}

/// What a failed walk does when a downgrade it enabled is half way: sends
/// `downgrade cancel` and says what came of it, for the report.
pub(super) async fn cancel_after_failure(ctx: &Context<'_>, target: MinorVersion) -> String {
    match call(ctx, DowngradeAction::Cancel, target).await {
        Ok(_) => format!(
            "sent `downgrade cancel`: the downgrade to {target} stopped half way and is cancelled; members already on {target} roll back onto the newer release when the etcdfile asks for it again, or the next plan continues the downgrade"
        ),
        Err(StepError::Etcd(e)) if e.kind() == EtcdErrorKind::NoDowngradeInProgress => format!(
            "sent `downgrade cancel`: no downgrade to {target} was in progress any more (it completed or was cancelled)"
        ),
        Err(e) => format!(
            "sending `downgrade cancel` for the downgrade to {target} failed: {e}; it is still enabled, run `etcdctl downgrade cancel` or plan again"
        ),
    }
}

/// Waits until every member of the etcdfile reports `target` as its storage
/// version (a release before 3.6 reports none: its data is at most its own
/// minor version).
pub(super) async fn wait_storage(
    ctx: &Context<'_>,
    target: MinorVersion,
) -> Result<StepOutcome, StepError> {
    let what = format!("wait until every member's storage version is {target}");
    let every = ctx.deadlines.poll;
    let waited = wait_until(&what, ctx.deadlines.gate, every, async || {
        for m in &ctx.desired.members {
            let ep = m.client_url(&ctx.desired.tls);
            let s = match ctx.etcd.status(&ep).await {
                Ok(s) => s,
                Err(e) => return Check::NotYet(format!("{}: {e}", m.name)),
            };
            let old_binary = s
                .version
                .map(EtcdVersion::minor)
                .is_some_and(|v| v <= target && (v.major, v.minor) < (3, 6));
            match s.storage_version {
                Some(v) if v == target => {}
                None if old_binary => {}
                other => {
                    return Check::NotYet(format!(
                        "{} reports storage version {}",
                        m.name,
                        shown(other)
                    ));
                }
            }
        }
        Check::<_, std::convert::Infallible>::Ready(())
    })
    .await;
    match waited {
        Ok(()) => Ok(StepOutcome::from(format!(
            "every member's storage version is {target}"
        ))),
        Err(WaitError::TimedOut { last, .. }) => Err(StepError::Refused { what, why: last }),
        Err(WaitError::Failed(never)) => match never {},
    }
}

/// Waits until no member reports the downgrade enabled (etcd resets it once
/// every member runs the target).
pub(super) async fn finished(
    ctx: &Context<'_>,
    target: MinorVersion,
) -> Result<StepOutcome, StepError> {
    let what = format!("check the downgrade to {target} has completed");
    let every = ctx.deadlines.poll;
    let waited = wait_until(&what, ctx.deadlines.gate, every, async || {
        for m in &ctx.desired.members {
            let ep = m.client_url(&ctx.desired.tls);
            match ctx.etcd.status(&ep).await {
                Ok(s) if s.downgrade.is_some_and(|d| d.enabled) => {
                    return Check::NotYet(format!("{} reports the downgrade enabled", m.name));
                }
                Ok(_) => {}
                Err(e) => return Check::NotYet(format!("{}: {e}", m.name)),
            }
        }
        Check::<_, std::convert::Infallible>::Ready(())
    })
    .await;
    match waited {
        Ok(()) => Ok(StepOutcome::from(format!(
            "the downgrade to {target} has completed"
        ))),
        Err(WaitError::TimedOut { last, .. }) => Err(StepError::Refused { what, why: last }),
        Err(WaitError::Failed(never)) => match never {},
    }
}

/// A version for people; "none" when not reported.
fn shown(v: Option<MinorVersion>) -> String {
    v.map_or_else(|| "none".into(), |v| v.to_string())
}
