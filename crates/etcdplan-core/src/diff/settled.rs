//! Whether the cluster is settled (the etcdfile's members, all healthy voters
//! running on their hosts): phased changes start only from there.

use crate::config::{Desired, DesiredMember};
use crate::live::{HostFacts, HostState, Live, LiveCluster, LiveMember};

/// A member of a settled cluster: named in the etcdfile and in the cluster, a
/// healthy started voter whose host runs etcd.
pub(super) struct Settled<'a> {
    pub(super) m: &'a DesiredMember,
    pub(super) lm: &'a LiveMember,
    pub(super) facts: &'a HostFacts,
    pub(super) leader: bool,
}

/// Every member, when the cluster is settled (the same members in the etcdfile
/// and in the cluster, all healthy voters running on their hosts): phased
/// changes (a TLS move, a CA rotation) start only from there. Otherwise, why not.
pub(super) fn settled<'a>(
    d: &'a Desired,
    live: &'a Live,
    c: &'a LiveCluster,
) -> Result<Vec<Settled<'a>>, String> {
    let leader = c.leader();
    let mut out = Vec::new();
    for lm in &c.members {
        let Some(m) = d.members.iter().find(|m| lm.name.is(&m.name)) else {
            return Err(format!(
                "member {} ({}) is not in the etcdfile",
                lm.name.as_started().unwrap_or("(never started)"),
                lm.id
            ));
        };
        if lm.is_learner || !lm.healthy() {
            return Err(format!(
                "{} is {}",
                m.name,
                if lm.is_learner {
                    "a learner"
                } else {
                    "not healthy"
                }
            ));
        }
        let facts = match live.hosts.get(&m.name) {
            Some(h @ HostState::Reached(f)) if h.running() => f,
            _ => return Err(format!("{}'s host shows no running etcd", m.name)),
        };
        out.push(Settled {
            m,
            lm,
            facts,
            leader: leader == Some(lm.id),
        });
    }
    if let Some(m) = d
        .members
        .iter()
        .find(|m| !c.members.iter().any(|lm| lm.name.is(&m.name)))
    {
        return Err(format!("{} is not in the cluster yet", m.name));
    }
    Ok(out)
}

/// The members a phased change waits for because their etcd is stopped on
/// their hosts with their data kept (a restart interrupted between its stop
/// and its start, etcdplan killed there): each started again as it is, with
/// the files on its host, so that the next plan finds the cluster settled
/// and continues the phases. Without them the phases are refused and a
/// rerun of the interrupted apply cannot go on.
pub(super) fn stopped_to_start(
    d: &Desired,
    live: &Live,
    c: &LiveCluster,
    blockers: &mut Vec<super::Blocker>,
) -> Vec<super::Change> {
    let mut out = Vec::new();
    for m in &d.members {
        let Some(lm) = c.voter(&m.name) else {
            continue;
        };
        let Some(HostState::Reached(facts)) = live.hosts.get(&m.name) else {
            continue;
        };
        if lm.healthy()
            || matches!(facts.service, crate::live::ServiceState::Running(_))
            || facts.data != crate::live::DataDir::Member
        {
            continue;
        }
        super::preflight::preflight(d, m, facts, blockers);
        out.push(super::Change::new(
            m.name.clone(),
            super::ChangeKind::Start { binary: None },
            "member of the cluster, but its etcd is not running (a restart stopped half way?): started as its host has it, before the phased change goes on".to_owned(),
        ));
    }
    out
}
