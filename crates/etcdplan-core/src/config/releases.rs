//! `binary_source` checked against `[cluster] version`: the releases found on
//! this machine must include the one the file asks for, so a wrong binary is
//! refused with the line that names it, before any host is touched.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Release;
use super::desired::Desired;
use super::diagnostic::Problem;
use crate::model::VersionSpec;

/// Fills in `binary_source`'s releases; returns what is wrong with them. A
/// file without `[cluster] version` runs the one release its source holds.
pub fn attach(
    d: &mut Desired,
    found: &BTreeMap<PathBuf, Result<Vec<Release>, String>>,
) -> Vec<Problem> {
    let Some(src) = &mut d.etcd.binary_source else {
        return Vec::new();
    };
    let span = src.span.clone();
    let releases = match found.get(&src.path).cloned().unwrap_or(Ok(Vec::new())) {
        Ok(r) => r,
        Err(why) => {
            return vec![
                Problem::error("etcdfile::binary-source", why)
                    .label(span, "etcdplan takes the etcd binary from here")
                    .help("point binary_source at an etcd binary, an unpacked etcd release, or a folder of them"),
            ];
        }
    };
    let listed = releases
        .iter()
        .map(|r| r.version.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let problem = match (d.version, releases.as_slice()) {
        (_, []) => None,
        (Some(want), _) if !releases.iter().any(|r| want.matches(r.version)) => Some(
            Problem::error(
                "etcdfile::binary-source",
                format!("[cluster] version asks for etcd {want}, but binary_source holds {listed}"),
            )
            .label(span, format!("etcd {listed}"))
            .help(format!(
                "point binary_source at an etcd {want} release, or set [cluster] version to the release it holds"
            )),
        ),
        (Some(_), _) => None,
        (None, [one]) => {
            d.version = Some(VersionSpec::exact_of(one.version));
            None
        }
        (None, _) => Some(
            Problem::error(
                "etcdfile::binary-source",
                format!("binary_source holds several releases ({listed}); which one should the members run?"),
            )
            .label(span, "several releases")
            .help("set [cluster] version to one of them"),
        ),
    };
    src.releases = releases;
    problem.into_iter().collect()
}
