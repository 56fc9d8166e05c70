//! Planning without a quorum (a new cluster, or one that is down): nothing can
//! be disturbed, so every member is prepared and started, and one health gate
//! comes last, once they all run.

use super::prepare::{install_steps, write_step};
use super::{Step, graph};
use crate::config::Desired;
use crate::diff::{Change, ChangeKind};

/// Adds the steps that start (or restart) every changed member.
pub(super) fn plan(d: &Desired, changes: &[Change], b: &mut graph::Builder) {
    // Without a quorum nothing can be disturbed; members must all start
    // before any of them can become healthy, so the gate comes last.
    let mut last_start = None;
    for s in install_steps(d, changes) {
        let n = b.add(s);
        b.edge_opt(last_start, n);
        last_start = Some(n);
    }
    let mut started = Vec::new();
    for c in changes {
        let write = write_step(b, d, c);
        let step = match c.kind {
            ChangeKind::Restart { .. } => Step::Restart {
                member: c.member.clone(),
                leads: false,
                files: Vec::new(),
            },
            _ => Step::Start {
                member: c.member.clone(),
            },
        };
        let s = b.add(step);
        b.edge_opt(write, s);
        b.edge_opt(last_start, s);
        last_start = Some(s);
        started.push(s);
    }
    if !started.is_empty() {
        let gate = b.add(Step::WaitHealthy {
            members: d.members.iter().map(|m| m.name.clone()).collect(),
        });
        for s in started {
            b.edge(s, gate);
        }
    }
}
