//! The planner's TLS changes against described live states: a running cluster
//! moved between http and https, certificates renewed, the CA rotated. Pure:
//! the certificates are real (made by the PKI module), the cluster is described.

mod common;

use common::plans::{kinds as steps, plan_for, running, with_tls};
use common::{HostSpec, cluster, live};
use etcdplan::config::Desired;
use etcdplan::hostfiles::{self, Initial, PeerWire};
use etcdplan::model::{Endpoint, Port, Scheme};
use etcdplan::observe::{HostCerts, HostState, Live};
use etcdplan::plan::Plan;

/// The plan's goldens, named after this file.
fn snapshot(name: &str, p: &Plan, d: &Desired) {
    crate::plan_snapshot!(name, p, d);
}

/// Replaces member `i`'s config on its host (and what its etcd started with).
fn set_config(l: &mut Live, d: &Desired, i: usize, text: String) {
    let m = &d.members[i];
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&m.name) {
        f.started_config = Some(etcdplan::config::hash(&text));
        f.files = vec![(m.config_file(), Some(text))];
    }
}

fn wired(d: &Desired, i: usize, listen: &[(Scheme, u16)], advertise: &str, tls: bool) -> String {
    let wire = PeerWire {
        listen: listen
            .iter()
            .map(|(s, p)| (*s, Port::new(*p).unwrap_or_else(|| panic!("port"))))
            .collect(),
        advertise: Endpoint::parse(advertise).unwrap_or_else(|| panic!("url")),
        tls,
    };
    let release = common::release(d, &HostSpec::empty());
    hostfiles::etcd_config_wired(d, &d.members[i], &Initial::bootstrap(d), &wire, release)
}

/// The files written for a member in its first (or last) change that writes any.
fn config_of(p: &Plan, member: &str, last: bool) -> String {
    let mut it = p
        .changes
        .iter()
        .filter(|c| c.member.as_str() == member && !c.files.is_empty());
    let c = if last { it.next_back() } else { it.next() };
    c.map(|c| c.files[0].after.clone()).unwrap_or_default()
}

fn index_of(k: &[String], f: impl Fn(&str) -> bool) -> usize {
    k.iter()
        .position(|s| f(s))
        .unwrap_or_else(|| panic!("no such step in {k:#?}"))
}

fn rindex_of(k: &[String], f: impl Fn(&str) -> bool) -> usize {
    k.iter()
        .rposition(|s| f(s))
        .unwrap_or_else(|| panic!("no such step in {k:#?}"))
}

#[test]
fn peer_tls_on_a_running_cluster_goes_through_a_second_port_and_back() {
    let plain = common::desired_with(3, "");
    let d = with_tls("peer = true");
    let p = plan_for(&d, &running(&plain));
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert!(p.deferred.is_empty(), "{:?}", p.notes);
    let k = steps(&p);
    // Phase 1: every member listens on https:2381 too before any URL moves.
    let last_first_restart = (1..=3)
        .map(|i| index_of(&k, |s| s.contains(&format!("restart etcd-{i}"))))
        .max()
        .unwrap_or(0);
    let first_update = index_of(&k, |s| s.starts_with("advertise"));
    assert!(last_first_restart < first_update, "{k:#?}");
    for i in 1..=3 {
        let issue = index_of(&k, |s| s.starts_with(&format!("issue etcd-{i}'s")));
        let write = index_of(&k, |s| {
            s.starts_with(&format!("write 1 file and restart etcd-{i}"))
        });
        assert!(issue < write, "{k:#?}");
        // Through the second port, then home: two MemberUpdates, three restarts.
        let to_2381 = index_of(&k, |s| {
            s == format!("advertise etcd-{i}'s peer URL as https://10.0.0.1{i}:2381 (MemberUpdate)")
        });
        let to_2380 = index_of(&k, |s| {
            s == format!("advertise etcd-{i}'s peer URL as https://10.0.0.1{i}:2380 (MemberUpdate)")
        });
        assert!(to_2381 < to_2380);
        assert_eq!(
            k.iter()
                .filter(|s| s.contains(&format!("restart etcd-{i}")))
                .count(),
            3,
            "{k:#?}"
        );
    }
    // No member advertises https:2380 before every member listens there.
    let last_second_restart = (1..=3)
        .map(|i| {
            k.iter()
                .enumerate()
                .filter(|(_, s)| s.contains(&format!("restart etcd-{i}")))
                .nth(1)
                .map_or(usize::MAX, |(n, _)| n)
        })
        .max()
        .unwrap_or(usize::MAX);
    let first_home = index_of(&k, |s| s.ends_with(":2380 (MemberUpdate)"));
    assert!(last_second_restart < first_home, "{k:#?}");
    // Phase 1's config: both listeners, still advertised on http, peer TLS in place.
    let phase0 = &config_of(&p, "etcd-1", false);
    assert!(
        phase0.contains("listen-peer-urls: 'http://10.0.0.11:2380,https://10.0.0.11:2381'"),
        "{phase0}"
    );
    assert!(phase0.contains("initial-advertise-peer-urls: 'http://10.0.0.11:2380'"));
    assert!(phase0.contains("peer-transport-security:"));
    // The last phase leaves the etcdfile's config.
    let last = config_of(&p, "etcd-1", true);
    assert_eq!(
        last,
        hostfiles::etcd_config(
            &d,
            &d.members[0],
            &Initial::bootstrap(&plain),
            common::release(&d, &HostSpec::empty())
        )
    );
    assert_eq!(p.summary.change, 3, "each member counts once");
    snapshot("peer-tls-on", &p, &d);
}

/// Issue 21: each leader change can fail a write in flight, so a phased
/// change changes the leader once per pass (every pass restarts every
/// member): no MoveLeader, the member leading by then restarted last and
/// marked as the leader (etcd's graceful stop hands over), and the next pass
/// expects the member restarted first to lead (the longest-connected voter
/// of the stopping leader, the one etcd picks).
#[test]
fn peer_tls_changes_the_leader_once_per_pass_by_restarting_it_last() {
    let plain = common::desired_with(3, "");
    let d = with_tls("peer = true");
    let p = plan_for(&d, &running(&plain));
    let k = steps(&p);
    assert!(!k.iter().any(|s| s.starts_with("move leader ")), "{k:#?}");
    let restarts: Vec<(&str, bool)> = k
        .iter()
        .filter_map(|s| Some(s.split_once("restart ")?.1))
        .map(|s| match s.split_once(" (leader: ") {
            Some((m, _)) => (m, true),
            None => (s, false),
        })
        .collect();
    assert_eq!(restarts.len() % 3, 0, "{k:#?}");
    let mut leader = "etcd-1";
    for pass in restarts.chunks(3) {
        let marked: Vec<bool> = pass.iter().map(|(_, l)| *l).collect();
        assert_eq!(marked, [false, false, true], "{k:#?}");
        assert_eq!(pass[2].0, leader, "{k:#?}");
        leader = pass[0].0;
    }
}

#[test]
fn a_new_peer_port_with_tls_takes_one_hop() {
    let plain = common::desired_with(3, "");
    let d = common::desired_from(
        &common::text_with(3, "peer_port = 2390\n")
            .replace("[hosts]", "[tls]\npeer = true\n[hosts]"),
    );
    let p = plan_for(&d, &running(&plain));
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = steps(&p);
    assert_eq!(
        k.iter().filter(|s| s.contains("restart")).count(),
        6,
        "{k:#?}"
    );
    assert_eq!(k.iter().filter(|s| s.starts_with("advertise")).count(), 3);
    assert!(k.iter().any(|s| s.contains("https://10.0.0.12:2390")));
    assert!(!k.iter().any(|s| s.contains(":2391")), "{k:#?}");
}

#[test]
fn an_interrupted_peer_migration_continues_where_it_stopped() {
    let plain = common::desired_with(3, "");
    let d = with_tls("peer = true");
    let mut l = running(&plain);
    // Phase 1 done everywhere; etcd-1 already advertised on https:2381.
    let dual = [(Scheme::Http, 2380), (Scheme::Https, 2381)];
    for i in 0..3 {
        let adv = format!("http://10.0.0.1{}:2380", i + 1);
        set_config(&mut l, &d, i, wired(&d, i, &dual, &adv, true));
        if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[i].name) {
            f.certs = HostCerts::default();
        }
    }
    if let Some(c) = &mut l.cluster {
        c.members[0].peer_urls =
            vec![Endpoint::parse("https://10.0.0.11:2381").unwrap_or_else(|| panic!())];
    }
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = steps(&p);
    // etcd-2 and etcd-3 are not restarted before their MemberUpdate: they already listen there.
    let first_restart_2 = index_of(&k, |s| s.contains("restart etcd-2"));
    let update_2 = index_of(&k, |s| {
        s.starts_with("advertise etcd-2's peer URL as https://10.0.0.12:2381")
    });
    assert!(update_2 < first_restart_2, "{k:#?}");
    assert!(
        !k.iter()
            .any(|s| s.starts_with("advertise etcd-1's peer URL as https://10.0.0.11:2381"))
    );
    let home_1 = index_of(&k, |s| {
        s.starts_with("advertise etcd-1's peer URL as https://10.0.0.11:2380")
    });
    let listen_both_1 = index_of(&k, |s| s.contains("restart etcd-1"));
    assert!(listen_both_1 < home_1, "{k:#?}");
}

#[test]
fn peer_tls_off_goes_back_to_http_the_same_way() {
    let tls = with_tls("peer = true");
    let d = common::desired_with(3, "");
    let mut l = running(&tls);
    l.local_ca = None;
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = steps(&p);
    assert!(
        k.iter()
            .any(|s| s == "advertise etcd-1's peer URL as http://10.0.0.11:2381 (MemberUpdate)"),
        "{k:#?}"
    );
    assert!(!k.iter().any(|s| s.starts_with("issue")), "{k:#?}");
    // Certificates stay until no member advertises https any more.
    let first = &config_of(&p, "etcd-1", false);
    assert!(
        first.contains("listen-peer-urls: 'https://10.0.0.11:2380,http://10.0.0.11:2381'"),
        "{first}"
    );
    assert!(first.contains("peer-transport-security:"), "{first}");
    let last = config_of(&p, "etcd-1", true);
    assert!(!last.contains("peer-transport-security:"), "{last}");
}

#[test]
fn peer_tls_waits_for_an_unhealthy_member() {
    let plain = common::desired_with(3, "");
    let d = with_tls("peer = true");
    let specs: Vec<HostSpec> = (0..3).map(|_| HostSpec::running_from(&plain)).collect();
    let l = live(
        &plain,
        &specs,
        Some(cluster(&plain, &[true, false, true], 0)),
    );
    let p = plan_for(&d, &l);
    assert!(p.steps.is_empty(), "{:#?}", steps(&p));
    assert!(
        p.blockers
            .iter()
            .any(|b| b.message.contains("etcd-2 is not healthy")),
        "{:?}",
        p.blockers
    );
}

#[test]
fn a_member_stopped_half_way_through_a_peer_tls_restart_is_started_before_the_phases_go_on() {
    // etcdplan killed between a restart's stop and its start: the member's
    // etcd is stopped on its host, its data kept. Refusing the phases would
    // leave the rerun nothing to do (tests/kill_boundaries.rs).
    let plain = common::desired_with(3, "");
    let d = with_tls("peer = true");
    let mut specs: Vec<HostSpec> = (0..3).map(|_| HostSpec::running_from(&plain)).collect();
    specs[1].running = false;
    let l = live(
        &plain,
        &specs,
        Some(cluster(&plain, &[true, false, true], 0)),
    );
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert_eq!(
        steps(&p),
        ["start etcd-2", "wait until etcd-2 healthy"],
        "{:?}",
        p.notes
    );
}

#[test]
fn client_tls_with_cert_auth_is_a_rolling_restart_with_certificates_first() {
    let plain = common::desired_with(3, "");
    let d = with_tls("client = true\nclient_cert_auth = true");
    let p = plan_for(&d, &running(&plain));
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = steps(&p);
    assert_eq!(
        k.iter().filter(|s| s.contains("restart")).count(),
        3,
        "{k:#?}"
    );
    assert!(!k.iter().any(|s| s.starts_with("advertise")), "{k:#?}");
    for i in 1..=3 {
        let issue = index_of(&k, |s| s.starts_with(&format!("issue etcd-{i}'s")));
        let restart = index_of(&k, |s| s.contains(&format!("restart etcd-{i}")));
        let gate = rindex_of(&k, |s| s == format!("wait until etcd-{i} healthy"));
        assert!(issue < restart && restart < gate, "{k:#?}");
    }
    // One member at a time: each restart is gated before the next.
    let r1 = index_of(&k, |s| s.contains("restart etcd-2"));
    let g1 = index_of(&k, |s| s == "wait until etcd-2 healthy");
    let r2 = index_of(&k, |s| s.contains("restart etcd-3"));
    assert!(r1 < g1 && g1 < r2, "{k:#?}");
    let config = &config_of(&p, "etcd-1", false);
    assert!(
        config.contains("advertise-client-urls: 'https://10.0.0.11:2379'"),
        "{config}"
    );
    assert!(config.contains("trusted-ca-file:"), "{config}");
}
