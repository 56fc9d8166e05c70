//! A small simulation of the cluster as the plan goes, so that every
//! membership step is checked against the quorum rules before it is planned.

use super::Voter;
use crate::config::Desired;
use crate::live::Live;
use crate::model::{Endpoint, MemberId, MemberName};

/// The cluster as the plan goes: who is in it, who is healthy, and the
/// `name=url` list MemberList would show.
#[derive(Debug, Clone)]
pub(super) struct Sim {
    pub(super) members: Vec<SimMember>,
}

#[derive(Debug, Clone)]
pub(super) struct SimMember {
    pub(super) name: String,
    pub(super) id: Option<MemberId>,
    pub(super) peer_urls: Vec<Endpoint>,
    pub(super) healthy: bool,
    pub(super) learner: bool,
}

impl Sim {
    pub(super) fn from_live(d: &Desired, live: &Live) -> Self {
        let members = live
            .cluster
            .as_ref()
            .map(|c| {
                c.members
                    .iter()
                    .map(|m| SimMember {
                        // A learner added but never started has no name yet; the
                        // etcdfile member with its peer URL is who it will be.
                        name: if let Some(name) = m.name.as_started() {
                            name.to_owned()
                        } else {
                            d.members
                                .iter()
                                .find(|dm| m.peer_urls.contains(&dm.peer_url(&d.tls)))
                                .map_or_else(
                                    || format!("member-{}", m.id),
                                    |dm| dm.name.to_string(),
                                )
                        },
                        id: Some(m.id),
                        peer_urls: m.peer_urls.clone(),
                        healthy: m.healthy(),
                        learner: m.is_learner,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { members }
    }

    pub(super) fn voters(&self) -> Vec<Voter> {
        self.members
            .iter()
            .map(|m| Voter {
                name: m.name.clone(),
                healthy: m.healthy,
                learner: m.learner,
            })
            .collect()
    }

    pub(super) fn set_healthy(&mut self, name: &str, healthy: bool) {
        if let Some(m) = self.members.iter_mut().find(|m| m.name == name) {
            m.healthy = healthy;
        }
    }

    pub(super) fn remove(&mut self, name: &str) {
        self.members.retain(|m| m.name != name);
    }

    /// The initial-cluster a member joining now gets.
    pub(super) fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .flat_map(|m| m.peer_urls.iter().map(move |u| format!("{}={u}", m.name)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Healthy voters, by name, in the etcdfile's order.
    pub(super) fn healthy_voters(&self, d: &Desired) -> Vec<MemberName> {
        d.members
            .iter()
            .filter(|dm| {
                self.members
                    .iter()
                    .any(|m| m.name == dm.name.as_str() && !m.learner && m.healthy)
            })
            .map(|dm| dm.name.clone())
            .collect()
    }

    pub(super) fn id_of(&self, name: &str) -> Option<MemberId> {
        self.members
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.id)
    }
}
