//! `apply`: show the plan, ask, and walk it; and the walk itself, shared with
//! `watch`: departing hosts connected, the cluster locked, signals heeded.

use std::io::BufRead as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::edges::{ca_or_create, client_tls, close, connect, etcd_client, hosts, observe_live};
use super::plan::make_plan;
use super::{Cli, CliError, Outcome, file_label, load, style};
use crate::config::{Desired, Transport};
use crate::execute::{self, Deadlines, Event};
use crate::io::{EtcdClient, HostMap};
use crate::observe::{self, Live};
use crate::plan::{self, Plan};
use crate::view::{self, SharedView, Shown};
use crate::watch::Trigger;
use crate::{model, render};

/// Logs how long one phase of a walk's command took, as a debug line under
/// the target `etcdplan::timing` (`ETCDPLAN_LOG=etcdplan::timing=debug`):
/// `phase=NAME seconds=S`. `benches/rolling.rs` reads these lines to say
/// where an apply's time goes outside its steps.
pub(super) fn phase_done(phase: &str, since: Instant) {
    tracing::debug!(
        target: "etcdplan::timing",
        phase = %phase,
        seconds = since.elapsed().as_secs_f64()
    );
}

/// Asks through the view and reads the answer: only "yes" approves.
pub(super) fn confirm(view: &SharedView, cluster: &str) -> Result<(), CliError> {
    view.with(|v| v.prompt(cluster));
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line)?;
    if n == 0 {
        return Err(CliError::Cancelled(
            "no answer (standard input is closed)".into(),
        ));
    }
    if line.trim() != "yes" {
        return Err(CliError::Cancelled(format!(
            "the answer was {:?}, not \"yes\"",
            line.trim()
        )));
    }
    Ok(())
}

pub(super) async fn apply(
    cli: &Cli,
    plan_file: Option<&Path>,
    auto_approve: bool,
    json: bool,
    gate: Duration,
) -> Result<Outcome, CliError> {
    if json && !auto_approve && plan_file.is_none() {
        return Err(CliError::Usage(
            "apply --json cannot ask for approval inside its output; pass --auto-approve, or a plan saved by `plan --out`".into(),
        ));
    }
    let view = view::choose(view::Command::Apply, json);
    let saved = match plan_file {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| CliError::PlanFile {
                path: p.to_owned(),
                message: e.to_string(),
            })?;
            let saved = Plan::from_saved(&text).map_err(|e| CliError::PlanFile {
                path: p.to_owned(),
                message: e.to_string(),
            })?;
            let saved = saved.map_err(CliError::Stale)?;
            // A restore runs only where the operator names the snapshot
            // (DESIGN rule 9): never from a saved plan.
            if plan::restore::is_restore(&saved) {
                return Err(CliError::Usage(format!(
                    "{} is a restore plan; a restore runs only from `etcdplan restore SNAPSHOT`",
                    p.display()
                )));
            }
            Some(saved)
        }
    };
    let recovery = saved.as_ref().and_then(plan::recover::survivor_of);
    match (recovery, &cli.recover_from) {
        (Some(m), None) => {
            return Err(CliError::Usage(format!(
                "this saved plan recovers the cluster from a lost quorum with --force-new-cluster on {m}: give --recover-from {m} again to apply it"
            )));
        }
        (Some(m), Some(from)) if m.as_str() != from => {
            return Err(CliError::Usage(format!(
                "this saved plan recovers from {m}, not from {from}"
            )));
        }
        _ => {}
    }
    let loaded = load(cli)?;
    let d = &loaded.desired;
    let etcd = Arc::new(etcd_client(cli, d));
    let t = Instant::now();
    // The lock in etcd needs no host: it is asked for through the
    // etcdfile's members while the ssh connections open. A recovery has no
    // quorum to hold it.
    let (mut hosts, early) = tokio::join!(hosts(cli, d), async {
        match cli.recover_from {
            None => Some(early_lock(cli, d, &etcd, "apply").await),
            Some(_) => None,
        }
    });
    phase_done("connect", t);
    let result = apply_with(
        cli,
        &view,
        d,
        &mut hosts,
        &etcd,
        early,
        saved.as_ref(),
        auto_approve,
        gate,
    )
    .await;
    let t = Instant::now();
    close(&hosts).await;
    phase_done("close", t);
    result
}

/// The lock in etcd taken through the etcdfile's client URLs, before
/// anything is observed; with the description it was taken with, which the
/// lock files on the hosts repeat.
async fn early_lock(
    cli: &Cli,
    d: &Desired,
    etcd: &Arc<EtcdClient>,
    operation: &str,
) -> (
    execute::lock::LockInfo,
    Result<execute::lock::Lock, execute::lock::LockError>,
) {
    let t = Instant::now();
    let info = execute::lock::LockInfo::new(operation, &d.file_hash);
    let api: Arc<dyn crate::io::EtcdApi> = etcd.clone();
    let lock = execute::lock::acquire(api, &d.client_urls(), &info, cli.lock_timeout).await;
    phase_done("lock_etcd", t);
    (info, lock)
}

#[allow(clippy::too_many_arguments)]
async fn apply_with(
    cli: &Cli,
    view: &SharedView,
    d: &Desired,
    hosts: &mut HostMap,
    etcd: &Arc<EtcdClient>,
    early: Option<(
        execute::lock::LockInfo,
        Result<execute::lock::Lock, execute::lock::LockError>,
    )>,
    saved: Option<&Plan>,
    auto_approve: bool,
    gate: Duration,
) -> Result<Outcome, CliError> {
    let (live, lock) = match early {
        None => return recover(cli, view, d, hosts, etcd, saved, auto_approve, gate).await,
        // The members answered and hold the lock for us: the lock files are
        // taken while the one observation the plan is made from runs (a
        // restore or recovery holding them stops this apply, and its
        // observation is not used; one starting later finds ours).
        Some((info, Ok(lock))) => {
            let t = Instant::now();
            let (files, live) = tokio::join!(
                async {
                    let files = lock_files(cli, d, hosts, etcd, &info, Some(lock)).await;
                    phase_done("lock_with_observe", t);
                    files
                },
                async {
                    let live = observe_live(cli, d, hosts, etcd.as_ref(), true).await;
                    phase_done("observe", t);
                    live
                }
            );
            let files = files?;
            if let Some(l) = &files.etcd {
                l.also_at(&advertised(&live));
            }
            (live, files)
        }
        Some((_, Err(e @ execute::lock::LockError::Held(_)))) => return Err(e.into()),
        // Nothing answered at the etcdfile's client URLs (a new cluster, a
        // client port change under way) or etcd refused the lock (an alarm,
        // no quorum): what is observed decides how to lock.
        Some((_, Err(_))) => {
            let t = Instant::now();
            let live = observe_live(cli, d, hosts, etcd.as_ref(), true).await;
            phase_done("observe", t);
            lock_and_observe(cli, d, hosts, etcd, live, "apply").await?
        }
    };
    let result = apply_observed(cli, view, d, hosts, etcd, &live, saved, auto_approve, gate).await;
    let t = Instant::now();
    lock.release(etcd.as_ref(), view).await;
    phase_done("unlock", t);
    result
}

/// The locks an apply holds: the lock in etcd (none for a new cluster) and
/// the lock files on the hosts, which a restore or a recovery takes while
/// the cluster cannot hold the one in etcd; holding both keeps an apply and
/// those plans apart whichever starts first.
pub(super) struct Locks {
    etcd: Option<execute::lock::Lock>,
    files: Option<execute::hostlock::HostLock>,
}

impl Locks {
    /// Releases both, at once; what could not be released is said.
    pub(super) async fn release(self, etcd: &dyn crate::io::EtcdApi, view: &SharedView) {
        let in_etcd = async {
            match self.etcd {
                Some(l) => l.release(etcd).await,
                None => None,
            }
        };
        let files = async {
            match self.files {
                Some(f) => f.release().await,
                None => Vec::new(),
            }
        };
        let (in_etcd, files) = tokio::join!(in_etcd, files);
        say_lock_notes(view, in_etcd.into_iter().chain(files));
    }
}

/// Tells the operator about each lock that could not be released or taken.
pub(super) fn say_lock_notes(view: &SharedView, notes: impl IntoIterator<Item = String>) {
    for n in notes {
        view.with(|v| v.lock_note(&n));
    }
}

/// `apply --recover-from`: etcd's lock cannot be taken without a quorum,
/// so the lock is a file on every host that answers; then observed, planned
/// (the recovery, or why there is none), shown, asked and walked as any plan.
#[allow(clippy::too_many_arguments)]
async fn recover(
    cli: &Cli,
    view: &SharedView,
    d: &Desired,
    hosts: &mut HostMap,
    etcd: &Arc<EtcdClient>,
    saved: Option<&Plan>,
    auto_approve: bool,
    gate: Duration,
) -> Result<Outcome, CliError> {
    let members: Vec<&crate::config::DesiredMember> = d.members.iter().collect();
    let info = execute::lock::LockInfo::new("recover", &d.file_hash);
    let lock = execute::hostlock::acquire(
        &members,
        hosts,
        &info,
        cli.lock_timeout,
        execute::hostlock::Create::Folders,
    )
    .await
    .map_err(|e| CliError::Blocked(format!("cannot take the lock on the hosts: {e}")))?;
    if !lock.skipped.is_empty() {
        say_lock_notes(
            view,
            [format!(
                "no lock file on hosts that did not answer: {}",
                lock.skipped.join("; ")
            )],
        );
    }
    let live = observe_live(cli, d, hosts, etcd.as_ref(), true).await;
    let result = apply_observed(cli, view, d, hosts, etcd, &live, saved, auto_approve, gate).await;
    say_lock_notes(view, lock.release().await);
    result
}

/// Takes the cluster's lock and observes again, so that what is planned is
/// what no other etcdplan is changing; a new cluster has no lock in etcd to
/// take yet. The lock files on the hosts are taken too (hosts that do not
/// answer hold none).
pub(super) async fn lock_and_observe(
    cli: &Cli,
    d: &Desired,
    hosts: &HostMap,
    etcd: &Arc<EtcdClient>,
    live: Live,
    operation: &str,
) -> Result<(Live, Locks), CliError> {
    let t = Instant::now();
    let info = execute::lock::LockInfo::new(operation, &d.file_hash);
    // Under NOSPACE or CORRUPT etcd refuses the lease grant and the put the
    // lock is made of, and with no member knowing a leader (a lost quorum:
    // the plan starts the stopped members) they wait out their deadline:
    // the lock files on the hosts are the lock then.
    let refused = live.cluster.as_ref().is_some_and(|c| {
        crate::diff::maintenance::raised(c, "NOSPACE")
            || crate::diff::maintenance::raised(c, "CORRUPT")
            || c.leader().is_none()
    });
    let lock = if live.cluster.is_some() && !refused {
        let mut eps = d.client_urls();
        eps.extend(advertised(&live));
        let api: Arc<dyn crate::io::EtcdApi> = etcd.clone();
        Some(execute::lock::acquire(api, &eps, &info, cli.lock_timeout).await?)
    } else {
        None
    };
    let locks = lock_files(cli, d, hosts, etcd, &info, lock).await?;
    if refused && locks.files.is_none() {
        return Err(CliError::Blocked(
            "etcd cannot hold its lock (an alarm, or no leader), and no host answered to hold a lock file".into(),
        ));
    }
    phase_done("lock", t);
    if locks.etcd.is_none() && !refused {
        return Ok((live, locks));
    }
    let t = Instant::now();
    let live = observe::observe(d, hosts, etcd.as_ref(), &crate::config::Secrets::read(d)).await;
    phase_done("observe_again", t);
    Ok((live, locks))
}

/// Takes the lock files on the hosts beside the lock in etcd (`lock`, when
/// one is held), releasing that one if they cannot be taken. Hosts that do
/// not answer hold none; with none answering there is nothing to lock
/// (`files` is None), and the plan says why.
async fn lock_files(
    cli: &Cli,
    d: &Desired,
    hosts: &HostMap,
    etcd: &Arc<EtcdClient>,
    info: &execute::lock::LockInfo,
    lock: Option<execute::lock::Lock>,
) -> Result<Locks, CliError> {
    let members: Vec<&crate::config::DesiredMember> = d.members.iter().collect();
    let files = match execute::hostlock::acquire(
        &members,
        hosts,
        info,
        cli.lock_timeout,
        execute::hostlock::Create::Nothing,
    )
    .await
    {
        Ok(f) => Some(f),
        Err(execute::hostlock::HostLockError::NoHost(_)) => None,
        Err(e) => {
            if let Some(l) = lock {
                l.release(etcd.as_ref()).await;
            }
            return Err(e.into());
        }
    };
    Ok(Locks { etcd: lock, files })
}

/// Client URLs the members advertise (they differ from the etcdfile's while a
/// client port change rolls out).
fn advertised(live: &Live) -> Vec<model::Endpoint> {
    live.cluster
        .iter()
        .flat_map(|c| c.members.iter().flat_map(|m| m.client_urls.clone()))
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn apply_observed(
    cli: &Cli,
    view: &SharedView,
    d: &Desired,
    hosts: &mut HostMap,
    etcd: &Arc<EtcdClient>,
    live: &Live,
    saved: Option<&Plan>,
    auto_approve: bool,
    gate: Duration,
) -> Result<Outcome, CliError> {
    // A saved plan runs as saved, once what it was made from still holds;
    // it is never planned again.
    let plan = match saved {
        Some(saved) => {
            saved
                .check_saved(&d.file_hash, &observe::fingerprint(live))
                .map_err(CliError::Stale)?;
            saved.clone()
        }
        None => {
            let t = Instant::now();
            let plan = make_plan(cli, d, live);
            phase_done("plan", t);
            plan
        }
    };
    // A saved plan was reviewed when it was made: that was the approval.
    let ask = !auto_approve && saved.is_none();
    show_and_walk(cli, view, d, hosts, etcd, live, &plan, ask, gate).await
}

/// Shows the plan, stops at what blocks it, asks when `ask`, and walks it
/// (under the lock the caller holds), reporting through the view: the end
/// of `apply`, and of `restart`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn show_and_walk(
    cli: &Cli,
    view: &SharedView,
    d: &Desired,
    hosts: &mut HostMap,
    etcd: &Arc<EtcdClient>,
    live: &Live,
    plan: &Plan,
    ask: bool,
    gate: Duration,
) -> Result<Outcome, CliError> {
    let text = render::plan_human(plan, d, &file_label(&cli.file), style(cli));
    view.with(|v| {
        v.plan(&Shown {
            plan,
            desired: d,
            text: &text,
            trigger: None,
        });
    });
    if plan.is_empty() {
        return Ok(Outcome::Ok);
    }
    if let Some(why) = plan.cannot_apply() {
        return Err(CliError::Blocked(why));
    }
    if ask {
        confirm(view, d.cluster.as_str())?;
    }
    view.with(|v| v.apply_started(plan.steps.len()));
    let stop = Arc::new(AtomicBool::new(false));
    let signals = watch_signals(stop.clone(), None, view.clone());
    let mut on_event = |e: Event| view.with(|v| v.progress(&e));
    let result = run_plan(
        cli,
        d,
        hosts,
        etcd,
        live,
        plan,
        &stop,
        gate,
        view,
        &mut on_event,
    )
    .await;
    signals.abort();
    match result {
        Ok(report) => {
            view.with(|v| v.apply_complete(plan, report.seconds));
            Ok(Outcome::Ok)
        }
        Err(CliError::Apply(e)) => {
            view.with(|v| v.apply_failed(&e));
            Err(CliError::Apply(e))
        }
        Err(other) => Err(other),
    }
}

/// The first SIGINT/SIGTERM asks the walk to stop after the current step (and
/// a watch to end, through `wake`); a second one exits at once, saying what
/// that may leave behind.
pub(super) fn watch_signals(
    stop: Arc<AtomicBool>,
    wake: Option<tokio::sync::mpsc::UnboundedSender<Trigger>>,
    view: SharedView,
) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered here, before the walk starts, not whenever the task first runs.
    let streams = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = streams else {
            return;
        };
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            seen += 1;
            view.with(|v| v.signal(seen));
            if seen == 1 {
                stop.store(true, Ordering::SeqCst);
                if let Some(w) = &wake {
                    let _ = w.send(Trigger::Stop);
                }
            } else {
                std::process::exit(130);
            }
        }
    })
}

/// Walks an approved plan, under the cluster's lock taken by the caller:
/// connects the hosts of departing members, then runs the steps until done,
/// failed or stopped.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_plan(
    cli: &Cli,
    d: &Desired,
    hosts: &mut HostMap,
    etcd: &Arc<EtcdClient>,
    live: &Live,
    plan: &Plan,
    stop: &Arc<AtomicBool>,
    gate: Duration,
    view: &SharedView,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<execute::Report, CliError> {
    // Members that leave may live on hosts the etcdfile no longer names.
    if d.hosts.transport == Transport::Ssh {
        let departing: Vec<model::Address> = plan
            .changes
            .iter()
            .filter_map(|c| c.departing().map(|dep| dep.host.address.clone()))
            .collect();
        connect(cli, d, hosts, departing).await;
    }
    // Certificates come from the local CA, made now if the folder has none;
    // etcdplan then talks to members over https as itself.
    if plan
        .steps
        .iter()
        .any(|s| matches!(s.step, plan::Step::IssueCertificates { .. }))
    {
        let auth = ca_or_create(d)?;
        if let Some(tls) = client_tls(cli, d, Some(&auth))? {
            etcd.set_tls(tls).await;
        }
    }
    // The JWT signing key pair, like the CA: made now in key_dir if it has
    // none (its private key stays there, 0600, and goes to the members only).
    if plan
        .steps
        .iter()
        .any(|s| matches!(s.step, plan::Step::PlaceAuthFiles { .. }))
        && let Some(dir) = crate::pki::jwt_key_dir(d)
    {
        let (_, made) =
            crate::pki::JwtKeys::load_or_create(dir).map_err(super::errors::pki_error)?;
        if made {
            eprintln!(
                "Created the JWT signing key pair in {} (its private key 0600, placed on the members only).",
                dir.display()
            );
        }
    }
    let ctx = execute::Context {
        desired: d,
        hosts,
        stop,
        etcd: etcd.as_ref(),
        deadlines: Deadlines {
            gate,
            ..Deadlines::default()
        },
        advertised: advertised(live),
        tolerates: plan.tolerates(),
        secrets: crate::config::Secrets::read(d),
    };
    // Who did what, best effort: a record that cannot be written is a note.
    let mut eps = d.client_urls();
    eps.extend(advertised(live));
    eps.dedup();
    let t = Instant::now();
    let (recording, note) =
        crate::history::Recording::start(etcd.as_ref(), eps, operation(cli), plan, live).await;
    phase_done("history_start", t);
    if let Some(n) = note {
        view.with(|v| v.history_note(&n));
    }
    let t = Instant::now();
    let result = execute::apply(plan, &ctx, on_event).await;
    phase_done("walk", t);
    let t = Instant::now();
    let note = recording
        .finish(etcd.as_ref(), crate::history::outcome(&result))
        .await;
    phase_done("history_finish", t);
    if let Some(n) = note {
        view.with(|v| v.history_note(&n));
    }
    result.map_err(|e| CliError::Apply(Box::new(e)))
}

/// The operation a history record names: the command walking the plan.
fn operation(cli: &Cli) -> &'static str {
    match cli.command {
        super::Command::Restart(_) => "restart",
        super::Command::Restore(_) => "restore",
        super::Command::Watch { .. } => "watch",
        _ => "apply",
    }
}
