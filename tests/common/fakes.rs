//! Applying a plan over the in-memory fakes (`etcdplan::io::fake`), as the
//! executor tests do: one `Context` with the quick deadlines.

use std::sync::atomic::AtomicBool;

use etcdplan::config::Desired;
use etcdplan::execute::{self, ApplyError, Context, Event};
use etcdplan::io::HostMap;
use etcdplan::io::fake::FakeCluster;
use etcdplan::plan::Plan;

/// Applies `plan` over the fakes with `on_event` called on every event;
/// `stop` is the flag a signal would set.
pub async fn apply_with(
    d: &Desired,
    hosts: &HostMap,
    fake: &FakeCluster,
    plan: &Plan,
    stop: &AtomicBool,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<execute::Report, ApplyError> {
    let ctx = Context {
        desired: d,
        hosts,
        etcd: fake,
        deadlines: super::quick(),
        advertised: Vec::new(),
        stop,
        tolerates: plan.tolerates(),
        secrets: Default::default(),
    };
    execute::apply(plan, &ctx, on_event).await
}

/// Applies `plan` over the fakes, no signal, events ignored.
pub async fn apply(
    d: &Desired,
    hosts: &HostMap,
    fake: &FakeCluster,
    plan: &Plan,
) -> Result<execute::Report, ApplyError> {
    apply_with(d, hosts, fake, plan, &AtomicBool::new(false), &mut |_| {}).await
}
