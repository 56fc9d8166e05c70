//! `etcdplan plan`: the plan shown for people, as JSON or as a Graphviz
//! graph, optionally saved for `apply PLAN_FILE`; and the plan as every
//! command makes it, with the local CA checked.

use std::io::Write;
use std::path::Path;

use super::edges::read_only;
use super::{Cli, CliError, Outcome, file_label, style};
use crate::config::Desired;
use crate::observe::Live;
use crate::plan::{self, Plan};
use crate::{diff, execute, render};

/// The plan document as `plan --json` prints it and `plan --out` saves it.
pub(super) fn plan_document(plan: &Plan) -> Result<String, CliError> {
    serde_json::to_string_pretty(plan).map_err(|e| CliError::Output(std::io::Error::other(e)))
}

/// The plan as every command makes it: the diff planned, and a blocker when
/// the local CA cannot be used.
pub(super) fn make_plan(cli: &Cli, d: &Desired, live: &Live) -> Plan {
    let etcdfile = std::path::absolute(&cli.file).unwrap_or_else(|_| cli.file.clone());
    let opts = plan::Options {
        allow_majority_removal: cli.allow_majority_removal,
        // The flag, else the [backup] folder (the snapshot then counts
        // toward keep), else snapshots/ beside the etcdfile.
        snapshot_dir: cli
            .snapshot_dir
            .clone()
            .or_else(|| d.backup.as_ref().map(|b| b.dir.clone()))
            .unwrap_or_else(|| execute::default_snapshot_dir(&etcdfile)),
    };
    let mut plan = match &cli.recover_from {
        // The operator named the survivor: the recovery, or why there is none.
        Some(from) => plan::recover::build(
            d,
            live,
            &plan::recover::Recovery {
                from: from.clone(),
                allow_data_loss: cli.allow_data_loss,
            },
            &opts,
        ),
        None => {
            let mut plan = plan::build_with(
                d,
                live,
                diff::diff_with(d, live, cli.allow_downgrade),
                &opts,
            );
            // A rerun of an apply stopped after its snapshot continues from it.
            if let Some(c) = &live.cluster
                && let Ok(taken) = crate::backup::list(&opts.snapshot_dir)
                && let Some(m) = crate::backup_core::restore_point(
                    &taken,
                    &c.id.to_string(),
                    &d.file_hash,
                    time::OffsetDateTime::now_utc(),
                )
            {
                plan.keep_restore_point(&opts.snapshot_dir.join(&m.file).display().to_string());
            }
            plan
        }
    };
    // The CA lives on this machine: a broken one stops the plan before any
    // certificate is needed.
    if let Some(x) = d.tls.external().filter(|_| d.tls.any()) {
        // The operator's CA: the members' certificates are checked against it.
        if let Some(why) = external_ca_problem(&x.ca_file, live) {
            plan.blockers.push(diff::Blocker {
                member: None,
                message: format!("ca_file {}: {why}", x.ca_file.display()),
                help: "point [tls] ca_file at the certificate of the CA that issued the members' certificates; nothing was changed".into(),
            });
        }
    } else if d.tls.any()
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

/// What is wrong with the operator's CA file, as observed: absent or
/// unreadable, not a certificate, or not a CA.
fn external_ca_problem(path: &Path, live: &Live) -> Option<String> {
    let Some(text) = live.local_ca.as_deref() else {
        return Some(match std::fs::metadata(path) {
            Err(e) => format!("cannot be read: {e}"),
            Ok(_) => "cannot be read".into(),
        });
    };
    let certs = crate::pki::inspect_bundle(text);
    if certs.is_empty() {
        return Some("holds no PEM certificate".into());
    }
    if !certs.iter().any(|c| c.is_ca) {
        return Some("holds no CA certificate (no CA basic constraint)".into());
    }
    None
}

/// `etcdplan plan`: observes, plans, and prints the plan in the form asked for.
pub(super) async fn plan(
    cli: &Cli,
    json: bool,
    graph: bool,
    detailed_exitcode: bool,
    save_to: Option<&Path>,
    out: &mut impl Write,
) -> Result<Outcome, CliError> {
    let (loaded, live) = read_only(cli, false).await?;
    let d = &loaded.desired;
    let plan = make_plan(cli, d, &live);
    if let Some(path) = save_to {
        let text = plan_document(&plan)?;
        std::fs::write(path, text + "\n").map_err(|e| CliError::PlanFile {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        eprintln!(
            "Saved the plan to {}. To perform exactly these actions, run:\n  etcdplan -f {} apply {}",
            path.display(),
            cli.file.display(),
            path.display()
        );
    }
    if json {
        writeln!(out, "{}", plan_document(&plan)?)?;
    } else if graph {
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
        out.write_all(render::plan_human(&plan, d, &file_label(&cli.file), style(cli)).as_bytes())?;
    }
    if !plan.blockers.is_empty() && detailed_exitcode {
        return Err(CliError::Blocked(plan.blockers[0].message.clone()));
    }
    Ok(if detailed_exitcode && !plan.is_empty() {
        Outcome::Changes
    } else {
        Outcome::Ok
    })
}
