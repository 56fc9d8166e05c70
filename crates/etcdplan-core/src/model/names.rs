//! Member and cluster names, checked against what etcd and its config formats
//! accept; and the user etcd runs as, checked against what `useradd` accepts.

use std::fmt;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than a DNS label; it ends up in certificate SANs and unit names.
    #[error("the name is {0} characters long; at most 63 are allowed")]
    TooLong(usize),
    /// A character etcd's `--initial-cluster` syntax or a DNS label cannot carry.
    #[error("the name contains {0:?}; use letters, digits, '-', '_' and '.'")]
    BadChar(char),
    /// Names must start with a letter or digit.
    #[error("the name must start with a letter or a digit")]
    BadStart,
}

fn check_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.chars().count() > 63 {
        return Err(NameError::TooLong(s.chars().count()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(NameError::BadChar(c));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(NameError::BadStart);
    }
    Ok(())
}

/// The name of a member (`--name`).
///
/// etcd itself accepts almost any string, but `--initial-cluster` splits on `,`
/// and `=`, and the name also becomes a certificate SAN, so etcdplan keeps to
/// the DNS-label alphabet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberName(String);

impl MemberName {
    /// Checks and wraps a member name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_name(s).map(|()| Self(s.to_owned()))
    }

    /// The name as etcd sees it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The cluster's name; also its `--initial-cluster-token`, so that members of two
/// clusters started from the same peer URLs never join each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterName(String);

// Names travel as text and are checked again when read back.
super::text::as_text!(
    MemberName => MemberName::parse,
    ClusterName => ClusterName::parse,
    UserName => UserName::parse,
);

impl ClusterName {
    /// Checks and wraps a cluster name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_name(s).map(|()| Self(s.to_owned()))
    }

    /// The name as written in the etcdfile.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a user name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserNameError {
    /// The name is empty.
    #[error("the user name is empty")]
    Empty,
    /// Longer than Linux's `useradd` accepts.
    #[error("the user name is {0} characters long; at most 32 are allowed")]
    TooLong(usize),
    /// A character outside the portable user-name alphabet.
    #[error(
        "the user name contains {0:?}; use lowercase letters, digits, '_' and '-' (and '$' at the end)"
    )]
    BadChar(char),
    /// User names start with a lowercase letter or `_`.
    #[error("the user name must start with a lowercase letter or '_'")]
    BadStart,
}

/// The user etcd runs as on the hosts (`[hosts] run_as`).
///
/// Kept to the alphabet Debian's `useradd` accepts by default
/// (`[a-z_][a-z0-9_-]*[$]?`, at most 32 characters), so the name can be put
/// in a unit file and a shell script without surprises.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserName(String);

impl UserName {
    /// Checks and wraps a user name.
    pub fn parse(s: &str) -> Result<Self, UserNameError> {
        let len = s.chars().count();
        if len == 0 {
            return Err(UserNameError::Empty);
        }
        if len > 32 {
            return Err(UserNameError::TooLong(len));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
            return Err(UserNameError::BadStart);
        }
        let body = s.strip_suffix('$').unwrap_or(s);
        if let Some(c) = body
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')))
        {
            return Err(UserNameError::BadChar(c));
        }
        Ok(Self(s.to_owned()))
    }

    /// `root`: what etcd runs as when the etcdfile does not say.
    pub fn root() -> Self {
        Self("root".to_owned())
    }

    /// Whether this is `root`, for which etcdplan changes nothing it did
    /// before `run_as` existed.
    pub fn is_root(&self) -> bool {
        self.0 == "root"
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names() {
        for n in ["etcd-1", "node1.example", "a", "ETCD_3"] {
            assert!(MemberName::parse(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn refuses_names_that_break_initial_cluster() {
        assert_eq!(MemberName::parse("a,b"), Err(NameError::BadChar(',')));
        assert_eq!(MemberName::parse("a=b"), Err(NameError::BadChar('=')));
        assert_eq!(MemberName::parse("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(MemberName::parse(""), Err(NameError::Empty));
        assert_eq!(MemberName::parse("-x"), Err(NameError::BadStart));
        assert_eq!(
            MemberName::parse(&"x".repeat(64)),
            Err(NameError::TooLong(64))
        );
    }

    #[test]
    fn user_names_as_useradd_takes_them() {
        for n in ["etcd", "root", "_etcd", "etcd-server", "e2", "machine$"] {
            assert!(UserName::parse(n).is_ok(), "{n}");
        }
        assert_eq!(UserName::parse(""), Err(UserNameError::Empty));
        assert_eq!(UserName::parse("Etcd"), Err(UserNameError::BadStart));
        assert_eq!(UserName::parse("1etcd"), Err(UserNameError::BadStart));
        assert_eq!(UserName::parse("-etcd"), Err(UserNameError::BadStart));
        assert_eq!(UserName::parse("et cd"), Err(UserNameError::BadChar(' ')));
        assert_eq!(
            UserName::parse("etcd:etcd"),
            Err(UserNameError::BadChar(':'))
        );
        assert_eq!(UserName::parse("a$b"), Err(UserNameError::BadChar('$')));
        assert_eq!(
            UserName::parse(&"e".repeat(33)),
            Err(UserNameError::TooLong(33))
        );
        assert!(UserName::parse(&"e".repeat(32)).is_ok());
        assert!(UserName::root().is_root());
        assert!(!UserName::parse("etcd").is_ok_and(|u| u.is_root()));
    }
}
