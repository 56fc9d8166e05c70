//! The planner's certificate changes against described live states:
//! certificates renewed or issued again, and the CA rotated and retired. The
//! certificates are real (made by the PKI module), the cluster is described.

mod common;

use common::cluster;
use common::plans::{kinds as steps, plan_for, running, with_tls};
use etcdplan::config::Desired;
use etcdplan::diff::Action;
use etcdplan::hostfiles;
use etcdplan::observe::{HostCerts, HostState, Live};
use etcdplan::pki::{self, Ca, Role};
use etcdplan::plan::Plan;

/// The plan's goldens, named after this file.
fn snapshot(name: &str, p: &Plan, d: &Desired) {
    crate::plan_snapshot!(name, p, d);
}

/// A CA, and certificates as etcdplan would have written them for each member.
struct Issued {
    ca: Ca,
    _dir: tempfile::TempDir,
}

fn issued() -> Issued {
    issued_named("etcdplan CA for main")
}

fn issued_named(name: &str) -> Issued {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = Ca::create_named(&dir.path().join("pki"), name).unwrap_or_else(|e| panic!("{e}"));
    Issued { ca, _dir: dir }
}

/// The CA a rotation starts from, and the one `pki rotate-ca` would make.
fn old_and_new() -> (Issued, Issued) {
    (
        issued(),
        issued_named("etcdplan CA for main, 2026-11-23 10:00:00"),
    )
}

fn certs_for(
    x: &Issued,
    d: &Desired,
    i: usize,
    days: i64,
    sans: Option<Vec<pki::San>>,
) -> HostCerts {
    let m = &d.members[i];
    let sans = sans.unwrap_or_else(|| hostfiles::member_sans(m));
    let issue = |role| {
        x.ca.issue(role, m.name.as_str(), &sans, days)
            .unwrap_or_else(|e| panic!("{e}"))
            .cert_pem
    };
    HostCerts {
        ca: Some(x.ca.cert_pem().to_owned()),
        server: Some(issue(Role::Server)),
        peer: Some(issue(Role::Peer)),
        server_key_mode: Some(0o600),
        peer_key_mode: Some(0o600),
    }
}

fn tls_cluster(x: &Issued, d: &Desired, days: &[i64]) -> Live {
    let mut l = running(d);
    l.local_ca = Some(x.ca.cert_pem().to_owned());
    l.observed_at = pki::now();
    for (i, days) in days.iter().enumerate() {
        let certs = certs_for(x, d, i, *days, None);
        if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[i].name) {
            f.certs = certs;
        }
    }
    l
}

#[test]
fn certificates_that_still_serve_mean_no_changes() {
    let x = issued();
    let d = with_tls("client = true\npeer = true\nclient_cert_auth = true");
    let p = plan_for(&d, &tls_cluster(&x, &d, &[300, 300, 300]));
    assert!(p.is_empty(), "{:#?}", steps(&p));
}

#[test]
fn certificates_about_to_expire_are_renewed_in_place_one_member_at_a_time() {
    let x = issued();
    let d = with_tls("client = true\npeer = true\nclient_cert_auth = true");
    let p = plan_for(&d, &tls_cluster(&x, &d, &[300, 5, 20]));
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = steps(&p);
    assert_eq!(
        k,
        [
            "issue etcd-2's server and peer certificates from the CA",
            "wait until etcd-2 healthy",
            "issue etcd-3's server and peer certificates from the CA",
            "wait until etcd-3 healthy",
        ]
    );
    assert!(p.changes.iter().all(|c| c.action() == Action::Update));
    assert!(
        p.changes[0].reason.contains("expires in"),
        "{}",
        p.changes[0].reason
    );
    rotation_snapshot("certificates-renewed", &p, &d);
}

#[test]
fn a_certificate_for_other_names_or_a_readable_key_is_issued_again() {
    let x = issued();
    let d = with_tls("peer = true");
    let mut l = tls_cluster(&x, &d, &[300, 300, 300]);
    let wrong = certs_for(&x, &d, 0, 300, Some(vec![pki::San::Dns("etcd-1".into())]));
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[0].name) {
        f.certs = wrong;
    }
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[2].name) {
        f.certs.peer_key_mode = Some(0o644);
    }
    let p = plan_for(&d, &l);
    let reasons: Vec<&str> = p.changes.iter().map(|c| c.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    assert!(
        reasons[0].contains("not valid for IP:10.0.0.11"),
        "{reasons:#?}"
    );
    assert!(reasons[1].contains("mode 0644"), "{reasons:#?}");
}

#[test]
fn certificates_from_another_ca_block_the_plan() {
    let x = issued();
    let other = issued();
    let d = with_tls("peer = true");
    let mut l = tls_cluster(&x, &d, &[300, 300, 300]);
    l.local_ca = Some(other.ca.cert_pem().to_owned());
    let p = plan_for(&d, &l);
    assert!(p.cannot_apply().is_some());
    assert!(
        p.blockers
            .iter()
            .any(|b| b.message.contains("signed neither by the CA")),
        "{:?}",
        p.blockers
    );
    assert!(!steps(&p).iter().any(|s| s.starts_with("issue")));
}

/// A cluster whose hosts trust `old` and hold certificates from it, while the
/// operator rotated to `new` (`old` kept as previous unless `retired`).
fn rotating(old: &Issued, new: &Issued, d: &Desired, retired: bool) -> Live {
    let mut l = tls_cluster(old, d, &[300, 300, 300]);
    l.local_ca = Some(new.ca.cert_pem().to_owned());
    l.previous_ca = (!retired).then(|| old.ca.cert_pem().to_owned());
    l
}

fn bundle(old: &Issued, new: &Issued) -> String {
    format!("{}{}", old.ca.cert_pem(), new.ca.cert_pem())
}

/// Member `i`'s host as the rotation leaves it: `file` in ca.crt, `started`
/// what its etcd read at start, certificates from `leaves`.
fn set_trust(
    l: &mut Live,
    d: &Desired,
    i: usize,
    file: &str,
    started: &str,
    leaves: Option<&Issued>,
) {
    let certs = leaves.map(|x| certs_for(x, d, i, 300, None));
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[i].name) {
        if let Some(c) = certs {
            f.certs = c;
        }
        f.certs.ca = Some(file.to_owned());
        f.started_ca = Some(started.to_owned());
    }
}

/// The plan with what certificates made for the test say (fingerprints, dates,
/// their PEM text and hashes) made stable.
fn rotation_snapshot(name: &str, p: &Plan, d: &Desired) {
    insta::with_settings!({filters => vec![
        (r"sha256 [0-9A-F:]{23}", "sha256 [fingerprint]"),
        (r"valid until \d{4}-\d\d-\d\d", "valid until [date]"),
        // The plan document carries files whole: certificates made for the test.
        (r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----", "[certificate]"),
        (r#""(certificates of etcd-\d)": "[0-9a-f]{16}""#, r#""$1": "[hash]""#),
    ]}, {
        snapshot(name, p, d);
    });
}

const ALL_TLS: &str = "client = true\npeer = true\nclient_cert_auth = true";

#[test]
fn a_new_ca_is_trusted_everywhere_before_any_certificate_comes_from_it() {
    let (old, new) = old_and_new();
    let d = with_tls(ALL_TLS);
    let p = plan_for(&d, &rotating(&old, &new, &d, false));
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = steps(&p);
    let restarts: Vec<usize> = (0..k.len()).filter(|&i| k[i].contains("restart")).collect();
    let issues: Vec<usize> = (0..k.len())
        .filter(|&i| k[i].starts_with("issue"))
        .collect();
    assert_eq!((restarts.len(), issues.len()), (3, 3), "{k:#?}");
    assert!(restarts.iter().max() < issues.iter().min(), "{k:#?}");
    // The leader restarts last, marked so (etcd's stop hands over), no move.
    assert!(
        k[restarts[2]].ends_with("restart etcd-1 (leader: etcd hands leadership over as it stops)"),
        "{k:#?}"
    );
    assert!(!k.iter().any(|s| s.starts_with("move leader")), "{k:#?}");
    // Each issue is gated before the next.
    for w in issues.windows(2) {
        assert!(
            k[w[0]..w[1]].iter().any(|s| s.starts_with("wait until")),
            "{k:#?}"
        );
    }
    // Phase 1 writes the bundle, old and new; no change drops the old CA.
    let wanted = bundle(&old, &new);
    for c in p.changes.iter().filter(|c| c.action() == Action::Restart) {
        assert_eq!(c.phase(), Some(0));
        let ca = c.files.iter().find(|f| f.path.ends_with("ca.crt"));
        assert_eq!(
            ca.map(|f| f.after.as_str()),
            Some(wanted.as_str()),
            "{}",
            c.member
        );
    }
    assert!(
        p.changes
            .iter()
            .filter(|c| c.action() == Action::Update)
            .all(|c| c.phase() == Some(1) && c.certificates)
    );
    assert_eq!(p.changes.len(), 6);
    rotation_snapshot("ca-rotation", &p, &d);
}

#[test]
fn an_interrupted_rotation_continues_where_it_stopped() {
    let (old, new) = old_and_new();
    let d = with_tls(ALL_TLS);
    let mut l = rotating(&old, &new, &d, false);
    let both = bundle(&old, &new);
    // etcd-2 restarted with both; etcd-3's file was written but its etcd still
    // runs with the old CA only; etcd-1 was not reached.
    set_trust(&mut l, &d, 1, &both, &both, None);
    set_trust(&mut l, &d, 2, &both, old.ca.cert_pem(), None);
    let p = plan_for(&d, &l);
    let k = steps(&p);
    assert!(!k.contains(&"restart etcd-2".to_owned()), "{k:#?}");
    assert!(k.contains(&"restart etcd-3".to_owned()), "{k:#?}");
    assert!(
        k.iter()
            .any(|s| s.ends_with("restart etcd-1 (leader: etcd hands leadership over as it stops)")),
        "{k:#?}"
    );
    let c3 = p
        .changes
        .iter()
        .find(|c| c.member.as_str() == "etcd-3" && c.action() == Action::Restart);
    assert!(c3.is_some_and(|c| c.files.is_empty()), "{c3:#?}");

    // Phase 1 done and etcd-1 already has its new certificates: two to issue.
    let mut l = rotating(&old, &new, &d, false);
    for i in 0..3 {
        set_trust(&mut l, &d, i, &both, &both, (i == 0).then_some(&new));
    }
    let k = steps(&plan_for(&d, &l));
    assert_eq!(
        k,
        [
            "issue etcd-2's server and peer certificates from the CA",
            "wait until etcd-2 healthy",
            "issue etcd-3's server and peer certificates from the CA",
            "wait until etcd-3 healthy",
        ]
    );

    // All done while the previous CA is kept: nothing to do.
    for i in 1..3 {
        set_trust(&mut l, &d, i, &both, &both, Some(&new));
    }
    let p = plan_for(&d, &l);
    assert!(p.is_empty(), "{:#?}", steps(&p));
}

#[test]
fn a_retired_ca_is_dropped_from_every_members_trust_by_a_rolling_restart() {
    let (old, new) = old_and_new();
    let d = with_tls(ALL_TLS);
    let mut l = rotating(&old, &new, &d, true);
    let both = bundle(&old, &new);
    for i in 0..3 {
        set_trust(&mut l, &d, i, &both, &both, Some(&new));
    }
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = steps(&p);
    assert!(!k.iter().any(|s| s.starts_with("issue")), "{k:#?}");
    assert_eq!(
        k.iter().filter(|s| s.contains("restart")).count(),
        3,
        "{k:#?}"
    );
    for c in &p.changes {
        let ca = c.files.iter().find(|f| f.path.ends_with("ca.crt"));
        assert_eq!(
            ca.map(|f| f.after.as_str()),
            Some(new.ca.cert_pem()),
            "{}",
            c.member
        );
        assert!(c.reason.contains("the new CA only"), "{}", c.reason);
    }
    rotation_snapshot("ca-retired", &p, &d);

    // Once every member restarted, the plan is empty.
    for i in 0..3 {
        set_trust(&mut l, &d, i, new.ca.cert_pem(), new.ca.cert_pem(), None);
    }
    let p = plan_for(&d, &l);
    assert!(p.is_empty(), "{:#?}", steps(&p));
}

#[test]
fn a_ca_retired_before_the_rotation_was_applied_blocks_with_the_way_back() {
    let (old, new) = old_and_new();
    let d = with_tls(ALL_TLS);
    let p = plan_for(&d, &rotating(&old, &new, &d, true));
    assert!(p.cannot_apply().is_some());
    assert!(
        p.blockers.iter().any(|b| b.message.contains("retired-")),
        "{:?}",
        p.blockers
    );
    assert!(p.steps.is_empty(), "{:#?}", steps(&p));
}

#[test]
fn a_rotation_waits_for_an_unhealthy_member_and_for_a_peer_move() {
    let (old, new) = old_and_new();
    let d = with_tls(ALL_TLS);
    let mut l = rotating(&old, &new, &d, false);
    l.cluster = Some(cluster(&d, &[true, false, true], 0));
    let p = plan_for(&d, &l);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.message.contains("etcd-2 is not healthy")),
        "{:?}",
        p.blockers
    );
    assert!(
        !steps(&p)
            .iter()
            .any(|s| s.contains("restart") || s.starts_with("issue"))
    );

    // The etcdfile also moves the peers to http: one thing at a time.
    let plain_peers = with_tls("client = true\npeer = false\nclient_cert_auth = true");
    let l = rotating(&old, &new, &d, false);
    let p = plan_for(&plain_peers, &l);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.message.contains("one at a time")),
        "{:?}",
        p.blockers
    );
}
