//! Auth plans walked by the executor over the in-memory fakes: the calls
//! in the planned order (root first, `auth enable` last), each read back;
//! a failure half way leaves auth off and the walk says what was done, what
//! failed and what remains; passwords reach etcd and nothing else (no
//! event, error, report, plan or Debug shows them).
//!
//! The auth store is the fake cluster's own (`io::fake::FakeAuth`, refusing
//! as etcd does); its log of auth changes, the passwords it received and
//! its `fail_auth` hook are what these tests read and steer.

mod common;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::desired_with;
use etcdplan::config::{
    Access, Auth, AuthName, Desired, DesiredRole, DesiredUser, Login, Permission, SecretSource,
    Secrets, TokenKind,
};
use etcdplan::execute::{self, Context, Event};
use etcdplan::io::fake::FakeCluster;
use etcdplan::io::{EtcdErrorKind, HostMap};
use etcdplan::plan::{self, Plan};
use etcdplan::{diff, observe};

const ROOT_PW: &str = "root-pw-Zq81xT";
const APP_PW: &str = "app-pw-Hk27vB";

/// The message of the auth change a test makes etcd refuse.
const INJECTED: &str = "etcdserver: injected failure";

fn name(s: &str) -> AuthName {
    AuthName::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// The etcdfile's `[auth]` with passwords in files under `dir`.
fn auth(dir: &std::path::Path, enabled: bool) -> Auth {
    let file = |n: &str, pw: &str| {
        let p = dir.join(n);
        std::fs::write(&p, format!("{pw}\n")).unwrap_or_else(|e| panic!("{e}"));
        Login::Password(SecretSource::File(p))
    };
    Auth {
        enabled,
        root: file("root.pw", ROOT_PW),
        token: TokenKind::Simple,
        token_ttl: Duration::from_secs(300),
        prune: false,
        roles: vec![DesiredRole {
            name: name("app"),
            permissions: vec![Permission {
                key: "/app/".into(),
                prefix: true,
                access: Access::ReadWrite,
            }],
        }],
        users: vec![DesiredUser {
            name: name("app"),
            login: file("app.pw", APP_PW),
            roles: vec![name("app")],
        }],
    }
}

/// A running 3-member cluster on the fakes, with the etcdfile declaring `[auth]`.
fn setup(dir: &std::path::Path, enabled: bool) -> (Desired, FakeCluster, HostMap) {
    let mut d = desired_with(3, "");
    d.auth = Some(auth(dir, enabled));
    let fake = FakeCluster::running(&d, "3.5.16", 1);
    let hosts = fake.hosts(&d);
    (d, fake, hosts)
}

/// The plan the real planner makes from what observe reads.
async fn plan_now(d: &Desired, hosts: &HostMap, fake: &FakeCluster) -> Plan {
    let live = observe::observe(d, hosts, fake, &etcdplan::config::Secrets::read(d)).await;
    plan::build(d, &live, diff::diff(d, &live))
}

/// Walks `p` with the passwords the etcdfile names; every event's Debug
/// and JSON collected.
async fn walk(
    d: &Desired,
    hosts: &HostMap,
    fake: &FakeCluster,
    p: &Plan,
) -> (Result<execute::Report, execute::ApplyError>, Vec<String>) {
    let stop = AtomicBool::new(false);
    let ctx = Context {
        desired: d,
        hosts,
        etcd: fake,
        deadlines: common::quick(),
        advertised: Vec::new(),
        stop: &stop,
        tolerates: p.tolerates(),
        secrets: Secrets::read(d),
    };
    let mut events = Vec::new();
    let r = execute::apply(p, &ctx, &mut |e: Event| {
        events.push(format!(
            "{e:?} {}",
            serde_json::to_string(&e).unwrap_or_default()
        ));
    })
    .await;
    (r, events)
}

fn assert_no_password(what: &str, text: &str) {
    for pw in [ROOT_PW, APP_PW] {
        assert!(!text.contains(pw), "{what} shows a password: {text}");
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn enabling_runs_root_first_enable_last_and_the_next_plan_is_empty() {
    let dir = tmp();
    let (d, fake, hosts) = setup(dir.path(), true);
    let p = plan_now(&d, &hosts, &fake).await;
    assert!(p.applicable, "{:#?}", p.blockers);
    let (r, events) = walk(&d, &hosts, &fake, &p).await;
    let report = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fake.auth_calls(),
        [
            "role add root",
            "user add root (password)",
            "user grant-role root root",
            "role add app",
            "role grant-permission app LivePermission { key: [47, 97, 112, 112, 47], range_end: [47, 97, 112, 112, 48], access: ReadWrite }",
            "user add app (password)",
            "user grant-role app app",
            "auth enable",
        ]
    );
    assert!(fake.auth().enabled);
    // The passwords went to etcd, and only there.
    assert_eq!(fake.auth_passwords(), [ROOT_PW, APP_PW]);
    assert_no_password("events", &events.join("\n"));
    assert_no_password("report", &format!("{report:?}"));
    let human =
        etcdplan::render::plan_human(&p, &d, "etcdfile.toml", etcdplan::render::Style::PLAIN);
    assert_no_password("plan", &human);
    assert_no_password("plan JSON", &serde_json::to_string(&p).unwrap_or_default());
    assert_no_password("steps", &format!("{:?}", p.steps));
    assert_no_password("context secrets", &format!("{:?}", Secrets::read(&d)));
    // Each step read back: the outcome says so.
    assert!(
        events
            .iter()
            .any(|e| e.contains("role app: readwrite /app/ (prefix) read back")),
        "{events:#?}"
    );
    let again = plan_now(&d, &hosts, &fake).await;
    assert!(again.is_empty(), "{:#?}", again.auth);
}

#[tokio::test]
async fn a_failure_half_way_through_enabling_leaves_auth_off_and_says_what_remains() {
    let dir = tmp();
    let (d, fake, hosts) = setup(dir.path(), true);
    fake.fail_auth("user add app (password)", EtcdErrorKind::Other, INJECTED);
    let p = plan_now(&d, &hosts, &fake).await;
    let (r, events) = walk(&d, &hosts, &fake, &p).await;
    let Err(e) = r else {
        panic!("the walk should fail")
    };
    assert!(!fake.auth().enabled, "auth must stay off");
    assert!(!fake.auth_calls().iter().any(|c| c == "auth enable"));
    assert_eq!(e.index, 5);
    assert_eq!(
        e.description,
        format!(
            "user add app (password from {})",
            dir.path().join("app.pw").display()
        )
    );
    assert_eq!(
        e.done,
        [
            "role add root",
            format!(
                "user add root (password from {})",
                dir.path().join("root.pw").display()
            )
            .as_str(),
            "user grant-role root root",
            "role add app",
            "role grant-permission app readwrite /app/ (prefix)",
        ]
    );
    assert_eq!(
        e.remaining,
        [
            "user grant-role app app",
            "auth enable (etcdplan logs in as root from here on)"
        ]
    );
    assert!(e.to_string().contains(INJECTED), "{e}");
    assert_no_password("error", &format!("{e} {e:?}"));
    assert_no_password("events", &events.join("\n"));
    // The next plan picks up where it stopped, enable still last.
    fake.heal_auth();
    let next = plan_now(&d, &hosts, &fake).await;
    let steps: Vec<&str> = next.steps.iter().map(|s| s.description.as_str()).collect();
    assert_eq!(
        steps.last(),
        Some(&"auth enable (etcdplan logs in as root from here on)")
    );
    assert!(steps[0].starts_with("user passwd root"), "{steps:#?}");
    let (r, _) = walk(&d, &hosts, &fake, &next).await;
    r.unwrap_or_else(|e| panic!("{e}"));
    assert!(fake.auth().enabled);
    assert!(plan_now(&d, &hosts, &fake).await.is_empty());
}

#[tokio::test]
async fn enable_refused_by_etcd_leaves_auth_off() {
    let dir = tmp();
    let (d, fake, hosts) = setup(dir.path(), true);
    fake.fail_auth("auth enable", EtcdErrorKind::Other, INJECTED);
    let p = plan_now(&d, &hosts, &fake).await;
    let (r, _) = walk(&d, &hosts, &fake, &p).await;
    let e = r.err().unwrap_or_else(|| panic!("the walk should fail"));
    assert!(e.remaining.is_empty());
    assert_eq!(e.done.len(), p.steps.len() - 1);
    assert!(!fake.auth().enabled);
}

#[tokio::test]
async fn a_changed_password_is_set_and_checked_by_a_login() {
    let dir = tmp();
    let (d, fake, hosts) = setup(dir.path(), true);
    let p = plan_now(&d, &hosts, &fake).await;
    walk(&d, &hosts, &fake, &p)
        .await
        .0
        .unwrap_or_else(|e| panic!("{e}"));
    // Someone changed the app user's password by hand.
    let mut store = fake.auth();
    let app = store
        .users
        .get_mut("app")
        .unwrap_or_else(|| panic!("no app user"));
    app.password = Some("changed".into());
    fake.set_auth(store);
    let p = plan_now(&d, &hosts, &fake).await;
    let steps: Vec<&str> = p.steps.iter().map(|s| s.description.as_str()).collect();
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert!(steps[0].starts_with("user passwd app"), "{steps:#?}");
    let (r, events) = walk(&d, &hosts, &fake, &p).await;
    r.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        events
            .iter()
            .any(|e| e.contains("etcd accepts the new password of app")),
        "{events:#?}"
    );
    assert_no_password("events", &events.join("\n"));
    assert!(plan_now(&d, &hosts, &fake).await.is_empty());
}

#[tokio::test]
async fn disabling_goes_first() {
    let dir = tmp();
    let (d, fake, hosts) = setup(dir.path(), true);
    let p = plan_now(&d, &hosts, &fake).await;
    walk(&d, &hosts, &fake, &p)
        .await
        .0
        .unwrap_or_else(|e| panic!("{e}"));
    let mut off = d.clone();
    off.auth = Some(auth(dir.path(), false));
    if let Some(a) = off.auth.as_mut() {
        a.roles[0].permissions[0].access = Access::Read;
    }
    let before = fake.auth_calls().len();
    let p = plan_now(&off, &hosts, &fake).await;
    walk(&off, &hosts, &fake, &p)
        .await
        .0
        .unwrap_or_else(|e| panic!("{e}"));
    let log = fake.auth_calls();
    assert_eq!(log[before], "auth disable");
    assert!(
        log[before + 1].starts_with("role grant-permission app"),
        "{log:#?}"
    );
    assert!(!fake.auth().enabled);
}

#[tokio::test]
async fn a_password_not_read_on_this_machine_fails_the_step_before_any_call() {
    let dir = tmp();
    let (d, fake, hosts) = setup(dir.path(), true);
    let p = plan_now(&d, &hosts, &fake).await;
    std::fs::remove_file(dir.path().join("app.pw")).unwrap_or_else(|e| panic!("{e}"));
    let (r, _) = walk(&d, &hosts, &fake, &p).await;
    let e = r.err().unwrap_or_else(|| panic!("the walk should fail"));
    assert!(
        e.to_string().contains("was not read on this machine"),
        "{e}"
    );
    assert!(
        !fake
            .auth_calls()
            .iter()
            .any(|c| c.starts_with("user add app"))
    );
    assert!(!fake.auth().enabled);
}
