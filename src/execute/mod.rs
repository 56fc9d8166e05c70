//! Stage 6: walk a plan through the two edges, one disruption at a time.
//!
//! Before each disruptive step the precondition is checked against the live
//! cluster (not the plan's memory of it); after each start or restart a health
//! gate polls at fine granularity until a deadline. The first failure stops the
//! walk, and the report says what was done, what failed and what remains.

mod adopt;
mod auth;
mod binary;
mod downgrade;
mod event;
mod failpoint;
mod gate;
pub mod hostlock;
pub mod lock;
mod maintenance;
mod membership;
mod recover;
mod restart;
mod restore;
mod transfer;
mod upload;
mod wait;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Desired, DesiredMember};
use crate::io::{EtcdApi, Host, HostMap, Script, write_file_script, write_owned_file_script};
use crate::model::MemberName;
use crate::plan::{Plan, Step, may_disrupt};
use crate::service;

pub use event::{Event, StepOutcome, TransferPhase};
pub use gate::{GateError, wait_healthy};
pub use membership::{default_snapshot_dir, stamp};

/// Deadlines for the walk.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// How long a health gate may wait.
    pub gate: Duration,
    /// How often a gate polls.
    pub poll: Duration,
    /// How long etcd gets to stop after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// How long a quorum refusal is re-checked before it stands: long enough
    /// for an election after a member fails (etcd's default election
    /// timeout is 1 s). Tests on fakes, where elections are instant, shorten it.
    pub settle: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            gate: Duration::from_secs(60),
            poll: Duration::from_millis(100),
            stop_grace: Duration::from_secs(20),
            settle: Duration::from_secs(5),
        }
    }
}

/// Why one step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A host command could not run.
    #[error(transparent)]
    Host(#[from] crate::io::HostError),
    /// A host command ran and failed.
    #[error("{what} failed on {host} (exit {code}): {tail}")]
    Command {
        /// Purpose.
        what: String,
        /// Host.
        host: String,
        /// Exit code.
        code: i32,
        /// Last output lines.
        tail: String,
    },
    /// An etcd call failed.
    #[error(transparent)]
    Etcd(#[from] crate::io::EtcdError),
    /// A health gate did not pass in time.
    #[error(transparent)]
    Gate(#[from] GateError),
    /// Doing the step now would endanger quorum.
    #[error("refusing to {what}: {why}")]
    Unsafe {
        /// The step.
        what: String,
        /// Why.
        why: String,
    },
    /// The CA cannot issue certificates.
    #[error("cannot {what}: {why}")]
    Refused {
        /// The step.
        what: String,
        /// Why.
        why: String,
    },
    /// A file on this machine (a snapshot) could not be written.
    #[error("could not {what}: {why}")]
    Local {
        /// What was being written.
        what: String,
        /// Why it failed.
        why: String,
    },
    /// A change etcd answered but the state read back does not show.
    #[error("{what} did not take: {why}")]
    NotApplied {
        /// The step.
        what: String,
        /// What the read back showed.
        why: String,
    },
    /// A signal asked etcdplan to stop before this step.
    #[error("stopped by a signal before this step")]
    Interrupted,
    /// The plan names a member the etcdfile does not have (a bug).
    #[error("the plan names member {0}, which the etcdfile does not have")]
    UnknownMember(MemberName),
}

/// An apply that stopped at a failed step.
#[derive(Debug, thiserror::Error)]
#[error("step {} of {} failed: {description}: {error}", index + 1, total)]
pub struct ApplyError {
    /// 0-based index of the failed step.
    pub index: usize,
    /// Number of steps.
    pub total: usize,
    /// The failed step.
    pub description: String,
    /// Why it failed.
    #[source]
    pub error: StepError,
    /// Steps done before it.
    pub done: Vec<String>,
    /// Steps not run.
    pub remaining: Vec<String>,
    /// What the walk did after the failure to leave the cluster in a known
    /// state: a downgrade stopped half way is cancelled (`downgrade cancel`).
    pub afterwards: Vec<String>,
}

/// What an apply did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Each step and its duration in seconds.
    pub steps: Vec<(String, f64)>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Everything the walk needs from outside.
pub struct Context<'a> {
    /// The desired cluster.
    pub desired: &'a Desired,
    /// Member hosts.
    pub hosts: &'a HostMap,
    /// The etcd API.
    pub etcd: &'a dyn EtcdApi,
    /// Deadlines.
    pub deadlines: Deadlines,
    /// Client URLs members advertised when the plan was made (they differ from
    /// the etcdfile's while a client port change rolls out).
    pub advertised: Vec<crate::model::Endpoint>,
    /// Set by the first SIGINT/SIGTERM: finish the current step, start no other.
    pub stop: &'a std::sync::atomic::AtomicBool,
    /// The alarms the plan walked runs with ([`Plan::tolerates`]): its
    /// gates pass while only these are raised.
    pub tolerates: crate::plan::Tolerates,
    /// The passwords `[auth]` names, read on this machine (auth steps send
    /// them; nothing prints them).
    pub secrets: crate::config::Secrets,
}

impl Context<'_> {
    /// Where to look for the cluster: the etcdfile's client URLs, then the advertised ones.
    pub fn endpoints(&self) -> Vec<crate::model::Endpoint> {
        let mut out = self.desired.client_urls();
        for u in &self.advertised {
            if !out.contains(u) {
                out.push(u.clone());
            }
        }
        out
    }
}

/// Applies the plan's steps in order, stopping at the first failure.
pub async fn apply(
    plan: &Plan,
    ctx: &Context<'_>,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Report, ApplyError> {
    let start = Instant::now();
    let total = plan.steps.len();
    let mut done = Vec::new();
    let mut timings = Vec::new();
    let (tx, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let transfers = transfer::Transfers::new(tx);
    // A downgrade enabled and not yet run by every member: a failure
    // cancels it (etcd-versions §5).
    let mut downgrading: Option<crate::model::MinorVersion> = None;
    let remaining = |index: usize| -> Vec<String> {
        plan.steps[index + 1..]
            .iter()
            .map(|s| s.description.clone())
            .collect()
    };
    for (index, step) in plan.steps.iter().enumerate() {
        if ctx.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ApplyError {
                index,
                total,
                description: step.description.clone(),
                error: StepError::Interrupted,
                done,
                remaining: remaining(index),
                afterwards: afterwards(ctx, downgrading).await,
            });
        }
        on_event(Event::StepStarted {
            index,
            total,
            description: step.description.clone(),
        });
        let t = Instant::now();
        // Transfers inside the step report while it runs.
        let run = run_step(&step.step, ctx, &transfers);
        tokio::pin!(run);
        let outcome = loop {
            tokio::select! {
                biased;
                Some(e) = progress.recv() => on_event(e),
                r = &mut run => break r,
            }
        };
        while let Ok(e) = progress.try_recv() {
            on_event(e);
        }
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                return Err(ApplyError {
                    index,
                    total,
                    description: step.description.clone(),
                    error,
                    done,
                    remaining: remaining(index),
                    afterwards: afterwards(ctx, downgrading).await,
                });
            }
        };
        downgrading = match &step.step {
            Step::DowngradeEnable { target } | Step::WaitStorageVersion { target } => Some(*target),
            Step::ClusterVersion { version } if downgrading == Some(*version) => None,
            Step::DowngradeFinished { .. } | Step::DowngradeCancel { .. } => None,
            _ => downgrading,
        };
        let secs = t.elapsed().as_secs_f64();
        on_event(Event::StepFinished {
            index,
            seconds: secs,
            outcome,
        });
        done.push(step.description.clone());
        timings.push((step.description.clone(), secs));
        failpoint::reached(&format!("after-step:{index}")).await;
    }
    Ok(Report {
        steps: timings,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// What a failed walk does before it reports: cancels a downgrade it left
/// half way.
async fn afterwards(
    ctx: &Context<'_>,
    downgrading: Option<crate::model::MinorVersion>,
) -> Vec<String> {
    match downgrading {
        Some(target) => vec![downgrade::cancel_after_failure(ctx, target).await],
        None => Vec::new(),
    }
}

fn member<'a>(
    ctx: &'a Context<'_>,
    name: &MemberName,
) -> Result<(&'a DesiredMember, Arc<dyn Host>), StepError> {
    let m = ctx
        .desired
        .member(name)
        .ok_or_else(|| StepError::UnknownMember(name.clone()))?;
    let h = ctx
        .hosts
        .get(&m.address)
        .ok_or_else(|| StepError::UnknownMember(name.clone()))?;
    Ok((m, h))
}

/// Writes `files` on `host`, one command each (each checked against its
/// sha256 and renamed into place): a write step's, or a restart's where its
/// parts go one by one.
async fn write_files(host: &dyn Host, files: &[crate::diff::FileChange]) -> Result<(), StepError> {
    for f in files {
        let script = Script::new(
            format!("write {}", f.path.display()),
            write_file_script(&f.path, f.mode, f.after.as_bytes()),
        )
        .stdin(f.after.clone().into_bytes());
        run_checked(host, &script).await?;
    }
    Ok(())
}

async fn run_checked(host: &dyn Host, script: &Script) -> Result<String, StepError> {
    let out = host.run(script).await?;
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(StepError::Command {
            what: script.what.clone(),
            host: host.label(),
            code: out.code,
            tail: out.tail(),
        })
    }
}

/// Issues a member's server and peer certificates from the local CA (its key
/// stays here) and writes them with the CA certificate to the host; keys are
/// sent through stdin into files created 0600, and never shown.
async fn issue_certificates(
    ctx: &Context<'_>,
    m: &DesiredMember,
    host: &dyn Host,
) -> Result<String, StepError> {
    let refused = |why: String| StepError::Refused {
        what: format!("issue {}'s certificates", m.name),
        why,
    };
    if ctx.desired.tls.external().is_some() {
        // A saved plan from before the switch to the operator's CA.
        return Err(refused(
            "[tls] issuer = \"external\": the operator's CA issues the certificates, and etcdplan never writes them".into(),
        ));
    }
    let ca = match crate::pki::Ca::load(&ctx.desired.tls.ca_dir, crate::pki::now()) {
        Ok(crate::pki::Found::Ca(ca)) => ca,
        Ok(crate::pki::Found::Nothing) => {
            return Err(refused(format!(
                "there is no CA in {}",
                ctx.desired.tls.ca_dir.display()
            )));
        }
        Err(e) => return Err(refused(e.to_string())),
    };
    let sans = crate::hostfiles::member_sans(m);
    let days = ctx.desired.tls.cert_days;
    let refused = |e: crate::pki::PkiError| refused(e.to_string());
    let server = ca
        .issue(crate::pki::Role::Server, m.name.as_str(), &sans, days)
        .map_err(refused)?;
    let peer = ca
        .issue(crate::pki::Role::Peer, m.name.as_str(), &sans, days)
        .map_err(refused)?;
    let paths = m.tls_paths(&ctx.desired.tls);
    // A bundle that trusts this CA already (a CA rotation) stays: etcd builds
    // its trust pool at start, and the rotation's phases own that file.
    let now_trusted = run_checked(
        host,
        &Script::new(
            format!("read {}", paths.ca.display()),
            format!(
                "cat {} 2>/dev/null || true\n",
                crate::io::shell_quote(&paths.ca.display().to_string())
            ),
        ),
    )
    .await?;
    let keep_ca = crate::pki::bundle_fingerprints(&now_trusted).contains(&ca.info().fingerprint);
    let files: [(&std::path::Path, u32, &str); 5] = [
        (&paths.ca, 0o644, ca.cert_pem()),
        (&paths.server_key, 0o600, &server.key_pem),
        (&paths.server_cert, 0o644, &server.cert_pem),
        (&paths.peer_key, 0o600, &peer.key_pem),
        (&paths.peer_cert, 0o644, &peer.cert_pem),
    ];
    for (path, mode, contents) in files {
        if keep_ca && path == paths.ca.as_path() {
            continue;
        }
        // Keys belong to the user etcd runs as; certificates stay root's, readable.
        let run_as = &ctx.desired.hosts.run_as;
        let key = path == paths.server_key.as_path() || path == paths.peer_key.as_path();
        let source = if key && !run_as.is_root() {
            write_owned_file_script(path, mode, run_as, contents.as_bytes())
        } else {
            write_file_script(path, mode, contents.as_bytes())
        };
        let script = Script::new(format!("write {}", path.display()), source)
            .stdin(contents.as_bytes().to_vec());
        run_checked(host, &script).await?;
    }
    let until = crate::pki::inspect(&peer.cert_pem)
        .map(|i| crate::pki::date(i.not_after))
        .unwrap_or_default();
    Ok(format!(
        "issued {}'s certificates for {}, valid until {until}",
        m.name,
        sans.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Places this machine's JWT key pair and client CRL on the member's host,
/// read now (never from the plan): the key 0600 in a 0700 folder, owned by
/// the user etcd runs as. The key pair is made in `key_dir` first when it is
/// not there (`cli::apply` makes it before the walk; a saved plan may reach
/// here without it). The outcome names the public key's digest only.
async fn place_auth_files(
    ctx: &Context<'_>,
    m: &DesiredMember,
    host: &dyn Host,
    jwt: bool,
    crl: bool,
) -> Result<String, StepError> {
    let refused = |why: String| StepError::Refused {
        what: format!("place {}'s auth files", m.name),
        why,
    };
    let d = ctx.desired;
    let paths = crate::hostfiles::auth_paths(m);
    let run_as = &d.hosts.run_as;
    let mut said = Vec::new();
    if let Some(dir) = crate::pki::jwt_key_dir(d).filter(|_| jwt) {
        let (keys, _) =
            crate::pki::JwtKeys::load_or_create(dir).map_err(|e| refused(e.to_string()))?;
        let key_script = if run_as.is_root() {
            write_file_script(&paths.jwt_key, 0o600, keys.private_pem().as_bytes())
        } else {
            write_owned_file_script(&paths.jwt_key, 0o600, run_as, keys.private_pem().as_bytes())
        };
        for (path, source, contents) in [
            (&paths.jwt_key, key_script, keys.private_pem()),
            (
                &paths.jwt_pub,
                write_file_script(&paths.jwt_pub, 0o644, keys.public_pem.as_bytes()),
                keys.public_pem.as_str(),
            ),
        ] {
            let script = Script::new(format!("write {}", path.display()), source)
                .stdin(contents.as_bytes().to_vec());
            run_checked(host, &script).await?;
        }
        if !run_as.is_root()
            && let Some(folder) = paths.jwt_key.parent()
        {
            // The folder is 0700: etcd, run as the user, must enter it.
            let owner = crate::io::shell_quote(&format!("{run_as}:"));
            let folder = crate::io::shell_quote(&folder.display().to_string());
            let script = Script::new(
                format!("give {folder} to {run_as}"),
                format!("set -e\nchown -- {owner} {folder}\nchmod 700 -- {folder}\n"),
            );
            run_checked(host, &script).await?;
        }
        said.push(format!(
            "the JWT key pair (public key sha256 {})",
            &crate::pki::sha256_hex(keys.public_pem.as_bytes())[..12]
        ));
    }
    if let Some(crl) = crate::pki::crl_file(d).filter(|_| crl) {
        let text = std::fs::read(crl)
            .map_err(|e| refused(format!("cannot read crl_file {}: {e}", crl.display())))?;
        let script = Script::new(
            format!("write {}", paths.crl.display()),
            write_file_script(&paths.crl, 0o644, &text),
        )
        .stdin(text);
        run_checked(host, &script).await?;
        said.push(format!("the CRL from {}", crl.display()));
    }
    Ok(format!(
        "placed {} on {}'s host",
        said.join(" and "),
        m.name
    ))
}

async fn run_step(
    step: &Step,
    ctx: &Context<'_>,
    transfers: &transfer::Transfers,
) -> Result<StepOutcome, StepError> {
    match step {
        Step::WriteFiles {
            member: name,
            files,
        } => {
            let (_, host) = member(ctx, name)?;
            write_files(host.as_ref(), files).await?;
            Ok(StepOutcome::default())
        }
        Step::IssueCertificates { member: name } => {
            let (m, host) = member(ctx, name)?;
            issue_certificates(ctx, m, host.as_ref())
                .await
                .map(StepOutcome::from)
        }
        Step::PlaceAuthFiles {
            member: name,
            jwt,
            crl,
        } => {
            let (m, host) = member(ctx, name)?;
            place_auth_files(ctx, m, host.as_ref(), *jwt, *crl)
                .await
                .map(StepOutcome::from)
        }
        Step::InstallBinary {
            member: name,
            version,
            source,
            sha256,
            etcdutl,
        } => binary::install(
            ctx,
            transfers,
            name,
            *version,
            source,
            sha256,
            etcdutl.as_ref(),
        )
        .await
        .map(StepOutcome::from),
        Step::UseBinary {
            member: name,
            version,
        } => binary::use_release(ctx, name, *version)
            .await
            .map(StepOutcome::from),
        Step::CheckVersion {
            member: name,
            version,
        } => binary::check_version(ctx, name, *version)
            .await
            .map(StepOutcome::from),
        Step::ClusterVersion { version } => binary::cluster_version(ctx, *version)
            .await
            .map(StepOutcome::from),
        Step::DowngradeValidate { target } => downgrade::validate(ctx, *target).await,
        Step::DowngradeEnable { target } => downgrade::enable(ctx, *target).await,
        Step::WaitStorageVersion { target } => downgrade::wait_storage(ctx, *target).await,
        Step::DowngradeCancel { target } => downgrade::cancel(ctx, *target).await,
        Step::DowngradeFinished { target } => downgrade::finished(ctx, *target).await,
        Step::Start { member: name } => {
            let (m, host) = member(ctx, name)?;
            run_checked(host.as_ref(), &service::start(ctx.desired, m)).await?;
            Ok(StepOutcome::default())
        }
        Step::Restart {
            member: name,
            files,
            ..
        } => {
            let (m, host) = member(ctx, name)?;
            let t = Instant::now();
            check_may_disrupt(ctx, name, &format!("restart {name}")).await?;
            let check = t.elapsed();
            // A leader is not moved first: its graceful stop hands over.
            let before = membership::before_graceful_stop(ctx, name).await?;
            let step_down = t.elapsed() - check;
            // The files, the stop and the start in one round trip
            // (restart.rs), with the grace etcd's own handover needs.
            let parts = restart::stop_start(
                ctx,
                m,
                host.as_ref(),
                name,
                membership::stop_grace(ctx),
                files,
            )
            .await?;
            // Who leads now, asked once the member is back (not while it is down).
            let led = if before.led {
                Some(membership::led_now(ctx, name).await)
            } else {
                None
            };
            // Where a restart's time goes (benches/rolling.rs reads it).
            tracing::debug!(
                target: "etcdplan::timing",
                restart = %name,
                check = check.as_secs_f64(),
                step_down = step_down.as_secs_f64(),
                write = parts.write.as_secs_f64(),
                stop = parts.stop.as_secs_f64(),
                start = parts.start.as_secs_f64(),
            );
            failpoint::reached(&format!("started:{name}")).await;
            Ok(StepOutcome {
                detail: led,
                warnings: before.warning.into_iter().collect(),
                ..StepOutcome::default()
            })
        }
        Step::Adopt {
            member: name,
            foreign,
            files,
        } => adopt::adopt(ctx, name, foreign, files).await,
        Step::CheckV2Store { member: name } => binary::check_v2store(ctx, name).await,
        Step::MoveLeader { from, to, to_id } => {
            let view = membership::leader(ctx).await?;
            let leads = view
                .members
                .iter()
                .find(|m| m.id == view.id)
                .is_some_and(|m| m.name.is(from));
            if !leads {
                // Leadership already moved (an election, or a rerun): nothing to do.
                return Ok(StepOutcome::from(format!("{from} is not the leader now")));
            }
            // The planned member if it has caught up, else the voter
            // furthest along (membership::transfer).
            let led = membership::transfer(ctx, &view, Some(*to_id), |_| true).await?;
            let name = view
                .members
                .iter()
                .find(|m| Some(m.id) == led)
                .and_then(|m| m.name.as_started().map(str::to_owned));
            Ok(StepOutcome::from(match name {
                Some(n) if n == to.as_str() => format!("{to} leads"),
                Some(n) => format!("{n} leads ({to} had not caught up)"),
                None => format!("{from} still leads: no other voter to take over"),
            }))
        }
        Step::WaitHealthy { members } => {
            wait_healthy(ctx, members).await?;
            Ok(StepOutcome::default())
        }
        Step::Snapshot { dir } => membership::snapshot(ctx, transfers, dir).await,
        Step::Auth { change } => auth::change(ctx, change).await,
        Step::AddLearner {
            member: name,
            peer_url,
        } => {
            let (m, _) = member(ctx, name)?;
            membership::add_learner(ctx, m, peer_url)
                .await
                .map(StepOutcome::from)
        }
        Step::WriteJoinFiles {
            member: name,
            release,
            ..
        } => {
            let (m, _) = member(ctx, name)?;
            membership::write_join_files(ctx, m, *release)
                .await
                .map(StepOutcome::from)
        }
        Step::WaitCaughtUp { member: name } => {
            let (m, _) = member(ctx, name)?;
            membership::wait_caught_up(ctx, m).await?;
            Ok(StepOutcome::default())
        }
        Step::Promote { member: name } => {
            let (m, _) = member(ctx, name)?;
            membership::promote(ctx, m).await.map(StepOutcome::from)
        }
        Step::UpdatePeerUrl {
            member: name,
            peer_url,
        } => {
            let (m, _) = member(ctx, name)?;
            membership::update_peer(ctx, m, peer_url)
                .await
                .map(StepOutcome::from)
        }
        Step::RemoveMember { departing } => membership::remove(ctx, departing)
            .await
            .map(StepOutcome::from),
        Step::StopDeparted { departing } => membership::stop_departed(ctx, departing).await,
        Step::RetireData {
            member: m,
            departed,
        } => membership::retire(ctx, m, *departed).await,
        Step::CheckRestoreTool {
            member: name,
            tool,
            version,
        } => restore::check_tool(ctx, name, tool, *version).await,
        Step::UploadSnapshot {
            member: name,
            source,
            dest,
            sha256,
            ..
        } => restore::upload(ctx, transfers, name, source, dest, sha256).await,
        Step::StopForRestore { member: name } => restore::stop(ctx, name).await,
        Step::RestoreData {
            member: name,
            snapshot,
            tool,
            initial_cluster,
            token,
            stamp,
        } => {
            let r = restore::RestoreData {
                snapshot,
                tool,
                initial_cluster,
                token,
                stamp,
            };
            restore::restore_data(ctx, name, &r).await
        }
        Step::VerifyRestore { revision, content } => {
            restore::verify(ctx, *revision, content.as_ref()).await
        }
        Step::Compact { keep } => maintenance::compact(ctx, *keep).await,
        Step::Defragment {
            member: name,
            timeout_secs,
            ..
        } => maintenance::defragment(ctx, name, *timeout_secs).await,
        Step::DisarmNoSpace { quota } => maintenance::disarm_nospace(ctx, *quota).await,
        Step::TestWrite => maintenance::test_write(ctx).await,
        Step::CopyData { member: name } => recover::copy_data(ctx, name).await,
        Step::Fence { member: m } => recover::fence(ctx, m).await,
        Step::ForceNewCluster { member: name, id } => {
            recover::force_new_cluster(ctx, name, *id).await
        }
        Step::EndForcedStart { member: name, id } => {
            recover::end_forced_start(ctx, name, *id).await
        }
        Step::VerifyRecovered {
            member: name,
            id,
            revision,
        } => recover::verify(ctx, name, *id, *revision).await,
    }
}

/// Refuses a disruption unless every other voter is healthy enough that one
/// more member down keeps the cluster within its fault tolerance.
async fn check_may_disrupt(
    ctx: &Context<'_>,
    target: &MemberName,
    what: &str,
) -> Result<(), StepError> {
    // A member that just lost its leader reports none until the election ends
    // (about a second with etcd's defaults), so a refusal is looked at again
    // for a while before it stands: it then names only the members really down.
    let every = ctx.deadlines.poll.max(Duration::from_millis(250));
    let settle = ctx.deadlines.settle;
    let settled = wait::wait_until(what, settle, every, async || {
        match gate::cluster_view(ctx).await {
            Err(e) => wait::Check::Fail(e),
            Ok(voters) => match may_disrupt(&voters, target.as_str()) {
                Ok(()) => wait::Check::Ready(()),
                Err(why) => wait::Check::NotYet(why),
            },
        }
    })
    .await;
    match settled {
        Ok(()) => Ok(()),
        Err(wait::WaitError::Failed(e)) => Err(e),
        Err(wait::WaitError::TimedOut { last, .. }) => Err(StepError::Unsafe {
            what: what.to_owned(),
            why: last,
        }),
    }
}
