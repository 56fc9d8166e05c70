//! The auth store of a [`FakeCluster`], with etcd's refusals (its
//! `server/auth/store.go`): users with a password or none and their roles,
//! roles with their grants, the enabled flag, and who the client logs in as.
//! Auth reads and changes need the root role while auth is on, as in etcd.

use std::collections::{BTreeMap, BTreeSet};

use super::{FakeCluster, World, call_error};
use crate::config::ROOT;
use crate::io::{AuthCall, EtcdError, EtcdErrorKind};
use crate::live::{LivePermission, LiveRole};
use crate::model::Endpoint;

/// One user of the fake auth store. Its `Debug` hides the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FakeUser {
    /// Its password; None: a user that logs in by certificate CN only.
    pub password: Option<String>,
    /// Its roles.
    pub roles: BTreeSet<String>,
}

impl std::fmt::Debug for FakeUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeUser")
            .field(
                "password",
                &self.password.as_ref().map(|_| "<hidden>").unwrap_or("none"),
            )
            .field("roles", &self.roles)
            .finish()
    }
}

/// The fake auth store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAuth {
    /// Whether auth is on.
    pub enabled: bool,
    /// Users by name.
    pub users: BTreeMap<String, FakeUser>,
    /// Roles by name, with their grants sorted.
    pub roles: BTreeMap<String, Vec<LivePermission>>,
    /// The user etcdplan's client is logged in as (root by default, as
    /// etcdplan logs in when `[auth]` is declared); None: no credentials.
    pub caller: Option<String>,
}

impl Default for FakeAuth {
    fn default() -> Self {
        Self {
            enabled: false,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
            caller: Some(ROOT.to_owned()),
        }
    }
}

fn refuse(ep: &Endpoint, kind: EtcdErrorKind, text: &str) -> EtcdError {
    call_error(ep, kind, &format!("etcdserver: {text}"))
}

impl FakeAuth {
    /// Whether the caller may read and change the store: anyone while auth
    /// is off; a user with the root role while on.
    fn admit(&self, ep: &Endpoint) -> Result<(), EtcdError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(caller) = &self.caller else {
            return Err(refuse(ep, EtcdErrorKind::UserEmpty, "user name is empty"));
        };
        match self.users.get(caller) {
            Some(u) if u.roles.contains(ROOT) => Ok(()),
            Some(_) => Err(refuse(
                ep,
                EtcdErrorKind::PermissionDenied,
                "permission denied",
            )),
            None => Err(refuse(
                ep,
                EtcdErrorKind::InvalidAuthToken,
                "invalid auth token",
            )),
        }
    }

    fn user_mut(&mut self, ep: &Endpoint, user: &str) -> Result<&mut FakeUser, EtcdError> {
        self.users
            .get_mut(user)
            .ok_or_else(|| refuse(ep, EtcdErrorKind::UserNotFound, "user name not found"))
    }

    fn role_mut(
        &mut self,
        ep: &Endpoint,
        role: &str,
    ) -> Result<&mut Vec<LivePermission>, EtcdError> {
        self.roles
            .get_mut(role)
            .ok_or_else(|| refuse(ep, EtcdErrorKind::RoleNotFound, "role name not found"))
    }

    /// One change, refused as etcd refuses it.
    fn apply(&mut self, ep: &Endpoint, call: &AuthCall<'_>) -> Result<(), EtcdError> {
        self.admit(ep)?;
        let managed = |kind| refuse(ep, kind, "invalid auth management");
        match *call {
            AuthCall::UserAdd { user, password } => {
                if user.is_empty() {
                    return Err(refuse(ep, EtcdErrorKind::UserEmpty, "user name is empty"));
                }
                if self.users.contains_key(user) {
                    return Err(refuse(
                        ep,
                        EtcdErrorKind::UserAlreadyExists,
                        "user name already exists",
                    ));
                }
                self.users.insert(
                    user.to_owned(),
                    FakeUser {
                        password: password.map(str::to_owned),
                        roles: BTreeSet::new(),
                    },
                );
            }
            AuthCall::UserDelete { user } => {
                if self.enabled && user == ROOT {
                    return Err(managed(EtcdErrorKind::InvalidAuthManagement));
                }
                self.user_mut(ep, user)?;
                self.users.remove(user);
            }
            AuthCall::UserPassword { user, password } => {
                // etcd keeps a user added without a password so: its
                // `no_password` option stays and the new one is never asked.
                let u = self.user_mut(ep, user)?;
                if u.password.is_some() {
                    u.password = Some(password.to_owned());
                }
            }
            AuthCall::UserGrant { user, role } => {
                self.user_mut(ep, user)?;
                // etcd grants the root role whether or not it was added.
                if role != ROOT {
                    self.role_mut(ep, role)?;
                }
                self.user_mut(ep, user)?.roles.insert(role.to_owned());
            }
            AuthCall::UserRevoke { user, role } => {
                if self.enabled && user == ROOT && role == ROOT {
                    return Err(managed(EtcdErrorKind::InvalidAuthManagement));
                }
                if !self.user_mut(ep, user)?.roles.remove(role) {
                    return Err(refuse(
                        ep,
                        EtcdErrorKind::RoleNotGranted,
                        "role is not granted to the user",
                    ));
                }
            }
            AuthCall::RoleAdd { role } => {
                if role.is_empty() {
                    return Err(refuse(ep, EtcdErrorKind::RoleEmpty, "role name is empty"));
                }
                if self.roles.contains_key(role) {
                    return Err(refuse(
                        ep,
                        EtcdErrorKind::RoleAlreadyExists,
                        "role name already exists",
                    ));
                }
                self.roles.insert(role.to_owned(), Vec::new());
            }
            AuthCall::RoleDelete { role } => {
                if self.enabled && role == ROOT {
                    return Err(managed(EtcdErrorKind::InvalidAuthManagement));
                }
                self.role_mut(ep, role)?;
                self.roles.remove(role);
                // etcd takes the role from every user that had it.
                for u in self.users.values_mut() {
                    u.roles.remove(role);
                }
            }
            AuthCall::RoleGrant { role, permission } => {
                let grants = self.role_mut(ep, role)?;
                // etcd replaces the access of a grant on the same range.
                grants
                    .retain(|g| (&g.key, &g.range_end) != (&permission.key, &permission.range_end));
                grants.push(permission.clone());
                grants.sort();
            }
            AuthCall::RoleRevoke { role, permission } => {
                let grants = self.role_mut(ep, role)?;
                let before = grants.len();
                grants
                    .retain(|g| (&g.key, &g.range_end) != (&permission.key, &permission.range_end));
                if grants.len() == before {
                    return Err(refuse(
                        ep,
                        EtcdErrorKind::PermissionNotGranted,
                        "permission is not granted to the role",
                    ));
                }
            }
            AuthCall::Enable => {
                let Some(root) = self.users.get(ROOT) else {
                    return Err(refuse(
                        ep,
                        EtcdErrorKind::RootUserMissing,
                        "root user does not exist",
                    ));
                };
                if !root.roles.contains(ROOT) {
                    return Err(refuse(
                        ep,
                        EtcdErrorKind::RootRoleMissing,
                        "root user does not have root role",
                    ));
                }
                self.enabled = true;
            }
            AuthCall::Disable => self.enabled = false,
        }
        Ok(())
    }
}

impl World {
    /// The auth call `what` at `ep`: logged, answered only by a member that
    /// serves, admitted as etcd admits it.
    fn auth_read(&mut self, ep: &Endpoint, what: &str) -> Result<(), EtcdError> {
        self.calls.push(format!("etcd {what} {ep}"));
        self.serving_with_leader(ep)?;
        self.auth.admit(ep)
    }
}

impl FakeCluster {
    /// Replaces the auth store (a test's starting point).
    pub fn set_auth(&self, auth: FakeAuth) {
        self.world().auth = auth;
    }

    /// The auth store as it is now.
    pub fn auth(&self) -> FakeAuth {
        self.world().auth.clone()
    }

    /// Whether auth is on.
    pub(super) fn auth_enabled_at(&self, ep: &Endpoint) -> Result<bool, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd auth_enabled {ep}"));
        w.serving(ep)?;
        Ok(w.auth.enabled)
    }

    /// Every user with its roles, sorted.
    pub(super) fn auth_users_at(
        &self,
        ep: &Endpoint,
    ) -> Result<Vec<(String, Vec<String>)>, EtcdError> {
        let mut w = self.world();
        w.auth_read(ep, "auth_users")?;
        Ok(w.auth
            .users
            .iter()
            .map(|(n, u)| (n.clone(), u.roles.iter().cloned().collect()))
            .collect())
    }

    /// Every role with its grants, sorted.
    pub(super) fn auth_roles_at(&self, ep: &Endpoint) -> Result<Vec<LiveRole>, EtcdError> {
        let mut w = self.world();
        w.auth_read(ep, "auth_roles")?;
        Ok(w.auth
            .roles
            .iter()
            .map(|(n, p)| LiveRole {
                name: n.clone(),
                permissions: p.clone(),
            })
            .collect())
    }

    /// A login: refused (false) for an unknown user, a wrong password or a
    /// user without one; `AuthNotEnabled` while auth is off.
    pub(super) fn login_at(
        &self,
        ep: &Endpoint,
        user: &str,
        password: &str,
    ) -> Result<bool, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd login {user} {ep}"));
        w.serving_with_leader(ep)?;
        if !w.auth.enabled {
            return Err(refuse(
                ep,
                EtcdErrorKind::AuthNotEnabled,
                "authentication is not enabled",
            ));
        }
        Ok(w.auth
            .users
            .get(user)
            .and_then(|u| u.password.as_deref())
            .is_some_and(|p| p == password))
    }

    /// One change of the store, committed through raft.
    pub(super) fn auth_change_at(
        &self,
        ep: &Endpoint,
        call: &AuthCall<'_>,
    ) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd auth {call:?} {ep}"));
        w.serving_with_leader(ep)?;
        w.auth.apply(ep, call)?;
        w.commit();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Access;

    fn ep() -> Endpoint {
        Endpoint::parse("http://10.0.0.1:2379").unwrap_or_else(|| unreachable!())
    }

    fn kind(r: Result<(), EtcdError>) -> Option<EtcdErrorKind> {
        r.err().map(|e| e.kind())
    }

    fn app_grant() -> LivePermission {
        LivePermission {
            key: b"/app/".to_vec(),
            range_end: b"/app0".to_vec(),
            access: Access::ReadWrite,
        }
    }

    #[test]
    fn enable_needs_root_with_the_root_role() {
        let mut a = FakeAuth::default();
        assert_eq!(
            kind(a.apply(&ep(), &AuthCall::Enable)),
            Some(EtcdErrorKind::RootUserMissing)
        );
        let add = AuthCall::UserAdd {
            user: ROOT,
            password: Some("pw"),
        };
        assert_eq!(kind(a.apply(&ep(), &add)), None);
        assert_eq!(
            kind(a.apply(&ep(), &AuthCall::Enable)),
            Some(EtcdErrorKind::RootRoleMissing)
        );
        let grant = AuthCall::UserGrant {
            user: ROOT,
            role: ROOT,
        };
        assert_eq!(kind(a.apply(&ep(), &grant)), None);
        assert_eq!(kind(a.apply(&ep(), &AuthCall::Enable)), None);
        assert!(a.enabled);
        // Root cannot be taken apart while auth is on.
        assert_eq!(
            kind(a.apply(&ep(), &AuthCall::UserDelete { user: ROOT })),
            Some(EtcdErrorKind::InvalidAuthManagement)
        );
        let revoke = AuthCall::UserRevoke {
            user: ROOT,
            role: ROOT,
        };
        assert_eq!(
            kind(a.apply(&ep(), &revoke)),
            Some(EtcdErrorKind::InvalidAuthManagement)
        );
    }

    #[test]
    fn duplicates_and_unknown_names_are_refused() {
        let mut a = FakeAuth::default();
        let add = AuthCall::UserAdd {
            user: "app",
            password: None,
        };
        assert_eq!(kind(a.apply(&ep(), &add)), None);
        assert_eq!(
            kind(a.apply(&ep(), &add)),
            Some(EtcdErrorKind::UserAlreadyExists)
        );
        assert_eq!(
            kind(a.apply(&ep(), &AuthCall::RoleAdd { role: "app" })),
            None
        );
        assert_eq!(
            kind(a.apply(&ep(), &AuthCall::RoleAdd { role: "app" })),
            Some(EtcdErrorKind::RoleAlreadyExists)
        );
        let grant = AuthCall::UserGrant {
            user: "app",
            role: "nope",
        };
        assert_eq!(
            kind(a.apply(&ep(), &grant)),
            Some(EtcdErrorKind::RoleNotFound)
        );
        let grant = AuthCall::UserGrant {
            user: "ghost",
            role: "app",
        };
        assert_eq!(
            kind(a.apply(&ep(), &grant)),
            Some(EtcdErrorKind::UserNotFound)
        );
        let revoke = AuthCall::UserRevoke {
            user: "app",
            role: "app",
        };
        assert_eq!(
            kind(a.apply(&ep(), &revoke)),
            Some(EtcdErrorKind::RoleNotGranted)
        );
        let p = app_grant();
        let revoke = AuthCall::RoleRevoke {
            role: "app",
            permission: &p,
        };
        assert_eq!(
            kind(a.apply(&ep(), &revoke)),
            Some(EtcdErrorKind::PermissionNotGranted)
        );
        assert_eq!(
            kind(a.apply(
                &ep(),
                &AuthCall::UserAdd {
                    user: "",
                    password: None
                }
            )),
            Some(EtcdErrorKind::UserEmpty)
        );
    }

    #[test]
    fn a_grant_on_the_same_range_replaces_its_access_and_a_deleted_role_leaves_its_users() {
        let mut a = FakeAuth::default();
        for call in [
            AuthCall::RoleAdd { role: "app" },
            AuthCall::UserAdd {
                user: "app",
                password: Some("pw"),
            },
            AuthCall::UserGrant {
                user: "app",
                role: "app",
            },
        ] {
            assert_eq!(kind(a.apply(&ep(), &call)), None);
        }
        let rw = app_grant();
        let read = LivePermission {
            access: Access::Read,
            ..app_grant()
        };
        for p in [&rw, &read] {
            let call = AuthCall::RoleGrant {
                role: "app",
                permission: p,
            };
            assert_eq!(kind(a.apply(&ep(), &call)), None);
        }
        assert_eq!(a.roles.get("app"), Some(&vec![read]));
        assert_eq!(
            kind(a.apply(&ep(), &AuthCall::RoleDelete { role: "app" })),
            None
        );
        assert_eq!(a.users.get("app").map(|u| u.roles.len()), Some(0));
    }

    #[test]
    fn with_auth_on_only_root_may_manage_and_a_client_without_token_is_told_so() {
        let mut a = FakeAuth::default();
        for call in [
            AuthCall::UserAdd {
                user: ROOT,
                password: Some("pw"),
            },
            AuthCall::UserGrant {
                user: ROOT,
                role: ROOT,
            },
            AuthCall::UserAdd {
                user: "app",
                password: Some("pw2"),
            },
            AuthCall::Enable,
        ] {
            assert_eq!(kind(a.apply(&ep(), &call)), None);
        }
        let add = AuthCall::RoleAdd { role: "x" };
        a.caller = Some("app".into());
        assert_eq!(
            kind(a.apply(&ep(), &add)),
            Some(EtcdErrorKind::PermissionDenied)
        );
        a.caller = None;
        assert_eq!(kind(a.apply(&ep(), &add)), Some(EtcdErrorKind::UserEmpty));
        a.caller = Some(ROOT.into());
        assert_eq!(kind(a.apply(&ep(), &AuthCall::Disable)), None);
        // Off, anyone may.
        a.caller = None;
        assert_eq!(kind(a.apply(&ep(), &add)), None);
    }

    #[test]
    fn a_user_debug_hides_its_password() {
        let u = FakeUser {
            password: Some("s3cret-pw".into()),
            roles: BTreeSet::new(),
        };
        assert!(!format!("{u:?}").contains("s3cret-pw"));
    }
}
