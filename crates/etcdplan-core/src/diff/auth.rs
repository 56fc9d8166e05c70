//! `[auth]` × etcd's auth store → the auth changes: roles and their grants,
//! users and their roles and passwords, auth turned on or off.
//!
//! Passwords never appear here: a change names the user and where its
//! password is ([`SecretSource`]); the executor reads it on this machine.
//! etcd checks no password while auth is off, so a declared password is set
//! when its user is added or when auth is turned on, and afterwards only
//! when etcd refuses it (observe tries a login): a plan is empty once applied.

use std::fmt;

use super::Blocker;
use crate::config::{Auth, AuthName, Login, Permission, ROOT, SecretSource};
use crate::live::{AuthStore, LiveAuth, LivePermission, PasswordCheck};

/// One change of etcd's authentication, with why it is made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthChange {
    /// What changes (serialized as `op` and its fields).
    #[serde(flatten)]
    pub op: AuthOp,
    /// Why, in one line.
    pub reason: String,
}

/// One call on etcd's auth store (etcdctl's `user …`, `role …`, `auth …`).
/// Names are etcd's own strings (undeclared ones come from the store).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AuthOp {
    /// `auth enable`: root with the root role must exist.
    Enable,
    /// `auth disable`.
    Disable,
    /// `role add`.
    AddRole {
        /// The role.
        role: String,
    },
    /// `role delete`.
    DeleteRole {
        /// The role.
        role: String,
    },
    /// `role grant-permission`; a grant on a range the role has already
    /// replaces its access (etcd keeps one grant per range).
    Grant {
        /// The role.
        role: String,
        /// The grant, as the etcdfile declares it.
        permission: Permission,
    },
    /// `role revoke-permission` (by key and range end).
    Revoke {
        /// The role.
        role: String,
        /// The grant as etcd stores it.
        permission: LivePermission,
    },
    /// `user add`, with the password from `password` (read by the executor)
    /// or none: a user that logs in by its certificate's CN.
    AddUser {
        /// The user.
        user: String,
        /// Where its password is; None for a certificate login.
        password: Option<SecretSource>,
    },
    /// `user delete`.
    DeleteUser {
        /// The user.
        user: String,
    },
    /// `user grant-role`.
    GrantRole {
        /// The user.
        user: String,
        /// The role.
        role: String,
    },
    /// `user revoke-role`.
    RevokeRole {
        /// The user.
        user: String,
        /// The role.
        role: String,
    },
    /// `user passwd`, with the password from `source`.
    SetPassword {
        /// The user.
        user: String,
        /// Where its password is.
        source: SecretSource,
    },
}

impl AuthOp {
    /// The symbol of the plan: `+` adds, `-` removes, `~` changes.
    pub fn symbol(&self) -> &'static str {
        match self {
            Self::AddRole { .. } | Self::AddUser { .. } => "+",
            Self::DeleteRole { .. } | Self::DeleteUser { .. } => "-",
            Self::Enable
            | Self::Disable
            | Self::Grant { .. }
            | Self::Revoke { .. }
            | Self::GrantRole { .. }
            | Self::RevokeRole { .. }
            | Self::SetPassword { .. } => "~",
        }
    }
}

/// The plan's words: `user app`, `role app: + readwrite /app/ (prefix)`,
/// `user app: password`, `auth: enable` (never a password).
impl fmt::Display for AuthOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enable => f.write_str("auth: enable"),
            Self::Disable => f.write_str("auth: disable"),
            Self::AddRole { role } | Self::DeleteRole { role } => write!(f, "role {role}"),
            Self::Grant { role, permission } => {
                write!(
                    f,
                    "role {role}: + {}",
                    shown(&LivePermission::of(permission))
                )
            }
            Self::Revoke { role, permission } => {
                write!(f, "role {role}: - {}", shown(permission))
            }
            Self::AddUser { user, password } => {
                write!(f, "user {user}")?;
                if password.is_none() {
                    f.write_str(" (certificate login)")?;
                }
                Ok(())
            }
            Self::DeleteUser { user } => write!(f, "user {user}"),
            Self::GrantRole { user, role } => write!(f, "user {user}: + role {role}"),
            Self::RevokeRole { user, role } => write!(f, "user {user}: - role {role}"),
            Self::SetPassword { user, .. } => write!(f, "user {user}: password"),
        }
    }
}

/// A grant in the etcdfile's words (`readwrite /app/ (prefix)`), or as the
/// range etcd stores when the etcdfile could not write it.
pub fn shown(p: &LivePermission) -> String {
    match p.as_declared() {
        Some(d) if d.prefix => format!("{} {} (prefix)", d.access.word(), d.key),
        Some(d) => format!("{} {}", d.access.word(), d.key),
        None => format!(
            "{} [{}, {})",
            p.access.word(),
            String::from_utf8_lossy(&p.key).escape_debug(),
            String::from_utf8_lossy(&p.range_end).escape_debug()
        ),
    }
}

/// What the auth diff found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthDiff {
    /// The changes, in the order they must run (`auth disable` first,
    /// `auth enable` last).
    pub changes: Vec<AuthChange>,
    /// What stops the plan.
    pub blockers: Vec<Blocker>,
    /// What the operator should know.
    pub notes: Vec<String>,
}

/// The auth changes `[auth]` (`want`) asks of the store as observed
/// (`live`; None: not read). No `[auth]`: none (auth is left as found).
/// `bootstrap`: the cluster does not exist yet, so its store will be empty
/// and off.
pub fn diff(want: Option<&Auth>, live: Option<&LiveAuth>, bootstrap: bool) -> AuthDiff {
    let mut out = AuthDiff::default();
    let Some(want) = want else {
        return out;
    };
    let empty = AuthStore::default();
    let (on, store) = match live {
        Some(la) => match &la.store {
            Ok(s) => (la.enabled, s),
            Err(e) => {
                out.blockers.push(Blocker {
                    member: None,
                    message: if la.enabled {
                        format!("auth is on and etcd's auth store could not be read as root: {e}")
                    } else {
                        format!("etcd's auth store could not be read: {e}")
                    },
                    help: "is the root password right? etcdplan logs in as root with the password from root_password_env or root_password_file (or with a certificate whose CN is root); set the one etcd has and plan again; nothing was changed".into(),
                });
                return out;
            }
        },
        None if bootstrap => (false, &empty),
        None => {
            out.notes.push(
                "[auth] is planned once etcd's auth store can be read (no member answered it): auth is left as found by this plan".into(),
            );
            return out;
        }
    };
    let enabling = want.enabled && !on;
    let mut ch = Changes::default();
    if on && !want.enabled {
        ch.push(
            AuthOp::Disable,
            "[auth] enabled = false: auth is turned off first, before the store changes",
        );
    }
    if want.enabled {
        root(want, store, enabling, &mut ch);
    }
    for role in &want.roles {
        declared_role(role, store, &mut ch);
    }
    for user in &want.users {
        declared_user(user, store, enabling, &mut ch);
    }
    undeclared(want, store, &mut ch, &mut out.notes);
    if enabling {
        ch.push(
            AuthOp::Enable,
            "[auth] enabled = true: turned on last, once root and every declared user and role are in place",
        );
    }
    out.changes = ch.0;
    out
}

/// The changes in the order they are found.
#[derive(Default)]
struct Changes(Vec<AuthChange>);

impl Changes {
    fn push(&mut self, op: AuthOp, reason: impl Into<String>) {
        self.0.push(AuthChange {
            op,
            reason: reason.into(),
        });
    }
}

/// The password source of a login, if it has one.
fn source(login: &Login) -> Option<SecretSource> {
    match login {
        Login::Password(s) => Some(s.clone()),
        Login::Certificate => None,
    }
}

/// The password of an existing user: set when etcd refuses it, or when auth
/// is turned on (etcd could not check it while auth was off).
fn password(user: &str, login: &Login, check: PasswordCheck, enabling: bool, ch: &mut Changes) {
    let Some(src) = source(login) else {
        return;
    };
    let reason = match check {
        PasswordCheck::Refused => "etcd refused the declared password: it is set again",
        PasswordCheck::NotChecked if enabling => {
            "etcd checks no password while auth is off: the declared one is set before auth is turned on"
        }
        PasswordCheck::Accepted | PasswordCheck::NotChecked => return,
    };
    ch.push(
        AuthOp::SetPassword {
            user: user.to_owned(),
            source: src,
        },
        reason,
    );
}

/// Root, which `auth enable` requires: the user with the root role (the
/// role added first when the store has none, as etcdctl does).
fn root(want: &Auth, store: &AuthStore, enabling: bool, ch: &mut Changes) {
    if store.role(ROOT).is_none() {
        ch.push(
            AuthOp::AddRole { role: ROOT.into() },
            "etcd's superuser role; auth cannot be on without it",
        );
    }
    match store.user(ROOT) {
        None => {
            ch.push(
                AuthOp::AddUser {
                    user: ROOT.into(),
                    password: source(&want.root),
                },
                match want.root {
                    Login::Password(_) => "etcd's superuser, with the declared root password",
                    Login::Certificate => {
                        "etcd's superuser, with no password: it logs in by a certificate whose CN is root"
                    }
                },
            );
            ch.push(
                AuthOp::GrantRole {
                    user: ROOT.into(),
                    role: ROOT.into(),
                },
                "auth enable requires root to have the root role",
            );
        }
        Some(u) => {
            if !u.roles.iter().any(|r| r == ROOT) {
                ch.push(
                    AuthOp::GrantRole {
                        user: ROOT.into(),
                        role: ROOT.into(),
                    },
                    "auth enable requires root to have the root role",
                );
            }
            password(ROOT, &want.root, u.password, enabling, ch);
        }
    }
}

/// A declared role: added with its grants, or its grants brought in line
/// (a grant is matched by its range; another access is granted over it).
fn declared_role(role: &crate::config::DesiredRole, store: &AuthStore, ch: &mut Changes) {
    let name = role.name.as_str();
    let live = store.role(name);
    if live.is_none() {
        ch.push(
            AuthOp::AddRole { role: name.into() },
            "declared in the etcdfile",
        );
    }
    let had = live.map_or(&[][..], |r| r.permissions.as_slice());
    for p in &role.permissions {
        let want = LivePermission::of(p);
        let same_range = had
            .iter()
            .find(|h| h.key == want.key && h.range_end == want.range_end);
        let reason = match same_range {
            Some(h) if h.access == want.access => continue,
            Some(h) => format!(
                "declared {}; etcd has {}",
                want.access.word(),
                h.access.word()
            ),
            None => "declared in the etcdfile".to_owned(),
        };
        ch.push(
            AuthOp::Grant {
                role: name.into(),
                permission: p.clone(),
            },
            reason,
        );
    }
    for h in had {
        let declared = role
            .permissions
            .iter()
            .map(LivePermission::of)
            .any(|w| w.key == h.key && w.range_end == h.range_end);
        if !declared {
            ch.push(
                AuthOp::Revoke {
                    role: name.into(),
                    permission: h.clone(),
                },
                "not among the role's permissions in the etcdfile",
            );
        }
    }
}

/// A declared user: added (with its password and roles), or its roles and
/// password brought in line.
fn declared_user(
    user: &crate::config::DesiredUser,
    store: &AuthStore,
    enabling: bool,
    ch: &mut Changes,
) {
    let name = user.name.as_str();
    let live = store.user(name);
    match live {
        None => ch.push(
            AuthOp::AddUser {
                user: name.into(),
                password: source(&user.login),
            },
            match user.login {
                Login::Password(_) => "declared in the etcdfile, with its password",
                Login::Certificate => {
                    "declared in the etcdfile with no password: it logs in by its certificate's CN"
                }
            },
        ),
        Some(u) => password(name, &user.login, u.password, enabling, ch),
    }
    let has = live.map_or(&[][..], |u| u.roles.as_slice());
    for r in &user.roles {
        if !has.iter().any(|h| h == r.as_str()) {
            ch.push(
                AuthOp::GrantRole {
                    user: name.into(),
                    role: r.as_str().into(),
                },
                "declared in the etcdfile",
            );
        }
    }
    for h in has {
        if !user.roles.iter().any(|r| r.as_str() == h) {
            ch.push(
                AuthOp::RevokeRole {
                    user: name.into(),
                    role: h.clone(),
                },
                "not among the user's roles in the etcdfile",
            );
        }
    }
}

/// Users and roles in the store the etcdfile does not declare (root
/// aside): deleted with `prune`, else said and left alone.
fn undeclared(want: &Auth, store: &AuthStore, ch: &mut Changes, notes: &mut Vec<String>) {
    let declared_user =
        |n: &str| AuthName::parse(n).is_ok_and(|n| n.is_root() || want.user(&n).is_some());
    let declared_role =
        |n: &str| AuthName::parse(n).is_ok_and(|n| n.is_root() || want.role(&n).is_some());
    let users: Vec<&str> = store
        .users
        .iter()
        .map(|u| u.name.as_str())
        .filter(|n| !declared_user(n))
        .collect();
    let roles: Vec<&str> = store
        .roles
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !declared_role(n))
        .collect();
    if want.prune {
        for u in &users {
            ch.push(
                AuthOp::DeleteUser { user: (*u).into() },
                "not in the etcdfile (prune = true)",
            );
        }
        for r in &roles {
            ch.push(
                AuthOp::DeleteRole { role: (*r).into() },
                "not in the etcdfile (prune = true)",
            );
        }
        return;
    }
    let mut found = Vec::new();
    if !users.is_empty() {
        found.push(format!("user{} {}", plural(users.len()), users.join(", ")));
    }
    if !roles.is_empty() {
        found.push(format!("role{} {}", plural(roles.len()), roles.join(", ")));
    }
    if !found.is_empty() {
        notes.push(format!(
            "etcd's auth store has {} that the etcdfile does not declare: left alone; prune = true in [auth] deletes them",
            found.join(" and ")
        ));
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Access, DesiredRole, DesiredUser, TokenKind};
    use crate::live::{LiveRole, LiveUser};

    fn name(s: &str) -> AuthName {
        AuthName::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn env(v: &str) -> SecretSource {
        SecretSource::Env(v.into())
    }

    fn app_perm() -> Permission {
        Permission {
            key: "/app/".into(),
            prefix: true,
            access: Access::ReadWrite,
        }
    }

    fn want(enabled: bool) -> Auth {
        Auth {
            enabled,
            root: Login::Password(env("ROOT_PW")),
            token: TokenKind::Simple,
            token_ttl: std::time::Duration::from_secs(300),
            prune: false,
            roles: vec![DesiredRole {
                name: name("app"),
                permissions: vec![app_perm()],
            }],
            users: vec![DesiredUser {
                name: name("app"),
                login: Login::Password(env("APP_PW")),
                roles: vec![name("app")],
            }],
        }
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

    /// The store as an apply of `want(true)` leaves it, auth on.
    fn applied() -> AuthStore {
        AuthStore {
            users: vec![
                user("app", &["app"], PasswordCheck::Accepted),
                user("root", &["root"], PasswordCheck::Accepted),
            ],
            roles: vec![role("app", &[app_perm()]), role("root", &[])],
        }
    }

    fn run(a: Option<Auth>, live: Option<LiveAuth>, bootstrap: bool) -> AuthDiff {
        diff(a.as_ref(), live.as_ref(), bootstrap)
    }

    fn ops(a: &AuthDiff) -> Vec<String> {
        a.changes
            .iter()
            .map(|c| format!("{} {}", c.op.symbol(), c.op))
            .collect()
    }

    #[test]
    fn no_auth_section_leaves_auth_as_found() {
        let live = LiveAuth {
            enabled: true,
            store: Err("refused".into()),
        };
        assert_eq!(run(None, Some(live), false), AuthDiff::default());
    }

    #[test]
    fn enabling_on_an_empty_store_adds_root_first_and_enables_last() {
        let live = LiveAuth {
            enabled: false,
            store: Ok(AuthStore::default()),
        };
        let a = run(Some(want(true)), Some(live), false);
        assert_eq!(
            ops(&a),
            [
                "+ role root",
                "+ user root",
                "~ user root: + role root",
                "+ role app",
                "~ role app: + readwrite /app/ (prefix)",
                "+ user app",
                "~ user app: + role app",
                "~ auth: enable",
            ]
        );
        assert!(a.blockers.is_empty() && a.notes.is_empty());
    }

    #[test]
    fn a_bootstrap_plans_on_the_empty_store_it_will_have() {
        let a = run(Some(want(true)), None, true);
        assert_eq!(
            a.changes.first().map(|c| &c.op),
            Some(&AuthOp::AddRole {
                role: "root".into()
            })
        );
        assert_eq!(a.changes.last().map(|c| &c.op), Some(&AuthOp::Enable));
        let b = run(Some(want(true)), None, false);
        assert!(b.changes.is_empty() && b.notes.len() == 1);
    }

    #[test]
    fn passwords_of_existing_users_are_set_when_auth_goes_on_since_etcd_could_not_check_them() {
        let mut store = applied();
        for u in &mut store.users {
            u.password = PasswordCheck::NotChecked;
        }
        let live = LiveAuth {
            enabled: false,
            store: Ok(store),
        };
        let a = run(Some(want(true)), Some(live.clone()), false);
        assert_eq!(
            ops(&a),
            [
                "~ user root: password",
                "~ user app: password",
                "~ auth: enable"
            ]
        );
        // Auth staying off: nothing to check, nothing set (the plan settles).
        let mut off = want(false);
        off.root = Login::Certificate;
        assert!(run(Some(off), Some(live), false).changes.is_empty());
    }

    #[test]
    fn the_applied_store_plans_nothing() {
        let live = LiveAuth {
            enabled: true,
            store: Ok(applied()),
        };
        assert_eq!(
            run(Some(want(true)), Some(live), false),
            AuthDiff::default()
        );
    }

    #[test]
    fn a_refused_password_is_set_and_never_shown() {
        let mut store = applied();
        store.users[0].password = PasswordCheck::Refused;
        let live = LiveAuth {
            enabled: true,
            store: Ok(store),
        };
        let a = run(Some(want(true)), Some(live), false);
        assert_eq!(ops(&a), ["~ user app: password"]);
        assert_eq!(
            a.changes[0].op,
            AuthOp::SetPassword {
                user: "app".into(),
                source: env("APP_PW")
            }
        );
    }

    #[test]
    fn grants_and_roles_follow_the_file() {
        let mut store = applied();
        store.roles[0] = role(
            "app",
            &[
                Permission {
                    access: Access::Read,
                    ..app_perm()
                },
                Permission {
                    key: "/old".into(),
                    prefix: false,
                    access: Access::Write,
                },
            ],
        );
        store.users[0].roles = vec!["app".into(), "extra".into()];
        store.roles.push(role("extra", &[]));
        let live = LiveAuth {
            enabled: true,
            store: Ok(store),
        };
        let a = run(Some(want(true)), Some(live.clone()), false);
        assert_eq!(
            ops(&a),
            [
                "~ role app: + readwrite /app/ (prefix)",
                "~ role app: - write /old",
                "~ user app: - role extra",
            ]
        );
        assert_eq!(a.changes[0].reason, "declared readwrite; etcd has read");
        assert_eq!(
            a.notes,
            [
                "etcd's auth store has role extra that the etcdfile does not declare: left alone; prune = true in [auth] deletes them"
            ]
        );
        let mut pruning = want(true);
        pruning.prune = true;
        let p = run(Some(pruning), Some(live), false);
        assert_eq!(ops(&p)[3..], ["- role extra"]);
        assert!(p.notes.is_empty());
    }

    #[test]
    fn prune_never_deletes_root_and_says_what_it_leaves_otherwise() {
        let mut store = applied();
        store
            .users
            .push(user("old", &[], PasswordCheck::NotChecked));
        let live = LiveAuth {
            enabled: true,
            store: Ok(store),
        };
        let mut w = want(true);
        w.prune = true;
        let a = run(Some(w), Some(live.clone()), false);
        assert_eq!(ops(&a), ["- user old"]);
        let kept = run(Some(want(true)), Some(live), false);
        assert!(kept.changes.is_empty());
        assert!(kept.notes[0].contains("user old"), "{:?}", kept.notes);
    }

    #[test]
    fn disabling_goes_first() {
        let mut store = applied();
        store.roles.remove(0);
        let live = LiveAuth {
            enabled: true,
            store: Ok(store),
        };
        let a = run(Some(want(false)), Some(live), false);
        assert_eq!(
            ops(&a),
            [
                "~ auth: disable",
                "+ role app",
                "~ role app: + readwrite /app/ (prefix)"
            ]
        );
    }

    #[test]
    fn an_unreadable_store_with_auth_on_blocks_and_asks_about_the_root_password() {
        let live = LiveAuth {
            enabled: true,
            store: Err("etcdserver: authentication failed, invalid user ID or password".into()),
        };
        let a = run(Some(want(true)), Some(live), false);
        assert!(a.changes.is_empty());
        assert_eq!(a.blockers.len(), 1);
        assert!(a.blockers[0].help.contains("root password"));
    }

    #[test]
    fn a_certificate_root_is_added_without_a_password() {
        let mut w = want(true);
        w.root = Login::Certificate;
        let a = run(Some(w), None, true);
        assert!(a.changes.contains(&AuthChange {
            op: AuthOp::AddUser {
                user: "root".into(),
                password: None
            },
            reason: "etcd's superuser, with no password: it logs in by a certificate whose CN is root".into()
        }));
    }
}
