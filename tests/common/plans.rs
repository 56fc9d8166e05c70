//! The planner tests' shared steps: plan a described live state, name its
//! steps, and describe the running clusters the TLS tests start from.

use etcdplan::config::Desired;
use etcdplan::diff;
use etcdplan::observe::Live;
use etcdplan::plan::{self, Plan};

use super::{HostSpec, cluster, live};

/// The plan for `d` against `l` with the default options.
pub fn plan_for(d: &Desired, l: &Live) -> Plan {
    plan::build(d, l, diff::diff(d, l))
}

/// Each step's one-line description, in order.
pub fn kinds(p: &Plan) -> Vec<String> {
    p.steps.iter().map(|s| s.description.clone()).collect()
}

/// The steps of a quota change on a healthy 3-member cluster led by etcd-2:
/// followers first, the leader last (etcd's stop hands leadership over).
pub const QUOTA_STEPS: [&str; 6] = [
    "write 1 file and restart etcd-1",
    "wait until etcd-1 healthy",
    "write 1 file and restart etcd-3",
    "wait until etcd-3 healthy",
    "write 1 file and restart etcd-2 (leader: etcd hands leadership over as it stops)",
    "wait until etcd-2 healthy",
];

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

/// Asserts a plan's human and JSON goldens, `<test file>__<name>-human` and
/// `-json` (a macro: insta names a snapshot after the module it is expanded
/// in), and that its changes read back from JSON as written (a saved plan is
/// applied as it is read).
#[macro_export]
macro_rules! plan_snapshot {
    ($name:expr, $plan:expr, $desired:expr) => {{
        let (name, p, d) = ($name, $plan, $desired);
        insta::assert_snapshot!(
            format!("{name}-human"),
            etcdplan::render::plan_human(p, d, "etcdfile.toml", etcdplan::render::Style::PLAIN)
        );
        insta::assert_snapshot!(
            format!("{name}-json"),
            serde_json::to_string_pretty(p).unwrap_or_default()
        );
        $crate::common::plans::assert_reads_back(p);
    }};
}

/// The plan's changes read back from its JSON exactly as they were written.
pub fn assert_reads_back(p: &Plan) {
    let text = serde_json::to_string(p).unwrap_or_else(|e| panic!("{e}"));
    let back: Plan = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.changes, p.changes);
    assert_eq!(back.deferred, p.deferred);
}

/// The plan's notes but the one about 3.4's end of life: the fixtures' members
/// run 3.4.23, and that note is the version tests' business.
pub fn notes_but_end_of_life(p: &Plan) -> Vec<String> {
    p.notes
        .iter()
        .filter(|n| !n.contains("reached its end of life"))
        .cloned()
        .collect()
}
