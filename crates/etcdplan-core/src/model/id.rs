//! Member and cluster ids, always shown in hex as etcdctl shows them.

use std::fmt;

/// A member id as etcd assigns it; displayed as lowercase hex (never decimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// A cluster id; displayed as lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterId(pub u64);

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

super::text::as_text!(
    MemberId => |s: &str| u64::from_str_radix(s, 16).map(MemberId),
    ClusterId => |s: &str| u64::from_str_radix(s, 16).map(ClusterId),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex() {
        assert_eq!(MemberId(0x8e9e05c52164694d).to_string(), "8e9e05c52164694d");
        assert_eq!(
            serde_json::to_string(&MemberId(255)).ok().as_deref(),
            Some("\"ff\"")
        );
    }
}
