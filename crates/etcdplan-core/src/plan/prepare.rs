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

/// Folds each write step that comes right before a restart of the same
/// member, and that the restart waits for, into that restart: one host
/// command then writes the files, stops and starts etcd, where two cost a
/// round trip more for the same effect (issue 21). Nothing is written
/// before the restart's own quorum check, and a kill can no longer fall
/// between the write and the restart, a state the next plan mends anyway
/// (the files are right, the running etcd still has the old ones: a
/// restart). Edges into the write step go to the restart; the order stays
/// the same otherwise.
pub(super) fn fold_writes(
    mut steps: Vec<Step>,
    edges: Vec<(usize, usize)>,
) -> (Vec<Step>, Vec<(usize, usize)>) {
    let folds: Vec<bool> = (0..steps.len())
        .map(|i| match (&steps[i], steps.get(i + 1)) {
            (
                Step::WriteFiles { member: w, .. },
                Some(Step::Restart {
                    member: r, files, ..
                }),
            ) => w == r && files.is_empty() && edges.contains(&(i, i + 1)),
            _ => false,
        })
        .collect();
    // Where each old index ends up: a folded write at its restart's place.
    let mut at = Vec::with_capacity(steps.len());
    let mut next = 0;
    for folded in &folds {
        at.push(next);
        if !folded {
            next += 1;
        }
    }
    for i in (0..steps.len()).rev() {
        if !folds[i] {
            continue;
        }
        let write = steps.remove(i);
        if let (Step::WriteFiles { files: written, .. }, Some(Step::Restart { files, .. })) =
            (write, steps.get_mut(i))
        {
            *files = written;
        }
    }
    let mut edges: Vec<(usize, usize)> = edges
        .into_iter()
        .map(|(a, b)| (at[a], at[b]))
        .filter(|(a, b)| a != b)
        .collect();
    edges.sort_unstable();
    edges.dedup();
    (steps, edges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemberName;

    fn name(n: &str) -> MemberName {
        MemberName::parse(n).unwrap_or_else(|e| panic!("{e}"))
    }

    fn write(n: &str) -> Step {
        Step::WriteFiles {
            member: name(n),
            files: vec![crate::diff::FileChange {
                path: "/etc/etcd/etcd.conf.yml".into(),
                mode: 0o644,
                host: "10.0.0.11".into(),
                before: None,
                after: "name: x\n".into(),
            }],
        }
    }

    fn restart(n: &str) -> Step {
        Step::Restart {
            member: name(n),
            leads: false,
            files: Vec::new(),
        }
    }

    fn gate(n: &str) -> Step {
        Step::WaitHealthy {
            members: vec![name(n)],
        }
    }

    #[test]
    fn a_write_right_before_its_members_restart_is_folded_and_edges_follow() {
        let steps = vec![
            write("etcd-1"),
            restart("etcd-1"),
            gate("etcd-1"),
            write("etcd-2"),
            restart("etcd-2"),
            gate("etcd-2"),
        ];
        let edges = vec![(0, 1), (1, 2), (2, 4), (3, 4), (4, 5)];
        let (steps, edges) = fold_writes(steps, edges);
        let kinds: Vec<String> = steps.iter().map(Step::describe).collect();
        assert_eq!(
            kinds,
            [
                "write 1 file and restart etcd-1",
                "wait until etcd-1 healthy",
                "write 1 file and restart etcd-2",
                "wait until etcd-2 healthy",
            ]
        );
        assert_eq!(edges, [(0, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn a_write_of_another_member_or_not_awaited_or_not_adjacent_stays() {
        let steps = vec![
            write("etcd-1"),
            restart("etcd-2"),
            write("etcd-3"),
            gate("etcd-3"),
            restart("etcd-3"),
            write("etcd-4"),
            restart("etcd-4"),
        ];
        // etcd-4's restart does not wait for its write: left as it is.
        let edges = vec![(0, 1), (2, 4), (3, 4)];
        let (out, out_edges) = fold_writes(steps.clone(), edges.clone());
        assert_eq!(out, steps);
        assert_eq!(out_edges, edges);
    }
}
