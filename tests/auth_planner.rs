//! `[auth]` planned against described auth stores: enabling on a running
//! cluster (root first, `auth enable` last), changes on a cluster that has
//! auth on (after the member steps), disabling (first), a bootstrap, the
//! plan that settles once applied, and the blocker when the store cannot be
//! read as root. Human and JSON goldens; no password in either.

mod common;

use common::plans::{kinds, plan_for, running};
use common::{HostSpec, desired_with, live};
use etcdplan::config::{
    Access, Auth, AuthName, Desired, DesiredRole, DesiredUser, Login, Permission, SecretSource,
    TokenKind,
};
use etcdplan::live::{AuthStore, LiveAuth, LivePermission, LiveRole, LiveUser, PasswordCheck};
use etcdplan::observe::Live;
use etcdplan::plan::{Plan, Step};

/// The plan's goldens, named after this file.
fn snapshot(name: &str, p: &Plan, d: &Desired) {
    crate::plan_snapshot!(name, p, d);
}

fn name(s: &str) -> AuthName {
    AuthName::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn env(v: &str) -> Login {
    Login::Password(SecretSource::Env(v.into()))
}

fn perm(key: &str, prefix: bool, access: Access) -> Permission {
    Permission {
        key: key.into(),
        prefix,
        access,
    }
}

/// The example: root by password, an app role on `/app/`, a
/// read-only role, the app user with a password and a reader by certificate.
fn auth(enabled: bool) -> Auth {
    Auth {
        enabled,
        root: env("ETCD_ROOT_PASSWORD"),
        token: TokenKind::Simple,
        token_ttl: std::time::Duration::from_secs(300),
        prune: false,
        roles: vec![
            DesiredRole {
                name: name("app"),
                permissions: vec![perm("/app/", true, Access::ReadWrite)],
            },
            DesiredRole {
                name: name("reader"),
                permissions: vec![
                    perm("/app/", true, Access::Read),
                    perm("/motd", false, Access::Read),
                ],
            },
        ],
        users: vec![
            DesiredUser {
                name: name("app"),
                login: env("APP_PASSWORD"),
                roles: vec![name("app")],
            },
            DesiredUser {
                name: name("reader"),
                login: Login::Certificate,
                roles: vec![name("reader")],
            },
        ],
    }
}

fn with_auth(mut d: Desired, a: Auth) -> Desired {
    d.auth = Some(a);
    d
}

fn user(n: &str, roles: &[&str], password: PasswordCheck) -> LiveUser {
    LiveUser {
        name: n.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        password,
    }
}

fn role(n: &str, perms: &[Permission]) -> LiveRole {
    LiveRole {
        name: n.into(),
        permissions: perms.iter().map(LivePermission::of).collect(),
    }
}

/// The store an apply of [`auth`]`(true)` leaves, every password accepted.
fn applied() -> AuthStore {
    AuthStore {
        users: vec![
            user("app", &["app"], PasswordCheck::Accepted),
            user("reader", &["reader"], PasswordCheck::NotChecked),
            user("root", &["root"], PasswordCheck::Accepted),
        ],
        roles: vec![
            role("app", &[perm("/app/", true, Access::ReadWrite)]),
            role(
                "reader",
                &[
                    perm("/app/", true, Access::Read),
                    perm("/motd", false, Access::Read),
                ],
            ),
            role("root", &[]),
        ],
    }
}

fn observed(mut l: Live, enabled: bool, store: Result<AuthStore, String>) -> Live {
    l.auth = Some(LiveAuth { enabled, store });
    l
}

/// The auth steps of a plan, as described.
fn auth_steps(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .filter(|s| matches!(s.step, Step::Auth { .. }))
        .map(|s| s.description.clone())
        .collect()
}

/// Neither the rendered plan, its JSON nor the Debug of its steps holds
/// `secret` (the planner never has a password: the steps name sources).
fn assert_no_secret(p: &Plan, d: &Desired, secret: &str) {
    let human = etcdplan::render::plan_human(p, d, "etcdfile.toml", etcdplan::render::Style::PLAIN);
    let json = serde_json::to_string(p).unwrap_or_default();
    let debug = format!("{:?} {:?}", p.steps, p.auth);
    for (what, text) in [("human", human), ("json", json), ("debug", debug)] {
        assert!(!text.contains(secret), "{what} shows the password: {text}");
    }
}

#[test]
fn enabling_on_a_running_cluster_adds_root_then_roles_and_users_and_enables_last() {
    let d = with_auth(desired_with(3, ""), auth(true));
    let l = observed(running(&d), false, Ok(AuthStore::default()));
    let p = plan_for(&d, &l);
    assert!(p.applicable, "{:#?}", p.blockers);
    assert_eq!(
        auth_steps(&p),
        [
            "role add root",
            "user add root (password from $ETCD_ROOT_PASSWORD)",
            "user grant-role root root",
            "role add app",
            "role grant-permission app readwrite /app/ (prefix)",
            "role add reader",
            "role grant-permission reader read /app/ (prefix)",
            "role grant-permission reader read /motd",
            "user add app (password from $APP_PASSWORD)",
            "user grant-role app app",
            "user add reader (no password: certificate login)",
            "user grant-role reader reader",
            "auth enable (etcdplan logs in as root from here on)",
        ]
    );
    // Only auth steps, one chain, none disruptive.
    assert_eq!(p.steps.len(), 13);
    for (i, s) in p.steps.iter().enumerate() {
        assert!(!s.disruptive);
        let want: Vec<usize> = if i == 0 { vec![] } else { vec![i - 1] };
        assert_eq!(s.after, want, "step {i}");
    }
    assert_no_secret(&p, &d, "ETCD_ROOT_PASSWORD=");
    snapshot("enable", &p, &d);
}

#[test]
fn changes_on_a_cluster_with_auth_on_run_after_the_member_steps() {
    let old = desired_with(3, "");
    let d = with_auth(
        desired_with(3, "quota_backend_bytes = \"4GiB\"\n"),
        auth(true),
    );
    let specs: Vec<HostSpec> = (0..3).map(|_| HostSpec::running_from(&old)).collect();
    let l = live(&old, &specs, Some(common::cluster(&old, &[true; 3], 1)));
    let mut store = applied();
    // The app role reads only; an old grant; the app password changed; a user by hand.
    store.roles[0] = role(
        "app",
        &[
            perm("/app/", true, Access::Read),
            perm("/tmp/", true, Access::Write),
        ],
    );
    store.users[0].password = PasswordCheck::Refused;
    store
        .users
        .push(user("ops", &["root"], PasswordCheck::NotChecked));
    let l = observed(l, true, Ok(store));
    let p = plan_for(&d, &l);
    assert!(p.applicable, "{:#?}", p.blockers);
    let all = kinds(&p);
    let first_auth = all
        .iter()
        .position(|k| k.starts_with("role ") || k.starts_with("user "))
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert!(
        all[..first_auth].iter().any(|k| k.contains("restart ")),
        "{all:#?}"
    );
    assert_eq!(
        all[first_auth..],
        [
            "role grant-permission app readwrite /app/ (prefix)",
            "role revoke-permission app write /tmp/ (prefix)",
            "user passwd app (password from $APP_PASSWORD)",
        ]
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("user ops") && n.contains("prune = true")),
        "{:#?}",
        p.notes
    );
    snapshot("changes-after-restarts", &p, &d);
}

#[test]
fn disabling_turns_auth_off_first() {
    let d = with_auth(desired_with(3, ""), auth(false));
    let mut store = applied();
    store.users.retain(|u| u.name != "reader");
    let l = observed(running(&d), true, Ok(store));
    let p = plan_for(&d, &l);
    assert_eq!(
        auth_steps(&p),
        [
            "auth disable",
            "user add reader (no password: certificate login)",
            "user grant-role reader reader",
        ]
    );
    snapshot("disable", &p, &d);
}

#[test]
fn a_bootstrap_sets_auth_up_after_the_members_are_healthy() {
    let d = with_auth(desired_with(3, ""), auth(true));
    let specs: Vec<HostSpec> = (0..3).map(|_| HostSpec::empty()).collect();
    let l = live(&d, &specs, None);
    let p = plan_for(&d, &l);
    assert!(p.applicable, "{:#?}", p.blockers);
    let all = kinds(&p);
    let first_auth = all
        .iter()
        .position(|k| k == "role add root")
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert!(first_auth > 0);
    assert!(
        all[..first_auth]
            .iter()
            .any(|k| k.starts_with("wait until")),
        "{all:#?}"
    );
    assert_eq!(
        all.last().map(String::as_str),
        Some("auth enable (etcdplan logs in as root from here on)")
    );
    // Every auth step waits for every step before it.
    let idx = p.steps[first_auth].index;
    assert!(p.steps[first_auth].after.iter().all(|&a| a < idx));
    assert!(!p.steps[first_auth].after.is_empty());
}

#[test]
fn the_store_an_apply_leaves_plans_nothing() {
    let d = with_auth(desired_with(3, ""), auth(true));
    let l = observed(running(&d), true, Ok(applied()));
    let p = plan_for(&d, &l);
    assert!(p.auth.is_empty(), "{:#?}", p.auth);
    assert!(p.steps.is_empty(), "{:#?}", kinds(&p));
    let human =
        etcdplan::render::plan_human(&p, &d, "etcdfile.toml", etcdplan::render::Style::PLAIN);
    assert!(human.starts_with("No changes."), "{human}");
}

#[test]
fn no_auth_section_leaves_an_enabled_cluster_as_found() {
    let d = desired_with(3, "");
    let l = observed(running(&d), true, Err("authentication failed".into()));
    let p = plan_for(&d, &l);
    assert!(p.auth.is_empty() && p.blockers.is_empty());
}

#[test]
fn a_store_root_cannot_read_blocks_the_plan() {
    let d = with_auth(desired_with(3, ""), auth(true));
    let l = observed(
        running(&d),
        true,
        Err("etcdserver: authentication failed, invalid user ID or password".into()),
    );
    let p = plan_for(&d, &l);
    assert!(!p.applicable);
    assert!(p.auth.is_empty());
    snapshot("root-refused", &p, &d);
}

#[test]
fn a_saved_plan_reads_its_auth_steps_back() {
    let d = with_auth(desired_with(3, ""), auth(true));
    let l = observed(running(&d), false, Ok(AuthStore::default()));
    let p = plan_for(&d, &l);
    let text = serde_json::to_string(&p).unwrap_or_else(|e| panic!("{e}"));
    let back: Plan = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.steps, p.steps);
    assert_eq!(back.auth, p.auth);
}

#[test]
fn a_saved_plan_is_refused_once_the_auth_store_changed() {
    let d = with_auth(desired_with(3, ""), auth(true));
    let before = observed(running(&d), true, Ok(applied()));
    let mut store = applied();
    store.users[0].password = PasswordCheck::Refused;
    let after = observed(running(&d), true, Ok(store));
    let (fb, fa) = (
        etcdplan::live::fingerprint(&before),
        etcdplan::live::fingerprint(&after),
    );
    assert_ne!(fb.get("auth"), fa.get("auth"));
    // Without auth observed, the fingerprint has no auth fact (old plans match).
    assert!(!etcdplan::live::fingerprint(&running(&d)).contains_key("auth"));
}

#[test]
fn sending_passwords_to_etcd_3_4_says_they_reach_its_wal_in_clear() {
    // The fixtures run 3.4.23.
    let d = with_auth(desired_with(3, ""), auth(true));
    let l = observed(running(&d), false, Ok(AuthStore::default()));
    let wal_note = |p: &Plan| p.notes.iter().any(|n| n.contains("WAL in clear"));
    let p = plan_for(&d, &l);
    assert!(wal_note(&p), "{:#?}", p.notes);
    let mut newer = l.clone();
    for m in newer.cluster.iter_mut().flat_map(|c| &mut c.members) {
        if let Ok(s) = &mut m.status {
            s.reported.version = etcdplan::model::EtcdVersion::parse("3.5.30");
        }
    }
    assert!(!wal_note(&plan_for(&d, &newer)), "the members run 3.5");
    // Nothing sent, nothing said: the store an apply leaves.
    let settled = observed(running(&d), true, Ok(applied()));
    assert!(!wal_note(&plan_for(&d, &settled)));
}

#[test]
fn members_that_refuse_etcdplan_for_want_of_a_login_block_every_change() {
    // Without [auth], on a cluster whose auth etcdplan cannot log in to:
    // the members answer, so they must not be planned as down.
    let d = desired_with(3, "");
    let mut l = Live {
        cluster: None,
        ..running(&d)
    };
    l.auth_refused = Some("MemberList: etcdserver: user name is empty".into());
    let p = plan_for(&d, &l);
    assert!(!p.applicable);
    assert!(p.steps.is_empty(), "{:#?}", p.steps);
    let b = &p.blockers[0];
    assert!(b.message.contains("user name is empty"), "{b:?}");
    assert!(b.help.contains("--user root"), "{b:?}");
    // With [auth], the help points at root's declared login.
    let with = with_auth(desired_with(3, ""), auth(true));
    let p = plan_for(&with, &l);
    assert!(
        p.blockers[0].help.contains("root_password_env"),
        "{:?}",
        p.blockers
    );
}
