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
    /// A pass needs a newer release than the one named.
    #[error("etcd {version} is older than {needed}, the oldest {minor} release allowed: {why}")]
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
        "{to} needs {needed} or newer on every member first ({why}); the oldest runs {running}"
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
            Self::TooOld { .. } => {
                "name a newer release in [cluster] version (or just the minor version, such as \"3.5\"); nothing was changed"
            }
            Self::PatchGate { .. } => {
                "put that release (or a newer patch) in binary_source beside the one you upgrade to: etcdplan then moves every member onto it first; nothing was changed"
            }
            Self::Downgrade { .. } => {
                "if you mean it, pass --allow-downgrade: etcdplan downgrades 3.5 → 3.4 (3.4.32 or later) by binary, and 3.6 → 3.5 and 3.7 → 3.6 through etcd's downgrade API; nothing was changed"
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

/// What a rule of the upgrade path checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Passes change the minor version by one at a time.
    OneMinor,
    /// Before leaving a minor version, every member runs the newest patch of
    /// it that `binary_source` offers.
    NewestPatchFirst,
    /// A pass onto `minor` uses `patch` or later.
    Landing {
        /// The minor version (3, 5).
        minor: (u32, u32),
        /// The oldest patch allowed.
        patch: u32,
    },
    /// Every member runs `patch` or later of `minor` before any leaves it.
    Leaving {
        /// The minor version left.
        minor: (u32, u32),
        /// The oldest patch allowed.
        patch: u32,
    },
    /// No `experimental-*` key in the configuration of a member of `minor` or later.
    NoExperimentalFrom((u32, u32)),
    /// v2 off and `etcdutl check v2store` clean on every member before `minor`.
    V2CleanBefore((u32, u32)),
    /// A snapshot from the leader before every pass.
    SnapshotEachPass,
    /// The minor version no longer gets releases.
    EndOfLife {
        /// The minor version (3, 4).
        minor: (u32, u32),
        /// Its last release.
        last: u32,
        /// Since when.
        since: &'static str,
    },
}

/// One rule of etcd's upgrade path, with what it says and where it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// What it checks.
    pub check: Check,
    /// Why, as the plan tells it.
    pub why: &'static str,
    /// Where etcd says so (WEB = etcd-io/website, ETCD = etcd-io/etcd).
    pub source: &'static str,
}

/// The rules etcdplan plans version changes by, one row each; every gate
/// below reads its figures from here (etcd-versions §1).
pub const RULES: &[Rule] = &[
    Rule {
        check: Check::OneMinor,
        why: "upgrades that skip a minor version are not supported and will likely fail",
        source: "WEB content/en/docs/v3.7/upgrades/upgrading-etcd.md",
    },
    Rule {
        check: Check::NewestPatchFirst,
        why: "update to the most recent patch version before upgrading to the next minor version",
        source: "WEB content/en/docs/v3.7/upgrades/upgrading-etcd.md",
    },
    Rule {
        check: Check::Landing {
            minor: (3, 5),
            patch: 3,
        },
        why: "3.5.0–3.5.2 can make revisions and data inconsistent between members (fixed in 3.5.3)",
        source: "ETCD CHANGELOG/CHANGELOG-3.5.md v3.5.3; WEB content/en/blog/2022/jepsen-343-results.md",
    },
    Rule {
        check: Check::Leaving {
            minor: (3, 5),
            patch: 32,
        },
        why: "older 3.5 releases lose learner promotions, leave zombie members and miss custom v2 content in the WAL on the way to 3.6 (the floor rose from 3.5.26 to 3.5.32 in August 2026)",
        source: "WEB content/en/docs/v3.6/upgrades/upgrade_3_6.md; WEB content/en/blog/2026/july-patch-release.md; etcd #19557, #20793, #20809",
    },
    Rule {
        check: Check::V2CleanBefore((3, 6)),
        why: "3.6 refuses to start on custom v2 content (\"detected disallowed v2 WAL\"): enable-v2 off everywhere and `etcdutl check v2store` clean on every member's data dir",
        source: "WEB content/en/docs/v3.6/upgrades/upgrade_3_6.md; etcd #20809, #21849",
    },
    Rule {
        check: Check::Leaving {
            minor: (3, 6),
            patch: 11,
        },
        why: "earlier 3.6 patch releases may not be compatible with a rolling upgrade to 3.7",
        source: "WEB content/en/docs/v3.7/upgrades/upgrade_3_7.md; WEB content/en/blog/2026/announcing-etcd-3.7.md",
    },
    Rule {
        check: Check::NoExperimentalFrom((3, 7)),
        why: "3.7 removed every --experimental-* flag and fails to start on them (config-file keys are silently ignored)",
        source: "WEB content/en/docs/v3.7/upgrades/upgrade_3_7.md; ETCD PR #19959",
    },
    Rule {
        check: Check::SnapshotEachPass,
        why: "every upgrade guide starts with a snapshot from the leader",
        source: "WEB content/en/docs/v3.6/upgrades/upgrade_3_6.md, upgrade_3_7.md (step 2)",
    },
    Rule {
        check: Check::EndOfLife {
            minor: (3, 4),
            last: 45,
            since: "June 2026",
        },
        why: "3.4 gets no more fixes",
        source: "WEB content/en/blog/2026/june-patch-release.md",
    },
];

fn minor_of(m: (u32, u32)) -> MinorVersion {
    MinorVersion {
        major: m.0,
        minor: m.1,
    }
}

/// The oldest release a pass onto `minor` may use, and why.
fn landing_floor(minor: MinorVersion) -> Option<(EtcdVersion, &'static str)> {
    rule_floor(minor, true)
}

/// The oldest release every member must run before any leaves `minor`, and why.
pub fn leaving_floor(minor: MinorVersion) -> Option<(EtcdVersion, &'static str)> {
    rule_floor(minor, false)
}

/// The patch floor of `minor` the rules set for landing on it or leaving it.
fn rule_floor(minor: MinorVersion, landing: bool) -> Option<(EtcdVersion, &'static str)> {
    RULES.iter().find_map(|r| {
        let (m, patch) = match (r.check, landing) {
            (Check::Landing { minor, patch }, true) | (Check::Leaving { minor, patch }, false) => {
                (minor, patch)
            }
            _ => return None,
        };
        (minor_of(m) == minor).then(|| (release(m.0, m.1, patch), r.why))
    })
}

/// The floor of a pass onto `minor`: the landing floor, raised to the
/// leaving floor when a later pass leaves it again.
fn floor(minor: MinorVersion, leaving: bool) -> Option<(EtcdVersion, &'static str)> {
    let land = landing_floor(minor);
    match leaving_floor(minor).filter(|_| leaving) {
        Some(l) if land.is_none_or(|(v, _)| l.0 > v) => Some(l),
        _ => land,
    }
}

/// Whether a pass onto `minor` must first find every member's v2 store clean.
#[must_use]
pub fn needs_v2_check(minor: MinorVersion) -> bool {
    RULES
        .iter()
        .any(|r| matches!(r.check, Check::V2CleanBefore(m) if minor_of(m) == minor))
}

/// The first minor version that refuses `experimental-*` keys, and why.
#[must_use]
pub fn no_experimental_from() -> Option<(MinorVersion, &'static str)> {
    RULES.iter().find_map(|r| match r.check {
        Check::NoExperimentalFrom(m) => Some((minor_of(m), r.why)),
        _ => None,
    })
}

/// When `minor` stopped getting releases: its last release and since when.
#[must_use]
pub fn end_of_life(minor: MinorVersion) -> Option<(EtcdVersion, &'static str)> {
    RULES.iter().find_map(|r| match r.check {
        Check::EndOfLife {
            minor: m,
            last,
            since,
        } if minor_of(m) == minor => Some((release(m.0, m.1, last), since)),
        _ => None,
    })
}

/// What to know before a pass from `from` onto `to`.
fn notes(from: MinorVersion, to: MinorVersion) -> Vec<String> {
    match (from.major, from.minor, to.minor) {
        (3, 4, 5) => vec![
            "3.4 → 3.5 is not supported as a rolling upgrade when auth is enabled (a WAL format change)".into(),
            "3.5 logs with zap and turns pre-vote on by default; /v3beta is gone and etcd_debugging_mvcc_* metrics are renamed etcd_mvcc_*".into(),
        ],
        (3, 5, 6) => vec![
            "3.6 no longer serves clients on peer URLs; its defaults change: snapshot-count 100000 → 10000, v2-deprecation not-yet → write-only, discovery-fallback proxy → exit".into(),
            "each member's v2 store is checked with `etcdutl check v2store` (member stopped for it) before the first runs 3.6".into(),
        ],
        (3, 6, 7) => vec![
            "3.7 bootstraps from the v3 store, removes every experimental-* flag and --discovery; the config is rendered for each member's release as it restarts".into(),
        ],
        _ => Vec::new(),
    }
}

/// A patch pass within `minor` onto `to`, when some member runs older.
fn patch_pass(to: EtcdVersion, floor: Option<EtcdVersion>) -> Pass {
    Pass {
        to: VersionSpec::exact_of(to),
        at_least: floor,
        notes: vec![format!(
            "first every member onto {to}, the newest {} release at hand (etcd: the newest patch before the next minor version)",
            to.minor()
        )],
        via_api: false,
    }
}

/// The passes that bring members running `running` to `want`, in order; none
/// when they run it already. `offered` are the releases `binary_source`
/// holds (empty: the binaries on the hosts are used).
///
/// # Errors
/// The [`Refusal`] of the first rule the change breaks.
pub fn route(
    running: &[EtcdVersion],
    want: VersionSpec,
    allow_downgrade: bool,
    offered: &[EtcdVersion],
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
        && let Some((needed, why)) = landing_floor(v.minor())
        && v < needed
    {
        return Err(Refusal::TooOld {
            version: v,
            needed,
            minor: v.minor(),
            why,
        });
    }
    if running.iter().all(|v| want.matches(*v)) {
        return Ok(Vec::new());
    }
    let target = want.minor.minor;
    if target < high.minor || want.exact().is_some_and(|v| v < high) {
        return downgrade(low, high, want, allow_downgrade);
    }
    let major = want.minor.major;
    let mut passes = Vec::new();
    // Leaving the minor version the oldest members run: its newest patch at
    // hand first, and the floor of the rules.
    if low.minor < target {
        let m = low.minor();
        let floor = leaving_floor(m);
        let newest = offered
            .iter()
            .filter(|v| v.minor() == m)
            .max()
            .copied()
            .filter(|v| floor.is_none_or(|(f, _)| *v >= f));
        match (newest, floor) {
            (Some(n), _) if n > low => passes.push(patch_pass(n, floor.map(|f| f.0))),
            (_, Some((needed, why))) if low < needed => {
                return Err(Refusal::PatchGate {
                    to: MinorVersion {
                        major,
                        minor: m.minor + 1,
                    },
                    needed,
                    running: low,
                    why,
                });
            }
            _ => {}
        }
    }
    // Then each minor version in turn.
    let first = if low.minor == target {
        target
    } else {
        low.minor + 1
    };
    for minor in first..=target {
        let m = MinorVersion { major, minor };
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
        let from = MinorVersion {
            major,
            minor: minor.saturating_sub(1),
        };
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

/// A cluster whose members run two minor versions against the rules: the
/// older ones below the floor for leaving theirs (say 3.6 beside a 3.5 older
/// than 3.5.32), or a newer one below the floor for landing on its minor
/// (3.5.1 beside 3.4): the older and the newer running version that show it,
/// and the release the members of the floor's minor need.
#[must_use]
pub fn forbidden_mix(running: &[EtcdVersion]) -> Option<(EtcdVersion, EtcdVersion, EtcdVersion)> {
    let (&low, &high) = (running.iter().min()?, running.iter().max()?);
    if high.minor != low.minor + 1 {
        return None;
    }
    if let Some((needed, _)) = leaving_floor(low.minor())
        && low < needed
    {
        return Some((low, high, needed));
    }
    let newer_low = running
        .iter()
        .filter(|v| v.minor() == high.minor())
        .min()
        .copied()?;
    let (needed, _) = landing_floor(high.minor())?;
    (newer_low < needed).then_some((low, newer_low, needed))
}

fn downgrade(
    low: EtcdVersion,
    high: EtcdVersion,
    want: VersionSpec,
    allow: bool,
) -> Result<Vec<Pass>, Refusal> {
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
        // An upgrade stopped half way: the cluster still runs at the older
        // minor version, so the newer binaries are swapped back.
        (6, 5) | (7, 6) if low.minor == target => Ok(vec![Pass {
            to: want,
            at_least: None,
            notes: vec![format!(
                "members run two minor versions and the cluster still runs at {}: the newer members get a {} binary back",
                want.minor, want.minor
            )],
            via_api: false,
        }]),
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
        assert_eq!(route(&running, spec("3.4"), false, &[]), Ok(Vec::new()));
        assert_eq!(route(&running, spec("3.4.23"), false, &[]), Ok(Vec::new()));
    }

    #[test]
    fn one_minor_up_is_one_pass_with_its_notes() {
        let r = route(&[v("3.4.23"); 3], spec("3.5"), false, &[]);
        assert_eq!(targets(&r), ["3.5"]);
        let p = &r.unwrap_or_default()[0];
        assert_eq!(p.at_least, Some(v("3.5.3")));
        assert!(p.notes.iter().any(|n| n.contains("auth")), "{:?}", p.notes);
        assert_eq!(
            targets(&route(&[v("3.4.23"); 3], spec("3.5.16"), false, &[])),
            ["3.5.16"]
        );
    }

    #[test]
    fn two_minors_up_are_two_passes_and_the_middle_one_meets_the_3_6_gate() {
        let r = route(&[v("3.4.23"); 3], spec("3.6.5"), false, &[]);
        assert_eq!(targets(&r), ["3.5", "3.6.5"]);
        let passes = r.unwrap_or_default();
        assert_eq!(passes[0].at_least, Some(v("3.5.32")));
        assert_eq!(passes[1].at_least, None);
    }

    #[test]
    fn a_cluster_half_way_through_an_upgrade_finishes_it_first() {
        let running = [v("3.4.23"), v("3.5.16"), v("3.5.16")];
        assert_eq!(targets(&route(&running, spec("3.5"), false, &[])), ["3.5"]);
        assert_eq!(
            targets(&route(&running, spec("3.5.16"), false, &[])),
            ["3.5.16"]
        );
        // A patch upgrade within the minor version is one pass.
        assert_eq!(
            targets(&route(&[v("3.5.16"); 3], spec("3.5.21"), false, &[])),
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
                matches!(e, Refusal::TooOld { .. })
            }),
            (vec![v("3.5.16")], "3.6", false, |e| {
                matches!(e, Refusal::PatchGate { .. })
            }),
            (vec![v("3.5.32"), v("3.5.31")], "3.6", false, |e| {
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
            match route(&running, spec(want), allow, &[]) {
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
            targets(&route(&[v("3.5.16"); 3], spec("3.4.33"), true, &[])),
            ["3.4.33"]
        );
        assert_eq!(
            targets(&route(&[v("3.5.16"); 3], spec("3.5.10"), true, &[])),
            ["3.5.10"]
        );
        // Upgrading past the gate is fine once the members run a new enough 3.5.
        assert_eq!(
            targets(&route(&[v("3.5.32"); 3], spec("3.6"), false, &[])),
            ["3.6"]
        );
    }

    #[test]
    fn the_3_6_floor_is_3_5_32_and_names_itself() {
        // 3.5.31 → 3.6 with nothing newer at hand: refused, the floor named.
        let e = route(&[v("3.5.31"); 3], spec("3.6"), false, &[v("3.6.14")]);
        let Err(e) = e else { panic!("allowed: {e:?}") };
        assert!(matches!(e, Refusal::PatchGate { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("3.6 needs 3.5.32 or newer on every member first"),
            "{e}"
        );
        // With 3.5.30 the newest 3.5 at hand, still refused: it is below the floor.
        let e = route(&[v("3.5.30"); 3], spec("3.6"), false, &[v("3.5.30")]);
        assert!(matches!(e, Err(Refusal::PatchGate { .. })), "{e:?}");
    }

    #[test]
    fn the_newest_patch_at_hand_comes_first() {
        let offered = [v("3.5.33"), v("3.5.32"), v("3.6.14")];
        // Below the floor, a floor-meeting patch at hand: it is pass 1.
        let r = route(&[v("3.5.16"); 3], spec("3.6"), false, &offered);
        assert_eq!(targets(&r), ["3.5.33", "3.6"]);
        assert_eq!(r.unwrap_or_default()[0].at_least, Some(v("3.5.32")));
        // At the floor, a newer patch at hand: still first.
        let r = route(&[v("3.5.32"); 3], spec("3.6"), false, &offered);
        assert_eq!(targets(&r), ["3.5.33", "3.6"]);
        // Already at the newest: straight on.
        let r = route(&[v("3.5.33"); 3], spec("3.6"), false, &offered);
        assert_eq!(targets(&r), ["3.6"]);
    }

    #[test]
    fn three_five_to_three_seven_is_two_passes_with_the_3_6_floor() {
        let r = route(&[v("3.5.32"); 3], spec("3.7.1"), false, &[]);
        assert_eq!(targets(&r), ["3.6", "3.7.1"]);
        let passes = r.unwrap_or_default();
        assert_eq!(passes[0].at_least, Some(v("3.6.11")));
        // 3.6.10 → 3.7: refused, 3.6.11 named.
        let e = route(&[v("3.6.10"); 3], spec("3.7"), false, &[]);
        let Err(e) = e else { panic!("allowed") };
        assert!(e.to_string().contains("3.6.11 or newer"), "{e}");
        assert_eq!(
            targets(&route(&[v("3.6.11"); 3], spec("3.7"), false, &[])),
            ["3.7"]
        );
    }

    #[test]
    fn a_forbidden_mix_is_named_and_repaired_by_the_floor_first() {
        // A newer member below its minor's landing floor is one too.
        assert_eq!(
            forbidden_mix(&[v("3.4.23"), v("3.5.1"), v("3.5.16")]),
            Some((v("3.4.23"), v("3.5.1"), v("3.5.3")))
        );
        let running = [v("3.6.2"), v("3.5.20"), v("3.5.32")];
        assert_eq!(
            forbidden_mix(&running),
            Some((v("3.5.20"), v("3.6.2"), v("3.5.32")))
        );
        assert_eq!(forbidden_mix(&[v("3.6.2"), v("3.5.32")]), None);
        assert_eq!(forbidden_mix(&[v("3.5.2"), v("3.5.32")]), None);
        let r = route(&running, spec("3.6"), false, &[v("3.5.32"), v("3.6.2")]);
        assert_eq!(targets(&r), ["3.5.32", "3.6"]);
    }

    #[test]
    fn a_half_way_upgrade_goes_back_by_binary_a_finished_one_by_the_api() {
        let half = [v("3.6.14"), v("3.5.33"), v("3.5.33")];
        let r = route(&half, spec("3.5"), true, &[]);
        assert_eq!(r.clone().map(|p| p[0].via_api), Ok(false), "{r:?}");
        let r = route(&[v("3.7.1"); 3], spec("3.6"), true, &[]);
        assert_eq!(r.clone().map(|p| p[0].via_api), Ok(true), "{r:?}");
        let r = route(&[v("3.6.14"); 3], spec("3.5"), true, &[]);
        assert_eq!(r.clone().map(|p| p[0].via_api), Ok(true), "{r:?}");
    }

    #[test]
    fn every_rule_has_a_source_and_the_gates_read_the_table() {
        for r in RULES {
            assert!(!r.source.is_empty() && !r.why.is_empty(), "{r:?}");
        }
        let m = |minor| MinorVersion { major: 3, minor };
        assert_eq!(leaving_floor(m(5)).map(|f| f.0), Some(v("3.5.32")));
        assert_eq!(leaving_floor(m(6)).map(|f| f.0), Some(v("3.6.11")));
        assert!(needs_v2_check(m(6)) && !needs_v2_check(m(7)));
        assert_eq!(no_experimental_from().map(|x| x.0), Some(m(7)));
        assert_eq!(end_of_life(m(4)).map(|x| x.0), Some(v("3.4.45")));
        assert_eq!(end_of_life(m(5)), None);
    }
}
