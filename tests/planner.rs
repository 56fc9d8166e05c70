//! The planner against described live states: diff + plan + render, all pure.

mod common;

use common::{HostSpec, cluster, desired_with, live};
use etcdplan::diff::{self, Action, Situation};
use etcdplan::observe::{Binary, DataDir, HostState};
use etcdplan::plan::{self, Plan, Step};
use etcdplan::render::{self, Style};

fn plan_for(d: &etcdplan::config::Desired, l: &etcdplan::observe::Live) -> Plan {
    plan::build(d, l, diff::diff(d, l))
}

fn kinds(p: &Plan) -> Vec<String> {
    p.steps.iter().map(Step::describe).collect()
}

fn snapshot(name: &str, p: &Plan, d: &etcdplan::config::Desired) {
    insta::assert_snapshot!(
        format!("{name}-human"),
        render::plan_human(p, d, "etcdfile.toml", Style::PLAIN)
    );
    insta::assert_snapshot!(
        format!("{name}-json"),
        serde_json::to_string_pretty(&render::plan_json(p, d)).unwrap_or_default()
    );
}

#[test]
fn bootstrap_from_nothing() {
    let d = desired_with(3, "");
    let l = live(&d, &vec![HostSpec::empty(); 3], None);
    let p = plan_for(&d, &l);
    assert_eq!(p.situation, Situation::Bootstrap);
    assert!(p.blockers.is_empty());
    assert_eq!(
        (p.summary.add, p.summary.change, p.summary.remove),
        (3, 0, 0)
    );
    // Every member starts before the single gate; the gate is last.
    assert!(matches!(p.steps.last(), Some(Step::WaitHealthy { members }) if members.len() == 3));
    snapshot("bootstrap", &p, &d);
}

#[test]
fn unchanged_cluster_has_no_changes() {
    let d = desired_with(3, "");
    let l = live(
        &d,
        &vec![HostSpec::running_from(&d); 3],
        Some(cluster(&d, &[true; 3], 1)),
    );
    let p = plan_for(&d, &l);
    assert!(p.is_empty(), "{p:#?}");
    snapshot("no-changes", &p, &d);
}

#[test]
fn quota_change_rolls_followers_first_and_leader_last() {
    let old = desired_with(3, "");
    let d = desired_with(3, "quota_backend_bytes = \"4GiB\"\n");
    let l = live(
        &d,
        &vec![HostSpec::running_from(&old); 3],
        Some(cluster(&d, &[true; 3], 1)),
    );
    let p = plan_for(&d, &l);
    assert_eq!(
        kinds(&p),
        [
            "write 1 file for etcd-1",
            "restart etcd-1",
            "wait until etcd-1 healthy",
            "write 1 file for etcd-3",
            "restart etcd-3",
            "wait until etcd-3 healthy",
            "write 1 file for etcd-2",
            "move leader etcd-2 → etcd-1",
            "restart etcd-2",
            "wait until etcd-2 healthy",
        ]
    );
    snapshot("quota-change", &p, &d);
}

#[test]
fn stopped_member_is_started_and_gated() {
    let d = desired_with(3, "");
    let mut specs = vec![HostSpec::running_from(&d); 3];
    specs[2].running = false;
    let l = live(&d, &specs, Some(cluster(&d, &[true, true, false], 0)));
    let p = plan_for(&d, &l);
    assert_eq!(kinds(&p), ["start etcd-3", "wait until etcd-3 healthy"]);
    assert_eq!(p.changes[0].action, Action::Start);
    snapshot("start-stopped", &p, &d);
}

#[test]
fn degraded_cluster_gets_only_repairs() {
    let old = desired_with(3, "");
    let d = desired_with(3, "quota_backend_bytes = \"4GiB\"\n");
    // etcd-3 runs but does not answer (partitioned): not something a start repairs.
    let l = live(
        &d,
        &vec![HostSpec::running_from(&old); 3],
        Some(cluster(&d, &[true, true, false], 0)),
    );
    let p = plan_for(&d, &l);
    assert!(p.steps.iter().all(|s| !s.disruptive()), "{:?}", kinds(&p));
    assert!(p.notes.iter().any(|n| n.contains("deferred")));
    snapshot("degraded", &p, &d);
}

#[test]
fn repairs_come_before_restarts() {
    let old = desired_with(3, "");
    let d = desired_with(3, "auto_compaction_retention = \"5000\"\n");
    let mut specs = vec![HostSpec::running_from(&old); 3];
    specs[1].running = false;
    let l = live(&d, &specs, Some(cluster(&d, &[true, false, true], 0)));
    let p = plan_for(&d, &l);
    let k = kinds(&p);
    let start = k.iter().position(|s| s == "start etcd-2");
    let first_restart = k.iter().position(|s| s.starts_with("restart"));
    assert!(
        start.is_some() && first_restart.is_some() && start < first_restart,
        "{k:?}"
    );
}

#[test]
fn down_cluster_starts_every_member_then_waits() {
    let d = desired_with(3, "");
    let mut spec = HostSpec::running_from(&d);
    spec.running = false;
    let l = live(&d, &vec![spec; 3], None);
    let p = plan_for(&d, &l);
    assert_eq!(p.situation, Situation::Down);
    assert_eq!(
        kinds(&p),
        [
            "start etcd-1",
            "start etcd-2",
            "start etcd-3",
            "wait until etcd-1, etcd-2, etcd-3 healthy"
        ]
    );
}

#[test]
fn interrupted_apply_leaves_a_pending_restart() {
    let old = desired_with(3, "");
    let d = desired_with(3, "quota_backend_bytes = \"4GiB\"\n");
    let mut specs = vec![HostSpec::running_from(&old); 3];
    // etcd-1's new config was written, but etcd still runs with the old one.
    specs[0].config_from = Some(d.clone());
    specs[0].started_config = Some(etcdplan::config::hash(&etcdplan::hostfiles::etcd_config(
        &old,
        &old.members[0],
        &etcdplan::hostfiles::Initial::bootstrap(&old),
    )));
    let l = live(&d, &specs, Some(cluster(&d, &[true; 3], 2)));
    let p = plan_for(&d, &l);
    let c = p.changes.iter().find(|c| c.member.as_str() == "etcd-1");
    assert!(c.is_some_and(|c| c.action == Action::Restart
        && c.files.is_empty()
        && c.reason.contains("interrupted")));
}

#[test]
fn preflight_problems_block_the_bootstrap() {
    let d = desired_with(3, "");
    let mut specs = vec![HostSpec::empty(); 3];
    specs[0].binary = Binary::Missing;
    specs[1].listening = vec!["0.0.0.0:2379".into()];
    specs[2].data = DataDir::Member; // data, but no config etcdplan wrote
    let l = live(&d, &specs, None);
    let p = plan_for(&d, &l);
    let msgs: Vec<&str> = p.blockers.iter().map(|b| b.message.as_str()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(msgs[0].contains("etcd-1") && msgs[0].contains("missing"));
    assert!(msgs[1].contains("etcd-2") && msgs[1].contains("port 2379"));
    assert!(msgs[2].contains("etcd-3") && msgs[2].contains("belongs to"));
    snapshot("blocked-bootstrap", &p, &d);
}

#[test]
fn unreachable_host_is_a_blocker_not_a_crash() {
    let d = desired_with(3, "");
    let mut l = live(
        &d,
        &vec![HostSpec::running_from(&d); 3],
        Some(cluster(&d, &[true; 3], 0)),
    );
    l.hosts.insert(
        d.members[1].name.clone(),
        HostState::Unreachable {
            reason: "ssh root@10.0.0.12:22: connect to host 10.0.0.12 port 22: No route to host"
                .into(),
            advice: "check that the host is up and reachable over ssh, then run plan again".into(),
        },
    );
    let p = plan_for(&d, &l);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.member.as_ref().is_some_and(|m| m.as_str() == "etcd-2"))
    );
}

#[test]
fn members_unknown_to_the_file_are_named_never_removed_silently() {
    let d2 = desired_with(2, "");
    let d3 = desired_with(3, "");
    let l = live(
        &d2,
        &vec![HostSpec::running_from(&d2); 2],
        Some(cluster(&d3, &[true; 3], 0)),
    );
    let p = plan_for(&d2, &l);
    assert!(p.steps.is_empty());
    assert!(
        p.blockers
            .iter()
            .any(|b| b.message.contains("etcd-3") && b.message.contains("not in the etcdfile"))
    );
}

#[test]
fn members_missing_from_the_cluster_are_named() {
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    specs.push(HostSpec::empty());
    let l = live(&d4, &specs, Some(cluster(&d3, &[true; 3], 0)));
    let p = plan_for(&d4, &l);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.message.contains("etcd-4") && b.message.contains("not in cluster"))
    );
}

#[test]
fn tls_is_refused_with_a_reason() {
    let text = "[cluster]\nname = \"x\"\n[tls]\nclient = true\n[hosts]\ntransport = \"ssh\"\n[[member]]\nname = \"a\"\naddress = \"10.0.0.1\"\n";
    let d = common::desired_from(text);
    let l = live(&d, &[HostSpec::empty()], None);
    let p = plan_for(&d, &l);
    assert!(p.blockers.iter().any(|b| b.message.contains("TLS")));
}

fn systemd_desired() -> etcdplan::config::Desired {
    common::desired_from(
        "[cluster]\nname = \"main\"\n[hosts]\ntransport = \"ssh\"\nservice = \"systemd\"\n\
[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n[[member]]\nname = \"etcd-2\"\naddress = \"10.0.0.12\"\n\
[[member]]\nname = \"etcd-3\"\naddress = \"10.0.0.13\"\n",
    )
}

#[test]
fn systemd_bootstrap_writes_config_and_unit() {
    let d = systemd_desired();
    let l = live(&d, &vec![HostSpec::empty(); 3], None);
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let paths: Vec<String> = p.changes[0]
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "/etc/etcd/etcd.conf.yml",
            "/etc/systemd/system/etcd.service"
        ]
    );
    snapshot("systemd-bootstrap", &p, &d);
}

#[test]
fn host_without_systemd_is_a_blocker() {
    let d = systemd_desired();
    let mut l = live(&d, &vec![HostSpec::empty(); 3], None);
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[2].name) {
        f.problems.push("systemctl not found: this host does not run systemd; set service = \"process\" in [hosts]".into());
    }
    let p = plan_for(&d, &l);
    assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
    assert!(
        p.blockers[0]
            .message
            .starts_with("etcd-3: systemctl not found on 10.0.0.13")
    );
    assert!(p.blockers[0].help.contains("service = \"process\""));
}

#[test]
fn plans_are_deterministic() {
    let old = desired_with(5, "");
    let d = desired_with(5, "quota_backend_bytes = \"4GiB\"\n");
    let l = live(
        &d,
        &vec![HostSpec::running_from(&old); 5],
        Some(cluster(&d, &[true; 5], 3)),
    );
    let a = serde_json::to_string(&render::plan_json(&plan_for(&d, &l), &d)).unwrap_or_default();
    let b = serde_json::to_string(&render::plan_json(&plan_for(&d, &l), &d)).unwrap_or_default();
    assert_eq!(a, b);
}
