//! The maintenance steps: compaction, one member's defragmentation, the
//! NOSPACE disarm and the test write after it (etcd-ops R6.2–R6.5).

use std::time::Duration;

use super::gate::wait_healthy;
use super::membership::{leader, step_down};
use super::{Context, StepError, StepOutcome, check_may_disrupt, member};
use crate::diff::maintenance::{DISARM_BELOW, describe_figures};
use crate::io::{EtcdError, EtcdErrorKind};
use crate::model::{ByteSize, DbFigures, MemberName};

/// The key the test write puts and deletes, beside the lock's.
pub const TEST_KEY: &str = "etcdplan/write-check";

/// How long a compaction may take (physical: the leader's backend drops
/// the history before it answers).
const COMPACT_DEADLINE: Duration = Duration::from_secs(120);

/// Compacts the history to the leader's current revision less `keep`; a
/// history already compacted that far is left alone.
pub(super) async fn compact(ctx: &Context<'_>, keep: u64) -> Result<StepOutcome, StepError> {
    let view = leader(ctx).await?;
    let now = ctx.etcd.status(&view.endpoint).await?.revision;
    let target = now.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
    if target <= 1 {
        return Ok(StepOutcome::from(format!(
            "revision {now}: nothing to compact below {keep} kept revisions"
        )));
    }
    match ctx
        .etcd
        .compact(&view.endpoint, target, COMPACT_DEADLINE)
        .await
    {
        Ok(()) => Ok(StepOutcome::from(format!(
            "compacted to revision {target} (current {now})"
        ))),
        Err(EtcdError::Call {
            kind: EtcdErrorKind::Compacted,
            ..
        }) => Ok(StepOutcome::from(format!(
            "already compacted past revision {target}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A member's backend figures now, from its own Status (the quota from
/// Status where its release reports one, else `quota`).
async fn figures(ctx: &Context<'_>, name: &MemberName, quota: u64) -> Result<DbFigures, StepError> {
    let (m, _) = member(ctx, name)?;
    let s = ctx.etcd.status(&m.client_url(&ctx.desired.tls)).await?;
    Ok(DbFigures {
        db_size: s.db_size,
        db_size_in_use: s.db_size_in_use,
        db_quota: s.db_quota.unwrap_or(quota),
    })
}

/// Defragments one member, once the quorum can spare it: the call goes to
/// that member alone, under a deadline scaled to its backend. A member that
/// does not finish in time is checked for health before the walk stops, and
/// the error names it. The file must have shrunk when there was anything to
/// give back.
pub(super) async fn defragment(
    ctx: &Context<'_>,
    name: &MemberName,
    timeout_secs: u64,
) -> Result<StepOutcome, StepError> {
    let (m, _) = member(ctx, name)?;
    let ep = m.client_url(&ctx.desired.tls);
    check_may_disrupt(ctx, name, &format!("defragment {name}")).await?;
    // The plan moved leadership away already; an election since may have
    // made it the leader again (defragmenting the leader stalls writes).
    step_down(ctx, name).await?;
    let quota = crate::diff::maintenance::planned_quota(ctx.desired);
    let before = figures(ctx, name, quota).await?;
    let deadline = Duration::from_secs(timeout_secs);
    if let Err(e) = ctx.etcd.defragment(&ep, deadline).await {
        // etcd goes on defragmenting after our call gave up: say how the
        // member is before anything else runs.
        let health = match wait_healthy(ctx, std::slice::from_ref(name)).await {
            Ok(()) => format!("{name} is healthy again"),
            Err(g) => format!("{name} is not healthy: {g}"),
        };
        return Err(StepError::Refused {
            what: format!("defragment {name}"),
            why: format!(
                "{e} ({}); {health}; no other member was defragmented by this step",
                describe_figures(&before)
            ),
        });
    }
    let after = figures(ctx, name, quota).await?;
    // A few pages may be written between the two looks.
    let shrank = after.db_size < before.db_size;
    if !shrank && before.free() > 1024 * 1024 {
        return Err(StepError::Refused {
            what: format!("defragment {name}"),
            why: format!(
                "its backend did not shrink: {} before, {} after, with {} free before",
                ByteSize(before.db_size).human(),
                ByteSize(after.db_size).human(),
                ByteSize(before.free()).human()
            ),
        });
    }
    Ok(StepOutcome::from(format!(
        "{name}: backend {} → {}",
        ByteSize(before.db_size).human(),
        ByteSize(after.db_size).human()
    )))
}

/// Disarms every raised NOSPACE alarm, but only once every voter's backend
/// is below [`DISARM_BELOW`] of its quota: otherwise the next write raises
/// it again, and the step says which member is still too full.
pub(super) async fn disarm_nospace(
    ctx: &Context<'_>,
    quota: u64,
) -> Result<StepOutcome, StepError> {
    let view = leader(ctx).await?;
    for lm in view.members.iter().filter(|m| !m.is_learner) {
        let Some(ep) = lm.client_urls.first() else {
            continue;
        };
        let s = ctx.etcd.status(ep).await?;
        let f = DbFigures {
            db_size: s.db_size,
            db_size_in_use: s.db_size_in_use,
            db_quota: s.db_quota.unwrap_or(quota),
        };
        #[allow(clippy::cast_precision_loss)]
        if f.db_size as f64 >= DISARM_BELOW * f.db_quota as f64 {
            return Err(StepError::Refused {
                what: "disarm the NOSPACE alarm".into(),
                why: format!(
                    "{} is still full ({}): disarming now would raise it again at the next write; raise quota_backend_bytes in the etcdfile, or delete keys, then plan again",
                    lm.name.as_started().unwrap_or("a member"),
                    describe_figures(&f)
                ),
            });
        }
    }
    let alarms = ctx.etcd.alarms(&view.endpoint).await?;
    let mut n = 0;
    for a in alarms.iter().filter(|a| a.kind == "NOSPACE") {
        ctx.etcd.alarm_disarm(&view.endpoint, a).await?;
        n += 1;
    }
    Ok(StepOutcome::from(format!(
        "{n} NOSPACE alarm{} disarmed",
        if n == 1 { "" } else { "s" }
    )))
}

/// Puts and deletes [`TEST_KEY`] through the leader: the cluster takes
/// writes again.
pub(super) async fn test_write(ctx: &Context<'_>) -> Result<StepOutcome, StepError> {
    let view = leader(ctx).await?;
    let value = format!("{}", crate::pki::now());
    ctx.etcd.put(&view.endpoint, TEST_KEY, &value).await?;
    ctx.etcd
        .delete_if(&view.endpoint, TEST_KEY, &value, None)
        .await?;
    Ok(StepOutcome::from(
        "a test key was written and deleted".to_owned(),
    ))
}
