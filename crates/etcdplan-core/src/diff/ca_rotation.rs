//! A CA rotation on a running cluster, as phases that keep every member able to
//! verify every other (etcd-ops R3.7: etcd reads certificate files at each
//! handshake but builds its trust pool once, at start):
//!
//! 1. rolling: each member trusts the new CA next to the old one;
//! 2. one at a time: its certificates are issued again by the new CA and
//!    written in place (no restart);
//! 3. rolling, once the operator retires the previous CA: each member trusts
//!    the new CA only.
//!
//! What a member trusts is read from the copy of `ca.crt` its etcd was started
//! with, so an apply that stopped half-way is continued, not restarted.

use std::collections::BTreeSet;

use super::certs::{self, Cas};
use super::{Blocker, Change, ChangeKind, FileChange, file_changes, initial_for};
use crate::cert;
use crate::config::{Desired, DesiredMember};
use crate::live::{HostFacts, Live, LiveCluster};
use crate::model::MemberId;

struct Member<'a> {
    m: &'a DesiredMember,
    facts: &'a HostFacts,
    id: MemberId,
    leader: bool,
    /// CAs its running etcd trusts (after the phases planned so far).
    running: BTreeSet<String>,
    /// CAs its `ca.crt` holds (after the phases planned so far).
    file: BTreeSet<String>,
    /// Both its certificates come from the current CA.
    current_signed: bool,
}

/// The phases, as one change per member and phase (`Change::phase`), or why
/// they cannot start now.
pub(super) fn phases(
    d: &Desired,
    live: &Live,
    c: &LiveCluster,
    cas: Cas<'_>,
) -> Result<Vec<Change>, Blocker> {
    let refuse = |why: String| Blocker {
        member: None,
        message: format!(
            "the members' CA is being rotated (the CA in {} is new), which needs every member healthy and the membership as in the etcdfile: {why}",
            d.tls.ca_dir.display()
        ),
        help: format!(
            "repair the cluster first; to change membership before the rotation, move {0}/{1}/ca.* back to {0} (and the new CA aside); nothing was changed",
            d.tls.ca_dir.display(),
            cert::PREVIOUS_DIR
        ),
    };
    let Some(current) = cas.current_fingerprint() else {
        return Err(refuse("ca_dir holds no readable CA".into()));
    };
    let wanted = cas.wanted();
    let bundle = cas.wanted_bundle();
    let mut members: Vec<Member<'_>> = super::settled(d, live, c)
        .map_err(refuse)?
        .into_iter()
        .map(|x| {
            let (running, file) = certs::trust(x.facts);
            Member {
                m: x.m,
                facts: x.facts,
                id: x.lm.id,
                leader: x.leader,
                running,
                file,
                current_signed: cas.current_signed(&x.facts.certs),
            }
        })
        .collect();
    let kept = cas.previous.is_some();

    let mut out = Vec::new();
    let mut phase = 0u32;
    // 1. Trust the new CA (with the previous one while it is kept).
    let mut any = false;
    for x in members.iter_mut().filter(|x| !x.running.contains(&current)) {
        let reason = format!(
            "CA rotation, step 1 of 3: trusts the new CA{}; etcd reads its CAs at start",
            if kept {
                " next to the previous one"
            } else {
                ""
            }
        );
        out.push(restart(d, x, &bundle, &wanted, phase, reason));
        any = true;
    }
    if any {
        phase += 1;
    }
    // 2. Certificates from the new CA, in place: every member trusts it now.
    any = false;
    for x in members.iter_mut().filter(|x| !x.current_signed) {
        let mut ch = Change::new(
            x.m.name.clone(),
            ChangeKind::Update {
                peer_update: None,
                phase: Some(phase),
            },
            "CA rotation, step 2 of 3: its certificates are issued again by the new CA and written in place; its peers trust that CA already, so nothing restarts",
        );
        ch.id = Some(x.id);
        ch.certificates = true;
        x.current_signed = true;
        out.push(ch);
        any = true;
    }
    if any {
        phase += 1;
    }
    // 3. Trust exactly what the operator's CAs say: the retired CA goes.
    for x in members
        .iter_mut()
        .filter(|x| x.running != wanted || x.file != wanted)
    {
        let reason = format!(
            "CA rotation, step 3 of 3: trusts {}; clients with certificates from any other CA are refused from then on",
            if kept {
                "the new and the previous CA only"
            } else {
                "the new CA only (the previous one was retired)"
            }
        );
        out.push(restart(d, x, &bundle, &wanted, phase, reason));
    }
    Ok(out)
}

/// A restart that leaves the member trusting `wanted` (a member restarts once
/// in a rotation); other settings that changed in the etcdfile ride along.
fn restart(
    d: &Desired,
    x: &mut Member<'_>,
    bundle: &str,
    wanted: &BTreeSet<String>,
    phase: u32,
    reason: String,
) -> Change {
    let kind = ChangeKind::Restart {
        peer_update: None,
        phase: Some(phase),
        binary: None,
    };
    let mut ch = Change::new(x.m.name.clone(), kind, reason);
    ch.files = file_changes(
        d,
        x.m,
        Some(x.facts),
        &initial_for(d, x.m, x.facts),
        super::start_release(d, Some(x.facts)),
    );
    if x.file != *wanted {
        ch.files.push(FileChange {
            path: x.m.tls_paths(&d.tls).ca,
            mode: 0o644,
            host: x.m.address.to_string(),
            before: x.facts.certs.ca.clone(),
            after: bundle.to_owned(),
        });
    }
    ch.id = Some(x.id);
    ch.leader = x.leader;
    x.running.clone_from(wanted);
    x.file.clone_from(wanted);
    ch
}
