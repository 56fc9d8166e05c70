//! The version rules of etcd upgrades and downgrades (etcd-ops §8), pure: from
//! the versions the members run to the version the etcdfile names, the passes
//! a change of version takes (each a rolling restart onto one minor version),
//! or why etcdplan refuses it.

use crate::model::{EtcdVersion, MinorVersion, VersionSpec};

/// One rolling restart of every member onto a version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pass {
    /// What every member runs after it.
    pub to: VersionSpec,
    /// The oldest release of that minor version the pass may use (the binary
    /// is checked against it before any member is touched).
    pub at_least: Option<EtcdVersion>,
    /// What the operator should know before it starts.
    pub notes: Vec<String>,
    /// A downgrade of the minor version through etcd's downgrade API (3.6 →
    /// 3.5, 3.7 → 3.6): validate and enable it, wait until every member
    /// reports the older storage version, then roll the binaries back.
    pub via_api: bool,
}

/// Why etcdplan refuses to change the version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No member reported its version.
    #[error("no member reports the version it runs")]
    Unknown,
    /// Another major version.
    #[error(
        "etcd {to} is another major version than {from}; etcdplan changes versions one minor at a time within a major version"
    )]
    Major {
        /// Lowest version running.
        from: EtcdVersion,
        /// Wanted.
        to: VersionSpec,
    },
    /// Members span more than two minor versions, which etcd does not allow.
    #[error("members run {low} and {high}, more than one minor version apart")]
    Mixed {
        /// Lowest.
        low: EtcdVersion,
        /// Highest.
        high: EtcdVersion,
    },
    /// A release with a known data-loss bug.
    #[error(
        "etcd {version} can make revisions and data inconsistent between members (fixed in 3.5.3)"
    )]
    BadRelease {
        /// The release named.
        version: EtcdVersion,
    },
    /// A pass needs a newer release than the one named.
    #[error(
        "etcd {version} is older than {needed}, the oldest {minor} release etcdplan upgrades through: {why}"
    )]
    TooOld {
        /// The release named.
        version: EtcdVersion,
        /// The minimum.
        needed: EtcdVersion,
        /// Its minor version.
        minor: MinorVersion,
        /// Why.
        why: &'static str,
    },
    /// Members run a patch too old to leave their minor version.
    #[error(
        "before {to}, every member must run {needed} or later ({why}); the oldest runs {running}"
    )]
    PatchGate {
        /// The minor version the pass goes to.
        to: MinorVersion,
        /// The minimum.
        needed: EtcdVersion,
        /// Lowest running.
        running: EtcdVersion,
        /// Why.
        why: &'static str,
    },
    /// A downgrade without the operator saying so.
    #[error("{to} is older than {from}, which members run: a downgrade")]
    Downgrade {
        /// Highest running.
        from: EtcdVersion,
        /// Wanted.
        to: VersionSpec,
    },
    /// A downgrade of more than one minor version.
    #[error(
        "downgrading from {from} to {to} skips a minor version; etcd downgrades one minor at a time"
    )]
    DowngradeTooFar {
        /// Highest running.
        from: EtcdVersion,
        /// Wanted.
        to: VersionSpec,
    },
    /// A 3.5 → 3.4 downgrade needs 3.4.32+.
    #[error(
        "a 3.5 cluster can only be joined by 3.4.32 or later (started with --next-cluster-version-compatible); {to} cannot"
    )]
    DowngradeTarget {
        /// Wanted.
        to: VersionSpec,
    },
    /// A downgrade etcdplan does not drive.
    #[error(
        "etcdplan knows no way to downgrade {from} to {to}: it drives 3.5 → 3.4 by binary and 3.6 → 3.5, 3.7 → 3.6 through etcd's downgrade API"
    )]
    DowngradeApi {
        /// Highest running.
        from: MinorVersion,
        /// Wanted.
        to: MinorVersion,
    },
}

impl Refusal {
    /// What the operator can do.
    #[must_use]
    pub fn help(&self) -> &'static str {
        match self {
            Self::Unknown => "bring the members up (`etcdplan status`), then plan again",
            Self::Major { .. } | Self::DowngradeApi { .. } => {
                "set [cluster] version to what the members run; nothing was changed"
            }
            Self::Mixed { .. } => {
                "bring the members onto one minor version by hand, then plan again; nothing was changed"
            }
            Self::BadRelease { .. } => {
                "name 3.5.3 or later in [cluster] version (or just \"3.5\"); nothing was changed"
            }
            Self::TooOld { .. } => "name a newer release in [cluster] version; nothing was changed",
            Self::PatchGate { .. } => {
                "first set [cluster] version to the newest patch of the minor version the members run, apply, then upgrade; nothing was changed"
            }
            Self::Downgrade { .. } => {
                "if you mean it, pass --allow-downgrade; etcd supports 3.5 → 3.4 with 3.4.32 or later only; nothing was changed"
            }
            Self::DowngradeTooFar { .. } => {
                "downgrade one minor version at a time; nothing was changed"
            }
            Self::DowngradeTarget { .. } => {
                "name 3.4.32 or later in [cluster] version (Debian's 3.4.23 cannot be a downgrade target); nothing was changed"
            }
        }
    }
}

fn release(major: u32, minor: u32, patch: u32) -> EtcdVersion {
    EtcdVersion {
        major,
        minor,
        patch,
    }
}

/// The oldest release a pass onto `minor` may use, and why; `leaving` says
/// whether a later pass leaves that minor version again.
fn floor(minor: MinorVersion, leaving: bool) -> Option<(EtcdVersion, &'static str)> {
    match (minor.major, minor.minor) {
        (3, 5) if leaving => Some((
            release(3, 5, 26),
            "3.5.20–3.5.25 carry learner, membership and zombie-member bugs into 3.6",
        )),
        (3, 5) => Some((
            release(3, 5, 3),
            "3.5.0–3.5.2 can make revisions and data inconsistent",
        )),
        _ => None,
    }
}

/// What to know before a pass from `from` onto `to`.
fn notes(from: MinorVersion, to: MinorVersion) -> Vec<String> {
    match (from.major, from.minor, to.minor) {
        (3, 4, 5) => vec![
            "3.4 → 3.5 is not supported as a rolling upgrade when auth is enabled (a WAL format change)".into(),
            "3.5 logs with zap and turns pre-vote on by default; /v3beta is gone and etcd_debugging_mvcc_* metrics are renamed etcd_mvcc_*".into(),
        ],
        (3, 5, 6) => vec![
            "3.6 no longer serves clients on peer URLs and lowers the default snapshot-count to 10000; if --enable-v2 was ever set, run `etcdutl check v2store` on every member first".into(),
            "3.5.32 or later is advised before 3.6 (a better v2store check)".into(),
        ],
        _ => Vec::new(),
    }
}

/// The passes that bring members running `running` to `want`, in order; none
/// when they run it already.
///
/// # Errors
/// The [`Refusal`] of the first rule the change breaks.
pub fn route(
    running: &[EtcdVersion],
    want: VersionSpec,
    allow_downgrade: bool,
) -> Result<Vec<Pass>, Refusal> {
    let (Some(&low), Some(&high)) = (running.iter().min(), running.iter().max()) else {
        return Err(Refusal::Unknown);
    };
    if low.major != want.minor.major || high.major != want.minor.major {
        return Err(Refusal::Major {
            from: low,
            to: want,
        });
    }
    if high.minor > low.minor + 1 {
        return Err(Refusal::Mixed { low, high });
    }
    if let Some(v) = want.exact()
        && v.major == 3
        && v.minor == 5
        && v.patch <= 2
    {
        return Err(Refusal::BadRelease { version: v });
    }
    if running.iter().all(|v| want.matches(*v)) {
        return Ok(Vec::new());
    }
    let target = want.minor.minor;
    if target < high.minor || want.exact().is_some_and(|v| v < high) {
        return downgrade(high, want, allow_downgrade);
    }
    // Upgrades: each minor version from the lowest one running, in turn.
    let mut passes = Vec::new();
    let first = if low.minor == target {
        target
    } else {
        low.minor + 1
    };
    for minor in first..=target {
        let m = MinorVersion {
            major: want.minor.major,
            minor,
        };
        let last = minor == target;
        let at_least = floor(m, !last).map(|(v, why)| {
            if let Some(named) = want.exact().filter(|_| last)
                && named < v
            {
                return Err(Refusal::TooOld {
                    version: named,
                    needed: v,
                    minor: m,
                    why,
                });
            }
            Ok(v)
        });
        let at_least = at_least.transpose()?;
        // Leaving a minor version the members run now: its patch gate.
        let from = MinorVersion {
            major: m.major,
            minor: minor.saturating_sub(1),
        };
        if minor > low.minor
            && passes.is_empty()
            && let Some((needed, why)) = floor(from, true)
            && low.minor == from.minor
            && low < needed
        {
            return Err(Refusal::PatchGate {
                to: m,
                needed,
                running: low,
                why,
            });
        }
        passes.push(Pass {
            to: VersionSpec {
                minor: m,
                patch: want.patch.filter(|_| last),
            },
            at_least,
            notes: if minor > low.minor {
                notes(from, m)
            } else {
                Vec::new()
            },
            via_api: false,
        });
    }
    Ok(passes)
}

fn downgrade(high: EtcdVersion, want: VersionSpec, allow: bool) -> Result<Vec<Pass>, Refusal> {
    if !allow {
        return Err(Refusal::Downgrade {
            from: high,
            to: want,
        });
    }
    let target = want.minor.minor;
    if high.minor > target + 1 {
        return Err(Refusal::DowngradeTooFar {
            from: high,
            to: want,
        });
    }
    if high.minor == target {
        // Another patch of the same minor version: the same storage format.
        return Ok(vec![Pass {
            to: want,
            at_least: None,
            notes: vec![format!(
                "a patch downgrade within {}: the data format does not change",
                want.minor
            )],
            via_api: false,
        }]);
    }
    match (high.minor, target) {
        (5, 4) => match want.exact() {
            Some(v) if v >= release(3, 4, 32) => Ok(vec![Pass {
                to: want,
                at_least: Some(release(3, 4, 32)),
                notes: vec![
                    "the cluster version drops to 3.4 as soon as one member runs it; not supported when auth is enabled".into(),
                ],
                via_api: false,
            }]),
            _ => Err(Refusal::DowngradeTarget { to: want }),
        },
        // From 3.6 on etcd downgrades itself: the storage version first,
        // then the binaries (etcd-versions §5).
        (6, 5) | (7, 6) => Ok(vec![Pass {
            to: want,
            at_least: None,
            notes: vec![format!(
                "a downgrade through etcd's downgrade API: `downgrade validate` and `downgrade enable` {}, every member's storage version falls to {} before any binary changes; a stop half way is undone with `downgrade cancel`",
                want.minor, want.minor
            )],
            via_api: true,
        }]),
        _ => Err(Refusal::DowngradeApi {
            from: high.minor(),
            to: want.minor,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> EtcdVersion {
        EtcdVersion::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    fn spec(s: &str) -> VersionSpec {
        VersionSpec::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn targets(r: &Result<Vec<Pass>, Refusal>) -> Vec<String> {
        match r {
            Ok(p) => p.iter().map(|p| p.to.to_string()).collect(),
            Err(e) => panic!("refused: {e}"),
        }
    }

    #[test]
    fn members_on_the_wanted_version_need_no_pass() {
        let running = [v("3.4.23"); 3];
        assert_eq!(route(&running, spec("3.4"), false), Ok(Vec::new()));
        assert_eq!(route(&running, spec("3.4.23"), false), Ok(Vec::new()));
    }

    #[test]
    fn one_minor_up_is_one_pass_with_its_notes() {
        let r = route(&[v("3.4.23"); 3], spec("3.5"), false);
        assert_eq!(targets(&r), ["3.5"]);
        let p = &r.unwrap_or_default()[0];
        assert_eq!(p.at_least, Some(v("3.5.3")));
        assert!(p.notes.iter().any(|n| n.contains("auth")), "{:?}", p.notes);
        assert_eq!(
            targets(&route(&[v("3.4.23"); 3], spec("3.5.16"), false)),
            ["3.5.16"]
        );
    }

    #[test]
    fn two_minors_up_are_two_passes_and_the_middle_one_meets_the_3_6_gate() {
        let r = route(&[v("3.4.23"); 3], spec("3.6.5"), false);
        assert_eq!(targets(&r), ["3.5", "3.6.5"]);
        let passes = r.unwrap_or_default();
        assert_eq!(passes[0].at_least, Some(v("3.5.26")));
        assert_eq!(passes[1].at_least, None);
    }

    #[test]
    fn a_cluster_half_way_through_an_upgrade_finishes_it_first() {
        let running = [v("3.4.23"), v("3.5.16"), v("3.5.16")];
        assert_eq!(targets(&route(&running, spec("3.5"), false)), ["3.5"]);
        assert_eq!(targets(&route(&running, spec("3.5.16"), false)), ["3.5.16"]);
        // A patch upgrade within the minor version is one pass.
        assert_eq!(
            targets(&route(&[v("3.5.16"); 3], spec("3.5.21"), false)),
            ["3.5.21"]
        );
    }

    #[test]
    fn every_refused_path_says_why() {
        type Case = (Vec<EtcdVersion>, &'static str, bool, fn(&Refusal) -> bool);
        let cases: Vec<Case> = vec![
            (vec![], "3.5", false, |e| matches!(e, Refusal::Unknown)),
            (vec![v("3.5.16")], "4.0", false, |e| {
                matches!(e, Refusal::Major { .. })
            }),
            (vec![v("3.4.23"), v("3.6.1")], "3.6", false, |e| {
                matches!(e, Refusal::Mixed { .. })
            }),
            (vec![v("3.4.23")], "3.5.1", false, |e| {
                matches!(e, Refusal::BadRelease { .. })
            }),
            (vec![v("3.5.16")], "3.6", false, |e| {
                matches!(e, Refusal::PatchGate { .. })
            }),
            (vec![v("3.5.26"), v("3.5.21")], "3.6", false, |e| {
                matches!(e, Refusal::PatchGate { .. })
            }),
            (vec![v("3.5.16")], "3.4.23", false, |e| {
                matches!(e, Refusal::Downgrade { .. })
            }),
            (vec![v("3.5.16")], "3.5.10", false, |e| {
                matches!(e, Refusal::Downgrade { .. })
            }),
            (vec![v("3.5.16")], "3.4.23", true, |e| {
                matches!(e, Refusal::DowngradeTarget { .. })
            }),
            (vec![v("3.5.16")], "3.4", true, |e| {
                matches!(e, Refusal::DowngradeTarget { .. })
            }),
            (vec![v("4.1.0")], "4.0", true, |e| {
                matches!(e, Refusal::DowngradeApi { .. })
            }),
            (vec![v("3.6.1")], "3.4.33", true, |e| {
                matches!(e, Refusal::DowngradeTooFar { .. })
            }),
        ];
        for (running, want, allow, expected) in cases {
            match route(&running, spec(want), allow) {
                Err(e) => {
                    assert!(expected(&e), "{running:?} → {want}: {e:?}");
                    assert!(
                        !e.to_string().is_empty() && e.help().contains("nothing was changed")
                            || matches!(e, Refusal::Unknown)
                    );
                }
                Ok(p) => panic!("{running:?} → {want} was allowed: {p:?}"),
            }
        }
    }

    #[test]
    fn allowed_downgrades_are_one_pass() {
        assert_eq!(
            targets(&route(&[v("3.5.16"); 3], spec("3.4.33"), true)),
            ["3.4.33"]
        );
        assert_eq!(
            targets(&route(&[v("3.5.16"); 3], spec("3.5.10"), true)),
            ["3.5.10"]
        );
        // Upgrading past the gate is fine once the members run a new enough 3.5.
        assert_eq!(
            targets(&route(&[v("3.5.26"); 3], spec("3.6"), false)),
            ["3.6"]
        );
    }
}
