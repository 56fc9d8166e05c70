//! Auth plans walked by the executor over the in-memory fakes: the calls
//! in the planned order (root first, `auth enable` last), each read back;
//! a failure half way leaves auth off and the walk says what was done, what
//! failed and what remains; passwords reach etcd and nothing else (no
//! event, error, report, plan or Debug shows them).
//!
//! The fake cluster has no auth model yet, so this file wraps it: every
//! call goes to `FakeCluster` but the auth ones, which a small store here
//! answers as etcd does (enable needs root with the root role, one grant
//! per range, logins checked only while auth is on).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use async_trait::async_trait;
use common::desired_with;
use etcdplan::config::{
    Access, Auth, AuthName, Desired, DesiredRole, DesiredUser, Login, Permission, SecretSource,
    Secrets, TokenKind,
};
use etcdplan::execute::{self, Context, Event};
use etcdplan::io::fake::FakeCluster;
use etcdplan::io::{
    ApiAlarm, ApiMember, ApiStatus, AuthCall, DowngradeAction, EtcdApi, EtcdError, EtcdErrorKind,
    HostMap, Progress, RangePage,
};
use etcdplan::live::{
    ApiHashKv, AuthStore, LiveAuth, LivePermission, LiveRole, LiveUser, PasswordCheck,
};
use etcdplan::model::{Endpoint, MemberId, MinorVersion};
use etcdplan::plan::{self, Plan};
use etcdplan::{diff, observe};

const ROOT_PW: &str = "root-pw-Zq81xT";
const APP_PW: &str = "app-pw-Hk27vB";

/// etcd's auth store, as far as these tests need it.
#[derive(Debug, Default)]
struct Store {
    enabled: bool,
    /// user → (password, roles)
    users: BTreeMap<String, (Option<String>, BTreeSet<String>)>,
    roles: BTreeMap<String, Vec<LivePermission>>,
}

/// The fake cluster with an auth store in front of it.
struct AuthFake {
    inner: FakeCluster,
    store: Mutex<Store>,
    /// Every auth call, as its Debug shows it.
    log: Mutex<Vec<String>>,
    /// The Debug of a call that fails (etcd refusing it).
    fail: Mutex<Option<String>>,
    /// Every password sent, for the check that nothing else shows one.
    sent: Mutex<Vec<String>>,
}

fn refuse(ep: &Endpoint, message: &str) -> EtcdError {
    EtcdError::Call {
        endpoint: ep.to_string(),
        kind: EtcdErrorKind::Other,
        message: message.into(),
    }
}

impl AuthFake {
    fn new(inner: FakeCluster) -> Self {
        Self {
            inner,
            store: Mutex::new(Store::default()),
            log: Mutex::new(Vec::new()),
            fail: Mutex::new(None),
            sent: Mutex::new(Vec::new()),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn fail_on(&self, call: &str) {
        if let Ok(mut f) = self.fail.lock() {
            *f = Some(call.into());
        }
    }

    /// The store as observe would report it, each declared password tried.
    fn observed(&self, passwords: &[(&str, &str)]) -> LiveAuth {
        let s = self.store();
        let users = s
            .users
            .iter()
            .map(|(name, (pw, roles))| LiveUser {
                name: name.clone(),
                roles: roles.iter().cloned().collect(),
                password: match passwords.iter().find(|(u, _)| u == name) {
                    Some(_) if !s.enabled => PasswordCheck::NotChecked,
                    Some((_, p)) if pw.as_deref() == Some(*p) => PasswordCheck::Accepted,
                    Some(_) => PasswordCheck::Refused,
                    None => PasswordCheck::NotChecked,
                },
            })
            .collect();
        let roles = s
            .roles
            .iter()
            .map(|(name, perms)| LiveRole {
                name: name.clone(),
                permissions: perms.clone(),
            })
            .collect();
        LiveAuth {
            enabled: s.enabled,
            store: Ok(AuthStore { users, roles }),
        }
    }

    fn apply(&self, ep: &Endpoint, call: &AuthCall<'_>) -> Result<(), EtcdError> {
        let mut s = self.store();
        match *call {
            AuthCall::Enable => {
                let ok = s.users.get("root").is_some_and(|(_, r)| r.contains("root"));
                if !ok {
                    return Err(refuse(ep, "etcdserver: root user does not have root role"));
                }
                s.enabled = true;
            }
            AuthCall::Disable => s.enabled = false,
            AuthCall::RoleAdd { role } => {
                if s.roles.insert(role.into(), Vec::new()).is_some() {
                    return Err(refuse(ep, "etcdserver: role name already exists"));
                }
            }
            AuthCall::RoleDelete { role } => {
                s.roles.remove(role);
                for (_, roles) in s.users.values_mut() {
                    roles.remove(role);
                }
            }
            AuthCall::RoleGrant { role, permission } => {
                let Some(perms) = s.roles.get_mut(role) else {
                    return Err(refuse(ep, "etcdserver: role name not found"));
                };
                perms.retain(|p| !(p.key == permission.key && p.range_end == permission.range_end));
                perms.push(permission.clone());
                perms.sort();
            }
            AuthCall::RoleRevoke { role, permission } => {
                if let Some(perms) = s.roles.get_mut(role) {
                    perms.retain(|p| {
                        !(p.key == permission.key && p.range_end == permission.range_end)
                    });
                }
            }
            AuthCall::UserAdd { user: u, password } => {
                if s.users.contains_key(u) {
                    return Err(refuse(ep, "etcdserver: user name already exists"));
                }
                s.users
                    .insert(u.into(), (password.map(str::to_owned), BTreeSet::new()));
            }
            AuthCall::UserDelete { user: u } => {
                s.users.remove(u);
            }
            AuthCall::UserPassword { user: u, password } => {
                let Some(x) = s.users.get_mut(u) else {
                    return Err(refuse(ep, "etcdserver: user name not found"));
                };
                x.0 = Some(password.into());
            }
            AuthCall::UserGrant { user: u, role } => {
                if role != "root" && !s.roles.contains_key(role) {
                    return Err(refuse(ep, "etcdserver: role name not found"));
                }
                let Some(x) = s.users.get_mut(u) else {
                    return Err(refuse(ep, "etcdserver: user name not found"));
                };
                x.1.insert(role.into());
            }
            AuthCall::UserRevoke { user: u, role } => {
                if let Some(x) = s.users.get_mut(u) {
                    x.1.remove(role);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EtcdApi for AuthFake {
    async fn member_list(&self, ep: &Endpoint) -> Result<Vec<ApiMember>, EtcdError> {
        EtcdApi::member_list(&self.inner, ep).await
    }
    async fn status(&self, ep: &Endpoint) -> Result<ApiStatus, EtcdError> {
        EtcdApi::status(&self.inner, ep).await
    }
    async fn alarms(&self, ep: &Endpoint) -> Result<Vec<ApiAlarm>, EtcdError> {
        EtcdApi::alarms(&self.inner, ep).await
    }
    async fn quorum_read(&self, ep: &Endpoint) -> Result<(), EtcdError> {
        EtcdApi::quorum_read(&self.inner, ep).await
    }
    async fn move_leader(&self, ep: &Endpoint, to: MemberId) -> Result<(), EtcdError> {
        EtcdApi::move_leader(&self.inner, ep, to).await
    }
    async fn add_learner(&self, ep: &Endpoint, peer: &Endpoint) -> Result<MemberId, EtcdError> {
        EtcdApi::add_learner(&self.inner, ep, peer).await
    }
    async fn promote(&self, ep: &Endpoint, id: MemberId) -> Result<(), EtcdError> {
        EtcdApi::promote(&self.inner, ep, id).await
    }
    async fn remove(&self, ep: &Endpoint, id: MemberId) -> Result<(), EtcdError> {
        EtcdApi::remove(&self.inner, ep, id).await
    }
    async fn update_peer(
        &self,
        ep: &Endpoint,
        id: MemberId,
        peer: &Endpoint,
    ) -> Result<(), EtcdError> {
        EtcdApi::update_peer(&self.inner, ep, id, peer).await
    }
    async fn create_leased(
        &self,
        ep: &Endpoint,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Result<i64, String>, EtcdError> {
        EtcdApi::create_leased(&self.inner, ep, key, value, ttl).await
    }
    async fn keep_alive(&self, ep: &Endpoint, lease: i64) -> Result<(), EtcdError> {
        EtcdApi::keep_alive(&self.inner, ep, lease).await
    }
    async fn delete_if(
        &self,
        ep: &Endpoint,
        key: &str,
        value: &str,
        lease: Option<i64>,
    ) -> Result<bool, EtcdError> {
        EtcdApi::delete_if(&self.inner, ep, key, value, lease).await
    }
    async fn range_page(
        &self,
        ep: &Endpoint,
        from: &[u8],
        revision: i64,
        limit: i64,
    ) -> Result<RangePage, EtcdError> {
        EtcdApi::range_page(&self.inner, ep, from, revision, limit).await
    }
    async fn get_value(&self, ep: &Endpoint, key: &str) -> Result<Option<String>, EtcdError> {
        EtcdApi::get_value(&self.inner, ep, key).await
    }
    async fn snapshot(&self, ep: &Endpoint, deadline: Duration) -> Result<Vec<u8>, EtcdError> {
        EtcdApi::snapshot(&self.inner, ep, deadline).await
    }
    async fn snapshot_with_progress(
        &self,
        ep: &Endpoint,
        deadline: Duration,
        progress: &Progress,
    ) -> Result<Vec<u8>, EtcdError> {
        EtcdApi::snapshot_with_progress(&self.inner, ep, deadline, progress).await
    }
    async fn downgrade(
        &self,
        ep: &Endpoint,
        action: DowngradeAction,
        target: MinorVersion,
    ) -> Result<Option<MinorVersion>, EtcdError> {
        EtcdApi::downgrade(&self.inner, ep, action, target).await
    }
    async fn cluster_version(&self, ep: &Endpoint) -> Result<Option<MinorVersion>, EtcdError> {
        EtcdApi::cluster_version(&self.inner, ep).await
    }
    async fn compact(&self, ep: &Endpoint, rev: i64, deadline: Duration) -> Result<(), EtcdError> {
        EtcdApi::compact(&self.inner, ep, rev, deadline).await
    }
    async fn defragment(&self, ep: &Endpoint, deadline: Duration) -> Result<(), EtcdError> {
        EtcdApi::defragment(&self.inner, ep, deadline).await
    }
    async fn alarm_disarm(&self, ep: &Endpoint, alarm: &ApiAlarm) -> Result<(), EtcdError> {
        EtcdApi::alarm_disarm(&self.inner, ep, alarm).await
    }
    async fn put(&self, ep: &Endpoint, key: &str, value: &str) -> Result<(), EtcdError> {
        EtcdApi::put(&self.inner, ep, key, value).await
    }
    async fn prefix_values(
        &self,
        ep: &Endpoint,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, EtcdError> {
        EtcdApi::prefix_values(&self.inner, ep, prefix, limit).await
    }
    async fn delete_key(&self, ep: &Endpoint, key: &str) -> Result<(), EtcdError> {
        EtcdApi::delete_key(&self.inner, ep, key).await
    }
    async fn hash_kv(&self, ep: &Endpoint, revision: i64) -> Result<ApiHashKv, EtcdError> {
        EtcdApi::hash_kv(&self.inner, ep, revision).await
    }
    async fn metrics(&self, ep: &Endpoint) -> Result<String, EtcdError> {
        EtcdApi::metrics(&self.inner, ep).await
    }

    async fn auth_enabled(&self, _ep: &Endpoint) -> Result<bool, EtcdError> {
        Ok(self.store().enabled)
    }
    async fn auth_users(&self, _ep: &Endpoint) -> Result<Vec<(String, Vec<String>)>, EtcdError> {
        Ok(self
            .store()
            .users
            .iter()
            .map(|(n, (_, r))| (n.clone(), r.iter().cloned().collect()))
            .collect())
    }
    async fn auth_roles(&self, _ep: &Endpoint) -> Result<Vec<LiveRole>, EtcdError> {
        Ok(self
            .store()
            .roles
            .iter()
            .map(|(n, p)| LiveRole {
                name: n.clone(),
                permissions: p.clone(),
            })
            .collect())
    }
    async fn login_accepted(
        &self,
        ep: &Endpoint,
        user: &str,
        password: &str,
    ) -> Result<bool, EtcdError> {
        let s = self.store();
        if !s.enabled {
            return Err(refuse(ep, "etcdserver: authentication is not enabled"));
        }
        Ok(s.users
            .get(user)
            .is_some_and(|(pw, _)| pw.as_deref() == Some(password)))
    }
    async fn auth_change(&self, ep: &Endpoint, call: &AuthCall<'_>) -> Result<(), EtcdError> {
        let shown = format!("{call:?}");
        if let Ok(mut l) = self.log.lock() {
            l.push(shown.clone());
        }
        if let AuthCall::UserAdd {
            password: Some(p), ..
        }
        | AuthCall::UserPassword { password: p, .. } = *call
            && let Ok(mut sent) = self.sent.lock()
        {
            sent.push(p.to_owned());
        }
        let fail = self.fail.lock().ok().and_then(|f| f.clone());
        if fail.as_deref() == Some(shown.as_str()) {
            return Err(refuse(ep, "etcdserver: injected failure"));
        }
        self.apply(ep, call)
    }
}

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
fn setup(dir: &std::path::Path, enabled: bool) -> (Desired, AuthFake, HostMap) {
    let mut d = desired_with(3, "");
    d.auth = Some(auth(dir, enabled));
    let inner = FakeCluster::running(&d, "3.5.16", 1);
    let hosts = inner.hosts(&d);
    (d, AuthFake::new(inner), hosts)
}

/// The plan the real planner makes from what observe reads, the auth store
/// read from the wrapper (observe does not read auth yet).
async fn plan_now(d: &Desired, hosts: &HostMap, fake: &AuthFake) -> Plan {
    let live = observe::observe(d, hosts, fake, &etcdplan::config::Secrets::read(d)).await;
    plan::build(d, &live, diff::diff(d, &live))
}

/// Walks `p` with the passwords the etcdfile names; every event's Debug
/// and JSON collected.
async fn walk(
    d: &Desired,
    hosts: &HostMap,
    fake: &AuthFake,
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
        fake.log(),
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
    assert!(fake.store().enabled);
    // The passwords went to etcd, and only there.
    let sent = fake.sent.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(sent, [ROOT_PW, APP_PW]);
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
    fake.fail_on("user add app (password)");
    let p = plan_now(&d, &hosts, &fake).await;
    let (r, events) = walk(&d, &hosts, &fake, &p).await;
    let Err(e) = r else {
        panic!("the walk should fail")
    };
    assert!(!fake.store().enabled, "auth must stay off");
    assert!(!fake.log().iter().any(|c| c == "auth enable"));
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
    assert!(e.to_string().contains("injected failure"), "{e}");
    assert_no_password("error", &format!("{e} {e:?}"));
    assert_no_password("events", &events.join("\n"));
    // The next plan picks up where it stopped, enable still last.
    if let Ok(mut f) = fake.fail.lock() {
        *f = None;
    }
    let next = plan_now(&d, &hosts, &fake).await;
    let steps: Vec<&str> = next.steps.iter().map(|s| s.description.as_str()).collect();
    assert_eq!(
        steps.last(),
        Some(&"auth enable (etcdplan logs in as root from here on)")
    );
    assert!(steps[0].starts_with("user passwd root"), "{steps:#?}");
    let (r, _) = walk(&d, &hosts, &fake, &next).await;
    r.unwrap_or_else(|e| panic!("{e}"));
    assert!(fake.store().enabled);
    assert!(plan_now(&d, &hosts, &fake).await.is_empty());
}

#[tokio::test]
async fn enable_refused_by_etcd_leaves_auth_off() {
    let dir = tmp();
    let (d, fake, hosts) = setup(dir.path(), true);
    fake.fail_on("auth enable");
    let p = plan_now(&d, &hosts, &fake).await;
    let (r, _) = walk(&d, &hosts, &fake, &p).await;
    let e = r.err().unwrap_or_else(|| panic!("the walk should fail"));
    assert!(e.remaining.is_empty());
    assert_eq!(e.done.len(), p.steps.len() - 1);
    assert!(!fake.store().enabled);
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
    if let Some(u) = fake.store().users.get_mut("app") {
        u.0 = Some("changed".into());
    }
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
    let before = fake.log().len();
    let p = plan_now(&off, &hosts, &fake).await;
    walk(&off, &hosts, &fake, &p)
        .await
        .0
        .unwrap_or_else(|e| panic!("{e}"));
    let log = fake.log();
    assert_eq!(log[before], "auth disable");
    assert!(
        log[before + 1].starts_with("role grant-permission app"),
        "{log:#?}"
    );
    assert!(!fake.store().enabled);
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
    assert!(!fake.log().iter().any(|c| c.starts_with("user add app")));
    assert!(!fake.store().enabled);
}
