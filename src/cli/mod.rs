//! The command line: parses arguments, wires the real edges, maps outcomes to exit codes.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod apply;
mod watch;

use clap::{CommandFactory as _, Parser, Subcommand};
use miette::Diagnostic;

use crate::config::{self, ConfigError, Desired, Level, Loaded, Transport};
use crate::execute::{self, ApplyError};
use crate::io::{EtcdClient, HostMap, LocalHost, SshHost, SshOptions, Timeouts};
use crate::observe::{self, Live};
use crate::plan::{self, Plan};
use crate::render::{self, Style};
use crate::{diff, model};

/// Plan and apply changes to an etcd cluster without losing quorum.
#[derive(Debug, Parser)]
#[command(name = "etcdplan", version, about, propagate_version = true)]
pub struct Cli {
    /// The etcdfile.
    #[arg(
        short,
        long,
        global = true,
        env = "ETCDPLAN_FILE",
        default_value = "etcdfile.toml"
    )]
    pub file: PathBuf,
    /// Never colour the output (also: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Deadline of one etcd request (at least 1s).
    #[arg(long, global = true, default_value = "5s", value_name = "DURATION", value_parser = duration_arg)]
    pub etcd_timeout: Duration,
    /// Deadline for an ssh connection (at least 1s).
    #[arg(long, global = true, default_value = "10s", value_name = "DURATION", value_parser = duration_arg)]
    pub ssh_timeout: Duration,
    /// Accept and record the keys of hosts not yet in known_hosts (a changed key
    /// is still refused). Host keys are checked strictly without it.
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,
    /// Allow a plan that removes a majority of the cluster's voters (they still
    /// leave one at a time).
    #[arg(long, global = true)]
    pub allow_majority_removal: bool,
    /// Allow [cluster] version to name a version older than the members run,
    /// where etcd supports that downgrade (3.5 → 3.4.32 or later).
    #[arg(long, global = true)]
    pub allow_downgrade: bool,
    /// How long apply waits for another etcdplan's lock on the cluster
    /// (0: fail at once, naming the holder).
    #[arg(long, global = true, default_value = "0s", value_name = "DURATION", value_parser = duration_arg)]
    pub lock_timeout: Duration,
    /// Where the snapshot taken before a membership change is written
    /// (default: `snapshots/` next to the etcdfile).
    #[arg(long, global = true, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the etcdfile; every problem is reported with its place in the file.
    Validate {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the live cluster: members, leader, versions, db size, health, alarms.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show what apply would change, in which order, and why.
    Plan {
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Print the step graph as Graphviz dot.
        #[arg(long, conflicts_with = "json")]
        graph: bool,
        /// Exit 0 for no changes, 2 for changes, 1 for errors.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Save the plan to FILE, to apply exactly it later with `apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Plan, show, ask, then apply one member at a time; or apply a saved plan.
    Apply {
        /// A plan saved by `plan --out`: applied without asking, if the cluster
        /// and the etcdfile are still what it was made from.
        #[arg(value_name = "PLAN_FILE")]
        plan_file: Option<PathBuf>,
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
        /// Report the plan and the progress as JSON Lines on stdout, one event
        /// per line (needs --auto-approve or PLAN_FILE: it cannot ask).
        #[arg(long)]
        json: bool,
        /// How long each health gate may wait.
        #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration_arg)]
        gate_timeout: Duration,
    },
    /// Re-plan whenever the etcdfile is saved and every --interval (drift);
    /// with --auto-approve, apply the plans that need no force flag.
    Watch {
        /// Apply safe plans without asking (never a majority removal).
        #[arg(long)]
        auto_approve: bool,
        /// Time between drift checks of the live cluster (at least 1s).
        #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = duration_arg)]
        interval: Duration,
        /// One JSON object per line per event, for log shippers.
        #[arg(long)]
        json: bool,
        /// How long each health gate may wait.
        #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration_arg)]
        gate_timeout: Duration,
    },
    /// The cluster's certificate authority (the CA in [tls] ca_dir).
    Pki {
        /// What to issue.
        #[command(subcommand)]
        what: PkiCommand,
    },
    /// Remove the cluster's lock left by an etcdplan that is gone (the id is in
    /// the "locked by" message). It expires by itself 20 s after its holder died.
    ForceUnlock {
        /// The lock id.
        id: String,
    },
    /// Print the JSON Schema of the etcdfile.
    Schema,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), made from the same definitions as --help:
    /// `etcdplan man | man -l -`.
    Man,
}

/// What a duration flag accepts, for its error message.
const DURATION_FORMS: &str =
    "expected a duration such as 30s, 2m, 1h30m or 500ms, or a whole number of seconds";

/// Reads a duration flag the way etcd reads its own (`5s`, `2m`, `1h30m`,
/// `500ms`, see [`model::parse_duration`]); a bare number is seconds, as these
/// flags always took.
fn duration_arg(s: &str) -> Result<Duration, String> {
    let parsed = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        model::parse_duration(&format!("{s}s"))
    } else {
        model::parse_duration(s)
    };
    parsed.map_err(|e| format!("{e}; {DURATION_FORMS}"))
}

/// roff's apostrophe preamble, which clap_mangen writes before every part it
/// renders; the page needs it once, at the top.
const ROFF_PREAMBLE: [&str; 2] = [r".ie \n(.g .ds Aq \(aq", ".el .ds Aq '"];

/// The man page: the global options, then every command with its own options,
/// all from the clap definitions that `--help` and the completions use.
fn man_page(out: &mut impl std::io::Write) -> std::io::Result<()> {
    let cli = Cli::command();
    let page = clap_mangen::Man::new(cli.clone());
    let mut roff = Vec::new();
    page.render_title(&mut roff)?;
    page.render_name_section(&mut roff)?;
    page.render_synopsis_section(&mut roff)?;
    page.render_description_section(&mut roff)?;
    page.render_options_section(&mut roff)?;
    writeln!(roff, ".SH COMMANDS")?;
    for sub in cli.get_subcommands() {
        man_command(&mut roff, sub, cli.get_name())?;
    }
    page.render_version_section(&mut roff)?;
    for line in ROFF_PREAMBLE {
        writeln!(out, "{line}")?;
    }
    for line in String::from_utf8_lossy(&roff)
        .lines()
        .filter(|l| !ROFF_PREAMBLE.contains(l))
    {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// One command's part of the man page, as a subsection: its description,
/// synopsis and own options (the global ones are listed once, above).
fn man_command(roff: &mut Vec<u8>, cmd: &clap::Command, parent: &str) -> std::io::Result<()> {
    let name = format!("{parent} {}", cmd.get_name());
    let page = clap_mangen::Man::new(cmd.clone().bin_name(&name));
    writeln!(roff, ".SS \"{name}\"")?;
    let mut text = Vec::new();
    page.render_description_section(&mut text)?;
    page.render_synopsis_section(&mut text)?;
    page.render_options_section(&mut text)?;
    // clap_mangen makes each part a section of a page; here they are paragraphs.
    for line in String::from_utf8_lossy(&text).lines() {
        if line.starts_with(".SH ") {
            writeln!(roff, ".PP")?;
        } else {
            writeln!(roff, "{line}")?;
        }
    }
    for sub in cmd.get_subcommands() {
        man_command(roff, sub, &name)?;
    }
    Ok(())
}

/// `etcdplan pki …`
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Issue a client certificate for an operator or an application
    /// (CN = NAME, which etcd takes as the user name when auth is on).
    Client {
        /// The certificate's common name.
        name: String,
        /// How long it is valid, in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Folder for NAME.crt, NAME.key (0600) and ca.crt.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
    },
    /// Start a CA rotation: the CA moves to ca_dir/previous and a new one is
    /// created. The next apply makes every member trust both (a rolling
    /// restart), then issues its certificates from the new CA (in place).
    RotateCa,
    /// End a CA rotation once applied: the previous CA is retired, and the
    /// next apply drops it from every member's trust (a rolling restart).
    RetireCa,
}

/// What the user sees when a command fails; `main` turns it into exit code 1.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum CliError {
    /// The etcdfile is unreadable or invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// The plan has blockers.
    #[error("the plan cannot be applied: {0}")]
    #[diagnostic(
        code(etcdplan::blocked),
        help("fix what the plan lists under \"This plan cannot be applied\"; nothing was changed")
    )]
    Blocked(String),
    /// Another etcdplan holds the cluster's lock, or the lock could not be handled.
    #[error(transparent)]
    #[diagnostic(
        code(etcdplan::lock),
        help(
            "wait for it (--lock-timeout DURATION), or, if that etcdplan is gone, `etcdplan force-unlock ID`; nothing was changed"
        )
    )]
    Lock(#[from] execute::lock::LockError),
    /// A saved plan no longer fits the cluster or the etcdfile.
    #[error("Saved plan is stale: {0}")]
    #[diagnostic(
        code(etcdplan::stale),
        help("nothing was changed; run `etcdplan plan --out FILE` again and review the new plan")
    )]
    Stale(plan::file::StaleError),
    /// A plan file could not be read or written.
    #[error("plan file {path}: {message}")]
    #[diagnostic(code(etcdplan::plan_file))]
    PlanFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The operator did not approve.
    #[error("apply cancelled: {0}")]
    #[diagnostic(
        code(etcdplan::cancelled),
        help("nothing was changed; pass --auto-approve to apply without asking")
    )]
    Cancelled(String),
    /// A step failed mid-apply.
    #[error("{0}")]
    #[diagnostic(
        code(etcdplan::apply),
        help("run `etcdplan plan` to see what remains; etcdplan stopped before any further step")
    )]
    Apply(Box<ApplyError>),
    /// The etcdfile's folder cannot be watched.
    #[error(transparent)]
    #[diagnostic(code(etcdplan::watch))]
    Watch(#[from] crate::watch::WatchError),
    /// The CA or a certificate cannot be used.
    #[error("{error}")]
    #[diagnostic(code(etcdplan::pki))]
    Pki {
        /// What is wrong.
        error: crate::pki::PkiError,
        /// What to do.
        #[help]
        advice: &'static str,
    },
    /// Flags that do not go together.
    #[error("{0}")]
    #[diagnostic(code(etcdplan::usage))]
    Usage(String),
    /// Writing output failed.
    #[error("cannot write output: {0}")]
    #[diagnostic(code(etcdplan::io))]
    Output(#[from] std::io::Error),
}

/// How a successful command ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 2: `plan --detailed-exitcode` found changes.
    Changes,
    /// Exit 1 with nothing more to say: `validate --json` already printed why.
    Invalid,
}

fn style(cli: &Cli) -> Style {
    Style {
        color: !cli.no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stdout().is_terminal(),
    }
}

fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn load(cli: &Cli) -> Result<Loaded, CliError> {
    let loaded = config::load(&cli.file)?;
    if !loaded.warnings.is_empty() {
        eprint!("{}", warnings_text(&loaded.warnings));
    }
    Ok(loaded)
}

fn warnings_text(w: &[config::Problem]) -> String {
    let handler = miette::GraphicalReportHandler::new_themed(if std::io::stderr().is_terminal() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    });
    let mut s = String::new();
    for p in w {
        let _ = handler.render_report(&mut s, p);
    }
    s
}

/// The member hosts for the file's transport: one connection per address,
/// all opened in parallel under a deadline.
pub async fn hosts(cli: &Cli, d: &Desired) -> HostMap {
    let mut map = match d.hosts.transport {
        Transport::Local => return HostMap::everywhere(Arc::new(LocalHost)),
        Transport::Ssh => HostMap::default(),
    };
    let addresses: Vec<model::Address> = d.members.iter().map(|m| m.address.clone()).collect();
    connect(cli, d, &mut map, addresses).await;
    map
}

/// Opens ssh connections to the addresses the map lacks, all in parallel.
async fn connect(cli: &Cli, d: &Desired, map: &mut HostMap, mut addresses: Vec<model::Address>) {
    addresses.sort();
    addresses.dedup();
    addresses.retain(|a| !map.has(a));
    if addresses.is_empty() {
        return;
    }
    let opts = SshOptions {
        user: d.hosts.ssh.user.clone(),
        port: d.hosts.ssh.port,
        identity: d.hosts.ssh.identity.clone(),
        known_hosts: d.hosts.ssh.known_hosts.clone(),
        accept_new: cli.accept_new_host_keys,
        connect_timeout: cli.ssh_timeout.max(Duration::from_secs(1)),
    };
    let started = Instant::now();
    let connected =
        futures::future::join_all(addresses.iter().map(|a| SshHost::connect(a, &opts))).await;
    tracing::debug!(
        "ssh: {} connections in {:.3}s",
        connected.len(),
        started.elapsed().as_secs_f64()
    );
    for (a, h) in addresses.into_iter().zip(connected) {
        if let Some(f) = h.failure() {
            tracing::info!("{f}");
        }
        map.insert(a, Arc::new(h));
    }
}

/// Closes every host connection once.
async fn close(hosts: &HostMap) {
    let started = Instant::now();
    hosts.close().await;
    tracing::debug!("hosts closed in {:.3}s", started.elapsed().as_secs_f64());
}

async fn observe_live(
    cli: &Cli,
    d: &Desired,
    hosts: &HostMap,
    etcd: &EtcdClient,
    chatty: bool,
) -> Live {
    let t = Instant::now();
    if !chatty {
        return observe::observe(d, hosts, etcd).await;
    }
    eprintln!(
        "Reading {} … {} member{} desired",
        file_label(&cli.file),
        d.members.len(),
        if d.members.len() == 1 { "" } else { "s" }
    );
    let live = observe::observe(d, hosts, etcd).await;
    let what = match &live.cluster {
        Some(c) => {
            let leader = c
                .leader()
                .and_then(|id| c.members.iter().find(|m| m.id == id))
                .map_or("no leader".to_owned(), |m| format!("leader {}", m.name));
            format!("cluster {} ({} members, {leader})", c.id, c.members.len())
        }
        None => "no member answers".to_owned(),
    };
    eprintln!("Observing {what} … {:.2}s", t.elapsed().as_secs_f64());
    live
}

/// Loads the etcdfile and observes the cluster, for commands that change nothing.
async fn read_only(cli: &Cli) -> Result<(Loaded, Live), CliError> {
    let loaded = load(cli)?;
    let hosts = hosts(cli, &loaded.desired).await;
    let etcd = etcd_client(cli, &loaded.desired);
    let live = observe_live(cli, &loaded.desired, &hosts, &etcd, true).await;
    close(&hosts).await;
    Ok((loaded, live))
}

/// The etcd client: over https it trusts the file's CA and presents a
/// short-lived certificate issued from it for this run (kept in memory only).
/// Without a CA yet there is nothing serving https to talk to.
fn etcd_client(cli: &Cli, d: &Desired) -> EtcdClient {
    let client = EtcdClient::new(Timeouts {
        connect: Duration::from_secs(2),
        request: cli.etcd_timeout.max(Duration::from_secs(1)),
    });
    if !d.tls.any() {
        return client;
    }
    match crate::pki::Authority::load(&d.tls.ca_dir, crate::pki::now()) {
        Ok(Some(auth)) => match client_identity(&auth) {
            Ok(tls) => client.with_tls(tls),
            Err(e) => {
                tracing::warn!("{e}");
                client
            }
        },
        Ok(None) => client,
        Err(e) => {
            eprintln!("warning: {e}: etcdplan cannot talk to members over https");
            client
        }
    }
}

/// etcdplan's own client certificates for this run: one day, CN "etcdplan",
/// from the current CA and, during a rotation, the previous one too.
pub(super) fn client_identity(
    auth: &crate::pki::Authority,
) -> Result<crate::io::ClientTls, CliError> {
    let issued = auth.client_certificates("etcdplan", 1).map_err(pki_error)?;
    Ok(crate::io::ClientTls {
        ca_pem: auth.trust_bundle(),
        identities: issued
            .into_iter()
            .map(|i| crate::io::ClientIdentity {
                cert_pem: i.cert_pem,
                key_pem: i.key_pem,
            })
            .collect(),
    })
}

/// The plan document as `plan --json` prints it and `plan --out` saves it.
fn plan_document(plan: &Plan) -> Result<String, CliError> {
    serde_json::to_string_pretty(plan).map_err(|e| CliError::Output(std::io::Error::other(e)))
}

fn make_plan(cli: &Cli, d: &Desired, live: &Live) -> Plan {
    let etcdfile = std::path::absolute(&cli.file).unwrap_or_else(|_| cli.file.clone());
    let opts = plan::Options {
        allow_majority_removal: cli.allow_majority_removal,
        snapshot_dir: cli
            .snapshot_dir
            .clone()
            .unwrap_or_else(|| execute::default_snapshot_dir(&etcdfile)),
    };
    let diff = diff::diff_with(d, live, cli.allow_downgrade);
    let mut plan = plan::build_with(d, live, diff, &opts);
    // The CA lives on this machine: a broken one stops the plan before any
    // certificate is needed.
    if d.tls.any()
        && let Err(e) = crate::pki::Authority::load(&d.tls.ca_dir, crate::pki::now())
    {
        plan.blockers.push(diff::Blocker {
            member: None,
            message: format!("the CA cannot be used: {e}"),
            help: e.advice().to_owned(),
        });
    }
    plan
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<Outcome, CliError> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Schema => {
            out.write_all(config::schema_text().as_bytes())?;
            Ok(Outcome::Ok)
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "etcdplan", &mut out);
            Ok(Outcome::Ok)
        }
        Command::Man => {
            man_page(&mut out)?;
            Ok(Outcome::Ok)
        }
        Command::Validate { json } => validate(&cli, *json, &mut out),
        Command::Pki {
            what: PkiCommand::RotateCa,
        } => {
            let loaded = load(&cli)?;
            let d = &loaded.desired;
            let new = crate::pki::Ca::rotate(&d.tls.ca_dir, d.cluster.as_str(), crate::pki::now())
                .map_err(pki_error)?;
            let info = new.info();
            writeln!(
                out,
                "Created a new CA in {dir}: {cn:?}, sha256 {fp}, valid until {until}.\n\
The previous CA is kept in {dir}/{prev} until you retire it.\n\
Next:\n  \
1. `etcdplan apply`: every member trusts both CAs (a rolling restart), then gets certificates from the new one (in place).\n  \
2. Give applications the new CA to trust, and client certificates from it: `etcdplan pki client NAME` writes both.\n  \
3. `etcdplan pki retire-ca`, then `etcdplan apply`: members stop trusting the previous CA (a rolling restart).",
                dir = d.tls.ca_dir.display(),
                cn = info.subject,
                fp = info.short_fingerprint(),
                until = crate::pki::date(info.not_after),
                prev = crate::pki::PREVIOUS_DIR,
            )?;
            Ok(Outcome::Ok)
        }
        Command::Pki {
            what: PkiCommand::RetireCa,
        } => {
            let loaded = load(&cli)?;
            let d = &loaded.desired;
            let to = crate::pki::retire_previous(&d.tls.ca_dir).map_err(pki_error)?;
            writeln!(
                out,
                "Retired the previous CA to {}.\nThe next `etcdplan apply` drops it from every member's trust (a rolling restart); clients with certificates from it are refused from then on.",
                to.display()
            )?;
            Ok(Outcome::Ok)
        }
        Command::Pki {
            what:
                PkiCommand::Client {
                    name,
                    days,
                    out: dir,
                },
        } => {
            let loaded = load(&cli)?;
            let auth = ca_or_create(&loaded.desired)?;
            let ca = &auth.current;
            let issued = ca
                .issue(crate::pki::Role::Client, name, &[], (*days).max(1))
                .map_err(pki_error)?;
            // A folder that does not exist yet is made private: it will hold a key.
            if !dir.exists() {
                use std::os::unix::fs::DirBuilderExt as _;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            let crt = dir.join(format!("{name}.crt"));
            let key = dir.join(format!("{name}.key"));
            let ca_copy = dir.join(crate::pki::CA_CERT);
            crate::pki::write_new(&key, issued.key_pem.as_bytes(), 0o600).map_err(pki_error)?;
            crate::pki::write_new(&crt, issued.cert_pem.as_bytes(), 0o644).map_err(pki_error)?;
            // During a rotation members serve certificates from either CA.
            let trust = auth.trust_bundle();
            if std::fs::read_to_string(&ca_copy).ok() != Some(trust.clone()) {
                std::fs::write(&ca_copy, trust)?;
            }
            let info = crate::pki::inspect(&issued.cert_pem).unwrap_or_else(|_| ca.info().clone());
            writeln!(
                out,
                "Issued a client certificate for {name:?}, valid until {}:\n  {}\n  {} (private key, 0600)\n  {}\nUse it with:\n  etcdctl --cacert {} --cert {} --key {} --endpoints {} get --prefix ''",
                crate::pki::date(info.not_after),
                crt.display(),
                key.display(),
                ca_copy.display(),
                ca_copy.display(),
                crt.display(),
                key.display(),
                loaded
                    .desired
                    .client_urls()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )?;
            Ok(Outcome::Ok)
        }
        Command::ForceUnlock { id } => {
            let loaded = load(&cli)?;
            let etcd = etcd_client(&cli, &loaded.desired);
            let holder =
                execute::lock::force_unlock(&etcd, &loaded.desired.client_urls(), id).await?;
            writeln!(out, "Removed the lock held by {holder}.")?;
            Ok(Outcome::Ok)
        }
        Command::Status { json } => {
            let (loaded, live) = read_only(&cli).await?;
            let d = &loaded.desired;
            if *json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&render::status_json(&live, d))
                        .unwrap_or_default()
                )?;
            } else {
                out.write_all(render::status_human(&live, d, style(&cli)).as_bytes())?;
            }
            Ok(Outcome::Ok)
        }
        Command::Plan {
            json,
            graph,
            detailed_exitcode,
            out: save_to,
        } => {
            let (loaded, live) = read_only(&cli).await?;
            let d = &loaded.desired;
            let plan = make_plan(&cli, d, &live);
            if let Some(path) = save_to {
                let text = plan_document(&plan)?;
                std::fs::write(path, text + "\n").map_err(|e| CliError::PlanFile {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                eprintln!(
                    "Saved the plan to {}. To perform exactly these actions, run:\n  etcdplan -f {} apply {}",
                    path.display(),
                    cli.file.display(),
                    path.display()
                );
            }
            if *json {
                writeln!(out, "{}", plan_document(&plan)?)?;
            } else if *graph {
                let g = plan.graph();
                writeln!(
                    out,
                    "{:?}",
                    petgraph::dot::Dot::with_attr_getters(
                        &g,
                        &[
                            petgraph::dot::Config::NodeNoLabel,
                            petgraph::dot::Config::EdgeNoLabel
                        ],
                        &|_, _| String::new(),
                        &|_, (_, label)| format!("label = {label:?} shape=box"),
                    )
                )?;
            } else {
                out.write_all(
                    render::plan_human(&plan, d, &file_label(&cli.file), style(&cli)).as_bytes(),
                )?;
            }
            if !plan.blockers.is_empty() && *detailed_exitcode {
                return Err(CliError::Blocked(plan.blockers[0].message.clone()));
            }
            Ok(if *detailed_exitcode && !plan.is_empty() {
                Outcome::Changes
            } else {
                Outcome::Ok
            })
        }
        Command::Watch {
            auto_approve,
            interval,
            json,
            gate_timeout,
        } => {
            drop(out);
            watch::watch(
                &cli,
                watch::Options {
                    auto_approve: *auto_approve,
                    interval: (*interval).max(Duration::from_secs(1)),
                    json: *json,
                    gate: *gate_timeout,
                },
            )
            .await
        }
        Command::Apply {
            plan_file,
            auto_approve,
            json,
            gate_timeout,
        } => {
            drop(out);
            apply::apply(
                &cli,
                plan_file.as_deref(),
                *auto_approve,
                *json,
                *gate_timeout,
            )
            .await
        }
    }
}

fn pki_error(error: crate::pki::PkiError) -> CliError {
    CliError::Pki {
        advice: error.advice(),
        error,
    }
}

/// The CAs in the etcdfile's `ca_dir`, a CA created there when it has none.
pub(super) fn ca_or_create(d: &Desired) -> Result<crate::pki::Authority, CliError> {
    if let Some(auth) =
        crate::pki::Authority::load(&d.tls.ca_dir, crate::pki::now()).map_err(pki_error)?
    {
        return Ok(auth);
    }
    let current = crate::pki::Ca::create(&d.tls.ca_dir, d.cluster.as_str()).map_err(pki_error)?;
    eprintln!(
        "Created a CA in {} (its key stays on this machine, 0600).",
        d.tls.ca_dir.display()
    );
    Ok(crate::pki::Authority {
        current,
        previous: None,
    })
}

/// One problem of an etcdfile, for scripts.
fn problem_json(p: &config::Problem) -> serde_json::Value {
    serde_json::json!({
        "level": p.level,
        "code": p.code,
        "message": p.message,
        "line": p.line(),
        "help": p.help,
    })
}

fn validate(cli: &Cli, json: bool, out: &mut impl std::io::Write) -> Result<Outcome, CliError> {
    let result = config::load(&cli.file);
    if json {
        let (valid, problems) = match result {
            Ok(l) => (true, l.warnings),
            Err(ConfigError::Invalid { problems, .. }) => (false, problems),
            Err(e @ ConfigError::Read { .. }) => {
                let v = serde_json::json!({"valid": false, "error": e.to_string(), "problems": []});
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                )?;
                return Err(CliError::Config(e));
            }
        };
        let list: Vec<serde_json::Value> = problems.iter().map(problem_json).collect();
        let v = serde_json::json!({"valid": valid, "problems": list});
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?;
        return Ok(if valid { Outcome::Ok } else { Outcome::Invalid });
    }
    let loaded = result?;
    let d = &loaded.desired;
    if !loaded.warnings.is_empty() {
        eprint!("{}", warnings_text(&loaded.warnings));
    }
    let warn = loaded
        .warnings
        .iter()
        .filter(|p| p.level == Level::Warning)
        .count();
    writeln!(
        out,
        "{} is valid: cluster {:?}, {} member{}, transport {:?}, service {:?}{}",
        cli.file.display(),
        d.cluster.as_str(),
        d.members.len(),
        if d.members.len() == 1 { "" } else { "s" },
        format!("{:?}", d.hosts.transport).to_lowercase(),
        format!("{:?}", d.hosts.service).to_lowercase(),
        if warn > 0 {
            format!(" ({warn} warning{})", if warn == 1 { "" } else { "s" })
        } else {
            String::new()
        }
    )?;
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_take_bare_seconds_and_etcds_syntax() {
        assert_eq!(duration_arg("5"), Ok(Duration::from_secs(5)));
        assert_eq!(duration_arg("0"), Ok(Duration::ZERO));
        assert_eq!(duration_arg("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration_arg("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration_arg("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration_arg("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "5x", "-5", "1.5", "99999999999999999999", "2562048h"] {
            let e = duration_arg(bad).err().unwrap_or_default();
            assert!(e.contains(DURATION_FORMS), "{bad:?}: {e:?}");
        }
        assert!(duration_arg("99999999999999999999").is_err_and(|e| e.contains("too long")));
    }

    #[test]
    fn duration_defaults_parse_to_what_they_were_in_seconds() {
        let cli = Cli::try_parse_from(["etcdplan", "watch"]).map_err(|e| e.to_string());
        let Ok(cli) = cli else {
            panic!("{cli:?}");
        };
        assert_eq!(cli.etcd_timeout, Duration::from_secs(5));
        assert_eq!(cli.ssh_timeout, Duration::from_secs(10));
        assert_eq!(cli.lock_timeout, Duration::ZERO);
        let Command::Watch {
            interval,
            gate_timeout,
            ..
        } = cli.command
        else {
            panic!("not watch: {:?}", cli.command);
        };
        assert_eq!(interval, Duration::from_secs(30));
        assert_eq!(gate_timeout, Duration::from_secs(60));
    }

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
