//! The steps of a quorum-loss recovery (`plan::recover`): keep a copy of the
//! survivor's data, fence the lost members, start the survivor once with
//! `--force-new-cluster`, restart it normally, verify it. Each re-checks what
//! it can against the cluster as it is now and can be run again: a recovery
//! killed half way is finished by the next `apply --recover-from`.

use std::time::Duration;

use super::wait::{Check, WaitError, wait_until};
use super::{Context, GateError, StepError, StepOutcome, member, membership, run_checked};
use crate::config::DesiredMember;
use crate::io::{Script, shell_quote};
use crate::model::{MemberId, MemberName};
use crate::service;
use etcdplan_core::diff::quorum_loss::recovery_mark;

/// How long copying a data dir may take: a large backend on a slow disk.
const COPY_DEADLINE: Duration = Duration::from_secs(600);

/// Stops the survivor (without a quorum it serves nothing) and copies its
/// `member` folder, and a separate WAL folder, next to it with a time stamp;
/// the copy is kept.
pub(super) async fn copy_data(
    ctx: &Context<'_>,
    name: &MemberName,
) -> Result<StepOutcome, StepError> {
    let (m, host) = member(ctx, name)?;
    run_checked(
        host.as_ref(),
        &service::stop(ctx.desired, m, membership::stop_grace(ctx)),
    )
    .await?;
    let q = |p: &std::path::Path| shell_quote(&p.display().to_string());
    let mut source = format!(
        "set -e\n{fresh}ts={ts}\nd={data}\n\
if [ ! -d \"$d/member\" ]; then echo \"$d/member does not exist: no data to recover from\" >&2; exit 3; fi\n\
(umask 077; mkdir -p {state}; printf 'recovery from %s since %s\\n' {name} \"$ts\" > {mark})\n\
c=$(fresh_name \"$d/member.recovery-copy-$ts\")\ncp -a \"$d/member\" \"$c\"\necho \"copied $d/member to $c\"\n",
        fresh = crate::io::FRESH_NAME,
        ts = membership::stamp(),
        data = q(&m.data_dir),
        state = q(&m.state_dir),
        name = shell_quote(m.name.as_str()),
        mark = q(&recovery_mark(m)),
    );
    if let Some(wal) = &m.wal_dir {
        source.push_str(&format!(
            "w={wal}\nif [ -d \"$w\" ]; then c=$(fresh_name \"$w.recovery-copy-$ts\"); cp -a \"$w\" \"$c\"; echo \"copied $w to $c\"; fi\n",
            wal = q(wal)
        ));
    }
    let out = run_checked(
        host.as_ref(),
        &Script::new(format!("copy {}'s data", m.name), source).timeout(COPY_DEADLINE),
    )
    .await?;
    Ok(StepOutcome::from(out.trim().replace('\n', "; ")))
}

/// Fences a lost member: stops etcd, disables and moves its unit aside, moves
/// its data and config aside (`membership::retire`). A host that does not
/// answer is a warning: it is named, and must be dealt with by hand.
pub(super) async fn fence(ctx: &Context<'_>, m: &DesiredMember) -> Result<StepOutcome, StepError> {
    membership::retire(ctx, m, true).await
}

/// Refuses while any other member of the etcdfile answers the etcd API: a
/// forced new cluster next to a live old member splits the cluster (etcd
/// panics, or worse).
async fn others_silent(ctx: &Context<'_>, m: &DesiredMember) -> Result<(), StepError> {
    for o in ctx.desired.members.iter().filter(|o| o.name != m.name) {
        let ep = o.client_url(&ctx.desired.tls);
        if let Ok(s) = ctx.etcd.status(&ep).await {
            return Err(StepError::Unsafe {
                what: format!("start {} with --force-new-cluster", m.name),
                why: format!(
                    "{} answers at {ep} (member {}): a forced new cluster while an old member runs splits the cluster; stop and fence it first",
                    o.name, s.member_id
                ),
            });
        }
    }
    Ok(())
}

/// Waits until the member is a healthy one-member cluster of itself: it
/// leads, MemberList lists only it, a quorum read goes through.
async fn wait_alone(ctx: &Context<'_>, m: &DesiredMember, id: MemberId) -> Result<(), StepError> {
    let ep = m.client_url(&ctx.desired.tls);
    let what = format!("wait until {} is a one-member cluster", m.name);
    let r: Result<String, WaitError<StepError>> = wait_until(
        &what,
        ctx.deadlines.gate,
        ctx.deadlines.poll,
        async || match alone(ctx, &ep, id).await {
            Ok(Ok(detail)) => Check::Ready(detail),
            Ok(Err(why)) => Check::NotYet(why),
            Err(e) => Check::NotYet(e.to_string()),
        },
    )
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(WaitError::TimedOut { waited, last }) => {
            Err(StepError::Gate(GateError::Timeout { waited, last }))
        }
        Err(WaitError::Failed(e)) => Err(e),
    }
}

/// `Ok(Ok(revision line))` when the member at `ep` is a healthy cluster of
/// itself alone, `Ok(Err(why not))` otherwise.
async fn alone(
    ctx: &Context<'_>,
    ep: &crate::model::Endpoint,
    id: MemberId,
) -> Result<Result<String, String>, StepError> {
    let s = ctx.etcd.status(ep).await?;
    if s.member_id != id {
        return Ok(Err(format!(
            "{ep} answers as member {}, not {id}",
            s.member_id
        )));
    }
    if s.leader != Some(id) {
        return Ok(Err(format!("it does not lead yet (leader {:?})", s.leader)));
    }
    let list = ctx.etcd.member_list(ep).await?;
    if list.len() != 1 || list[0].id != id {
        let ids: Vec<String> = list.iter().map(|x| x.id.to_string()).collect();
        return Ok(Err(format!(
            "the member list is {}, not {id} alone",
            ids.join(", ")
        )));
    }
    ctx.etcd.quorum_read(ep).await?;
    Ok(Ok(format!("revision {}", s.revision)))
}

/// Starts the survivor once with `--force-new-cluster` (after checking that
/// no other member answers) and waits until it is a one-member cluster.
pub(super) async fn force_new_cluster(
    ctx: &Context<'_>,
    name: &MemberName,
    id: MemberId,
) -> Result<StepOutcome, StepError> {
    let (m, host) = member(ctx, name)?;
    others_silent(ctx, m).await?;
    let out = run_checked(host.as_ref(), &service::start_forced(ctx.desired, m)).await?;
    wait_alone(ctx, m, id).await?;
    Ok(StepOutcome::from(format!(
        "{name} runs alone as the cluster ({})",
        out.trim()
    )))
}

/// Stops the forced start and starts the survivor normally, then waits until
/// it is a one-member cluster again.
pub(super) async fn end_forced_start(
    ctx: &Context<'_>,
    name: &MemberName,
    id: MemberId,
) -> Result<StepOutcome, StepError> {
    let (m, host) = member(ctx, name)?;
    run_checked(
        host.as_ref(),
        &service::stop_forced(ctx.desired, m, membership::stop_grace(ctx)),
    )
    .await?;
    run_checked(host.as_ref(), &service::start(ctx.desired, m)).await?;
    wait_alone(ctx, m, id).await?;
    Ok(StepOutcome::from(format!(
        "{name} runs normally, without --force-new-cluster"
    )))
}

/// Checks that the survivor is a healthy cluster of itself alone, and that
/// its revision did not go back.
pub(super) async fn verify(
    ctx: &Context<'_>,
    name: &MemberName,
    id: MemberId,
    revision: i64,
) -> Result<StepOutcome, StepError> {
    let (m, host) = member(ctx, name)?;
    let ep = m.client_url(&ctx.desired.tls);
    let refused = |why: String| StepError::Unsafe {
        what: format!("accept {name} as the recovered cluster"),
        why,
    };
    alone(ctx, &ep, id).await?.map_err(refused)?;
    let s = ctx.etcd.status(&ep).await?;
    if s.revision < revision {
        return Err(refused(format!(
            "its revision is {}, lower than the {revision} it had before the recovery",
            s.revision
        )));
    }
    // Recovered: plain plans may start it again.
    let clear = Script::new(
        format!("clear {name}'s recovery mark"),
        format!(
            "rm -f {}\n",
            shell_quote(&recovery_mark(m).display().to_string())
        ),
    )
    .timeout(Duration::from_secs(20));
    run_checked(host.as_ref(), &clear).await?;
    Ok(StepOutcome::from(format!(
        "{name} ({id}) is the only member, healthy, at revision {} (was {revision})",
        s.revision
    )))
}
