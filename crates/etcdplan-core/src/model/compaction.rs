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
    parse_duration(s).is_ok()
}

/// Why a duration cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("the duration is empty")]
    Empty,
    /// Not digits followed by a unit, as in `1h30m`.
    #[error("not a duration")]
    Syntax,
    /// Longer than etcd (Go) can hold: about 292 years.
    #[error("the duration is too long")]
    Overflow,
}

/// The longest duration Go, and so etcd, can hold: `i64::MAX` nanoseconds.
const GO_MAX_NANOS: u128 = i64::MAX as u128;

/// Reads a duration in Go's syntax as etcd and etcdctl parse it, limited to
/// whole numbers of h, m, s and ms (`5s`, `2m`, `1h30m`, `500ms`). A unit is
/// required: what a bare number means depends on the caller (hours for a
/// periodic retention, seconds on etcdplan's command line).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut rest = s;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::Syntax);
        }
        let number: u128 = rest[..digits]
            .parse::<u64>()
            .map_err(|_| DurationError::Overflow)?
            .into();
        rest = &rest[digits..];
        let (unit, per) = [
            ("ms", 1_000_000),
            ("h", 3_600_000_000_000),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))
        .ok_or(DurationError::Syntax)?;
        rest = &rest[unit.len()..];
        nanos = nanos
            .checked_add(number * per)
            .filter(|n| *n <= GO_MAX_NANOS)
            .ok_or(DurationError::Overflow)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    let sub = u32::try_from(nanos % 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    Ok(std::time::Duration::new(secs, sub))
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

    #[test]
    fn durations_in_etcds_syntax() {
        use std::time::Duration;
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m500ms"), Ok(Duration::from_millis(60_500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        // A unit is required: the caller says what a bare number means.
        assert_eq!(parse_duration("5"), Err(DurationError::Syntax));
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        for bad in ["5x", "s", "1h30", "-5s", "1.5h", " 5s", "5 s", "5S"] {
            assert_eq!(parse_duration(bad), Err(DurationError::Syntax), "{bad:?}");
        }
        // Go's limit, i64::MAX nanoseconds (2562047h47m16.854775807s).
        assert_eq!(
            parse_duration("2562047h47m16s854ms"),
            Ok(Duration::new(9_223_372_036, 854_000_000))
        );
        for long in ["2562048h", "99999999999999999999s", "18446744073709551615h"] {
            assert_eq!(
                parse_duration(long),
                Err(DurationError::Overflow),
                "{long:?}"
            );
        }
    }
}
