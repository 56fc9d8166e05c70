//! The command line: parses arguments, wires the real edges, maps outcomes to exit codes.
//!
//! One file per concern: the clap definitions (`args`), the errors shown
//! (`errors`), the edges wired for a command (`edges`), and a file per
//! command that needs more than a few lines (`alerts`, `apply`, `endpoints`, `plan`, `pki`,
//! `validate`, `watch`, `man`, `snapshot`, `restore`, `restart`); [`run`]
//! dispatches.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::Duration;

mod alerts;
mod apply;
mod args;
mod disconnect;
mod edges;
mod endpoints;
mod errors;
mod import;
mod man;
mod pki;
mod plan;
mod restart;
mod restore;
mod snapshot;
mod validate;
mod watch;

use clap::CommandFactory as _;

pub use args::{Cli, Command, PkiCommand, RestartArgs, RestoreArgs};
pub use edges::hosts;
pub use endpoints::{EndpointsArgs, FormatArg as EndpointsFormatArg};
pub use errors::CliError;

use crate::config::{self, Loaded};
use crate::execute;
use crate::render::{self, Style};
use edges::{etcd_client, read_only};

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
            man::man_page(&mut out)?;
            Ok(Outcome::Ok)
        }
        Command::Disconnect => disconnect::disconnect(&mut out).await,
        Command::Validate { json } => validate::validate(&cli, *json, &mut out),
        Command::Snapshot(args) => snapshot::snapshot(&cli, args, &mut out).await,
        Command::BackupTimer => snapshot::backup_timer(&cli, &mut out),
        Command::Alerts { job } => alerts::alerts(&cli, job, &mut out),
        Command::Endpoints(args) => endpoints::endpoints(&cli, args, &mut out).await,
        Command::History { json, limit } => history(&cli, *json, *limit, &mut out).await,
        Command::Import(args) => import::import(&cli, args, &mut out).await,
        Command::Pki { what } => pki::run(&cli, what, &mut out),
        Command::ForceUnlock { id } => force_unlock(&cli, id, &mut out).await,
        Command::Status { json } => status(&cli, *json, &mut out).await,
        Command::Plan {
            json,
            graph,
            detailed_exitcode,
            out: save_to,
        } => {
            plan::plan(
                &cli,
                *json,
                *graph,
                *detailed_exitcode,
                save_to.as_deref(),
                &mut out,
            )
            .await
        }
        Command::Watch { .. } if cli.recover_from.is_some() => Err(CliError::Usage(
            "watch never recovers a lost quorum: run `etcdplan plan --recover-from MEMBER`, read it, then `etcdplan apply --recover-from MEMBER`".into(),
        )),
        Command::Watch {
            auto_approve,
            interval,
            json,
            gate_timeout,
            metrics_addr,
        } => {
            drop(out);
            watch::watch(
                &cli,
                watch::Options {
                    auto_approve: *auto_approve,
                    interval: (*interval).max(Duration::from_secs(1)),
                    json: *json,
                    gate: *gate_timeout,
                    metrics_addr: *metrics_addr,
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
        Command::Restore(args) => {
            drop(out);
            restore::restore(&cli, args).await
        }
        Command::Restart(args) => {
            drop(out);
            restart::restart(&cli, args).await
        }
    }
}

/// `etcdplan force-unlock ID`: removes a lock whose holder is gone.
async fn force_unlock(
    cli: &Cli,
    id: &str,
    out: &mut impl std::io::Write,
) -> Result<Outcome, CliError> {
    let loaded = load(cli)?;
    let d = &loaded.desired;
    let etcd = etcd_client(cli, d);
    // The lock lives in etcd, or, for plans that run without a quorum
    // (restore, recovery), in files on the hosts: remove whichever holds the id.
    let in_etcd = execute::lock::force_unlock(&etcd, &d.client_urls(), id).await;
    let hosts = edges::hosts(cli, d).await;
    let in_files = execute::hostlock::force_unlock(d, &hosts, id).await;
    edges::close(&hosts).await;
    if !in_files.is_empty() {
        writeln!(
            out,
            "Removed the lock files of {id}: {}.",
            in_files.join(", ")
        )?;
    }
    match in_etcd {
        Ok(holder) => writeln!(out, "Removed the lock held by {holder}.")?,
        Err(_) if !in_files.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Outcome::Ok)
}

/// `etcdplan status`: the live cluster, as a table or as JSON.
async fn status(cli: &Cli, json: bool, out: &mut impl std::io::Write) -> Result<Outcome, CliError> {
    let (loaded, live) = read_only(cli, true).await?;
    let d = &loaded.desired;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&render::status_json(&live, d)).unwrap_or_default()
        )?;
    } else {
        out.write_all(render::status_human(&live, d, style(cli)).as_bytes())?;
    }
    Ok(Outcome::Ok)
}

/// `etcdplan history`: the records in `etcdplan/history/`, newest first.
async fn history(
    cli: &Cli,
    json: bool,
    limit: usize,
    out: &mut impl std::io::Write,
) -> Result<Outcome, CliError> {
    let loaded = load(cli)?;
    let d = &loaded.desired;
    let etcd = etcd_client(cli, d);
    let records = crate::history::read(&etcd, &d.client_urls(), limit)
        .await
        .map_err(|e| CliError::History(e.to_string()))?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&render::history_json(&records)).unwrap_or_default()
        )?;
    } else {
        out.write_all(render::history_human(&records).as_bytes())?;
    }
    Ok(Outcome::Ok)
}
