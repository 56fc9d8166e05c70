//! `binary_source` checked against `[cluster] version` and against what
//! etcdplan knows: the releases found on this machine must include the one
//! the file asks for, must be of a minor version etcdplan has tables for,
//! and the one the members would run must not be a release etcd itself
//! warns against, so a wrong binary is refused with the line that names it,
//! before any host is touched.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use super::Release;
use super::desired::Desired;
use super::diagnostic::Problem;
use super::etcd_keys::KNOWN_MINORS;
use crate::model::{EtcdVersion, MinorVersion, VersionSpec};

/// What [`attach`] found wrong with `binary_source`.
#[derive(Debug, Default)]
pub struct Attached {
    /// Problems that make the file unusable: no etcd at the path, a release
    /// of a minor version etcdplan does not know, or a release the members
    /// would run that etcd warns against. The file is refused.
    pub refusals: Vec<Problem>,
    /// The releases do not include the version the file names (or several
    /// leave it open). Shown, but the file still reaches the diff, whose
    /// blockers say what the live cluster needs on top (the passes, the patch
    /// a minor version must reach before the next): the plan is blocked
    /// rather than the file refused.
    pub mismatch: Option<Problem>,
}

/// "3.4, 3.5, 3.6 and 3.7": the minor versions etcdplan has tables for.
pub fn known_minors() -> String {
    let all: Vec<String> = KNOWN_MINORS
        .iter()
        .map(|&(major, minor)| MinorVersion { major, minor }.to_string())
        .collect();
    match all.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn is_known(m: MinorVersion) -> bool {
    KNOWN_MINORS.contains(&(m.major, m.minor))
}

/// Whether `v` is one of the releases that can make revisions and data
/// inconsistent between members (3.5.0–3.5.2, fixed in 3.5.3).
fn inconsistent(v: EtcdVersion) -> bool {
    v.major == 3 && v.minor == 5 && v.patch <= 2
}

/// `[cluster] version` (at `span`) naming a minor version etcdplan has no
/// tables for (keys, flags, upgrade rules) is refused at its line.
pub fn unknown_version(spec: VersionSpec, span: Range<usize>) -> Option<Problem> {
    if is_known(spec.minor) {
        return None;
    }
    Some(
        Problem::error(
            "etcdfile::unknown-version",
            format!(
                "[cluster] version asks for etcd {spec}, a minor version etcdplan does not know: etcdplan knows etcd {}",
                known_minors()
            ),
        )
        .label(span, format!("etcd {}", spec.minor))
        .help(format!(
            "name one of etcd {} in [cluster] version",
            known_minors()
        )),
    )
}

/// Fills in `binary_source`'s releases; returns what is wrong with them. A
/// file without `[cluster] version` runs the one release its source holds.
pub fn attach(
    d: &mut Desired,
    found: &BTreeMap<PathBuf, Result<Vec<Release>, String>>,
) -> Attached {
    let Some(src) = &mut d.etcd.binary_source else {
        return Attached::default();
    };
    let span = src.span.clone();
    let releases = match found.get(&src.path).cloned().unwrap_or(Ok(Vec::new())) {
        Ok(r) => r,
        Err(why) => {
            return Attached {
                refusals: vec![
                    Problem::error("etcdfile::binary-source", why)
                        .label(span, "etcdplan takes the etcd binary from here")
                        .help("point binary_source at an etcd binary, an unpacked etcd release, or a folder of them"),
                ],
                mismatch: None,
            };
        }
    };
    let listed = releases
        .iter()
        .map(|r| r.version.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut refusals = Vec::new();
    let unknown: Vec<String> = releases
        .iter()
        .filter(|r| !is_known(r.version.minor()))
        .map(|r| r.version.to_string())
        .collect();
    if !unknown.is_empty() {
        let (what, them) = match unknown.as_slice() {
            [one] => (format!("etcd {one}"), "it"),
            many => (format!("etcd {}", many.join(", ")), "them"),
        };
        refusals.push(
            Problem::error(
                "etcdfile::binary-source",
                format!(
                    "binary_source holds {what}, of a minor version etcdplan does not know: etcdplan knows etcd {}",
                    known_minors()
                ),
            )
            .label(span.clone(), what)
            .help(format!(
                "take {them} out of binary_source; etcdplan runs etcd {} only",
                known_minors()
            )),
        );
    }
    let mut mismatch = None;
    match (d.version, releases.as_slice()) {
        (_, []) => {}
        (Some(want), _) if !releases.iter().any(|r| want.matches(r.version)) => {
            mismatch = Some(
                Problem::error(
                    "etcdfile::binary-source",
                    format!(
                        "[cluster] version asks for etcd {want}, but binary_source holds {listed}"
                    ),
                )
                .label(span.clone(), format!("etcd {listed}"))
                .help(format!(
                    "point binary_source at an etcd {want} release, or set [cluster] version to the release it holds"
                )),
            );
        }
        (Some(_), _) => {}
        (None, [one]) => d.version = Some(VersionSpec::exact_of(one.version)),
        (None, _) => {
            mismatch = Some(
                Problem::error(
                    "etcdfile::binary-source",
                    format!(
                        "binary_source holds several releases ({listed}); which one should the members run?"
                    ),
                )
                .label(span.clone(), "several releases")
                .help("set [cluster] version to one of them"),
            );
        }
    }
    // The release the members would run: the newest the version selects
    // (releases are newest first), as the rollout takes it.
    let runs = d
        .version
        .and_then(|want| releases.iter().find(|r| want.matches(r.version)));
    if let Some(r) = runs.filter(|r| inconsistent(r.version)) {
        refusals.push(
            Problem::error(
                "etcdfile::binary-source",
                format!(
                    "etcd {} can make revisions and data inconsistent between members: 3.5.0–3.5.2 carry that bug, fixed in 3.5.3 (etcd's CHANGELOG-3.5 and its 3.5 upgrade notes)",
                    r.version
                ),
            )
            .label(span, format!("etcd {}", r.version))
            .help("point binary_source at etcd 3.5.3 or later (the newest 3.5 patch is best); nothing was changed"),
        );
    }
    src.releases = releases;
    Attached { refusals, mismatch }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigError, Context, Level, Loaded, parse};

    const SOURCE: &str = "/srv/etcd";

    /// One member, `binary_source` on line 5; `[cluster] version` on line 3
    /// when given.
    fn text(version: Option<&str>) -> String {
        let version = version.map_or_else(|| "\n".to_owned(), |v| format!("version = \"{v}\"\n"));
        format!(
            "[cluster]\nname = \"main\"\n{version}[etcd]\nbinary_source = \"{SOURCE}\"\n\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n"
        )
    }

    fn release(v: &str) -> Release {
        let version = EtcdVersion::parse(v).unwrap_or_else(|| panic!("bad version {v}"));
        Release {
            path: PathBuf::from(format!("{SOURCE}/etcd-v{v}/etcd")),
            version,
            sha256: format!("{:0>64}", v.replace('.', "")),
            etcdutl: None,
        }
    }

    /// Parses the file with `binary_source` holding `found` (newest first,
    /// as the edge hands them in).
    fn load(version: Option<&str>, found: Result<&[&str], &str>) -> Result<Loaded, ConfigError> {
        let mut ctx = Context {
            base_dir: PathBuf::from("/"),
            ..Context::default()
        };
        let found = found
            .map(|rs| {
                let mut rs: Vec<Release> = rs.iter().map(|r| release(r)).collect();
                rs.sort_by_key(|r| std::cmp::Reverse(r.version));
                rs
            })
            .map_err(str::to_owned);
        ctx.releases.insert(Path::new(SOURCE).to_owned(), found);
        parse("etcdfile.toml", text(version), &ctx)
    }

    /// The file's errors as (line, message).
    fn refused(version: Option<&str>, found: Result<&[&str], &str>) -> Vec<(usize, String)> {
        match load(version, found) {
            Ok(l) => panic!("accepted: {:?}", l.warnings),
            Err(ConfigError::Invalid { problems, .. }) => problems
                .iter()
                .filter(|p| p.level == Level::Error)
                .map(|p| (p.line().unwrap_or(0), p.message.clone()))
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_known_minors_read_as_a_list() {
        assert_eq!(known_minors(), "3.4, 3.5, 3.6 and 3.7");
    }

    #[test]
    fn a_release_of_an_unknown_minor_is_refused_at_the_binary_source_line() {
        for (version, found) in [
            (None, &["3.8.0"][..]),
            (Some("3.5"), &["3.8.0", "3.5.30"][..]),
        ] {
            let errors = refused(version, Ok(found));
            assert_eq!(errors.len(), 1, "{errors:?}");
            let (line, message) = &errors[0];
            assert_eq!(*line, 5, "{message}");
            assert!(message.contains("etcd 3.8.0"), "{message}");
            assert!(
                message.contains("etcdplan knows etcd 3.4, 3.5, 3.6 and 3.7"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_new_patch_of_a_known_minor_is_accepted() {
        for (version, found, runs) in [
            (None, &["3.5.99"][..], "3.5.99"),
            (Some("3.7"), &["3.7.40"][..], "3.7"),
            (Some("3.5.31"), &["3.5.31", "3.6.20"][..], "3.5.31"),
        ] {
            let loaded = load(version, Ok(found)).unwrap_or_else(|e| panic!("{e:?}"));
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
            let d = loaded.desired;
            assert_eq!(d.version.map(|v| v.to_string()).as_deref(), Some(runs));
            let held = d.etcd.binary_source.map_or(0, |s| s.releases.len());
            assert_eq!(held, found.len());
        }
    }

    #[test]
    fn a_release_with_the_inconsistency_bug_that_would_run_is_refused() {
        // The only release, or the one [cluster] version names.
        for (version, found) in [
            (None, &["3.5.1"][..]),
            (Some("3.5.0"), &["3.5.0", "3.5.30"][..]),
            (Some("3.5.2"), &["3.5.2"][..]),
            (Some("3.5"), &["3.5.1"][..]),
        ] {
            let errors = refused(version, Ok(found));
            assert_eq!(errors.len(), 1, "{version:?} {found:?}: {errors:?}");
            let (line, message) = &errors[0];
            assert_eq!(*line, 5, "{message}");
            assert!(
                message.contains("can make revisions and data inconsistent")
                    && message.contains("3.5.0–3.5.2")
                    && message.contains("fixed in 3.5.3")
                    && message.contains("CHANGELOG-3.5"),
                "{message}"
            );
        }
        // Held, but not what the members would run: "3.5" takes the newest.
        let loaded =
            load(Some("3.5"), Ok(&["3.5.1", "3.5.30"])).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn an_unknown_cluster_version_is_refused_at_its_line() {
        for v in ["3.8", "3.8.0", "3.3", "4.0"] {
            let errors = refused(Some(v), Ok(&["3.5.30"]));
            let (line, message) = errors
                .iter()
                .find(|(_, m)| m.contains("minor version etcdplan does not know"))
                .unwrap_or_else(|| panic!("{v}: {errors:?}"));
            assert_eq!(*line, 3, "{message}");
            assert!(
                message.contains(&format!("asks for etcd {v}"))
                    && message.contains("etcdplan knows etcd 3.4, 3.5, 3.6 and 3.7"),
                "{message}"
            );
        }
        // Without binary_source too.
        let text = text(Some("3.8")).replace(&format!("binary_source = \"{SOURCE}\"\n"), "");
        assert!(matches!(
            parse("etcdfile.toml", text, &Context::default()),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn a_source_that_is_not_etcd_is_refused() {
        let errors = refused(Some("3.5"), Err("/srv/etcd is not an etcd binary"));
        assert_eq!(
            errors,
            vec![(5, "/srv/etcd is not an etcd binary".to_owned())]
        );
    }

    #[test]
    fn a_version_the_source_lacks_is_shown_but_left_to_the_plan() {
        // The diff blocks that plan, with the live cluster's needs besides
        // (say the patch every member must reach before 3.6).
        let loaded = load(Some("3.6"), Ok(&["3.5.30"])).unwrap_or_else(|e| panic!("{e:?}"));
        let shown: Vec<(Level, Option<usize>, &str)> = loaded
            .warnings
            .iter()
            .map(|p| (p.level, p.line(), p.message.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![(
                Level::Error,
                Some(5),
                "[cluster] version asks for etcd 3.6, but binary_source holds 3.5.30"
            )]
        );
    }
}
