//! The steps that prepare a member before it (re)starts: certificates,
//! files, the etcd release it runs; shared by both planners.

use petgraph::graph::NodeIndex;

use super::{Step, graph};
use crate::config::Desired;
use crate::diff::Change;

/// The steps that write a change's certificates and files, if it has any;
/// returns the last of them.
pub(super) fn write_step(b: &mut graph::Builder, d: &Desired, c: &Change) -> Option<NodeIndex> {
    let issued = c.certificates.then(|| {
        b.add(Step::IssueCertificates {
            member: c.member.clone(),
        })
    });
    let certs = match auth_step(d, c) {
        Some(step) => {
            let placed = b.add(step);
            b.edge_opt(issued, placed);
            Some(placed)
        }
        None => issued,
    };
    let write = if c.files.is_empty() {
        certs
    } else {
        let write = b.add(Step::WriteFiles {
            member: c.member.clone(),
            files: c.files.clone(),
        });
        b.edge_opt(certs, write);
        Some(write)
    };
    match c.binary().filter(|mv| mv.link) {
        Some(mv) => {
            let link = b.add(Step::UseBinary {
                member: c.member.clone(),
                version: mv.to,
            });
            b.edge_opt(write, link);
            Some(link)
        }
        None => write,
    }
}

/// The placement of the JWT key pair and the CRL a change asks for.
pub(super) fn auth_step(d: &Desired, c: &Change) -> Option<Step> {
    c.auth_files.then(|| Step::PlaceAuthFiles {
        member: c.member.clone(),
        jwt: crate::diff::auth_files::jwt(d),
        crl: crate::diff::auth_files::crl(d),
    })
}

/// Uploads of the releases the changes need, one per host and release.
pub(super) fn install_steps(d: &Desired, changes: &[Change]) -> Vec<Step> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for c in changes {
        let Some(r) = c.binary().and_then(|mv| mv.install.as_ref()) else {
            continue;
        };
        let Some(m) = d.member(&c.member) else {
            continue;
        };
        if seen.insert((m.address.clone(), r.version)) {
            out.push(Step::InstallBinary {
                member: c.member.clone(),
                version: r.version,
                source: r.path.clone(),
                sha256: r.sha256.clone(),
                etcdutl: r.etcdutl.clone(),
            });
        }
    }
    out
}
