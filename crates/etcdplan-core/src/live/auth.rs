//! etcd's auth store as observed: whether auth is on, its users and roles,
//! and whether each declared password was accepted. Names are etcd's own
//! strings (a store built by hand may hold names the etcdfile could not).

use crate::config::{Access, Permission, prefix_end};

/// What etcdplan found of the cluster's authentication.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveAuth {
    /// Whether auth is on (`AuthStatus`, or a login refused with "not enabled").
    pub enabled: bool,
    /// The users and roles, or why they could not be read (auth on and no
    /// root login accepted).
    pub store: Result<AuthStore, String>,
}

/// The users and roles in etcd's auth store.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuthStore {
    /// Every user, sorted by name.
    pub users: Vec<LiveUser>,
    /// Every role, sorted by name (`root` included once it exists).
    pub roles: Vec<LiveRole>,
}

impl AuthStore {
    /// The user with this name.
    pub fn user(&self, name: &str) -> Option<&LiveUser> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The role with this name.
    pub fn role(&self, name: &str) -> Option<&LiveRole> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// One user of the auth store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveUser {
    /// Its name.
    pub name: String,
    /// Its roles, sorted.
    pub roles: Vec<String>,
    /// Whether the password the etcdfile declares for it was accepted.
    pub password: PasswordCheck,
}

/// The answer to a login with the declared password (etcd says only
/// whether it is right; etcdplan never reads a password back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordCheck {
    /// etcd accepted the declared password.
    Accepted,
    /// etcd refused it: the password differs (or the user has none).
    Refused,
    /// Not tried: no password declared, auth off (etcd checks passwords
    /// only while auth is on), or the user is not declared.
    NotChecked,
}

/// One role of the auth store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveRole {
    /// Its name.
    pub name: String,
    /// Its grants, as etcd returns them.
    pub permissions: Vec<LivePermission>,
}

/// One grant as etcd stores it: a key range and the access.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct LivePermission {
    /// The first key.
    pub key: Vec<u8>,
    /// The end of the range; empty for one key.
    pub range_end: Vec<u8>,
    /// What is allowed.
    pub access: Access,
}

impl LivePermission {
    /// The grant in the etcdfile's terms: one key, or a prefix; None for a
    /// range the etcdfile cannot write (or a key that is not UTF-8).
    pub fn as_declared(&self) -> Option<Permission> {
        let key = String::from_utf8(self.key.clone()).ok()?;
        let prefix = if self.range_end.is_empty() {
            false
        } else if self.range_end == prefix_end(&self.key) {
            true
        } else {
            return None;
        };
        Some(Permission {
            key,
            prefix,
            access: self.access,
        })
    }

    /// The grant as etcd stores a declared one.
    pub fn of(p: &Permission) -> Self {
        Self {
            key: p.key.as_bytes().to_vec(),
            range_end: p.range_end(),
            access: p.access,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_grant_reads_back_as_declared() {
        let p = Permission {
            key: "/app/".into(),
            prefix: true,
            access: Access::ReadWrite,
        };
        assert_eq!(LivePermission::of(&p).as_declared(), Some(p));
    }

    #[test]
    fn an_arbitrary_range_is_not_declarable() {
        let l = LivePermission {
            key: b"a".to_vec(),
            range_end: b"c".to_vec(),
            access: Access::Read,
        };
        assert_eq!(l.as_declared(), None);
    }
}
