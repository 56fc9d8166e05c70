//! Version-change fixtures: releases at `binary_source` as data, and an
//! etcdfile that asks for a version with them.

use std::path::PathBuf;

use etcdplan::config::{Desired, Release};
use etcdplan::live::{Binary, Live};
use etcdplan::model::EtcdVersion;

/// A version, or a panic.
pub fn v(s: &str) -> EtcdVersion {
    EtcdVersion::parse(s).unwrap_or_else(|| panic!("bad version {s}"))
}

/// A release of etcd `s` as `binary_source` would find it (no etcdutl).
pub fn release(s: &str) -> Release {
    Release {
        path: PathBuf::from(format!("/srv/releases/etcd-v{s}-linux-amd64/etcd")),
        version: v(s),
        sha256: format!("{:0>64}", s.replace('.', "")),
        etcdutl: None,
    }
}

/// Three members wanting `version`, with `binary_source` holding `releases`
/// (none: no binary_source).
pub fn wanting(version: &str, releases: &[&str]) -> Desired {
    let source = if releases.is_empty() {
        String::new()
    } else {
        "binary = \"/usr/local/bin/etcd\"\nbinary_source = \"/srv/releases\"\n".to_owned()
    };
    let text = super::text_with(3, &source).replacen(
        "name = \"main\"\n",
        &format!("name = \"main\"\nversion = \"{version}\"\n"),
        1,
    );
    let mut d = super::desired_from(&text);
    if let Some(src) = &mut d.etcd.binary_source {
        src.releases = releases.iter().map(|r| release(r)).collect();
        src.releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    }
    d
}

/// A healthy cluster whose members run `running` (the binary on each host is
/// the same release), led by member `leader`.
pub fn running(d: &Desired, running: &[&str], leader: usize) -> Live {
    let specs: Vec<super::HostSpec> = running
        .iter()
        .map(|r| super::HostSpec {
            binary: Binary::Found {
                version: Some(v(r)),
            },
            ..super::HostSpec::running_from(d)
        })
        .collect();
    let mut c = super::cluster(d, &[true; 3], leader);
    for (m, r) in c.members.iter_mut().zip(running) {
        if let Ok(s) = &mut m.status {
            s.reported.version = Some(v(r));
        }
    }
    super::live(d, &specs, Some(c))
}
