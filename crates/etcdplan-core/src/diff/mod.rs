//! Stage 3: `Desired × Live → Diff`, a pure function.
//!
//! The diff says what differs and why, per member, and what stops etcdplan from
//! acting (blockers: a missing binary, a busy port, foreign data). It never
//! decides order; that is the planner's job.

mod adopt;
pub mod auth;
pub mod auth_files;
mod ca_rotation;
mod certs;
mod change;
mod file;
pub mod maintenance;
mod member;
mod peer_tls;
mod preflight;
pub mod quorum_loss;
mod rollout;
mod run_as;
mod settled;
pub mod upgrade;

use std::collections::BTreeMap;

pub use auth::{AuthChange, AuthOp};
pub use certs::{Cas, CertNeed, ExternalFindings, check_external, external_sans};
pub use change::{
    Action, Blocker, Change, ChangeKind, DefragCause, Departing, Diff, Join, Situation,
};
pub use file::{FileChange, LineKind};
pub use peer_tls::transitional_port;
pub use preflight::stale_data;
pub use rollout::{BinaryMove, pass_minor};

use crate::config::{Desired, DesiredMember};
use crate::hostfiles::{self, ClusterState, Initial};
use crate::live::{DataDir, HostFacts, HostState, Live, LiveCluster};
use crate::model::{EtcdVersion, MemberName, MinorVersion};
use member::{departing, down_member, running_member};
use settled::settled;

/// Computes the diff.
pub fn diff(d: &Desired, live: &Live) -> Diff {
    diff_with(d, live, false)
}

/// Computes the diff; `allow_downgrade` is the operator's explicit consent to
/// a version older than the members run.
pub fn diff_with(d: &Desired, live: &Live, allow_downgrade: bool) -> Diff {
    let mut blockers = Vec::new();
    // etcd refused etcdplan for want of a login: members that refuse are up,
    // so nothing they did not say may be read as down or unhealthy.
    if let Some(why) = &live.auth_refused {
        return Diff {
            situation: Situation::Running,
            changes: Vec::new(),
            blockers: vec![auth_refused_blocker(d, why)],
            notes: Vec::new(),
            auth: Vec::new(),
        };
    }
    // A lost quorum is the operator's to recover from (DESIGN rule 9): said,
    // and nothing else planned, unless starting stopped members repairs it.
    let loss = quorum_loss::detect(d, live);
    if let Some(loss) = loss.as_ref().filter(|l| !l.start_repairs()) {
        return Diff {
            situation: Situation::Running,
            changes: Vec::new(),
            blockers: vec![quorum_loss_blocker(loss)],
            notes: Vec::new(),
            auth: Vec::new(),
        };
    }
    for (name, h) in &live.hosts {
        if let HostState::Unreachable { reason, advice } = h {
            blockers.push(Blocker {
                member: Some(name.clone()),
                message: format!("{name}: {reason}"),
                help: advice.clone(),
            });
        }
    }
    let any_data = live
        .hosts
        .values()
        .filter_map(HostState::facts)
        .any(|f| f.data == DataDir::Member);
    let situation = match (&live.cluster, any_data) {
        (Some(_), _) => Situation::Running,
        (None, true) => Situation::Down,
        (None, false) => Situation::Bootstrap,
    };
    // Certificates of members that have run: renewed, rotated to a new CA, or
    // the plan blocked when they come from a CA the operator does not hold.
    let cas = Cas {
        current: live.local_ca.as_deref(),
        previous: live.previous_ca.as_deref(),
    };
    // The operator's own CA issues them: nothing to renew or rotate here
    // (they are checked below, against what the plan restarts).
    let ours = d.tls.external().is_none();
    let needs: BTreeMap<MemberName, CertNeed> = d
        .members
        .iter()
        .filter(|_| ours)
        .filter_map(|m| {
            let facts = live.hosts.get(&m.name).and_then(HostState::facts)?;
            (facts.data == DataDir::Member).then(|| {
                let need = certs::check(d, m, facts, cas, live.observed_at);
                (m.name.clone(), need)
            })
        })
        .collect();
    for (name, need) in &needs {
        if let CertNeed::ForeignCa(why) = need {
            blockers.push(Blocker {
                member: Some(name.clone()),
                message: format!("{why}; certificates from a CA the members do not trust would cut them off from each other"),
                help: "put the CA that issued the members' certificates back in ca_dir, then change CA with `etcdplan pki rotate-ca` (`etcdplan status` shows each certificate's issuer); nothing was changed".into(),
            });
        }
    }
    let need = |m: &DesiredMember| needs.get(&m.name).cloned().unwrap_or(CertNeed::Fine);
    let rotating = needs.values().any(|n| *n == CertNeed::Rotate);
    let migrating = live.cluster.as_ref().filter(|c| peer_tls::needed(d, c));
    // A phased change (a peer TLS move, a CA rotation) takes over the plan:
    // other changes to running members ride along its restarts or wait.
    let mut phased = migrating.is_some();
    let mut changes = Vec::new();
    let (versioned, notes) = match &live.cluster {
        Some(c) => rollout::phases(d, live, c, allow_downgrade).unwrap_or_else(|b| {
            blockers.push(b);
            (Vec::new(), Vec::new())
        }),
        None => (Vec::new(), Vec::new()),
    };
    if !versioned.is_empty() {
        if migrating.is_some() || rotating {
            blockers.push(Blocker {
                member: None,
                message: "the etcdfile changes the etcd version while the members' TLS is being changed; etcdplan does one at a time".into(),
                help: "set [cluster] version to what the members run (`etcdplan status`), apply the TLS change, then the version; nothing was changed".into(),
            });
        }
        changes = versioned;
        phased = true;
    }
    match (migrating, rotating) {
        _ if !changes.is_empty() => {}
        (Some(_), true) => blockers.push(Blocker {
            member: None,
            message: format!(
                "[tls] peer = {} moves the peers to another scheme while the members' CA is being rotated; etcdplan does one at a time",
                d.tls.peer
            ),
            help: "set [tls] peer back to what the cluster serves (`etcdplan status`), apply the rotation, then move the peers; nothing was changed".into(),
        }),
        (Some(c), false) => match peer_tls::phases(d, live, c, &need) {
            Ok(phased) => changes = phased,
            Err(b) => {
                // Members stopped half way through a restart are started
                // first; the phases go on in the next plan.
                changes = settled::stopped_to_start(d, live, c, &mut blockers);
                if changes.is_empty() {
                    blockers.push(b);
                }
            }
        },
        (None, true) => {
            if let Some(c) = &live.cluster {
                match ca_rotation::phases(d, live, c, cas) {
                    Ok(phased) => changes = phased,
                    Err(b) => blockers.push(b),
                }
                phased = true;
            }
        }
        (None, false) => {}
    }
    for m in &d.members {
        let Some(facts) = live.hosts.get(&m.name).and_then(HostState::facts) else {
            continue;
        };
        match &live.cluster {
            _ if phased => {}
            Some(c) => running_member(d, c, m, facts, &mut changes, &mut blockers),
            None => down_member(d, m, facts, &mut changes, &mut blockers),
        }
    }
    if let Some(c) = live.cluster.as_ref().filter(|_| !phased) {
        let leader = c.leader();
        for lm in &c.members {
            let known = d.members.iter().any(|m| {
                lm.name.is(&m.name) || (!lm.started() && lm.peer_urls.contains(&m.peer_url(&d.tls)))
            });
            if known {
                continue;
            }
            let dep = departing(d, lm, leader);
            let shown = match lm.name.as_started() {
                Some(name) => name.to_owned(),
                None => format!("(never started, {})", lm.id),
            };
            let reason = format!(
                "{shown} ({}) is in cluster {} but not in the etcdfile: it is removed, its etcd on {} stopped and its data dir moved aside",
                lm.id, c.id, dep.host.address
            );
            let (name, leader) = (dep.name.clone(), dep.leader);
            let mut ch = Change::new(name, ChangeKind::Remove { departing: dep }, reason);
            ch.id = Some(lm.id);
            ch.leader = leader;
            changes.push(ch);
        }
    }
    // A member that starts fresh gets its certificates first; one that has run
    // gets new ones when its own are missing, expiring or wrong.
    if d.tls.any() && !phased {
        let renew = |name: &MemberName| {
            d.member(name)
                .is_some_and(|m| matches!(need(m), CertNeed::Issue(_)))
        };
        for c in &mut changes {
            c.certificates = match c.action() {
                Action::Create | Action::Add | Action::Replace => true,
                Action::Remove | Action::Restore | Action::Defragment => false,
                Action::Start | Action::Restart | Action::Update | Action::Adopt => {
                    renew(&c.member)
                }
            };
        }
        for m in &d.members {
            let CertNeed::Issue(why) = need(m) else {
                continue;
            };
            let Some(lm) = live.cluster.as_ref().and_then(|c| c.voter(&m.name)) else {
                continue;
            };
            if changes.iter().any(|c| c.member == m.name) {
                continue;
            }
            let mut ch = Change::new(
                m.name.clone(),
                ChangeKind::Update {
                    peer_update: None,
                    phase: None,
                },
                format!(
                    "{why}: issued again and written in place; etcd reads certificates at each new connection, so nothing restarts"
                ),
            );
            ch.id = Some(lm.id);
            ch.certificates = true;
            changes.push(ch);
        }
    }
    if auth_files::wanted(d) && !phased {
        place_auth_files(d, live, &mut changes, &mut blockers);
    }
    // A restart starts etcd again: what stops a start on the host stops it too.
    let restarted: std::collections::BTreeSet<&MemberName> = changes
        .iter()
        .filter(|c| c.action() == Action::Restart)
        .map(|c| &c.member)
        .collect();
    for m in d.members.iter().filter(|m| restarted.contains(&m.name)) {
        if let Some(facts) = live.hosts.get(&m.name).and_then(HostState::facts) {
            preflight::problems(m, facts, &mut blockers);
        }
    }
    // Alarms: NOSPACE repaired, the defragmentation rule, CORRUPT.
    let mut upkeep = Vec::new();
    if let Some(c) = &live.cluster {
        maintenance::plan(d, c, &mut changes, &mut blockers, &mut upkeep);
    }
    // Members that start get the release the etcdfile asks for.
    for c in &mut changes {
        let (ChangeKind::Create { binary }
        | ChangeKind::Start { binary }
        | ChangeKind::Add { binary, .. }
        | ChangeKind::Replace { binary, .. }) = &mut c.kind
        else {
            continue;
        };
        if binary.is_some() {
            continue;
        }
        let Some(m) = d.member(&c.member) else {
            continue;
        };
        let Some(facts) = live.hosts.get(&m.name).and_then(HostState::facts) else {
            continue;
        };
        match rollout::for_start(d, m, facts) {
            Ok(mv) => *binary = mv,
            Err(b) => blockers.push(b),
        }
    }
    let mut notes = notes;
    notes.extend(upkeep);
    if situation == Situation::Down {
        notes.extend(mixed_data_note(&changes));
    }
    if let Some(loss) = &loss {
        notes.push(format!(
            "{} Starting the stopped members that kept their data brings the quorum back: this plan does that.",
            loss.paragraph()
        ));
    }
    if d.tls.external().is_some() {
        external_certs(d, live, &mut changes, &mut blockers, &mut notes);
    }
    notes.extend(left_out_notes(d, live, &changes));
    // etcd's auth store: what [auth] declares, against what observe read.
    let auth = auth::diff(
        d.auth.as_ref(),
        live.auth.as_ref(),
        situation == Situation::Bootstrap,
    );
    blockers.extend(auth.blockers);
    notes.extend(auth.notes);
    notes.extend(plaintext_password_note(live, &auth.changes));
    Diff {
        situation,
        changes,
        blockers,
        notes,
        auth: auth.changes,
    }
}

/// The blocker of an observation etcd refused for want of a login.
fn auth_refused_blocker(d: &Desired, why: &str) -> Blocker {
    let help = if d.auth.is_some() {
        "etcd auth is on and refuses root's login as [auth] declares it: check root_password_env/root_password_file (or, with client_cert_auth, that etcdplan's certificate CN root is accepted)"
    } else {
        "etcd auth is on: declare [auth] with root's password, or pass --user root with its password in ETCDCTL_PASSWORD (or a client certificate whose CN is root); on etcd 3.6 and 3.5.28+ only the root role may read member status"
    };
    Blocker {
        member: None,
        message: format!(
            "etcd refuses etcdplan's calls ({why}): the members answer, but what they say cannot be read, so nothing is planned"
        ),
        help: help.to_owned(),
    }
}

/// etcd 3.4 proposes a password it is sent through raft before hashing it,
/// so it lands in every member's WAL in clear (3.5 hashes it in the API
/// layer): a plan that sends one to a 3.4 member says so.
fn plaintext_password_note(live: &Live, auth: &[AuthChange]) -> Option<String> {
    let sends = auth.iter().any(|c| match &c.op {
        AuthOp::AddUser { password, .. } => password.is_some(),
        AuthOp::SetPassword { .. } => true,
        _ => false,
    });
    let on_3_4: Vec<String> = live
        .cluster
        .iter()
        .flat_map(|c| &c.members)
        .filter_map(|m| {
            let v = m.status.as_ref().ok()?.reported.version?;
            (v.minor().major == 3 && v.minor().minor <= 4).then(|| m.name.to_string())
        })
        .collect();
    (sends && !on_3_4.is_empty()).then(|| {
        format!(
            "{} run etcd 3.4, which writes a password it is sent into its WAL in clear before hashing it (3.5 hashes it first): upgrade before setting passwords, or rotate them after.",
            on_3_4.join(", ")
        )
    })
}

/// The `extra` settings a member's config leaves out because the release
/// it starts (a pass's, else [`start_release`]) has no name for them: a 3.6
/// gate on a 3.5 member, a 3.7 gate on a member going back to 3.6.
fn left_out_notes(d: &Desired, live: &Live, changes: &[Change]) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    for c in changes {
        let Some(m) = d.member(&c.member) else {
            continue;
        };
        let facts = live.hosts.get(&m.name).and_then(HostState::facts);
        let release = match c.binary() {
            Some(b) if c.phase().is_some() => b.to.minor(),
            _ => start_release(d, facts),
        };
        for l in hostfiles::left_out(m, release) {
            let note = format!(
                "{}: `{}` is left out of its etcd config: etcd {} (the release it starts{}) has no such {}",
                m.name,
                l.key,
                l.release,
                c.binary()
                    .filter(|_| c.phase().is_some())
                    .map_or(String::new(), |b| format!(
                        " in pass {} of {}",
                        b.pass.0, b.pass.1
                    )),
                if l.key.starts_with("feature-gates") {
                    "feature gate"
                } else {
                    "config-file key"
                }
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    notes
}

/// With no member answering, members that start on their data beside
/// members created empty: a first bootstrap that stopped half way, or a
/// cluster whose majority lost its data (then creating them bootstraps a
/// new cluster beside the survivors' data). Which one cannot be told from
/// the hosts, so the plan says both.
fn mixed_data_note(changes: &[Change]) -> Option<String> {
    let names = |a: Action| {
        changes
            .iter()
            .filter(|c| c.action() == a)
            .map(|c| c.member.as_str())
            .collect::<Vec<_>>()
    };
    let (kept, fresh) = (names(Action::Start), names(Action::Create));
    if kept.is_empty() || fresh.is_empty() {
        return None;
    }
    Some(format!(
        "{} start{} on {} data while {} {} created empty: right for a first bootstrap that stopped half way. If instead {} lost {} data with the cluster's quorum, do not apply this: recover with `etcdplan plan --recover-from {}`.",
        kept.join(", "),
        if kept.len() == 1 { "s" } else { "" },
        if kept.len() == 1 { "its" } else { "their" },
        fresh.join(", "),
        if fresh.len() == 1 { "is" } else { "are" },
        fresh.join(", "),
        if fresh.len() == 1 { "its" } else { "their" },
        kept[0]
    ))
}

/// The blocker a lost quorum (or a half-done recovery) puts on every plan
/// made without `--recover-from`.
fn quorum_loss_blocker(loss: &quorum_loss::QuorumLoss) -> Blocker {
    let help = match &loss.state {
        quorum_loss::LossState::Forced(m) => format!(
            "finish the recovery with `etcdplan apply --recover-from {m}` (it restarts {m} normally, checks it, then re-adds the others); nothing was changed"
        ),
        quorum_loss::LossState::Lost | quorum_loss::LossState::Silent => {
            let best = loss
                .most_recent()
                .map_or("MEMBER".to_owned(), |v| v.name.clone());
            format!(
                "if the down members can come back with their data, bring them back instead. If they are gone for good, `etcdplan plan --recover-from {best}` shows the recovery from {best} (a copy of its data kept, the lost members fenced, {best} started once with --force-new-cluster, the others re-added learner first) and `etcdplan apply --recover-from {best}` runs it; nothing was changed"
            )
        }
    };
    Blocker {
        member: None,
        message: loss.paragraph(),
        help,
    }
}

/// With the operator's own CA: no change writes certificates, a member the
/// plan would (re)start with files that cannot serve blocks the plan, and
/// what expires soon, or would stop a running member at its next restart,
/// is said.
fn external_certs(
    d: &Desired,
    live: &Live,
    changes: &mut [Change],
    blockers: &mut Vec<Blocker>,
    notes: &mut Vec<String>,
) {
    for c in changes.iter_mut() {
        c.certificates = false;
    }
    let starts: std::collections::BTreeSet<&MemberName> = changes
        .iter()
        .filter(|c| {
            matches!(
                c.action(),
                Action::Create | Action::Add | Action::Replace | Action::Start | Action::Restart
            )
        })
        .map(|c| &c.member)
        .collect();
    for m in &d.members {
        let Some(facts) = live.hosts.get(&m.name).and_then(HostState::facts) else {
            continue;
        };
        let found = certs::check_external(d, m, facts, live.local_ca.as_deref(), live.observed_at);
        if starts.contains(&m.name) {
            for (p, help) in found.problems {
                blockers.push(Blocker {
                    member: Some(m.name.clone()),
                    message: format!("{}: {p}; the plan would start its etcd with it", m.name),
                    help: help.into(),
                });
            }
        } else {
            for (p, _) in found.problems {
                notes.push(format!(
                    "{}: {p}; a plan that restarts it is refused until this is fixed",
                    m.name
                ));
            }
        }
        notes.extend(found.expiring);
    }
}

/// The release a member's next start runs, which its config is rendered
/// for: the binary on its host; the pinned `[cluster] version` instead when
/// the member is not running and `binary_source` will put that release in
/// place before its start
/// ([`rollout::for_start`]) or the host's binary cannot be read; else 3.5.
///
/// 3.5 because every config etcdplan wrote before it rendered per release
/// was 3.5's (3.4 reads the same keys etcdplan writes), so a member nothing
/// is known about keeps the file it had. A version change's passes do not
/// use this: each restart is rendered for the release its pass starts.
pub fn start_release(d: &Desired, facts: Option<&HostFacts>) -> MinorVersion {
    let on_host = facts
        .and_then(|f| f.binary.version())
        .map(EtcdVersion::minor);
    let pinned = d.version.map(|v| v.minor);
    // A running member restarts on its own binary unless a version pass
    // (rendered apart) moves it; only a start links the pinned release.
    let running = facts.is_some_and(|f| matches!(f.service, crate::live::ServiceState::Running(_)));
    match (on_host, pinned) {
        (Some(h), Some(p)) if h != p && d.etcd.binary_source.is_some() && !running => p,
        (Some(h), _) => h,
        (None, Some(p)) => p,
        (None, None) => MinorVersion { major: 3, minor: 5 },
    }
}

/// The files a member should have for `release`, and which of them differ
/// from the host (all of them when the host has not been read).
fn file_changes(
    d: &Desired,
    m: &DesiredMember,
    facts: Option<&HostFacts>,
    initial: &Initial,
    release: MinorVersion,
) -> Vec<FileChange> {
    changed_files(m, hostfiles::member_files(d, m, initial, release), facts)
}

/// Those of `wanted` that differ from the host (all of them when the host has
/// not been read).
fn changed_files(
    m: &DesiredMember,
    wanted: Vec<hostfiles::HostFile>,
    facts: Option<&HostFacts>,
) -> Vec<FileChange> {
    changed_against(m, wanted, |path| {
        facts.and_then(|x| x.file(path)).map(str::to_owned)
    })
}

/// Those of `wanted` that differ from `previous`, the files an earlier
/// pass of the same plan writes.
fn changed_from(
    m: &DesiredMember,
    wanted: Vec<hostfiles::HostFile>,
    previous: &[hostfiles::HostFile],
) -> Vec<FileChange> {
    changed_against(m, wanted, |path| {
        previous
            .iter()
            .find(|p| p.path == path)
            .map(|p| p.contents.clone())
    })
}

/// Those of `wanted` whose contents differ from what `before` says a path
/// holds (None: absent).
fn changed_against(
    m: &DesiredMember,
    wanted: Vec<hostfiles::HostFile>,
    before: impl Fn(&std::path::Path) -> Option<String>,
) -> Vec<FileChange> {
    wanted
        .into_iter()
        .filter_map(|f| {
            let before = before(&f.path);
            (before.as_deref() != Some(f.contents.as_str())).then(|| FileChange {
                path: f.path,
                mode: f.mode,
                host: m.address.to_string(),
                before,
                after: f.contents,
            })
        })
        .collect()
}

/// Whether the running etcd was started with another config than the desired one.
fn stale_process(d: &Desired, m: &DesiredMember, facts: &HostFacts, initial: &Initial) -> bool {
    let Some(started) = &facts.started_config else {
        return false;
    };
    let desired = hostfiles::etcd_config(d, m, initial, start_release(d, Some(facts)));
    crate::config::hash(&desired) != *started
}

/// The initial-* settings: kept from the live file once the member has data.
fn initial_for(d: &Desired, m: &DesiredMember, facts: &HostFacts) -> Initial {
    let kept = (facts.data == DataDir::Member)
        .then(|| facts.file(&m.config_file()).and_then(Initial::read_back))
        .flatten();
    kept.unwrap_or_else(|| Initial::bootstrap(d))
}

/// The files of a member that joins a running cluster, given the membership
/// (`name=url` list, as MemberList will show it) at the time it starts.
pub fn join_files(
    d: &Desired,
    m: &DesiredMember,
    facts: Option<&HostFacts>,
    cluster: String,
) -> Vec<FileChange> {
    let initial = Initial {
        state: ClusterState::Existing,
        cluster,
        // A joiner takes its ID from the cluster: etcd does not read the token.
        token: d.token.clone(),
    };
    file_changes(d, m, facts, &initial, start_release(d, facts))
}

/// The JWT key pair and the CRL: placed before every member that (re)starts
/// or joins; a running member whose placed files differ from this machine's
/// restarts (the key pair) or gets them in place (the CRL).
fn place_auth_files(
    d: &Desired,
    live: &Live,
    changes: &mut Vec<Change>,
    blockers: &mut Vec<Blocker>,
) {
    use auth_files::AuthFilesNeed;
    for m in &d.members {
        let Some(facts) = live.hosts.get(&m.name).and_then(HostState::facts) else {
            continue;
        };
        for message in auth_files::problems(d, m, facts) {
            blockers.push(Blocker {
                member: Some(m.name.clone()),
                message: format!("{}: {message}", m.name),
                help: "change the etcdfile (config_dir, the etcd version or listen-client-http-urls); nothing was changed".into(),
            });
        }
        let need = auth_files::check(d, facts, &live.local_auth);
        if let Some(c) = changes.iter_mut().find(|c| c.member == m.name) {
            c.auth_files = match c.action() {
                Action::Create | Action::Add | Action::Replace | Action::Start => true,
                Action::Remove | Action::Restore | Action::Defragment => false,
                Action::Restart | Action::Update | Action::Adopt => need != AuthFilesNeed::Fine,
            };
            if c.action() == Action::Update
                && let AuthFilesNeed::Restart(why) = &need
            {
                // The certificates are renewed in place; the key pair needs
                // the restart the update did not have.
                c.kind = ChangeKind::Restart {
                    peer_update: None,
                    phase: None,
                    binary: None,
                };
                c.reason = format!("{}; {why}", c.reason);
            }
            continue;
        }
        let Some(lm) = live.cluster.as_ref().and_then(|c| c.voter(&m.name)) else {
            continue;
        };
        let (kind, why) = match need {
            AuthFilesNeed::Fine => continue,
            AuthFilesNeed::Restart(why) => (
                ChangeKind::Restart {
                    peer_update: None,
                    phase: None,
                    binary: None,
                },
                why,
            ),
            AuthFilesNeed::InPlace(why) => (
                ChangeKind::Update {
                    peer_update: None,
                    phase: None,
                },
                why,
            ),
        };
        let mut ch = Change::new(m.name.clone(), kind, why);
        ch.id = Some(lm.id);
        ch.leader = live.cluster.as_ref().and_then(LiveCluster::leader) == Some(lm.id);
        ch.auth_files = true;
        changes.push(ch);
    }
}
