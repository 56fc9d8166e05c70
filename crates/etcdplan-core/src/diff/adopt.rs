//! Adopting a member etcdplan did not start: an etcd that listens on the
//! member's ports and is a started voter of the cluster, but runs under
//! another unit (a hand-written one, Debian's `etcd.service`) or as a bare
//! process. It is taken over in place: same data dir, same member ID, no
//! MemberRemove or MemberAdd, never "not running", never "start".

use crate::config::{Desired, DesiredMember, ServiceKind};
use crate::hostfiles::{OWNED_HEADER, systemd_unit};
use crate::live::{DataDir, HostFacts, Listener, ServiceState};

use super::Blocker;

/// What marks a file as etcdplan's: its owned-file header up to the `;`
/// (the rest is advice that may be reworded).
fn owned_marker() -> &'static str {
    OWNED_HEADER.split(';').next().unwrap_or(OWNED_HEADER)
}

/// The etcd on the member's ports when etcdplan's service does not run it.
pub(super) fn foreign(d: &Desired, m: &DesiredMember, facts: &HostFacts) -> Option<Listener> {
    let l = facts.listener.as_ref()?;
    let ours = match d.hosts.service {
        // The pid etcdplan's pid file names.
        ServiceKind::Process => facts.service == ServiceState::Running(l.pid),
        // The main process of etcdplan's unit, loaded from etcdplan's file.
        ServiceKind::Systemd => {
            let unit_path = systemd_unit::unit_path();
            let owned_file = facts.files.iter().any(|(p, text)| {
                *p == unit_path
                    && text
                        .as_deref()
                        .is_some_and(|t| t.lines().any(|l| l.starts_with(owned_marker())))
            });
            l.unit.as_ref().is_some_and(|u| {
                u.name == systemd_unit::UNIT
                    && u.fragment.as_deref() == Some(unit_path.as_path())
                    && u.dropins.is_empty()
            }) && owned_file
        }
    };
    let _ = m;
    (!ours).then(|| l.clone())
}

/// Why a member cannot be taken over here, as a blocker; None when it can.
pub(super) fn blocker(m: &DesiredMember, facts: &HostFacts, l: &Listener) -> Option<Blocker> {
    (facts.data != DataDir::Member).then(|| Blocker {
        member: Some(m.name.clone()),
        message: format!(
            "{}: {} runs it on {}, but the etcdfile's data dir {} holds no member data there",
            m.name,
            l.describe(),
            m.address,
            m.data_dir.display()
        ),
        help: "set data_dir (or this member's data_dir) to the folder that etcd runs with (`etcdplan import` reads it); nothing was changed".into(),
    })
}

/// The reason shown for a takeover, with what is moved aside.
pub(super) fn reason(d: &Desired, l: &Listener) -> String {
    let mut s = format!(
        "runs under {}, not etcdplan's {} service: taken over in place (same data, same ID), one job on the host",
        l.describe(),
        d.hosts.service.name()
    );
    match &l.unit {
        Some(u) => {
            let own = systemd_unit::unit_path();
            let mut aside: Vec<String> = Vec::new();
            if let Some(f) = u
                .fragment
                .as_ref()
                .filter(|f| f.starts_with("/etc") && **f != own)
            {
                aside.push(f.display().to_string());
            }
            aside.extend(u.dropins.iter().map(|p| p.display().to_string()));
            aside.extend(
                u.env_files
                    .iter()
                    .filter(|p| p.starts_with("/etc"))
                    .map(|p| p.display().to_string()),
            );
            s.push_str(&format!("; {} is stopped and disabled", u.name));
            if u.fragment.as_ref().is_some_and(|f| !f.starts_with("/etc")) {
                // A packaged unit: the package is held so apt leaves the member alone.
                s.push_str(", its package held (apt-mark hold etcd-server, where installed)");
            }
            if !aside.is_empty() {
                s.push_str(&format!(", and {} moved aside", aside.join(", ")));
            }
        }
        None => s.push_str(&format!(
            "; pid {} gets SIGTERM once its command line is checked",
            l.pid
        )),
    }
    s
}
