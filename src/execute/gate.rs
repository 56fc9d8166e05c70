//! Health gates: poll until members are healthy, agree on a leader and have caught up.

use std::time::{Duration, Instant};

use super::{Context, StepError};
use crate::model::MemberName;
use crate::plan::Voter;
use crate::service;

/// How many raft entries a member may trail the leader and still count as caught up.
pub(super) const CATCH_UP_MARGIN: u64 = 5;

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
                let mut out = Vec::new();
                for m in list {
                    let ep = m.client_urls.first().cloned();
                    let healthy = match ep {
                        None => false,
                        Some(ep) => match ctx.etcd.status(&ep).await {
                            Ok(s) => {
                                s.leader.is_some()
                                    && s.errors.is_empty()
                                    && (m.is_learner || ctx.etcd.quorum_read(&ep).await.is_ok())
                            }
                            Err(_) => false,
                        },
                    };
                    out.push(Voter {
                        name: m.name,
                        healthy,
                        learner: m.is_learner,
                    });
                }
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

/// Why these members are not yet healthy, or `None` when they are.
async fn not_ready(ctx: &Context<'_>, members: &[MemberName]) -> Option<String> {
    let d = ctx.desired;
    let mut leaders = Vec::new();
    let mut statuses = Vec::new();
    for name in members {
        let m = d.member(name)?;
        let ep = m.client_url(&d.tls);
        let s = match ctx.etcd.status(&ep).await {
            Ok(s) => s,
            Err(e) => return Some(format!("{name}: {e}")),
        };
        let Some(leader) = s.leader else {
            return Some(format!("{name}: no leader yet"));
        };
        if !s.errors.is_empty() {
            return Some(format!("{name}: {}", s.errors.join("; ")));
        }
        if !s.is_learner
            && let Err(e) = ctx.etcd.quorum_read(&ep).await
        {
            return Some(format!("{name}: quorum read failed: {e}"));
        }
        leaders.push(leader);
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
        if !list.iter().any(|m| m.name == name.as_str()) {
            return Some(format!("{name}: not yet started in the member list"));
        }
    }
    // Every other voter that answers must follow the same leader: a member that
    // can dial out but cannot be dialled (a listener on the wrong port) looks
    // healthy itself while its peers lose it.
    for x in list
        .iter()
        .filter(|x| !x.is_learner && !members.iter().any(|m| m.as_str() == x.name))
    {
        let Some(url) = x.client_urls.first() else {
            return Some(format!("{}: not started", x.id));
        };
        match ctx.etcd.status(url).await {
            // A member that is down is the quorum rules' business, not this gate's.
            Err(_) => {}
            Ok(s) if s.leader != Some(leader_id) => {
                return Some(format!("{} follows another leader or none", x.name));
            }
            Ok(s) if !s.errors.is_empty() => {
                return Some(format!("{}: {}", x.name, s.errors.join("; ")));
            }
            Ok(_) => {}
        }
    }
    // Caught up: the member has applied what the leader had committed.
    let leader_url = list
        .iter()
        .find(|m| m.id == leader_id)
        .and_then(|m| m.client_urls.first().cloned());
    let Some(leader_url) = leader_url else {
        return Some("the leader advertises no client URL yet".into());
    };
    let ls = match ctx.etcd.status(&leader_url).await {
        Ok(s) => s,
        Err(e) => return Some(format!("leader: {e}")),
    };
    for (name, _, s) in &statuses {
        // A margin of a few entries: the leader keeps committing while we look.
        if s.raft_applied_index + CATCH_UP_MARGIN < ls.raft_index {
            return Some(format!(
                "{name}: applied index {} behind the leader's {}",
                s.raft_applied_index, ls.raft_index
            ));
        }
    }
    let alarms = match ctx.etcd.alarms(first_ep).await {
        Ok(a) => a,
        Err(e) => return Some(format!("alarms: {e}")),
    };
    if let Some(a) = alarms.first() {
        return Some(format!("alarm {} raised by member {}", a.kind, a.member));
    }
    None
}

/// Polls until `members` are healthy; fails early if one's process exits.
pub async fn wait_healthy(ctx: &Context<'_>, members: &[MemberName]) -> Result<(), GateError> {
    let start = Instant::now();
    let mut last_alive_check = Instant::now();
    loop {
        let reason = match not_ready(ctx, members).await {
            None => return Ok(()),
            Some(r) => r,
        };
        if last_alive_check.elapsed() >= Duration::from_millis(500) {
            last_alive_check = Instant::now();
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
                    return Err(GateError::Exited {
                        member: name.clone(),
                        log,
                    });
                }
            }
        }
        if start.elapsed() >= ctx.deadlines.gate {
            return Err(GateError::Timeout {
                waited: start.elapsed(),
                last: reason,
            });
        }
        tokio::time::sleep(ctx.deadlines.poll).await;
    }
}
