//! Membership steps against the live cluster: add a learner, wait for it, promote
//! it, remove a member, take the snapshot. Each re-checks its quorum rule
//! against the cluster as it is now, sends membership calls to the leader, and
//! retries etcd's transient refusals ("unhealthy cluster" for about 5 s after a
//! restart, "not in sync" for a learner still catching up) until a deadline.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::wait::{Check, WaitError, wait_until};
use super::{Context, StepError, StepOutcome, gate, run_checked};
use crate::config::DesiredMember;
use crate::diff::Departing;
use crate::io::{ApiMember, EtcdErrorKind, Script, shell_quote, write_file_script};
use crate::live::LiveName;
use crate::model::{Endpoint, MemberId, MemberName};
use crate::plan::{Voter, may_add, may_promote, may_remove};
use crate::service;

/// The leader, the member list it gave, and its client URL.
pub(super) struct LeaderView {
    pub(super) id: MemberId,
    pub(super) endpoint: Endpoint,
    pub(super) members: Vec<ApiMember>,
}

/// Finds the leader through any member that answers.
pub(super) async fn leader(ctx: &Context<'_>) -> Result<LeaderView, StepError> {
    let mut last = None;
    for url in ctx.endpoints() {
        let status = match ctx.etcd.status(&url).await {
            Ok(s) => s,
            Err(e) => {
                last = Some(StepError::Etcd(e));
                continue;
            }
        };
        let Some(id) = status.leader else {
            last = Some(StepError::Unsafe {
                what: "find the leader".into(),
                why: format!("{url} reports no leader"),
            });
            continue;
        };
        let members = ctx.etcd.member_list(&url).await?;
        let Some(endpoint) = members
            .iter()
            .find(|m| m.id == id)
            .and_then(|m| m.client_urls.first().cloned())
        else {
            continue;
        };
        return Ok(LeaderView {
            id,
            endpoint,
            members,
        });
    }
    Err(last.unwrap_or_else(|| StepError::Unsafe {
        what: "find the leader".into(),
        why: "no member answers".into(),
    }))
}

/// The members and their health now, as the quorum rules read them.
async fn voters(ctx: &Context<'_>) -> Result<Vec<Voter>, StepError> {
    gate::cluster_view(ctx).await
}

/// Hands leadership from `from` to a voter that is healthy now and has
/// caught up ([`transfer`]).
async fn hand_over(
    ctx: &Context<'_>,
    view: &LeaderView,
    live: &[Voter],
    from: MemberId,
) -> Result<(), StepError> {
    debug_assert_eq!(view.id, from);
    transfer(ctx, view, None, |y| {
        live.iter()
            .any(|v| y.name.as_started() == Some(v.name.as_str()) && v.healthy)
    })
    .await
    .map(|_| ())
}

/// How long a transfer waits for its planned target to catch up before it
/// takes another voter that has: going elsewhere than planned makes the
/// plan's next pass restart a leader it did not expect (one more transfer).
const PLANNED_TARGET_GRACE: Duration = Duration::from_secs(10);

/// Moves leadership away from the leader in `view`, to `preferred` once it
/// has applied everything the leader had committed when asked (Status:
/// `raftAppliedIndex` ≥ the leader's `raftIndex`); without one, or when it
/// has not caught up within [`PLANNED_TARGET_GRACE`], to the voter that has
/// applied the most among those caught up. `eligible` says which voters may
/// take it (healthy ones). raft drops every proposal while a transfer waits
/// for its target to catch up (`stepLeader`, `leadTransferee`), and clients
/// see those as failed writes, so the target is one that needs nothing
/// more. Returns the member that leads now (none: no other voter).
pub(super) async fn transfer(
    ctx: &Context<'_>,
    view: &LeaderView,
    preferred: Option<MemberId>,
    eligible: impl Fn(&ApiMember) -> bool,
) -> Result<Option<MemberId>, StepError> {
    let candidates: Vec<(MemberId, Endpoint)> = view
        .members
        .iter()
        .filter(|m| m.id != view.id && !m.is_learner && eligible(m))
        .filter_map(|m| Some((m.id, m.client_urls.first()?.clone())))
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let committed = ctx.etcd.status(&view.endpoint).await?.raft_index;
    // Each candidate's applied index, when it follows this leader.
    let applied = async |only: Option<MemberId>| {
        let mut seen = Vec::new();
        for (id, url) in candidates
            .iter()
            .filter(|(id, _)| only.is_none_or(|o| o == *id))
        {
            if let Ok(s) = ctx.etcd.status(url).await
                && !s.is_learner
                && s.leader == Some(view.id)
            {
                seen.push((*id, s.raft_applied_index));
            }
        }
        seen
    };
    let not_yet = || format!("no other voter has applied index {committed}, the leader's, yet");
    let planned = match preferred.filter(|p| candidates.iter().any(|(id, _)| id == p)) {
        Some(p) => wait_until(
            "the planned member to catch up",
            PLANNED_TARGET_GRACE.min(ctx.deadlines.gate),
            ctx.deadlines.poll,
            async || match applied(Some(p)).await.first() {
                Some((id, a)) if *a >= committed => Check::<MemberId, Infallible>::Ready(*id),
                _ => Check::NotYet(not_yet()),
            },
        )
        .await
        .ok(),
        None => None,
    };
    let to = match planned {
        Some(id) => id,
        None => match wait_until(
            "a caught-up member to lead",
            ctx.deadlines.gate,
            ctx.deadlines.poll,
            async || {
                let best = applied(None)
                    .await
                    .into_iter()
                    .filter(|(_, a)| *a >= committed)
                    .max_by_key(|(_, a)| *a);
                match best {
                    Some((id, _)) => Check::<MemberId, Infallible>::Ready(id),
                    None => Check::NotYet(not_yet()),
                }
            },
        )
        .await
        {
            Ok(id) => id,
            Err(WaitError::TimedOut { last, .. }) => {
                return Err(StepError::Unsafe {
                    what: "move the leadership".into(),
                    why: last,
                });
            }
            Err(WaitError::Failed(never)) => match never {},
        },
    };
    ctx.etcd.move_leader(&view.endpoint, to).await?;
    Ok(Some(to))
}

/// Calls `f` until it succeeds, fails for good, or the gate deadline passes;
/// `transient` says which etcd refusals mean "not yet". After the deadline
/// the last transient refusal is the step's failure.
async fn retry<F, Fut>(
    ctx: &Context<'_>,
    transient: &[EtcdErrorKind],
    mut f: F,
) -> Result<(), StepError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StepError>>,
{
    let done = wait_until(
        "retry",
        ctx.deadlines.gate,
        RETRY_EVERY,
        async || match f().await {
            Ok(()) => Check::Ready(()),
            Err(StepError::Etcd(e)) if transient.contains(&e.kind()) => Check::NotYet(e),
            Err(e) => Check::Fail(e),
        },
    )
    .await;
    match done {
        Ok(()) => Ok(()),
        Err(WaitError::Failed(e)) => Err(e),
        Err(WaitError::TimedOut { last, .. }) => Err(StepError::Etcd(last)),
    }
}

/// The refusals every membership call waits out: etcd refuses changes for
/// about 5 s after a restart, and a call can reach a member that just lost
/// the leadership.
const BUSY: &[EtcdErrorKind] = &[EtcdErrorKind::Unhealthy, EtcdErrorKind::NotLeader];

/// How often a refused membership call is tried again: etcd's refusals after
/// a restart last seconds, so finer polling would only add load.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// The member list entry of a desired member: by name, or (never started) by peer URL.
fn find<'a>(members: &'a [ApiMember], m: &DesiredMember, peer: &Endpoint) -> Option<&'a ApiMember> {
    members
        .iter()
        .find(|x| x.name.is(&m.name))
        .or_else(|| members.iter().find(|x| x.peer_urls.contains(peer)))
}

pub(super) async fn add_learner(
    ctx: &Context<'_>,
    m: &DesiredMember,
    peer: &Endpoint,
) -> Result<Option<String>, StepError> {
    let view = leader(ctx).await?;
    if let Some(x) = find(&view.members, m, peer) {
        return Ok(Some(format!(
            "{} is already in the member list as {} (an earlier run added it)",
            m.name, x.id
        )));
    }
    let live = voters(ctx).await?;
    may_add(&live).map_err(|why| StepError::Unsafe {
        what: format!("add {}", m.name),
        why,
    })?;
    retry(ctx, BUSY, || async {
        let view = leader(ctx).await?;
        // A retry after an add whose answer was lost must not add twice.
        if find(&view.members, m, peer).is_none() {
            ctx.etcd.add_learner(&view.endpoint, peer).await?;
        }
        Ok(())
    })
    .await?;
    super::failpoint::reached(&format!("learner-added:{}", m.name)).await;
    let view = leader(ctx).await?;
    let id = find(&view.members, m, peer).map(|x| x.id);
    Ok(id.map(|id| format!("added {} as learner {id}", m.name)))
}

/// The `name=url` list for a joining member, from the member list now.
pub(super) async fn join_initial_cluster(
    ctx: &Context<'_>,
    m: &DesiredMember,
) -> Result<String, StepError> {
    let view = leader(ctx).await?;
    let peer = m.peer_url(&ctx.desired.tls);
    let mut parts = Vec::new();
    for x in &view.members {
        let name = if x.peer_urls.contains(&peer) {
            m.name.as_str().to_owned()
        } else if x.name == LiveName::NotStarted {
            return Err(StepError::Unsafe {
                what: format!("join {}", m.name),
                why: format!(
                    "member {} was added but never started; etcd needs every member named in initial-cluster",
                    x.id
                ),
            });
        } else {
            x.name.to_string()
        };
        for u in &x.peer_urls {
            parts.push(format!("{name}={u}"));
        }
    }
    if !parts.iter().any(|p| p.starts_with(&format!("{}=", m.name))) {
        return Err(StepError::Unsafe {
            what: format!("join {}", m.name),
            why: "it is not in the member list (was it removed meanwhile?)".into(),
        });
    }
    Ok(parts.join(","))
}

/// Waits until the member is in the member list under its name and has
/// applied what the leader has committed (within [`crate::live::CATCH_UP_MARGIN`]).
pub(super) async fn wait_caught_up(ctx: &Context<'_>, m: &DesiredMember) -> Result<(), StepError> {
    let ep = m.client_url(&ctx.desired.tls);
    let what = format!("wait until {} has caught up", m.name);
    let caught_up: Result<(), WaitError<Infallible>> =
        wait_until(&what, ctx.deadlines.gate, ctx.deadlines.poll, async || {
            let (s, view) = match (ctx.etcd.status(&ep).await, leader(ctx).await) {
                (Err(e), _) => return Check::NotYet(e.to_string()),
                (_, Err(e)) => return Check::NotYet(e.to_string()),
                (Ok(s), Ok(view)) => (s, view),
            };
            let started = view.members.iter().any(|x| x.name.is(&m.name));
            match ctx.etcd.status(&view.endpoint).await {
                Ok(ls) if started && s.caught_up_with(&ls) => Check::Ready(()),
                Ok(ls) => Check::NotYet(format!(
                    "{}: applied index {} of the leader's {}{}",
                    m.name,
                    s.raft_applied_index,
                    ls.raft_index,
                    if started {
                        ""
                    } else {
                        " (not yet started in the member list)"
                    }
                )),
                Err(e) => Check::NotYet(e.to_string()),
            }
        })
        .await;
    match caught_up {
        Ok(()) => Ok(()),
        Err(WaitError::TimedOut { waited, last }) => {
            Err(StepError::Gate(super::GateError::Timeout { waited, last }))
        }
        Err(WaitError::Failed(never)) => match never {},
    }
}

pub(super) async fn promote(
    ctx: &Context<'_>,
    m: &DesiredMember,
) -> Result<Option<String>, StepError> {
    let peer = m.peer_url(&ctx.desired.tls);
    let view = leader(ctx).await?;
    let Some(x) = find(&view.members, m, &peer).cloned() else {
        return Err(StepError::Unsafe {
            what: format!("promote {}", m.name),
            why: "it is not in the member list".into(),
        });
    };
    if !x.is_learner {
        return Ok(Some(format!("{} is already a voter", m.name)));
    }
    let live = voters(ctx).await?;
    may_promote(&live, m.name.as_str()).map_err(|why| StepError::Unsafe {
        what: format!("promote {}", m.name),
        why,
    })?;
    let result = retry(
        ctx,
        &[
            EtcdErrorKind::LearnerNotReady,
            EtcdErrorKind::Unhealthy,
            EtcdErrorKind::NotLeader,
        ],
        || async {
            let view = leader(ctx).await?;
            ctx.etcd.promote(&view.endpoint, x.id).await?;
            Ok(())
        },
    )
    .await;
    match result {
        // A promote whose answer was lost looks like this on the retry.
        // (Or the learner never caught up: then the refusal stands.)
        Err(StepError::Etcd(e))
            if matches!(
                e.kind(),
                EtcdErrorKind::MemberNotLearner | EtcdErrorKind::LearnerNotReady
            ) =>
        {
            let view = leader(ctx).await?;
            if view.members.iter().any(|y| y.id == x.id && !y.is_learner) {
                Ok(Some(format!("{} is a voter", m.name)))
            } else {
                Err(StepError::Etcd(e))
            }
        }
        Err(e) => Err(e),
        Ok(()) => Ok(Some(format!("{} ({}) is a voter", m.name, x.id))),
    }
}

pub(super) async fn remove(
    ctx: &Context<'_>,
    dep: &Departing,
) -> Result<Option<String>, StepError> {
    let view = leader(ctx).await?;
    let Some(x) = view.members.iter().find(|x| x.id == dep.id) else {
        return Ok(Some(format!(
            "{} ({}) is no longer in the member list",
            dep.name, dep.id
        )));
    };
    let mut live = voters(ctx).await?;
    // cluster_view names a never-started member "", as MemberList does.
    for v in &mut live {
        if v.name.is_empty() && x.name == LiveName::NotStarted {
            v.name = dep.name.to_string();
        }
    }
    may_remove(&live, dep.name.as_str()).map_err(|why| StepError::Unsafe {
        what: format!("remove {}", dep.name),
        why,
    })?;
    if view.id == dep.id {
        // Still the leader (the plan's MoveLeader found another, or it won an
        // election since): hand leadership to a healthy voter first.
        hand_over(ctx, &view, &live, dep.id).await?;
    }
    retry(ctx, BUSY, || async {
        let view = leader(ctx).await?;
        if !view.members.iter().any(|y| y.id == dep.id) {
            return Ok(());
        }
        ctx.etcd.remove(&view.endpoint, dep.id).await?;
        Ok(())
    })
    .await?;
    Ok(Some(format!("removed {} ({})", dep.name, dep.id)))
}

/// Stops a departed member's etcd; its host may be gone, which is reported.
pub(super) async fn stop_departed(
    ctx: &Context<'_>,
    dep: &Departing,
) -> Result<StepOutcome, StepError> {
    let Some(host) = ctx.hosts.get(&dep.host.address) else {
        return Ok(StepOutcome::warning(format!(
            "no connection to {}; stop etcd there by hand",
            dep.host.address
        )));
    };
    match run_checked(
        host.as_ref(),
        &service::stop(ctx.desired, &dep.host, stop_grace(ctx)),
    )
    .await
    {
        Ok(_) => Ok(StepOutcome::default()),
        Err(e) => Ok(StepOutcome::warning(format!(
            "could not stop etcd of {} on {}: {e}; it is out of the cluster and exits by itself",
            dep.name, dep.host.address
        ))),
    }
}

/// Moves a member's data, config and unit aside with a timestamp, never
/// deleting anything; stops its etcd first. The data moves inside the data dir
/// (`member` → `member.removed-<time>`): the data dir is often a mount point,
/// which cannot be renamed, and a rename within one file system is atomic. A
/// separate WAL folder (`wal_dir`) is renamed whole (`<wal>.removed-<time>`).
pub(super) async fn retire(
    ctx: &Context<'_>,
    m: &DesiredMember,
    departed: bool,
) -> Result<StepOutcome, StepError> {
    let Some(host) = ctx.hosts.get(&m.address) else {
        let msg = format!("no connection to {}", m.address);
        return if departed {
            Ok(StepOutcome::warning(format!(
                "{msg}; move {} aside there by hand",
                m.data_dir.display()
            )))
        } else {
            Err(StepError::Unsafe {
                what: format!("move {}'s old data aside", m.name),
                why: msg,
            })
        };
    };
    let ts = stamp();
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let mut source = format!(
        "set -e\n{fresh}ts={ts}\nd={data}\nif [ -d \"$d/member\" ]; then to=$(fresh_name \"$d/member.removed-$ts\"); mv \"$d/member\" \"$to\"; echo \"moved $d/member to $to\"; fi\n\
c={cfg}\nif [ -f \"$c\" ]; then to=$(fresh_name \"$c.removed-$ts\"); mv \"$c\" \"$to\"; echo \"moved $c to $to\"; fi\nrm -f {hash} {cas} {pid}\n",
        fresh = crate::io::FRESH_NAME,
        data = q(&m.data_dir),
        cfg = q(&m.config_file()),
        hash = q(&service::started_config_file(m)),
        cas = q(&service::started_ca_file(m)),
        pid = q(&m.pid_file()),
    );
    if let Some(wal) = &m.wal_dir {
        // A separate WAL folder moves whole: etcd re-creates it by renaming a
        // fresh folder over it (so it cannot be a mount point, and anything
        // kept inside it would be lost).
        source.push_str(&format!(
            "w={wal}\nif [ -d \"$w\" ]; then to=$(fresh_name \"$w.removed-$ts\"); mv \"$w\" \"$to\"; echo \"moved $w to $to\"; fi\n",
            wal = q(wal),
        ));
    }
    source.push_str(&service::for_kind(ctx.desired.hosts.service).retire_fragment(m));
    let stop = service::stop(ctx.desired, m, stop_grace(ctx));
    let result = async {
        run_checked(host.as_ref(), &stop).await?;
        run_checked(
            host.as_ref(),
            &Script::new(format!("retire {}", m.name), source),
        )
        .await
    }
    .await;
    match result {
        Ok(out) => Ok(Some(out.trim().replace('\n', "; "))
            .filter(|s| !s.is_empty())
            .into()),
        Err(e) if departed => Ok(StepOutcome::warning(format!(
            "could not move {}'s files aside on {}: {e}; do it by hand so it never restarts with its old identity",
            m.name, m.address
        ))),
        Err(e) => Err(e),
    }
}

/// UTC time for file names.
pub fn stamp() -> String {
    let f = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_else(|_| "now".into())
}

/// Takes the pre-change snapshot with the one snapshot function
/// ([`crate::backup::take`]: from the leader, trailer and status checked,
/// manifest with the content digest beside it) into `dir`. When `dir` is the
/// `[backup]` folder it counts toward `keep`; its copy is made by the next
/// scheduled round (a copy can take minutes, and the change is waiting).
pub(super) async fn snapshot(
    ctx: &Context<'_>,
    transfers: &super::transfer::Transfers,
    dir: &Path,
) -> Result<StepOutcome, StepError> {
    let view = leader(ctx).await?;
    let transfer = transfers.start(
        "download a snapshot".into(),
        view.endpoint.to_string(),
        None,
    );
    let taken = crate::backup::take(
        ctx.etcd,
        &ctx.endpoints(),
        ctx.desired.cluster.as_str(),
        dir,
        &transfer.progress(),
        false,
    )
    .await;
    transfer.finish();
    let taken = taken.map_err(|e| match e {
        crate::backup::BackupError::Etcd(e) => StepError::Etcd(e),
        other => StepError::Local {
            what: "take a snapshot".into(),
            why: other.to_string(),
        },
    })?;
    let mut warnings = taken.warnings.clone();
    // Marked as this etcdfile's snapshot before its changes: a rerun after
    // a stop past this step continues from it (backup::restore_point).
    if let Some(m) = &taken.manifest {
        let marked = crate::backup_core::Manifest {
            etcdfile_sha256: Some(ctx.desired.file_hash.clone()),
            ..m.clone()
        };
        if let Err(e) = crate::backup::save_manifest(dir, &marked).await {
            warnings.push(format!(
                "cannot mark the snapshot as this plan's (a rerun takes another): {e}"
            ));
        }
    }
    if let Some(b) = ctx.desired.backup.as_ref().filter(|b| b.dir == dir)
        && let Some(keep) = b.keep
        && let Err(e) = crate::backup::prune(&b.dir, keep, b.copy_command.is_some())
    {
        warnings.push(format!("[backup] keep could not prune: {e}"));
    }
    let detail = match &taken.manifest {
        Some(m) => format!(
            "snapshot saved to {} ({} bytes at revision {}, {} keys; trailer and status checked, manifest beside it)",
            taken.path.display(),
            m.size,
            m.revision,
            m.content.keys
        ),
        None => format!(
            "snapshot saved to {} (trailer checked)",
            taken.path.display()
        ),
    };
    Ok(StepOutcome {
        detail: Some(detail),
        snapshot: Some(taken.path),
        warnings,
    })
}

/// Writes a joining member's files with the initial-cluster read from the member list now.
pub(super) async fn write_join_files(
    ctx: &Context<'_>,
    m: &DesiredMember,
    release: Option<crate::model::MinorVersion>,
) -> Result<Option<String>, StepError> {
    let cluster = join_initial_cluster(ctx, m).await?;
    let initial = crate::hostfiles::Initial {
        state: crate::hostfiles::ClusterState::Existing,
        cluster: cluster.clone(),
        token: ctx.desired.token.clone(),
    };
    let host = ctx
        .hosts
        .get(&m.address)
        .ok_or_else(|| StepError::UnknownMember(m.name.clone()))?;
    // The release the plan found the joiner starts (its host's binary, or
    // the pinned one it puts in place); a plan saved without it: the pinned.
    let release = release.unwrap_or_else(|| crate::diff::start_release(ctx.desired, None));
    for f in crate::hostfiles::member_files(ctx.desired, m, &initial, release) {
        let script = Script::new(
            format!("write {}", f.path.display()),
            write_file_script(&f.path, f.mode, f.contents.as_bytes()),
        )
        .stdin(f.contents.into_bytes());
        run_checked(host.as_ref(), &script).await?;
    }
    Ok(Some(format!("initial-cluster {cluster}")))
}

/// Makes sure `name` is not the leader before it is disturbed.
pub(super) async fn step_down(ctx: &Context<'_>, name: &MemberName) -> Result<(), StepError> {
    let view = leader(ctx).await?;
    let Some(me) = view.members.iter().find(|m| m.name.is(name)) else {
        return Ok(());
    };
    if me.id != view.id {
        return Ok(());
    }
    let live = voters(ctx).await?;
    hand_over(ctx, &view, &live, me.id).await
}

/// How long a leader's restart waits for every other voter to catch up
/// before it stops the leader anyway, with a warning.
const CATCH_UP_BEFORE_STOP: Duration = Duration::from_secs(10);

/// What [`before_graceful_stop`] found: whether the member led, and a
/// warning when a voter had not caught up in time.
#[derive(Debug, Default)]
pub(super) struct BeforeStop {
    /// The member led when its stop began.
    pub(super) led: bool,
    /// Said after the step when the wait for the voters ran out.
    pub(super) warning: Option<String>,
}

/// Before a graceful stop of `name` (a restart): no transfer when it
/// leads. etcd's own stop (3.4 to 3.7: `Etcd.Close` drains the client
/// gRPC servers, then `EtcdServer.Stop` runs `TransferLeadership` to the
/// longest-connected voter and waits up to its request timeout) fails
/// fewer client writes than a MoveLeader under load (issue 21). etcd picks
/// the voter, so this waits, bounded by [`CATCH_UP_BEFORE_STOP`], until
/// every other voter that answers has caught up with the leader: raft
/// holds proposals while its pick is behind.
pub(super) async fn before_graceful_stop(
    ctx: &Context<'_>,
    name: &MemberName,
) -> Result<BeforeStop, StepError> {
    let view = leader(ctx).await?;
    if !view
        .members
        .iter()
        .any(|m| m.id == view.id && m.name.is(name))
    {
        return Ok(BeforeStop::default());
    }
    let others: Vec<(String, Endpoint)> = view
        .members
        .iter()
        .filter(|m| m.id != view.id && !m.is_learner)
        .filter_map(|m| {
            Some((
                m.name.as_started()?.to_owned(),
                m.client_urls.first()?.clone(),
            ))
        })
        .collect();
    let waited = wait_until(
        "every voter to catch up with the leader",
        CATCH_UP_BEFORE_STOP.min(ctx.deadlines.gate),
        ctx.deadlines.poll,
        async || {
            let lead = match ctx.etcd.status(&view.endpoint).await {
                Ok(s) => s,
                Err(e) => return Check::<(), Infallible>::NotYet(format!("the leader: {e}")),
            };
            let mut behind = Vec::new();
            for (n, url) in &others {
                // A voter that does not answer is not one etcd can pick
                // (no active peer connection): nothing to wait for.
                if let Ok(s) = ctx.etcd.status(url).await
                    && !s.caught_up_with(&lead)
                {
                    behind.push(format!(
                        "{n} has applied index {} of the leader's {}",
                        s.raft_applied_index, lead.raft_index
                    ));
                }
            }
            if behind.is_empty() {
                Check::Ready(())
            } else {
                Check::NotYet(behind.join(", "))
            }
        },
    )
    .await;
    let warning = match waited {
        Ok(()) => None,
        Err(WaitError::TimedOut { waited, last }) => Some(format!(
            "{name} led and was stopped with a voter behind after {:.0}s ({last}): etcd hands leadership over once its pick catches up, or an election follows",
            waited.as_secs_f64()
        )),
        Err(WaitError::Failed(never)) => match never {},
    };
    Ok(BeforeStop { led: true, warning })
}

/// Who leads now, said after a leader's restart (the member etcd's
/// graceful stop handed leadership to, or the election's winner).
pub(super) async fn led_now(ctx: &Context<'_>, before: &MemberName) -> String {
    match leader(ctx).await {
        Ok(v) => match v
            .members
            .iter()
            .find(|m| m.id == v.id)
            .and_then(|m| m.name.as_started())
        {
            Some(n) if n == before.as_str() => format!("{before} led and leads again"),
            Some(n) => format!("{before} led; {n} leads now"),
            None => format!("{before} led; {} leads now", v.id),
        },
        Err(e) => format!("{before} led; no leader seen right after its restart ({e})"),
    }
}

/// How long etcd may take to stop gracefully before it is killed: our
/// deadline, or etcd's own worst case if longer. `Etcd.Close` waits up to
/// the request timeout (5 s + 2 election timeouts) for client RPCs to
/// drain (watch streams keep it waiting), then the leadership transfer up
/// to the same again; a kill inside the transfer is an election. Every
/// stop of etcd takes its grace from here, not from the bare deadline.
pub(super) fn stop_grace(ctx: &Context<'_>) -> Duration {
    ctx.deadlines
        .stop_grace
        .max(ctx.desired.etcd.graceful_stop())
}

/// Where snapshots go when the operator does not say: next to the etcdfile.
pub fn default_snapshot_dir(etcdfile: &Path) -> PathBuf {
    etcdfile
        .parent()
        .map_or_else(|| PathBuf::from("snapshots"), |p| p.join("snapshots"))
}

/// MemberUpdate of a member's peer URL, unless it already advertises it.
pub(super) async fn update_peer(
    ctx: &Context<'_>,
    m: &DesiredMember,
    url: &Endpoint,
) -> Result<Option<String>, StepError> {
    let view = leader(ctx).await?;
    let Some(x) = view.members.iter().find(|x| x.name.is(&m.name)) else {
        return Err(StepError::Unsafe {
            what: format!("update {}'s peer URL", m.name),
            why: "it is not in the member list".into(),
        });
    };
    if x.is_learner {
        return Err(StepError::Unsafe {
            what: format!("update {}'s peer URL", m.name),
            why: "it is a learner (MemberUpdate would promote it on etcd < 3.5.31)".into(),
        });
    }
    if x.peer_urls == [url.clone()] {
        return Ok(Some(format!("{} already advertises {url}", m.name)));
    }
    let id = x.id;
    retry(ctx, BUSY, || async {
        let view = leader(ctx).await?;
        ctx.etcd.update_peer(&view.endpoint, id, url).await?;
        Ok(())
    })
    .await?;
    Ok(Some(format!("{} ({id}) advertises {url}", m.name)))
}
