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
