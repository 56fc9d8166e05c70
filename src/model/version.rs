//! etcd versions: full binary versions and the major.minor a cluster is pinned to.

use std::fmt;

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a version of the form major.minor (such as \"3.5\")")]
pub struct VersionError(pub String);

/// `major.minor`, as `[cluster] version` pins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct MinorVersion {
    /// Major version (3).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl MinorVersion {
    /// Parses `"3.5"`.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let err = || VersionError(s.to_owned());
        let (a, b) = s.trim().split_once('.').ok_or_else(err)?;
        Ok(Self {
            major: a.parse().map_err(|_| err())?,
            minor: b.parse().map_err(|_| err())?,
        })
    }
}

impl fmt::Display for MinorVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A full etcd version, as `etcd --version` and Status report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct EtcdVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl EtcdVersion {
    /// Parses `"3.4.23"`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().trim_start_matches('v').splitn(3, '.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch_str = it.next()?;
        let digits = patch_str
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(patch_str.len());
        let patch = patch_str[..digits].parse().ok()?;
        Some(Self {
            major,
            minor,
            patch,
        })
    }

    /// Reads the first "etcd Version: X" line of `etcd --version`.
    pub fn from_version_output(out: &str) -> Option<Self> {
        out.lines()
            .find_map(|l| l.strip_prefix("etcd Version:"))
            .and_then(Self::parse)
    }

    /// The major.minor part.
    pub fn minor(self) -> MinorVersion {
        MinorVersion {
            major: self.major,
            minor: self.minor,
        }
    }
}

impl fmt::Display for EtcdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        let out = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        let v = EtcdVersion::from_version_output(out);
        assert_eq!(v.map(|v| v.to_string()).as_deref(), Some("3.4.23"));
        assert_eq!(MinorVersion::parse("3.5").map(|v| v.minor), Ok(5));
        assert!(MinorVersion::parse("3").is_err());
        assert!(MinorVersion::parse("three.five").is_err());
    }
}
