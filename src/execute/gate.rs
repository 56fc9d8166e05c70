//! Health gates: poll until members are healthy, agree on a leader and have caught up.
//!
//! "Healthy" is [`MemberStatus::healthy`], the definition observing uses; a
//! gate adds its own named conditions (one leader for all, caught up with
//! it, no alarm) and polls them with the one wait primitive.

use std::time::{Duration, Instant};

use super::wait::{Check, WaitError, wait_backoff};
use super::{Context, StepError};
use crate::io::{ApiAlarm, ApiStatus, EtcdError};
use crate::model::{Endpoint, MemberId, MemberName};
use crate::observe::MemberStatus;
use crate::plan::Voter;
use crate::service;

/// How often a gate asks the hosts whether a member's etcd process still runs.
const ALIVE_EVERY: Duration = Duration::from_millis(500);

/// A gate's first sleep between polls; each next one doubles, up to the
/// walk's poll interval. A member restarted a moment ago is usually healthy
/// within a few hundred milliseconds: the gate sees it then, not up to a
/// whole interval later.
const FIRST_POLL_SLEEP: Duration = Duration::from_millis(20);

/// A gate that did not pass.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The deadline passed; the last reason is given.
    #[error("not healthy after {}s: {last}", waited.as_secs())]
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// What was still wrong at the last poll.
        last: String,
    },
    /// The member's etcd process exited; its log tail is attached.
    #[error("etcd of {member} exited; last log lines:\n{log}")]
    Exited {
        /// The member.
        member: MemberName,
        /// The log tail.
        log: String,
    },
}

/// Members with their health now, from the first desired member that answers.
pub(super) async fn cluster_view(ctx: &Context<'_>) -> Result<Vec<Voter>, StepError> {
    let mut last_err = None;
    for url in ctx.endpoints() {
        match ctx.etcd.member_list(&url).await {
            Ok(list) => {
                // Every member is asked at once.
                let out = futures::future::join_all(list.iter().map(async |m| {
                    let healthy = match m.client_urls.first() {
                        None => false,
                        Some(ep) => member_status(ctx, ep, Some(m.is_learner))
                            .await
                            .is_ok_and(|s| s.healthy()),
                    };
                    Voter {
                        // A voter that never started has no name ("" as MemberList shows it).
                        name: m.name.as_started().unwrap_or_default().to_owned(),
                        healthy,
                        learner: m.is_learner,
                    }
                }))
                .await;
                return Ok(out);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(match last_err {
        Some(e) => StepError::Etcd(e),
        None => StepError::Unsafe {
            what: "check the cluster".into(),
            why: "the etcdfile has no members".into(),
        },
    })
}

/// A member's Status and, unless that already shows it unhealthy, a quorum
/// read through it: what [`MemberStatus::healthy`] judges. `learner` is
/// whether to skip the read (learners refuse linearizable reads by design);
/// `None` takes what the member reports about itself.
async fn member_status(
    ctx: &Context<'_>,
    ep: &Endpoint,
    learner: Option<bool>,
) -> Result<MemberStatus, EtcdError> {
    let reported = ctx.etcd.status(ep).await?;
    let quorum_read = if learner.unwrap_or(reported.is_learner) {
        Ok(())
    } else if let Some(why) = MemberStatus::report_problem(&reported) {
        // A read would only wait for its deadline.
        Err(format!("not tried: {why}"))
    } else {
        ctx.etcd.quorum_read(ep).await.map_err(|e| e.to_string())
    };
    Ok(MemberStatus {
        reported,
        quorum_read,
    })
}

/// Why a voter outside the gated members disagrees with them: it follows
/// another leader or none, or reports errors. A member that can dial out but
/// cannot be dialled (a listener on the wrong port) looks healthy itself while
/// its peers lose it; this is how the gate sees that.
fn follows(name: &str, s: &ApiStatus, leader: MemberId) -> Option<String> {
    if s.leader != Some(leader) {
        Some(format!("{name} follows another leader or none"))
    } else {
        MemberStatus::report_problem(s).map(|why| format!("{name}: {why}"))
    }
}

/// The first active alarm the plan does not run with, as a reason.
fn alarm(alarms: &[ApiAlarm], tolerates: &crate::plan::Tolerates) -> Option<String> {
    alarms
        .iter()
        .find(|a| !tolerates.allows(a))
        .map(|a| format!("alarm {} raised by member {}", a.kind, a.member))
}

/// Why these members are not yet healthy, or `None` when they are: each is
/// [healthy](MemberStatus::healthy), they report one leader, every other
/// voter that answers [follows](follows) it, each has [caught up](ApiStatus::caught_up_with),
/// and no [alarm](alarm) is raised. Calls that do not depend on each other
/// go out at once; the conditions are judged in this order all the same,
/// so the reason given is the first that fails.
async fn not_ready(ctx: &Context<'_>, members: &[MemberName]) -> Option<String> {
    let d = ctx.desired;
    let mut wanted = Vec::new();
    for name in members {
        let m = d.member(name)?;
        wanted.push((name, m.client_url(&d.tls)));
    }
    let answers =
        futures::future::join_all(wanted.iter().map(|(_, ep)| member_status(ctx, ep, None))).await;
    let mut leaders = Vec::new();
    let mut statuses = Vec::new();
    for ((name, ep), s) in wanted.into_iter().zip(answers) {
        let s = match s {
            Ok(s) => s,
            Err(e) => return Some(format!("{name}: {e}")),
        };
        if let Some(why) = s.problem() {
            return Some(format!("{name}: {why}"));
        }
        let s = s.reported;
        leaders.extend(s.leader);
        statuses.push((name, ep, s));
    }
    leaders.dedup();
    if leaders.len() > 1 {
        return Some("members report different leaders".into());
    }
    let leader_id = *leaders.first()?;
    let (_, first_ep, _) = statuses.first()?;
    let list = match ctx.etcd.member_list(first_ep).await {
        Ok(l) => l,
        Err(e) => return Some(format!("member list: {e}")),
    };
    for name in members {
        if !list.iter().any(|m| m.name.is(name)) {
            return Some(format!("{name}: not yet started in the member list"));
        }
    }
    let others: Vec<_> = list
        .iter()
        .filter(|x| !x.is_learner && !members.iter().any(|m| x.name.is(m)))
        .collect();
    let leader_url = list
        .iter()
        .find(|m| m.id == leader_id)
        .and_then(|m| m.client_urls.first().cloned());
    // The other voters' Status, the leader's and the alarms, all at once.
    let others_status =
        futures::future::join_all(others.iter().map(async |x| match x.client_urls.first() {
            Some(url) => Some(ctx.etcd.status(url).await),
            None => None,
        }));
    let leader_status = async {
        match &leader_url {
            Some(url) => Some(ctx.etcd.status(url).await),
            None => None,
        }
    };
    let (others_status, leader_status, alarms) =
        tokio::join!(others_status, leader_status, ctx.etcd.alarms(first_ep));
    for (x, s) in others.iter().zip(others_status) {
        let Some(s) = s else {
            return Some(format!("{}: not started", x.id));
        };
        // A member that is down is the quorum rules' business, not this gate's.
        if let Ok(s) = s
            && let Some(why) = follows(&x.name.to_string(), &s, leader_id)
        {
            return Some(why);
        }
    }
    let Some(ls) = leader_status else {
        return Some("the leader advertises no client URL yet".into());
    };
    let ls = match ls {
        Ok(s) => s,
        Err(e) => return Some(format!("leader: {e}")),
    };
    for (name, _, s) in &statuses {
        if !s.caught_up_with(&ls) {
            return Some(format!(
                "{name}: applied index {} behind the leader's {}",
                s.raft_applied_index, ls.raft_index
            ));
        }
    }
    match alarms {
        Ok(a) => alarm(&a, &ctx.tolerates),
        Err(e) => Some(format!("alarms: {e}")),
    }
}

/// The first of `members` whose etcd process has exited, with its log tail.
async fn exited(ctx: &Context<'_>, members: &[MemberName]) -> Option<GateError> {
    for name in members {
        let Some(m) = ctx.desired.member(name) else {
            continue;
        };
        let Some(h) = ctx.hosts.get(&m.address) else {
            continue;
        };
        if let Ok(out) = h.run(&service::check_alive(ctx.desired, m)).await
            && out.stdout.starts_with("dead")
        {
            let log = out.stdout.lines().skip(1).collect::<Vec<_>>().join("\n");
            return Some(GateError::Exited {
                member: name.clone(),
                log,
            });
        }
    }
    None
}

/// Polls until `members` are healthy; fails early if one's process exits.
/// Whether it exited is asked of the hosts every [`ALIVE_EVERY`] beside the
/// polls, never between two of them: an ssh round trip on a slow host would
/// otherwise delay the next poll by as much.
pub async fn wait_healthy(ctx: &Context<'_>, members: &[MemberName]) -> Result<(), GateError> {
    let names = members
        .iter()
        .map(MemberName::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let what = format!("wait until {names} are healthy");
    let (start, mut polls) = (Instant::now(), 0u32);
    let (first, every) = (FIRST_POLL_SLEEP, ctx.deadlines.poll);
    let healthy = wait_backoff(&what, ctx.deadlines.gate, first, every, async || {
        polls += 1;
        match not_ready(ctx, members).await {
            None => Check::Ready(()),
            Some(reason) => Check::NotYet(reason),
        }
    });
    let alive = async {
        loop {
            tokio::time::sleep(ALIVE_EVERY).await;
            if let Some(e) = exited(ctx, members).await {
                return e;
            }
        }
    };
    let healthy: Result<(), WaitError<GateError>> = tokio::select! {
        biased;
        r = healthy => r,
        e = alive => Err(WaitError::Failed(e)),
    };
    // How many polls a gate took (benches/rolling.rs reads it).
    tracing::debug!(
        target: "etcdplan::timing",
        gate = %names,
        polls,
        seconds = start.elapsed().as_secs_f64(),
    );
    match healthy {
        Ok(()) => Ok(()),
        Err(WaitError::Failed(e)) => Err(e),
        Err(WaitError::TimedOut { waited, last }) => Err(GateError::Timeout { waited, last }),
    }
}
