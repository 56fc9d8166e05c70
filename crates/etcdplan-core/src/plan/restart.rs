//! The restart plan (`etcdplan restart MEMBER`): one running member
//! restarted for host maintenance, with the settings and release it has on
//! its host now.
//!
//! It is the running planner's restart on its own: the quorum rule
//! ([`may_disrupt`]) checked against the same simulated cluster, the
//! restart (which the executor checks against the live cluster again; when
//! the member leads, etcd's graceful stop hands leadership over, so no
//! MoveLeader goes first), then the health gate. What makes the restart unsafe or impossible now is a
//! blocker, so the plan is shown but cannot be applied, and nothing changes.

use super::sim::Sim;
use super::{Parts, Plan, Step, assemble, chained, may_disrupt};
use crate::config::Desired;
use crate::diff::{self, Blocker, Change, ChangeKind, Situation};
use crate::live::{HostState, Live};
use crate::model::{MemberName, quorum};

/// The reason shown next to the member in the plan.
const REASON: &str = "asked for by `etcdplan restart`, with the same settings and release";

/// The restart plan for `member` of `d` against `live`: the steps, or the
/// blockers that say why it cannot run now.
pub fn build(d: &Desired, live: &Live, member: &MemberName) -> Plan {
    let situation = if live.cluster.is_some() {
        Situation::Running
    } else {
        Situation::Down
    };
    let mut notes = Vec::new();
    // A refused restart is shown as deferred, so the summary counts nothing.
    let (changes, deferred, steps, blockers) = match check(d, live, member) {
        Err(blocker) => (Vec::new(), Vec::new(), Vec::new(), vec![blocker]),
        Ok(target) => {
            let change = Change {
                member: member.clone(),
                kind: ChangeKind::Restart {
                    peer_update: None,
                    phase: None,
                    binary: None,
                },
                reason: REASON.into(),
                files: Vec::new(),
                id: Some(target.id),
                leader: target.leader,
                certificates: false,
                auth_files: false,
            };
            notes.extend(target.notes);
            match refusal(d, live, member, target.learner) {
                Some(blocker) => (Vec::new(), vec![change], Vec::new(), vec![blocker]),
                None => {
                    let steps = steps(member, target.leader);
                    (vec![change], Vec::new(), steps, Vec::new())
                }
            }
        }
    };
    assemble(
        d,
        live,
        situation,
        Parts {
            changes,
            steps: chained(steps),
            blockers,
            notes,
            deferred,
        },
    )
}

/// The member as the cluster and its host show it, once it is known to be
/// a running member of the cluster.
struct Target {
    id: crate::model::MemberId,
    leader: bool,
    learner: bool,
    notes: Vec<String>,
}

/// Whether `member` is one the command can restart at all: named by the
/// etcdfile, in the running cluster, started, its host reached, etcdplan's
/// etcd running there.
fn check(d: &Desired, live: &Live, member: &MemberName) -> Result<Target, Blocker> {
    let refuse = |message: String, help: &str| Blocker {
        member: Some(member.clone()),
        message,
        help: format!("{help}; nothing was changed"),
    };
    let Some(dm) = d.member(member) else {
        let names: Vec<&str> = d.members.iter().map(|m| m.name.as_str()).collect();
        return Err(refuse(
            format!(
                "{member} is not a member of the etcdfile (its members: {})",
                names.join(", ")
            ),
            "name a [[member]] of the etcdfile",
        ));
    };
    let Some(cluster) = &live.cluster else {
        return Err(refuse(
            format!(
                "cluster {:?} does not answer: no member can be restarted safely",
                d.cluster.as_str()
            ),
            "`etcdplan status` shows what is wrong; `etcdplan plan` shows what apply would do",
        ));
    };
    let Some(lm) = cluster.find(member, &dm.peer_url(&d.tls)) else {
        return Err(refuse(
            format!("{member} is not a member of the running cluster"),
            "`etcdplan apply` adds it",
        ));
    };
    if !lm.started() {
        return Err(refuse(
            format!("{member} was added to the cluster but has never started"),
            "`etcdplan apply` starts it and completes its join",
        ));
    }
    let host = live.hosts.get(member);
    if let Some(HostState::Unreachable { reason, advice }) = host {
        return Err(refuse(
            format!("{member}'s host {} does not answer: {reason}", dm.address),
            advice,
        ));
    }
    if !host.is_some_and(HostState::running) {
        return Err(refuse(
            format!("{member} is not running"),
            "`etcdplan apply` starts it (a repair); `restart` is for a running member",
        ));
    }
    let pending = diff::diff(d, live)
        .changes
        .into_iter()
        .filter(|c| &c.member == member)
        .collect::<Vec<_>>();
    if pending
        .iter()
        .any(|c| matches!(c.kind, ChangeKind::Adopt { .. }))
    {
        return Err(refuse(
            format!("{member} runs under an etcd that etcdplan did not start"),
            "`etcdplan apply` takes it over first; then `restart` restarts it",
        ));
    }
    let mut notes = Vec::new();
    if let Some(c) = pending.first() {
        notes.push(format!(
            "{member} has a change pending in the etcdfile ({}): this restart does not apply it, etcd starts with the files on its host now; `etcdplan apply` applies it",
            c.reason
        ));
    }
    if let Some(problem) = lm.status.as_ref().err().cloned().or_else(|| {
        lm.status
            .as_ref()
            .ok()
            .and_then(crate::live::MemberStatus::problem)
    }) {
        notes.push(format!(
            "{member} is not healthy now ({problem}): the health gate after the restart waits for it"
        ));
    }
    Ok(Target {
        id: lm.id,
        leader: cluster.leader() == Some(lm.id) && !lm.is_learner,
        learner: lm.is_learner,
        notes,
    })
}

/// Why taking `member` down now would put the quorum at risk, as the
/// running planner and the executor decide it ([`may_disrupt`] on the
/// simulated cluster), said with the figures.
fn refusal(d: &Desired, live: &Live, member: &MemberName, learner: bool) -> Option<Blocker> {
    let voters = Sim::from_live(d, live).voters();
    let why = may_disrupt(&voters, member.as_str()).err()?;
    let all: Vec<_> = voters.iter().filter(|v| !v.learner).collect();
    let n = all.len();
    let down: Vec<&str> = all
        .iter()
        .filter(|v| !v.healthy && v.name != member.as_str())
        .map(|v| v.name.as_str())
        .collect();
    let up_after = all
        .iter()
        .filter(|v| v.healthy && v.name != member.as_str())
        .count();
    let message = if learner {
        format!("{member} is a learner, but {why}")
    } else if down.is_empty() {
        format!(
            "a cluster of {n} voter{} tolerates no member down: restarting {member} now would leave {up_after} of {n} voter{} up, below the quorum of {}",
            plural(n),
            plural(n),
            quorum(n)
        )
    } else {
        format!(
            "{} {} down: restarting {member} now would leave {up_after} of {n} voters up, below the quorum of {}",
            down.join(", "),
            if down.len() == 1 { "is" } else { "are" },
            quorum(n)
        )
    };
    let help = if down.is_empty() {
        "grow the cluster to 3 members to restart one without downtime (or stop it by hand, accepting that writes stop until it is back)".to_owned()
    } else {
        format!(
            "bring {} back first (`etcdplan apply` starts a stopped member), then restart {member}",
            down.join(", ")
        )
    };
    Some(Blocker {
        member: Some(member.clone()),
        message,
        help: format!("{help}; nothing was changed"),
    })
}

/// The restart (marked when the member leads: etcd hands leadership over as
/// it stops), then the health gate.
fn steps(member: &MemberName, leads: bool) -> Vec<Step> {
    vec![
        Step::Restart {
            member: member.clone(),
            leads,
            files: Vec::new(),
        },
        Step::WaitHealthy {
            members: vec![member.clone()],
        },
    ]
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
