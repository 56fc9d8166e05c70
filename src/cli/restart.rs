//! `etcdplan restart MEMBER`: one running member restarted for host
//! maintenance. The plan is the core's (`plan::restart`); a refusal is
//! shown and nothing is locked or changed. Otherwise the cluster is locked
//! and observed again, the plan made again from what is true under the
//! lock, and shown, asked and walked as apply does (`apply::show_and_walk`).

use std::sync::Arc;

use super::apply::{lock_and_observe, show_and_walk};
use super::edges::{close, etcd_client, hosts, observe_live};
use super::{Cli, CliError, Outcome, RestartArgs, load};
use crate::config::Desired;
use crate::io::HostMap;
use crate::model::MemberName;
use crate::plan::restart;
use crate::view::{self, SharedView};

/// `etcdplan restart MEMBER`.
pub(super) async fn restart(cli: &Cli, args: &RestartArgs) -> Result<Outcome, CliError> {
    if cli.recover_from.is_some() {
        return Err(CliError::Usage(
            "restart never recovers a lost quorum: --recover-from belongs to plan and apply".into(),
        ));
    }
    if args.json && !args.auto_approve {
        return Err(CliError::Usage(
            "restart --json cannot ask for approval inside its output; pass --auto-approve".into(),
        ));
    }
    let member = MemberName::parse(&args.member)
        .map_err(|e| CliError::Usage(format!("{:?} is not a member name: {e}", args.member)))?;
    let view = view::choose(view::Command::Apply, args.json);
    let loaded = load(cli)?;
    let d = &loaded.desired;
    let mut hosts = hosts(cli, d).await;
    let result = restart_with(cli, args, &view, d, &mut hosts, &member).await;
    close(&hosts).await;
    result
}

async fn restart_with(
    cli: &Cli,
    args: &RestartArgs,
    view: &SharedView,
    d: &Desired,
    hosts: &mut HostMap,
    member: &MemberName,
) -> Result<Outcome, CliError> {
    let etcd = Arc::new(etcd_client(cli, d));
    let live = observe_live(cli, d, hosts, etcd.as_ref(), true).await;
    let plan = restart::build(d, &live, member);
    if !plan.applicable {
        // Refused: shown with the reason; no lock was taken, nothing changed.
        return show_and_walk(
            cli,
            view,
            d,
            hosts,
            &etcd,
            &live,
            &plan,
            false,
            args.gate_timeout,
        )
        .await;
    }
    let (live, lock) = lock_and_observe(cli, d, hosts, &etcd, live, "restart").await?;
    // Planned again from what is true under the lock.
    let plan = restart::build(d, &live, member);
    let result = show_and_walk(
        cli,
        view,
        d,
        hosts,
        &etcd,
        &live,
        &plan,
        !args.auto_approve,
        args.gate_timeout,
    )
    .await;
    lock.release(etcd.as_ref(), view).await;
    result
}
