//! The quorum-loss recovery plan, made only when the operator names the
//! survivor (`--recover-from MEMBER`, DESIGN rule 9): keep a copy of the
//! survivor's data, fence the lost members, start the survivor once with
//! `--force-new-cluster`, restart it normally, verify it, then re-add every
//! other member learner first.
//!
//! The re-adds are the running planner's own: it is run on the live state
//! the recovery predicts (the survivor alone and healthy, the lost members'
//! hosts fenced), so they are exactly a scale-up's steps, shown in the plan
//! and run in the same apply. A recovery stopped after its forced start (the
//! survivor found running with the flag) is planned from there on.

use crate::config::Desired;
use crate::diff::quorum_loss::{self, HostSays, LossState, QuorumLoss, VoterFinding};
use crate::diff::{Blocker, Change, ChangeKind, Departing, Diff, Situation};
use crate::live::{
    ApiStatus, DataDir, HostState, Live, LiveCluster, LiveMember, MemberStatus, ServiceState,
};
use crate::model::{MemberName, quorum};

use super::{Options, Plan, PlannedStep, Step};

/// The operator's choices for a recovery.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The member named by `--recover-from`.
    pub from: String,
    /// `--allow-data-loss`: recover from a member that is not the most up to date.
    pub allow_data_loss: bool,
}

/// The recovery plan, or a plan whose blockers say why there is none.
pub fn build(d: &Desired, live: &Live, r: &Recovery, opts: &Options) -> Plan {
    let loss = quorum_loss::detect(d, live).or_else(|| quorum_loss::silent(d, live));
    match check(d, live, loss.as_ref(), r) {
        Err(b) => refused(d, live, b),
        Ok((loss, survivor)) => plan(d, live, loss, survivor, opts),
    }
}

/// Whether the steps are a quorum-loss recovery's (a saved one needs
/// `--recover-from` again), and the survivor they start.
pub fn survivor_of(plan: &Plan) -> Option<&MemberName> {
    plan.steps.iter().find_map(|s| match &s.step {
        Step::ForceNewCluster { member, .. }
        | Step::EndForcedStart { member, .. }
        | Step::CopyData { member } => Some(member),
        _ => None,
    })
}

fn blocker(message: String, help: &str) -> Blocker {
    Blocker {
        member: None,
        message,
        help: format!("{help}; nothing was changed"),
    }
}

/// The refusals: an unknown member, a quorum that holds, a survivor that
/// does not answer or is not the most up to date.
fn check<'a>(
    d: &Desired,
    live: &Live,
    loss: Option<&'a QuorumLoss>,
    r: &Recovery,
) -> Result<(&'a QuorumLoss, &'a VoterFinding), Blocker> {
    let names = || {
        d.members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(m) = d.members.iter().find(|m| m.name.as_str() == r.from) else {
        return Err(blocker(
            format!(
                "--recover-from {}: the etcdfile has no member of that name (its members: {})",
                r.from,
                names()
            ),
            "name the member to recover from as the etcdfile names it",
        ));
    };
    let Some(loss) = loss else {
        let (voters, answering) = live.cluster.as_ref().map_or((0, 0), |c| {
            let v: Vec<&LiveMember> = c.members.iter().filter(|m| !m.is_learner).collect();
            let a = v.iter().filter(|m| m.status.is_ok()).count();
            (v.len(), a)
        });
        let why = if live.cluster.is_none() {
            "no member answers the etcd API, so which members are lost and which survivor is the most up to date cannot be told".to_owned()
        } else {
            format!(
                "the quorum is not lost: {answering} of {voters} voters answer ({} needed)",
                quorum(voters)
            )
        };
        return Err(blocker(
            format!("--recover-from {}: {why}", m.name),
            "a recovery runs only while a majority of voters is gone; repair the members that are down with a plain `etcdplan apply`",
        ));
    };
    if let LossState::Forced(f) = &loss.state
        && *f != m.name
    {
        return Err(blocker(
            format!(
                "--recover-from {}: {f} already runs with --force-new-cluster from an earlier recovery",
                m.name
            ),
            &format!("finish that recovery with `--recover-from {f}`"),
        ));
    }
    let Some(v) = loss
        .voters
        .iter()
        .find(|v| v.in_etcdfile && v.name == m.name.as_str())
    else {
        return Err(blocker(
            format!(
                "--recover-from {}: it is not a voter of the cluster. {}",
                m.name,
                loss.paragraph()
            ),
            "name a voter that answers",
        ));
    };
    if matches!(loss.state, LossState::Forced(_)) {
        return Ok((loss, v));
    }
    if loss.state == LossState::Silent {
        return silent_survivor(loss, v, r).map(|v| (loss, v));
    }
    let Some(answer) = v.answer else {
        return Err(blocker(
            format!(
                "--recover-from {}: it does not answer. {}",
                m.name,
                loss.paragraph()
            ),
            "recover from a member that answers (its raft index shows how up to date it is)",
        ));
    };
    if !matches!(v.host, HostSays::Reached { .. }) {
        return Err(blocker(
            format!(
                "--recover-from {}: its host {} does not answer, and the recovery stops and starts etcd there",
                m.name, m.address
            ),
            "make the host reachable over ssh",
        ));
    }
    if let Some(best) = loss.most_recent()
        && best.name != v.name
        && best.answer.map_or(0, |a| a.raft_index) > answer.raft_index
        && !r.allow_data_loss
    {
        let ahead = best.answer.map_or(0, |a| a.raft_index) - answer.raft_index;
        return Err(blocker(
            format!(
                "--recover-from {}: {} is more up to date (raft index {} against {}): recovering from {} would lose up to {ahead} raft entries",
                m.name,
                best.name,
                best.answer.map_or(0, |a| a.raft_index),
                answer.raft_index,
                m.name
            ),
            &format!(
                "recover from {} instead, or pass --allow-data-loss to recover from {} anyway",
                best.name, m.name
            ),
        ));
    }
    Ok((loss, v))
}

/// With no member answering, the survivor must hold member data its WAL
/// names, and be the only one that does unless `--allow-data-loss`: which of
/// two is more up to date cannot be told.
fn silent_survivor<'a>(
    loss: &QuorumLoss,
    v: &'a VoterFinding,
    r: &Recovery,
) -> Result<&'a VoterFinding, Blocker> {
    let has_data = |x: &VoterFinding| {
        matches!(
            x.host,
            HostSays::Reached {
                data: DataDir::Member,
                ..
            }
        )
    };
    if !has_data(v) || v.id == crate::model::MemberId(0) {
        return Err(blocker(
            format!(
                "--recover-from {}: no member answers, and its host does not show member data whose WAL names its id. {}",
                v.name,
                loss.paragraph()
            ),
            "recover from the member whose host holds its data",
        ));
    }
    let others: Vec<&str> = loss
        .voters
        .iter()
        .filter(|x| x.name != v.name && has_data(x))
        .map(|x| x.name.as_str())
        .collect();
    if !others.is_empty() && !r.allow_data_loss {
        return Err(blocker(
            format!(
                "--recover-from {}: no member answers, and {} also hold{} member data: which is more up to date cannot be told",
                v.name,
                others.join(", "),
                if others.len() == 1 { "s" } else { "" }
            ),
            "start the members that hold data with a plain `etcdplan apply` if they can form a quorum; else pass --allow-data-loss to recover from this one",
        ));
    }
    Ok(v)
}

/// A plan that only says why it cannot recover.
fn refused(d: &Desired, live: &Live, b: Blocker) -> Plan {
    let diff = Diff {
        situation: Situation::Running,
        changes: Vec::new(),
        blockers: vec![b],
        notes: Vec::new(),
        auth: Vec::new(),
    };
    super::build(d, live, diff)
}

/// The recovery's own steps, then the re-adds the running planner makes on
/// the predicted live state.
fn plan(
    d: &Desired,
    live: &Live,
    loss: &QuorumLoss,
    survivor: &VoterFinding,
    opts: &Options,
) -> Plan {
    let name = survivor.member.name.clone();
    let forced = matches!(loss.state, LossState::Forced(_));
    let lost: Vec<&VoterFinding> = loss.voters.iter().filter(|v| v.id != survivor.id).collect();
    let mut steps = Vec::new();
    if !forced {
        steps.push(Step::CopyData {
            member: name.clone(),
        });
    }
    // Every lost voter is fenced, data or not: its config and unit would
    // start it again. (After a forced start the cluster lists none.)
    for v in &lost {
        steps.push(Step::Fence {
            member: v.member.clone(),
        });
    }
    if !forced {
        steps.push(Step::ForceNewCluster {
            member: name.clone(),
            id: survivor.id,
        });
    }
    steps.push(Step::EndForcedStart {
        member: name.clone(),
        id: survivor.id,
    });
    steps.push(Step::VerifyRecovered {
        member: name.clone(),
        id: survivor.id,
        revision: survivor.answer.map_or(0, |a| a.revision),
    });

    let mut notes = vec![
        loss.paragraph(),
        "etcd's own lock cannot be taken without a quorum: this apply takes a lock file on every host that answers instead, and a recovery is never run by `watch` or from a saved plan without --recover-from given again.".to_owned(),
    ];
    let unreachable: Vec<String> = lost
        .iter()
        .filter(|v| !matches!(v.host, HostSays::Reached { .. }))
        .map(|v| format!("{} ({})", v.name, v.member.address))
        .collect();
    if !unreachable.is_empty() {
        notes.push(format!(
            "cannot be fenced now, their hosts do not answer: {}; they must never start again with their old data (move their data dirs aside by hand when the hosts come back).",
            unreachable.join(", ")
        ));
    }
    let predicted = predict(d, live, &name, survivor, &lost);
    let diff = crate::diff::diff(d, &predicted);
    let after = super::build_with(d, &predicted, diff, opts);
    let mut changes = vec![survivor_change(survivor, forced)];
    let blockers = Vec::new();
    let mut deferred = Vec::new();
    if after.blockers.is_empty() {
        let base = steps.len();
        changes.extend(after.changes.into_iter().map(|c| relabel(c, &lost, &name)));
        deferred = after.deferred;
        notes.extend(after.notes);
        let mut planned = super::chained(steps);
        for s in after.steps {
            let mut after_edges: Vec<usize> = s.after.iter().map(|a| a + base).collect();
            if after_edges.is_empty() {
                after_edges.push(base - 1);
            }
            planned.push(PlannedStep {
                index: s.index + base,
                after: after_edges,
                ..s
            });
        }
        return finish(d, live, changes, planned, blockers, notes, deferred);
    }
    for b in after.blockers {
        notes.push(format!(
            "after the recovery, the other members cannot be re-added yet: {} ({}); the next plan re-adds them",
            b.message, b.help
        ));
    }
    finish(
        d,
        live,
        changes,
        super::chained(steps),
        blockers,
        notes,
        deferred,
    )
}

fn finish(
    d: &Desired,
    live: &Live,
    changes: Vec<Change>,
    steps: Vec<PlannedStep>,
    blockers: Vec<Blocker>,
    notes: Vec<String>,
    deferred: Vec<Change>,
) -> Plan {
    super::assemble(
        d,
        live,
        Situation::Running,
        super::Parts {
            changes,
            steps,
            blockers,
            notes,
            deferred,
        },
    )
}

/// The survivor's line in the plan: it restarts, alone, as the cluster.
fn survivor_change(v: &VoterFinding, forced: bool) -> Change {
    let reason = if forced {
        "runs with --force-new-cluster from an interrupted recovery: restarted normally, then checked to be a one-member cluster with its data".to_owned()
    } else {
        format!(
            "recovers the cluster from its data (revision {}): copied aside, started once with --force-new-cluster, then normally, and checked",
            v.answer.map_or(0, |a| a.revision)
        )
    };
    Change {
        member: v.member.name.clone(),
        kind: ChangeKind::Restart {
            peer_update: None,
            phase: None,
            binary: None,
        },
        reason,
        files: Vec::new(),
        id: Some(v.id),
        leader: false,
        certificates: false,
        auth_files: false,
    }
}

/// A lost member's add is a replace: its old self leaves the membership
/// with the forced start, its new self joins learner first.
fn relabel(c: Change, lost: &[&VoterFinding], survivor: &MemberName) -> Change {
    let Some(v) = lost.iter().find(|v| v.member.name == c.member) else {
        return c;
    };
    let ChangeKind::Add { binary, .. } = c.kind.clone() else {
        return c;
    };
    if v.id == crate::model::MemberId(0) {
        // Its id is unknown (no member answered, its WAL is gone): it joins.
        return Change {
            reason: format!(
                "lost with the quorum: fenced, then added back fresh once {survivor} runs alone, learner first, as a scale-up adds"
            ),
            ..c
        };
    }
    Change {
        kind: ChangeKind::Replace {
            departing: Departing {
                id: v.id,
                name: v.member.name.clone(),
                host: v.member.clone(),
                healthy: false,
                learner: false,
                leader: false,
            },
            binary,
        },
        reason: format!(
            "lost with the quorum: fenced, dropped from the membership by {survivor}'s forced start, then added back fresh, learner first, as a scale-up adds"
        ),
        id: Some(v.id),
        ..c
    }
}

/// The live state once the recovery's own steps are done: the survivor alone,
/// healthy and leading, running normally; the lost members' hosts fenced
/// (etcd stopped, data and config moved aside).
fn predict(
    d: &Desired,
    live: &Live,
    name: &MemberName,
    survivor: &VoterFinding,
    lost: &[&VoterFinding],
) -> Live {
    let mut p = live.clone();
    let facts = live.hosts.get(name).and_then(HostState::facts);
    let before = live
        .cluster
        .as_ref()
        .and_then(|c| c.members.iter().find(|m| m.id == survivor.id));
    let reported = before
        .and_then(|m| m.status.as_ref().ok())
        .map(|s| s.reported.clone());
    let cluster_id = live
        .cluster
        .as_ref()
        .map(|c| c.id)
        .or_else(|| facts.and_then(|f| f.data_owner_id).map(|(_, c)| c))
        .unwrap_or(crate::model::ClusterId(0));
    let reported = reported.unwrap_or_else(|| ApiStatus {
        version: facts.and_then(|f| f.binary.version()),
        ..ApiStatus::blank(cluster_id, survivor.id)
    });
    let m = &survivor.member;
    let client = m.client_url(&d.tls);
    let member = LiveMember {
        id: survivor.id,
        name: crate::live::LiveName::Started(name.to_string()),
        peer_urls: before.map_or_else(|| vec![m.peer_url(&d.tls)], |b| b.peer_urls.clone()),
        client_urls: before.map_or_else(|| vec![client.clone()], |b| b.client_urls.clone()),
        is_learner: false,
        status: Ok(MemberStatus {
            reported: ApiStatus {
                leader: Some(survivor.id),
                errors: Vec::new(),
                ..reported
            },
            quorum_read: Ok(()),
        }),
        db: before.and_then(|b| b.db),
    };
    p.cluster = Some(LiveCluster {
        id: cluster_id,
        answered_by: live
            .cluster
            .as_ref()
            .map_or(client, |c| c.answered_by.clone()),
        members: vec![member],
        alarms: Vec::new(),
        hash_check: None,
    });
    for (n, h) in &mut p.hosts {
        let HostState::Reached(f) = h else { continue };
        if n == name {
            // Its recovery mark is cleared once it is verified.
            f.problems
                .retain(|p| !p.message.starts_with("a quorum-loss recovery from"));
            f.service = ServiceState::Running(match f.service {
                ServiceState::Running(pid) => pid,
                ServiceState::Stopped => f.listener.as_ref().map_or(0, |l| l.pid),
            });
            f.listener = None;
        } else if lost.iter().any(|v| v.in_etcdfile && v.member.name == *n) {
            f.service = ServiceState::Stopped;
            f.listener = None;
            f.started_config = None;
            if f.data == DataDir::Member {
                f.data = DataDir::Empty;
            }
            for (_, content) in &mut f.files {
                *content = None;
            }
        }
    }
    p
}
