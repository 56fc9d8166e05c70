//! `[hosts] run_as`: whether a member's etcd runs as the user the etcdfile
//! names, and whether its data dir belongs to that user.
//!
//! etcd running as a user cannot open a data dir root owns, so every start
//! as a user other than root first gives the data dir to it (`chown -R`, in
//! the service's start script); the diff says so, and restarts a running
//! member whose user or data dir owner is not the etcdfile's.

use crate::config::{Desired, DesiredMember};
use crate::live::{DataDir, HostFacts};

/// The owner of the data dir when it must change hands before etcd starts:
/// it exists, etcd runs as a user other than root, and another user owns it.
fn foreign_owner<'a>(d: &Desired, facts: &'a HostFacts) -> Option<&'a str> {
    let user = &d.hosts.run_as;
    let owner = facts.data_owner.as_deref()?;
    (!user.is_root() && facts.data != DataDir::Absent && owner != user.as_str()).then_some(owner)
}

/// What a start adds to its reason when the data dir changes hands first.
pub(super) fn start_note(d: &Desired, m: &DesiredMember, facts: &HostFacts) -> Option<String> {
    foreign_owner(d, facts).map(|owner| {
        format!(
            "its data dir {} (owned by {owner}) is given to {} first (chown -R)",
            m.data_dir.display(),
            d.hosts.run_as
        )
    })
}

/// Why a running member restarts for `run_as` (None: it runs as it should).
pub(super) fn restart_reason(d: &Desired, m: &DesiredMember, facts: &HostFacts) -> Option<String> {
    let user = &d.hosts.run_as;
    let runs_as = facts
        .service_user
        .as_deref()
        .filter(|u| *u != user.as_str());
    match (runs_as, start_note(d, m, facts)) {
        (None, None) => None,
        (Some(now), note) => Some(format!(
            "etcd runs as {now}, the etcdfile says run_as = \"{user}\": it restarts as {user}{}",
            note.map(|n| format!("; {n}")).unwrap_or_default()
        )),
        (None, Some(_)) => foreign_owner(d, facts).map(|owner| {
            format!(
                "its data dir {} is owned by {owner}, not by run_as = \"{user}\": given to {user} (chown -R), then etcd restarts",
                m.data_dir.display()
            )
        }),
    }
}
