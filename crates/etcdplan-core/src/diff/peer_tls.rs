//! Moving a running cluster's peers between http and https as phases that keep
//! every member reachable (etcd-ops R3.3):
//!
//! 1. rolling: each member listens on its advertised URL *and* the next one
//!    (another port: one port serves one scheme), with peer certificates;
//! 2. one at a time: MemberUpdate to the next URL;
//! 3. rolling: the old listener goes.
//!
//! When the scheme changes but the port stays, the way goes through a second
//! port (`http:P → https:T → https:P`), so 1–2 run twice. The phases are worked
//! out from what each member advertises and listens on now, so an apply that
//! stopped half-way is continued, not restarted.

use std::collections::BTreeSet;

use super::{Blocker, Change, ChangeKind, certs::CertNeed, changed_files, initial_for};
use crate::config::{Desired, DesiredMember};
use crate::hostfiles::{PeerWire, member_files_wired};
use crate::live::{HostFacts, Live, LiveCluster};
use crate::model::{Endpoint, MemberId, Port, Scheme};

/// Whether some member advertises its peer URL with another scheme than the
/// etcdfile asks for.
pub(super) fn needed(d: &Desired, c: &LiveCluster) -> bool {
    c.members.iter().any(|lm| {
        lm.started()
            && d.members.iter().any(|m| lm.name.is(&m.name))
            && lm
                .peer_urls
                .first()
                .is_some_and(|u| u.scheme != Scheme::tls(d.tls.peer))
    })
}

/// The port a member's peers use while the scheme changes on its own port:
/// the first one above it that no member of the etcdfile uses.
pub fn transitional_port(d: &Desired, port: Port) -> Option<Port> {
    let used: BTreeSet<u16> = d
        .members
        .iter()
        .flat_map(|m| [m.client_port.get(), m.peer_port.get()])
        .collect();
    (port.get().saturating_add(1)..=u16::MAX)
        .find(|p| !used.contains(p))
        .and_then(Port::new)
}

/// The URL a member advertises next on its way to `goal`, if it is not there.
fn next_hop(d: &Desired, now: &Endpoint, goal: &Endpoint) -> Option<Endpoint> {
    if now == goal {
        return None;
    }
    if now.scheme != goal.scheme && now.port == goal.port {
        let port = transitional_port(d, goal.port)?;
        return Some(Endpoint {
            port,
            ..goal.clone()
        });
    }
    Some(goal.clone())
}

struct Member<'a> {
    m: &'a DesiredMember,
    /// What its host showed, with the files as the phases planned so far leave them.
    host: HostFacts,
    id: MemberId,
    leader: bool,
    advertised: Endpoint,
    /// The peer listeners after the phases planned so far.
    listening: usize,
    restarted: bool,
}

/// The phases, as one change per member and phase (`Change::phase`), or why
/// they cannot start now.
pub(super) fn phases(
    d: &Desired,
    live: &Live,
    c: &LiveCluster,
    need: &dyn Fn(&DesiredMember) -> CertNeed,
) -> Result<Vec<Change>, Blocker> {
    let refuse = |why: String| {
        Blocker {
        member: None,
        message: format!(
            "[tls] peer = {} moves the running cluster's peers to {}, which needs every member healthy and the membership as in the etcdfile: {why}",
            d.tls.peer,
            Scheme::tls(d.tls.peer)
        ),
        help: "repair the cluster or apply the membership change first, with [tls] peer as the cluster serves it now (`etcdplan status`); nothing was changed".into(),
    }
    };
    let mut members = Vec::new();
    for x in super::settled(d, live, c).map_err(&refuse)? {
        let m = x.m;
        let [advertised] = x.lm.peer_urls.as_slice() else {
            return Err(refuse(format!("{} advertises several peer URLs", m.name)));
        };
        if advertised.host != m.address {
            return Err(refuse(format!(
                "{} is advertised on {}, not on its address {}",
                m.name, advertised.host, m.address
            )));
        }
        if transitional_port(d, m.peer_port).is_none() {
            return Err(refuse(format!("no free port above {}", m.peer_port)));
        }
        members.push(Member {
            m,
            host: x.facts.clone(),
            id: x.lm.id,
            leader: x.leader,
            advertised: advertised.clone(),
            listening: x
                .facts
                .file(&m.config_file())
                .and_then(PeerWire::read_back)
                .map_or(1, |w| w.listen.len()),
            restarted: false,
        });
    }

    let mut out = Vec::new();
    let mut phase = 0u32;
    // Each round is a rolling restart and a round of MemberUpdates; three rounds
    // at most (two hops, then dropping the last old listener).
    for _ in 0..4 {
        let hops: Vec<Option<Endpoint>> = members
            .iter()
            .map(|x| next_hop(d, &x.advertised, &x.m.peer_url(&d.tls)))
            .collect();
        // Peer certificates stay until no member advertises https or moves to it:
        // a member without them cannot dial an https peer.
        let tls = d.tls.peer
            || members.iter().zip(&hops).any(|(x, h)| {
                x.advertised.scheme == Scheme::Https
                    || h.as_ref().is_some_and(|h| h.scheme == Scheme::Https)
            });
        let mut restarts = false;
        for (x, hop) in members.iter_mut().zip(&hops) {
            let mut listen = vec![(x.advertised.scheme, x.advertised.port)];
            if let Some(h) = hop {
                listen.push((h.scheme, h.port));
            }
            let wire = PeerWire {
                listen,
                advertise: x.advertised.clone(),
                tls,
            };
            let initial = initial_for(d, x.m, &x.host);
            let files = changed_files(
                x.m,
                member_files_wired(
                    d,
                    x.m,
                    &initial,
                    &wire,
                    super::start_release(d, Some(&x.host)),
                ),
                Some(&x.host),
            );
            // The running etcd was started with another file than the one on
            // disk (an apply stopped between writing and restarting).
            let stale = !x.restarted
                && x.host.started_config.as_ref().is_some_and(|h| {
                    x.host
                        .file(&x.m.config_file())
                        .map(crate::config::hash)
                        .as_ref()
                        != Some(h)
                });
            if files.is_empty() && !stale {
                continue;
            }
            for f in &files {
                match x.host.files.iter_mut().find(|(p, _)| *p == f.path) {
                    Some(slot) => slot.1 = Some(f.after.clone()),
                    None => x.host.files.push((f.path.clone(), Some(f.after.clone()))),
                }
            }
            let reason = match hop {
                Some(h) => format!(
                    "peer TLS phase {}: listens on {} and on {h} too{}, still advertised as {}",
                    phase + 1,
                    x.advertised,
                    if tls {
                        " with its peer certificates"
                    } else {
                        ""
                    },
                    x.advertised
                ),
                None if x.listening > 1 => format!(
                    "peer TLS phase {}: listens only on {}; the old listener closes",
                    phase + 1,
                    x.advertised
                ),
                None => format!(
                    "peer TLS phase {}: settings change; etcd reads them at start",
                    phase + 1
                ),
            };
            x.listening = wire.listen.len();
            let kind = ChangeKind::Restart {
                peer_update: None,
                phase: Some(phase),
                binary: None,
            };
            let mut ch = Change::new(x.m.name.clone(), kind, reason);
            ch.files = files;
            ch.id = Some(x.id);
            ch.leader = x.leader;
            ch.certificates = !x.restarted && matches!(need(x.m), CertNeed::Issue(_));
            x.restarted = true;
            out.push(ch);
            restarts = true;
        }
        if restarts {
            phase += 1;
        }
        if hops.iter().all(Option::is_none) {
            break;
        }
        for (x, hop) in members.iter_mut().zip(hops) {
            let Some(h) = hop else { continue };
            let mut ch = Change::new(
                x.m.name.clone(),
                ChangeKind::Update {
                    peer_update: Some(h.clone()),
                    phase: Some(phase),
                },
                format!(
                    "peer TLS phase {}: advertised as {h} instead of {} (MemberUpdate); peers dial it there from now on",
                    phase + 1,
                    x.advertised
                ),
            );
            ch.id = Some(x.id);
            x.advertised = h;
            out.push(ch);
        }
        phase += 1;
    }
    Ok(out)
}
