//! etcd versions: full binary versions and the major.minor a cluster is pinned to.

use std::fmt;

// Versions serialize as people write them: "3.5", "3.5.16".
super::text::as_text!(
    MinorVersion => MinorVersion::parse,
    VersionSpec => VersionSpec::parse,
    EtcdVersion => EtcdVersion::parse,
);

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a version of the form major.minor or major.minor.patch (such as \"3.5\" or \"3.5.16\")"
)]
pub struct VersionError(pub String);

/// `major.minor`, as `[cluster] version` pins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// What `[cluster] version` asks every member to run: a minor version (any
/// patch of it), or one exact release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionSpec {
    /// The minor version.
    pub minor: MinorVersion,
    /// The exact patch, when named.
    pub patch: Option<u32>,
}

impl VersionSpec {
    /// Parses `"3.5"` or `"3.5.16"`.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let err = || VersionError(s.to_owned());
        let t = s.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let mut num = || -> Result<Option<u32>, VersionError> {
            parts
                .next()
                .map(|p| p.parse::<u32>().map_err(|_| err()))
                .transpose()
        };
        let (Some(major), Some(minor)) = (num()?, num()?) else {
            return Err(err());
        };
        let patch = num()?;
        if num()?.is_some() {
            return Err(err());
        }
        Ok(Self {
            minor: MinorVersion { major, minor },
            patch,
        })
    }

    /// Whether `v` is what this asks for.
    pub fn matches(self, v: EtcdVersion) -> bool {
        v.minor() == self.minor && self.patch.is_none_or(|p| p == v.patch)
    }

    /// Exactly this release.
    pub fn exact_of(v: EtcdVersion) -> Self {
        Self {
            minor: v.minor(),
            patch: Some(v.patch),
        }
    }

    /// The exact release, when named.
    pub fn exact(self) -> Option<EtcdVersion> {
        self.patch.map(|patch| EtcdVersion {
            major: self.minor.major,
            minor: self.minor.minor,
            patch,
        })
    }
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{p}", self.minor),
            None => write!(f, "{}", self.minor),
        }
    }
}

/// A full etcd version, as `etcd --version` and Status report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
        let spec = VersionSpec::parse("3.5.16").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.to_string(), "3.5.16");
        assert_eq!(VersionSpec::parse("v3.5").map(|s| s.patch), Ok(None));
        for bad in ["3", "3.5.1.2", "3.x", ""] {
            assert!(VersionSpec::parse(bad).is_err(), "{bad}");
        }
        let v = |s| EtcdVersion::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert!(spec.matches(v("3.5.16")));
        assert!(!spec.matches(v("3.5.17")));
        assert!(VersionSpec::parse("3.5").is_ok_and(|s| s.matches(v("3.5.0"))));
    }
}
