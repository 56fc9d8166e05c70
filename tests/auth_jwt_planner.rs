//! The planner with `[auth] token = "jwt"`: the members' placed key pair is
//! compared by digest with `key_dir`'s, and a member whose pair differs gets
//! it placed, then restarts, one member at a time, the leader last. The plan
//! (human and JSON) names the step, never key material. Pure: the key pairs
//! are real (made by the PKI module), the cluster is described; the last
//! test walks such a plan over the fakes (`etcdplan::io::fake`).

mod common;

use std::path::Path;

use common::plans::{kinds as steps, plan_for, running};
use etcdplan::config::{Auth, Desired, Login, SecretSource, TokenKind};
use etcdplan::observe::{HostAuthFiles, HostState, Live};
use etcdplan::pki::{JWT_KEY, JWT_PUB, JwtKeys, local_auth_files, sha256_hex};
use etcdplan::plan::Plan;

/// The 3-member etcdfile with `[auth]` and JWT tokens from `key_dir`, set in
/// code until the etcdfile has the keys. Auth itself stays off (`enabled =
/// false`): turning it on is the auth planner's, tested apart; the token
/// settings and the key pair do not depend on it.
fn with_jwt(key_dir: &Path) -> Desired {
    let mut d = common::desired_from(&common::text_with(3, ""));
    d.auth = Some(Auth {
        enabled: false,
        root: Login::Password(SecretSource::Env("ETCD_ROOT_PASSWORD".into())),
        token: TokenKind::Jwt {
            key_dir: key_dir.to_owned(),
        },
        token_ttl: std::time::Duration::from_secs(600),
        prune: false,
        roles: Vec::new(),
        users: Vec::new(),
    });
    d
}

/// The digests of the pair in `dir`, as a host's probe would report them.
fn placed(dir: &Path) -> HostAuthFiles {
    let digest = |f: &str| {
        Some(sha256_hex(
            &std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{e}")),
        ))
    };
    HostAuthFiles {
        jwt_pub: digest(JWT_PUB),
        jwt_key: digest(JWT_KEY),
        jwt_key_mode: Some(0o600),
        crl: None,
    }
}

/// `d`'s running cluster (leader etcd-1), every host holding `files`.
fn cluster_with(d: &Desired, files: &HostAuthFiles) -> Live {
    let mut l = running(d);
    l.local_auth = local_auth_files(d);
    for h in l.hosts.values_mut() {
        if let HostState::Reached(f) = h {
            f.auth_files = files.clone();
        }
    }
    l
}

fn assert_no_key_material(p: &Plan, d: &Desired, keys: &[&JwtKeys]) {
    let human = etcdplan::render::plan_human(p, d, "etcdfile.toml", etcdplan::render::Style::PLAIN);
    let json = serde_json::to_string(p).unwrap_or_else(|e| panic!("{e}"));
    for text in [&human, &json] {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        for k in keys {
            // No line of either key's PEM body shows.
            for line in k.private_pem().lines().chain(k.public_pem.lines()) {
                if !line.starts_with("-----") {
                    assert!(!text.contains(line), "{line} in {text}");
                }
            }
        }
    }
}

#[test]
fn members_with_the_pair_of_key_dir_have_nothing_to_do() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("jwt");
    JwtKeys::create(&dir).unwrap_or_else(|e| panic!("{e}"));
    let d = with_jwt(&dir);
    let p = plan_for(&d, &cluster_with(&d, &placed(&dir)));
    assert!(p.steps.is_empty(), "{:#?}", steps(&p));
}

#[test]
fn a_changed_key_pair_is_placed_and_rolled_one_member_at_a_time() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (old_dir, new_dir) = (tmp.path().join("old"), tmp.path().join("new"));
    let old = JwtKeys::create(&old_dir).unwrap_or_else(|e| panic!("{e}"));
    let new = JwtKeys::create(&new_dir).unwrap_or_else(|e| panic!("{e}"));
    // The members hold the old pair; key_dir now holds the new one.
    let d = with_jwt(&new_dir);
    let p = plan_for(&d, &cluster_with(&d, &placed(&old_dir)));
    assert_eq!(
        steps(&p),
        [
            "place the JWT signing key pair on etcd-2's host",
            "restart etcd-2",
            "wait until etcd-2 healthy",
            "place the JWT signing key pair on etcd-3's host",
            "restart etcd-3",
            "wait until etcd-3 healthy",
            "place the JWT signing key pair on etcd-1's host",
            "restart etcd-1 (leader: etcd hands leadership over as it stops)",
            "wait until etcd-1 healthy",
        ]
    );
    for c in &p.changes {
        assert!(c.auth_files, "{c:?}");
        assert!(c.reason.contains("differs from key_dir's"), "{}", c.reason);
    }
    assert_no_key_material(&p, &d, &[&old, &new]);
    crate::plan_snapshot!("jwt-key-changed", &p, &d);
}

#[test]
fn a_key_others_may_read_or_a_missing_pair_is_placed_again() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("jwt");
    JwtKeys::create(&dir).unwrap_or_else(|e| panic!("{e}"));
    let d = with_jwt(&dir);
    let mut l = cluster_with(&d, &placed(&dir));
    let mut lax = placed(&dir);
    lax.jwt_key_mode = Some(0o644);
    if let Some(HostState::Reached(f)) = l.hosts.values_mut().nth(1) {
        f.auth_files = lax;
    }
    if let Some(HostState::Reached(f)) = l.hosts.values_mut().nth(2) {
        f.auth_files = HostAuthFiles::default();
    }
    let p = plan_for(&d, &l);
    let reasons: Vec<(&str, &str)> = p
        .changes
        .iter()
        .map(|c| (c.member.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    assert!(reasons[0].1.contains("mode 0644"), "{reasons:#?}");
    assert!(reasons[1].1.contains("not on its host yet"), "{reasons:#?}");
}

#[test]
fn before_key_dir_has_a_pair_every_member_gets_the_one_apply_makes() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = with_jwt(&tmp.path().join("not-yet"));
    let p = plan_for(&d, &cluster_with(&d, &HostAuthFiles::default()));
    assert_eq!(p.changes.len(), 3);
    assert!(
        p.changes
            .iter()
            .all(|c| c.auth_files && c.reason.contains("made in key_dir at apply")),
        "{:#?}",
        p.changes
    );
}

#[tokio::test]
async fn the_walk_makes_the_pair_places_the_key_0600_and_then_rests() {
    use etcdplan::io::fake::FakeCluster;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("jwt");
    let plain = common::desired_from(&common::text_with(3, ""));
    let d = with_jwt(&dir);
    let fake = FakeCluster::running(&plain, "3.4.23", 1);
    let hosts = fake.hosts(&d);
    let observe = || async {
        let live =
            etcdplan::observe::observe(&d, &hosts, &fake, &etcdplan::config::Secrets::default())
                .await;
        etcdplan::plan::build(&d, &live, etcdplan::diff::diff(&d, &live))
    };
    let p = observe().await;
    assert_eq!(
        steps(&p)
            .iter()
            .filter(|s| s.starts_with("place the JWT signing key pair on"))
            .count(),
        3,
        "{:#?}",
        steps(&p)
    );
    common::fakes::apply(&d, &hosts, &fake, &p)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // key_dir got its pair at the first placement; every host the same one.
    let keys = JwtKeys::load(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no pair in key_dir"));
    for m in &d.members {
        let disk = fake
            .disk(&m.address.to_string())
            .unwrap_or_else(|| panic!("no disk for {}", m.name));
        let at = etcdplan::hostfiles::auth_paths(m);
        let key = disk
            .files
            .get(&at.jwt_key)
            .unwrap_or_else(|| panic!("no key"));
        assert_eq!(key.0, keys.private_pem());
        assert_eq!(key.1, 0o600);
        let public = disk
            .files
            .get(&at.jwt_pub)
            .unwrap_or_else(|| panic!("no pub"));
        assert_eq!(
            (public.0.as_str(), public.1),
            (keys.public_pem.as_str(), 0o644)
        );
        let config = &disk
            .files
            .get(&m.config_file())
            .unwrap_or_else(|| panic!("no config"))
            .0;
        assert!(config.contains("auth-token: 'jwt,pub-key="), "{config}");
    }
    // The private key never went through the walk's log.
    let body: Vec<&str> = keys
        .private_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let log = fake.calls().join("\n");
    assert!(body.iter().all(|l| !log.contains(l)), "{log}");
    // The probe reads the placed digests back: nothing is left to do.
    let again = observe().await;
    assert!(again.steps.is_empty(), "{:#?}", steps(&again));
}
