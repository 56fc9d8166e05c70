//! `[auth]`, validated: etcd's own authentication as the etcdfile declares it.
//!
//! Passwords never enter this model: a user names where its password is
//! (an environment variable or a file on this machine), and only the edge
//! reads it (`etcdplan::config::Secrets`). Everything here may be printed,
//! serialized into a plan and compared.

use std::path::PathBuf;
use std::time::Duration;

/// A name in etcd's auth store (a user or a role). etcd accepts any
/// non-empty string; etcdplan refuses only the empty name and surrounding
/// whitespace, which etcdctl cannot type back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct AuthName(String);

/// Why an auth name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthNameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// Leading or trailing whitespace.
    #[error("the name starts or ends with whitespace")]
    Whitespace,
}

impl AuthName {
    /// Checks and wraps a user or role name.
    pub fn parse(s: &str) -> Result<Self, AuthNameError> {
        if s.is_empty() {
            return Err(AuthNameError::Empty);
        }
        if s.trim() != s {
            return Err(AuthNameError::Whitespace);
        }
        Ok(Self(s.to_owned()))
    }

    /// etcd's superuser and its role: both are called `root`.
    pub fn root() -> Self {
        Self(ROOT.to_owned())
    }

    /// The name as etcd stores it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `root`.
    pub fn is_root(&self) -> bool {
        self.0 == ROOT
    }
}

impl std::fmt::Display for AuthName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of etcd's superuser and of the role that makes one.
pub const ROOT: &str = "root";

/// Where a password is on this machine; never the password itself.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase", tag = "from", content = "name")]
pub enum SecretSource {
    /// An environment variable of the etcdplan process (`password_env`).
    Env(String),
    /// A file on this machine, absolute (`password_file`); its first line,
    /// without the line end.
    File(PathBuf),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(v) => write!(f, "${v}"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// How a user proves who it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "by", content = "source")]
pub enum Login {
    /// A password, read from this source.
    Password(SecretSource),
    /// The CN of its client certificate (`[tls] client_cert_auth`); etcd
    /// stores the user with no password.
    Certificate,
}

/// The token etcd hands out after a login (`--auth-token`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum TokenKind {
    /// etcd's default: opaque tokens kept in each member's memory (etcd
    /// advises against it in production; warned about).
    Simple,
    /// Signed JWTs (ES256): any member verifies any token. etcdplan makes the
    /// key pair in `key_dir` and places it on every member (key 0600).
    Jwt {
        /// Where the key pair is kept on this machine (absolute).
        key_dir: PathBuf,
    },
}

/// What a permission allows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Range and watch.
    Read,
    /// Put and delete.
    Write,
    /// Both.
    ReadWrite,
}

impl Access {
    /// The word of the etcdfile and of etcdctl (`read`, `write`, `readwrite`).
    pub fn word(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::ReadWrite => "readwrite",
        }
    }
}

/// One grant of a role: a key, or every key with a prefix, and the access.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Permission {
    /// The key (or the prefix), as written; never empty.
    pub key: String,
    /// Whether `key` is a prefix.
    pub prefix: bool,
    /// What is allowed.
    pub access: Access,
}

impl Permission {
    /// etcd's `range_end` for this grant: empty for one key, the prefix's
    /// end for a prefix (the key with its last byte below 0xff incremented).
    pub fn range_end(&self) -> Vec<u8> {
        if !self.prefix {
            return Vec::new();
        }
        prefix_end(self.key.as_bytes())
    }
}

/// The first key after every key starting with `prefix` (etcd's
/// `GetPrefixRangeEnd`): `\0` when no such key exists.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A role the etcdfile declares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DesiredRole {
    /// Its name.
    pub name: AuthName,
    /// Its grants, without duplicates, in file order.
    pub permissions: Vec<Permission>,
}

/// A user the etcdfile declares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DesiredUser {
    /// Its name (with a certificate login: the CN of its certificate).
    pub name: AuthName,
    /// How it logs in.
    pub login: Login,
    /// The roles it has; each is declared in the file, or is `root`.
    pub roles: Vec<AuthName>,
}

/// `[auth]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Auth {
    /// Whether auth is on (`enabled`); `false` turns it off.
    pub enabled: bool,
    /// How root logs in: `root_password_env` / `root_password_file`, or its
    /// certificate (CN `root`) with `client_cert_auth` and no password given.
    pub root: Login,
    /// The token kind (`token`).
    pub token: TokenKind,
    /// How long a token lives (`token_ttl`, etcd's `auth-token-ttl`;
    /// default 300 s, etcd's default).
    pub token_ttl: Duration,
    /// Whether users and roles the file does not declare are deleted
    /// (`prune`); otherwise they are reported and left alone.
    pub prune: bool,
    /// The declared roles, in file order (without `root`, which etcd has).
    pub roles: Vec<DesiredRole>,
    /// The declared users, in file order (without `root`, which `root`
    /// above describes).
    pub users: Vec<DesiredUser>,
}

impl Auth {
    /// The declared user with this name.
    pub fn user(&self, name: &AuthName) -> Option<&DesiredUser> {
        self.users.iter().find(|u| &u.name == name)
    }

    /// The declared role with this name.
    pub fn role(&self, name: &AuthName) -> Option<&DesiredRole> {
        self.roles.iter().find(|r| &r.name == name)
    }

    /// Every password source named: root's first, then the users' in file order.
    pub fn password_sources(&self) -> impl Iterator<Item = &SecretSource> {
        std::iter::once(&self.root)
            .chain(self.users.iter().map(|u| &u.login))
            .filter_map(|l| match l {
                Login::Password(s) => Some(s),
                Login::Certificate => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"/app/"), b"/app0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn one_key_has_no_range_end() {
        let p = Permission {
            key: "/k".into(),
            prefix: false,
            access: Access::Read,
        };
        assert!(p.range_end().is_empty());
    }

    #[test]
    fn names_refuse_empty_and_padded() {
        assert_eq!(AuthName::parse(""), Err(AuthNameError::Empty));
        assert_eq!(AuthName::parse(" app"), Err(AuthNameError::Whitespace));
        assert!(AuthName::parse("app").is_ok_and(|n| !n.is_root()));
        assert!(AuthName::root().is_root());
    }
}
