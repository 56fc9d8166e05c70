//! The planner tests' shared steps: plan a described live state, name its
//! steps, and describe the running clusters the TLS tests start from.

use etcdplan::config::Desired;
use etcdplan::diff;
use etcdplan::observe::Live;
use etcdplan::plan::{self, Plan, Step};

use super::{HostSpec, cluster, live};

/// The plan for `d` against `l` with the default options.
pub fn plan_for(d: &Desired, l: &Live) -> Plan {
    plan::build(d, l, diff::diff(d, l))
}

/// Each step's one-line description, in order.
pub fn kinds(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| &s.step)
        .map(Step::describe)
        .collect()
}

/// The 3-member etcdfile of `text_with` with `tls` as its `[tls]` table.
pub fn with_tls(tls: &str) -> Desired {
    super::desired_from(
        &super::text_with(3, "").replace("[hosts]", &format!("[tls]\n{tls}\n[hosts]")),
    )
}

/// A healthy 3-member cluster running as `from` says.
pub fn running(from: &Desired) -> Live {
    let specs: Vec<HostSpec> = (0..3).map(|_| HostSpec::running_from(from)).collect();
    live(from, &specs, Some(cluster(from, &[true; 3], 0)))
}
