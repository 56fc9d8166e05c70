//! Auto-compaction: the mode and a retention that must fit the mode.

use std::fmt;

/// etcd's `--auto-compaction-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompactionMode {
    /// Keep the last N revisions (compacts every 5 minutes).
    Revision,
    /// Keep a time window of history.
    Periodic,
}

impl fmt::Display for CompactionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Revision => "revision",
            Self::Periodic => "periodic",
        })
    }
}

/// A retention, already checked against its mode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    /// A number of revisions (`revision` mode). 0 turns compaction off.
    Revisions(u64),
    /// A duration in etcd's syntax (`periodic` mode), kept as written: `"1h"`, `"30m"`, `"1h30m"`.
    Period(String),
}

/// Auto-compaction settings, consistent by construction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Compaction {
    /// The mode.
    pub mode: CompactionMode,
    /// The retention for that mode.
    pub retention: Retention,
}

impl Compaction {
    /// Checks `retention` against `mode`; the error says what the mode expects.
    pub fn new(mode: CompactionMode, retention: &str) -> Result<Self, String> {
        let r = retention.trim();
        let retention = match mode {
            CompactionMode::Revision => match r.parse::<u64>() {
                Ok(n) => Retention::Revisions(n),
                Err(_) if is_duration(r) => {
                    return Err(format!(
                        "{r:?} is a duration, but auto_compaction_mode = \"revision\" keeps a number of revisions"
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "{r:?} is not a revision count; revision mode expects a whole number such as \"1000\""
                    ));
                }
            },
            CompactionMode::Periodic => {
                if r.parse::<u64>().is_ok() {
                    // etcd reads a bare number in periodic mode as hours.
                    Retention::Period(format!("{r}h"))
                } else if is_duration(r) {
                    Retention::Period(r.to_owned())
                } else {
                    return Err(format!(
                        "{r:?} is not a duration; periodic mode expects a duration such as \"1h\" or \"30m\""
                    ));
                }
            }
        };
        Ok(Self { mode, retention })
    }

    /// The value of etcd's `auto-compaction-retention`.
    pub fn retention_value(&self) -> String {
        match &self.retention {
            Retention::Revisions(n) => n.to_string(),
            Retention::Period(p) => p.clone(),
        }
    }
}

/// Go duration syntax as etcd parses it, limited to h, m, s and ms.
fn is_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "h", "m", "s"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_must_fit_mode() {
        assert!(Compaction::new(CompactionMode::Revision, "1000").is_ok());
        assert!(Compaction::new(CompactionMode::Revision, "1h").is_err());
        assert!(Compaction::new(CompactionMode::Periodic, "1h30m").is_ok());
        assert!(Compaction::new(CompactionMode::Periodic, "soon").is_err());
        let c = Compaction::new(CompactionMode::Periodic, "2");
        assert_eq!(c.map(|c| c.retention_value()).ok().as_deref(), Some("2h"));
    }
}
