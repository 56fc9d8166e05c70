//! One member's change, decided from the etcdfile, the cluster and its host:
//! while the cluster is down, and while it runs.

use super::preflight::{preflight, preflight_join};
use super::{
    Blocker, Change, ChangeKind, Departing, Join, adopt, file_changes, initial_for, run_as,
    stale_process, start_release,
};
use crate::config::{Desired, DesiredMember};
use crate::hostfiles::{ClusterState, Initial};
use crate::live::{DataDir, HostFacts, LiveCluster, LiveMember, ServiceState};
use crate::model::{Address, MemberId, MemberName, Port};

/// The change of a member while the cluster has no quorum.
pub(super) fn down_member(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
    changes: &mut Vec<Change>,
    blockers: &mut Vec<Blocker>,
) {
    if let Some(l) = adopt::foreign(d, m, facts) {
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!(
                "{}: {} runs it on {}, and the cluster has no quorum: etcdplan takes over members only of a cluster that has one",
                m.name,
                l.describe(),
                m.address
            ),
            help: "bring the cluster back to quorum by its own means first; nothing was changed".into(),
        });
        return;
    }
    let initial = initial_for(d, m, facts);
    let files = file_changes(d, m, Some(facts), &initial, start_release(d, Some(facts)));
    let running = matches!(facts.service, ServiceState::Running(_));
    let reown = running
        .then(|| run_as::restart_reason(d, m, facts))
        .flatten();
    let (kind, reason) = match (running, facts.data) {
        (true, _) if files.is_empty() && reown.is_none() => return,
        (true, _) => (
            ChangeKind::Restart {
                peer_update: None,
                phase: None,
                binary: None,
            },
            reown.unwrap_or_else(|| {
                "running with other settings while the cluster has no quorum".to_owned()
            }),
        ),
        (false, DataDir::Member) => (
            ChangeKind::Start { binary: None },
            with_note(
                "stopped; its data is kept and it starts again",
                run_as::start_note(d, m, facts),
            ),
        ),
        (false, _) => (
            ChangeKind::Create { binary: None },
            format!("bootstraps with the new cluster {:?}", d.cluster.as_str()),
        ),
    };
    if !running {
        preflight(d, m, facts, blockers);
    }
    let mut ch = Change::new(m.name.clone(), kind, reason);
    ch.files = files;
    changes.push(ch);
}

/// The change of a member of the etcdfile against a running cluster: join,
/// repair, move, restart, or nothing.
pub(super) fn running_member(
    d: &Desired,
    c: &LiveCluster,
    m: &DesiredMember,
    facts: &HostFacts,
    changes: &mut Vec<Change>,
    blockers: &mut Vec<Blocker>,
) {
    let peer = m.peer_url(&d.tls);
    let running = matches!(facts.service, ServiceState::Running(_));
    let Some(lm) = c.find(&m.name, &peer) else {
        preflight_join(d, m, facts, blockers);
        let ch = Change::new(
            m.name.clone(),
            ChangeKind::Add {
                join: Join::New,
                binary: None,
            },
            format!(
                "in the etcdfile but not in cluster {}: joins as a learner, promoted once caught up",
                c.id
            ),
        );
        changes.push(ch);
        return;
    };
    if lm.is_learner {
        let (join, reason) = if lm.started() {
            (
                Join::Started(lm.id),
                "a learner from an earlier join: promoted once caught up",
            )
        } else {
            (
                Join::Added(lm.id),
                "added as a learner earlier but never started: started, then promoted",
            )
        };
        if !running {
            preflight_join(d, m, facts, blockers);
        }
        let mut ch = Change::new(
            m.name.clone(),
            ChangeKind::Add { join, binary: None },
            reason,
        );
        ch.id = Some(lm.id);
        changes.push(ch);
        return;
    }
    // Data of another member where this one's should be: starting on it would
    // run the wrong member under this name.
    if let Some((id, _)) = facts.data_owner_id
        && facts.data == DataDir::Member
        && id != lm.id
    {
        blockers.push(Blocker {
            member: Some(m.name.clone()),
            message: format!(
                "{}: its data dir {} on {} holds member {id}, but the cluster lists {} as member {}",
                m.name,
                m.data_dir.display(),
                m.address,
                m.name,
                lm.id
            ),
            help: format!(
                "that is another member's data: point data_dir at {}'s own; nothing was changed",
                m.name
            ),
        });
        return;
    }
    if let Some(l) = adopt::foreign(d, m, facts)
        && lm.started()
    {
        if let Some(b) = adopt::blocker(m, facts, &l) {
            blockers.push(b);
            return;
        }
        // etcd reads initial-* only when it bootstraps; written as a member
        // of an existing cluster, as it is.
        let initial = Initial {
            state: ClusterState::Existing,
            cluster: Initial::bootstrap(d).cluster,
            token: d.token.clone(),
        };
        let mut ch = Change::new(
            m.name.clone(),
            ChangeKind::Adopt { foreign: l.clone() },
            adopt::reason(d, &l),
        );
        ch.files = file_changes(d, m, Some(facts), &initial, start_release(d, Some(facts)));
        ch.id = Some(lm.id);
        ch.leader = c.leader() == Some(lm.id);
        changes.push(ch);
        return;
    }
    let moved = lm.peer_urls != [peer.clone()];
    // Same host, another peer port: published with MemberUpdate, then the member
    // restarts on the new listener. (Never on a learner: etcd < 3.5.31 would
    // promote it by accident.)
    let same_host = lm.peer_urls.len() == 1
        && lm.peer_urls[0].host == peer.host
        && lm.peer_urls[0].scheme == peer.scheme;
    if moved && same_host && !lm.is_learner && lm.started() && running {
        let initial = initial_for(d, m, facts);
        let files = file_changes(d, m, Some(facts), &initial, start_release(d, Some(facts)));
        if files.is_empty() && !stale_process(d, m, facts, &initial) {
            // It already listens on the new port (an apply stopped between its
            // restart and the update): only the advertisement is left.
            let mut ch = Change::new(
                m.name.clone(),
                ChangeKind::Update {
                    peer_update: Some(peer.clone()),
                    phase: None,
                },
                format!(
                    "it listens on {peer} but is advertised as {}: MemberUpdate, no restart",
                    lm.peer_urls[0]
                ),
            );
            ch.id = Some(lm.id);
            changes.push(ch);
            return;
        }
        let mut ch = Change::new(
            m.name.clone(),
            ChangeKind::Restart {
                peer_update: Some(peer.clone()),
                phase: None,
                binary: None,
            },
            format!(
                "its peer URL moves from {} to {peer}: MemberUpdate, then a restart on the new port",
                lm.peer_urls[0]
            ),
        );
        ch.files = files;
        ch.id = Some(lm.id);
        ch.leader = c.leader() == Some(lm.id);
        changes.push(ch);
        return;
    }
    // Only a member that stays where it is can have lost its data there.
    let lost_data = !moved
        && lm.started()
        && !running
        && matches!(facts.data, DataDir::Absent | DataDir::Empty);
    if moved || lost_data {
        let now: Vec<String> = lm.peer_urls.iter().map(ToString::to_string).collect();
        let reason = if lost_data {
            format!(
                "its host lost its data ({} is empty): removed, then added back fresh",
                m.data_dir.display()
            )
        } else {
            format!(
                "its peer URL moves from {} to {peer}: removed, then added back fresh",
                now.join(",")
            )
        };
        preflight_join(d, m, facts, blockers);
        let mut dep = departing(d, lm, c.leader());
        if lost_data {
            dep.host = m.clone();
        }
        let leader = dep.leader;
        let kind = ChangeKind::Replace {
            departing: dep,
            binary: None,
        };
        let mut ch = Change::new(m.name.clone(), kind, reason);
        ch.id = Some(lm.id);
        ch.leader = leader;
        changes.push(ch);
        return;
    }
    let initial = initial_for(d, m, facts);
    let files = file_changes(d, m, Some(facts), &initial, start_release(d, Some(facts)));
    let leader = c.leader() == Some(lm.id);
    let restart = ChangeKind::Restart {
        peer_update: None,
        phase: None,
        binary: None,
    };
    let reown = running
        .then(|| run_as::restart_reason(d, m, facts))
        .flatten();
    let (kind, reason) = if !running {
        preflight(d, m, facts, blockers);
        let why = if lm.started() {
            "member of the cluster, but its etcd is not running"
        } else {
            "in the cluster's membership, but never started"
        };
        (
            ChangeKind::Start { binary: None },
            with_note(why, run_as::start_note(d, m, facts)),
        )
    } else if let Some(why) = reown {
        (restart, why)
    } else if !files.is_empty() {
        (
            restart,
            "settings change; etcd reads them at start".to_owned(),
        )
    } else if stale_process(d, m, facts, &initial) {
        (
            restart,
            "its config file changed, but etcd has not restarted since (an interrupted apply?)"
                .to_owned(),
        )
    } else {
        return;
    };
    let mut ch = Change::new(m.name.clone(), kind, reason);
    ch.files = files;
    ch.id = Some(lm.id);
    ch.leader = leader;
    changes.push(ch);
}

/// A reason with what else happens, when something does.
fn with_note(reason: &str, note: Option<String>) -> String {
    match note {
        Some(note) => format!("{reason}; {note}"),
        None => reason.to_owned(),
    }
}

/// The member that leaves, located where its peer URL points, with the paths
/// the etcdfile gives members of that name.
pub(super) fn departing(d: &Desired, lm: &LiveMember, leader: Option<MemberId>) -> Departing {
    let name = lm.name.member_name().unwrap_or_else(|| {
        MemberName::parse(&format!("member-{}", lm.id)).unwrap_or_else(|_| unreachable_name())
    });
    let peer = lm.peer_urls.first();
    let client = lm.client_urls.first();
    let by_name = d.member(&name);
    let address = peer
        .map(|p| p.host.clone())
        .or_else(|| by_name.map(|m| m.address.clone()))
        .unwrap_or(Address::Dns("unknown".into()));
    let default_client = by_name.map_or(Port::new(2379), |m| Some(m.client_port));
    let default_peer = by_name.map_or(Port::new(2380), |m| Some(m.peer_port));
    let client_port = client
        .map(|c| c.port)
        .or(default_client)
        .unwrap_or_else(unreachable_port);
    let peer_port = peer
        .map(|p| p.port)
        .or(default_peer)
        .unwrap_or_else(unreachable_port);
    Departing {
        id: lm.id,
        host: d.member_at(name.clone(), address, client_port, peer_port),
        name,
        healthy: lm.healthy(),
        learner: lm.is_learner,
        leader: leader == Some(lm.id),
    }
}

fn unreachable_name() -> MemberName {
    // "member" is always a valid name; kept out of line so the fallback is explicit.
    MemberName::parse("member").unwrap_or_else(|_| unreachable!("a literal valid name"))
}

fn unreachable_port() -> Port {
    Port::new(2380).unwrap_or_else(|| unreachable!("2380 is not 0"))
}
