//! The planner against described live states: diff + plan + render, all pure.

mod common;

use common::{HostSpec, cluster, desired_with, live};
use etcdplan::diff::{self, Action, ChangeKind, Situation};
use etcdplan::observe::{Binary, DataDir, HostState, ProbeProblem};
use etcdplan::plan::{self, Plan, Step};
use etcdplan::render::{self, Style};

fn plan_for(d: &etcdplan::config::Desired, l: &etcdplan::observe::Live) -> Plan {
    plan::build(d, l, diff::diff(d, l))
}

fn kinds(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| &s.step)
        .map(Step::describe)
        .collect()
}

fn snapshot(name: &str, p: &Plan, d: &etcdplan::config::Desired) {
    insta::assert_snapshot!(
        format!("{name}-human"),
        render::plan_human(p, d, "etcdfile.toml", Style::PLAIN)
    );
    insta::assert_snapshot!(
        format!("{name}-json"),
        serde_json::to_string_pretty(p).unwrap_or_default()
    );
    // Each kind of change reads back as written (a saved plan is applied as read).
    let text = serde_json::to_string(p).unwrap_or_else(|e| panic!("{e}"));
    let back: Plan = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.changes, p.changes);
    assert_eq!(back.deferred, p.deferred);
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
    assert!(
        matches!(p.steps.last().map(|s| &s.step), Some(Step::WaitHealthy { members }) if members.len() == 3)
    );
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
    assert_eq!(p.changes[0].action(), Action::Start);
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
    assert!(
        p.steps.iter().map(|s| &s.step).all(|s| !s.disruptive()),
        "{:?}",
        kinds(&p)
    );
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
    assert!(c.is_some_and(|c| c.action() == Action::Restart
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

fn plan_opts(d: &etcdplan::config::Desired, l: &etcdplan::observe::Live, allow: bool) -> Plan {
    let opts = plan::Options {
        allow_majority_removal: allow,
        snapshot_dir: "/srv/etcdplan/snapshots".into(),
    };
    plan::build_with(d, l, diff::diff(d, l), &opts)
}

#[test]
fn members_unknown_to_the_file_are_named_and_removed_one_at_a_time() {
    let d2 = desired_with(2, "");
    let d3 = desired_with(3, "");
    let l = live(
        &d2,
        &vec![HostSpec::running_from(&d2); 2],
        Some(cluster(&d3, &[true; 3], 0)),
    );
    let p = plan_opts(&d2, &l, false);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let c = &p.changes[0];
    assert_eq!(c.action(), Action::Remove);
    assert!(
        c.reason.contains("etcd-3") && c.reason.contains("not in the etcdfile"),
        "{}",
        c.reason
    );
    assert_eq!(
        kinds(&p),
        [
            "take a snapshot into /srv/etcdplan/snapshots and check it",
            "remove etcd-3 (1002) from the cluster",
            "wait until etcd-1, etcd-2 healthy",
            "stop etcd of etcd-3 on 10.0.0.13",
            "move etcd-3's data (/var/lib/etcd/member) and config aside on 10.0.0.13",
        ]
    );
    snapshot("scale-down-3-to-2", &p, &d2);
}

#[test]
fn scale_up_adds_learners_one_at_a_time() {
    let d3 = desired_with(3, "");
    let d5 = desired_with(5, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    specs.extend(vec![HostSpec::empty(); 2]);
    let l = live(&d5, &specs, Some(cluster(&d3, &[true; 3], 1)));
    let p = plan_opts(&d5, &l, false);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert_eq!(
        (p.summary.add, p.summary.change, p.summary.remove),
        (2, 0, 0)
    );
    assert_eq!(
        kinds(&p),
        [
            "take a snapshot into /srv/etcdplan/snapshots and check it",
            "add etcd-4 as a learner (http://10.0.0.14:2380)",
            "write etcd-4's config (initial-cluster from the member list)",
            "start etcd-4",
            "wait until learner etcd-4 has caught up",
            "promote etcd-4 to voter",
            "wait until etcd-4 healthy",
            "add etcd-5 as a learner (http://10.0.0.15:2380)",
            "write etcd-5's config (initial-cluster from the member list)",
            "start etcd-5",
            "wait until learner etcd-5 has caught up",
            "promote etcd-5 to voter",
            "wait until etcd-5 healthy",
        ]
    );
    // etcd-5's initial-cluster lists etcd-4, which joins before it.
    let five = p.changes[1].files[0].after.clone();
    assert!(
        five.contains("etcd-4=http://10.0.0.14:2380,etcd-5=http://10.0.0.15:2380"),
        "{five}"
    );
    assert!(five.contains("initial-cluster-state: 'existing'"));
    snapshot("scale-up-3-to-5", &p, &d5);
}

#[test]
fn scale_down_removes_the_leader_last_after_moving_leadership() {
    let d3 = desired_with(3, "");
    let d5 = desired_with(5, "");
    // etcd-4 leads; etcd-4 and etcd-5 leave.
    let l = live(
        &d3,
        &vec![HostSpec::running_from(&d3); 3],
        Some(cluster(&d5, &[true; 5], 3)),
    );
    let p = plan_opts(&d3, &l, false);
    let k = kinds(&p);
    let rm5 = k.iter().position(|s| s.starts_with("remove etcd-5"));
    let mv = k.iter().position(|s| s.starts_with("move leader etcd-4"));
    let rm4 = k.iter().position(|s| s.starts_with("remove etcd-4"));
    assert!(rm5 < mv && mv < rm4 && rm5.is_some(), "{k:?}");
}

#[test]
fn removing_a_majority_needs_the_flag_and_still_goes_one_at_a_time() {
    let d1 = desired_with(1, "");
    let d3 = desired_with(3, "");
    let l = live(
        &d1,
        &[HostSpec::running_from(&d1)],
        Some(cluster(&d3, &[true; 3], 0)),
    );
    let p = plan_opts(&d1, &l, false);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.message.contains("removes 2 of 3 voters")),
        "{:?}",
        p.blockers
    );
    assert!(
        p.blockers
            .iter()
            .any(|b| b.help.contains("--allow-majority-removal"))
    );
    let p = plan_opts(&d1, &l, true);
    assert!(p.blockers.is_empty());
    let removes = p
        .steps
        .iter()
        .filter(|s| matches!(s.step, Step::RemoveMember { .. }))
        .count();
    assert_eq!(removes, 2);
    snapshot("scale-down-3-to-1", &p, &d1);
}

#[test]
fn one_member_grows_to_three() {
    let d1 = desired_with(1, "");
    let d3 = desired_with(3, "");
    let mut specs = vec![HostSpec::running_from(&d1)];
    specs.extend(vec![HostSpec::empty(); 2]);
    let l = live(&d3, &specs, Some(cluster(&d1, &[true], 0)));
    let p = plan_opts(&d3, &l, false);
    assert!(
        p.blockers.is_empty() && p.deferred.is_empty(),
        "{:?} {:?}",
        p.blockers,
        p.notes
    );
    assert_eq!(
        p.steps
            .iter()
            .filter(|s| matches!(s.step, Step::Promote { .. }))
            .count(),
        2
    );
}

#[test]
fn a_member_that_moves_is_replaced_remove_first() {
    let d = desired_with(3, "");
    let moved = common::desired_from(&common::text_with(3, "").replace("10.0.0.12", "10.0.0.22"));
    let mut specs = vec![HostSpec::running_from(&d); 3];
    specs[1] = HostSpec::empty();
    let l = live(&moved, &specs, Some(cluster(&d, &[true; 3], 0)));
    let p = plan_opts(&moved, &l, false);
    let c = p.changes.iter().find(|c| c.member.as_str() == "etcd-2");
    assert!(
        c.is_some_and(|c| c.action() == Action::Replace),
        "{:?}",
        p.changes
    );
    assert_eq!((p.summary.add, p.summary.remove), (1, 1));
    let k = kinds(&p);
    let rm = k.iter().position(|s| s.starts_with("remove etcd-2"));
    let stop = k
        .iter()
        .position(|s| s == "stop etcd of etcd-2 on 10.0.0.12");
    let add = k
        .iter()
        .position(|s| s.starts_with("add etcd-2 as a learner (http://10.0.0.22:2380)"));
    assert!(rm < stop && stop < add && rm.is_some(), "{k:?}");
    snapshot("replace-moved-member", &p, &moved);
}

#[test]
fn a_member_whose_host_lost_its_data_is_replaced() {
    let d = desired_with(3, "");
    let mut specs = vec![HostSpec::running_from(&d); 3];
    specs[2].running = false;
    specs[2].data = etcdplan::observe::DataDir::Absent;
    let l = live(&d, &specs, Some(cluster(&d, &[true, true, false], 0)));
    let p = plan_opts(&d, &l, false);
    let c = &p.changes[0];
    assert_eq!(c.action(), Action::Replace);
    // The old half is the dead member, moved aside where the new one lives.
    assert!(
        matches!(&c.kind, ChangeKind::Replace { departing, .. }
            if !departing.healthy && departing.host.address.to_string() == "10.0.0.13"),
        "{:?}",
        c.kind
    );
    assert!(c.reason.contains("lost its data"), "{}", c.reason);
    let k = kinds(&p);
    // Dead: removed first; nothing to stop or move aside on an empty host.
    assert!(k[1].starts_with("remove etcd-3"), "{k:?}");
    assert!(
        !k.iter()
            .any(|s| s.starts_with("stop etcd of") || s.starts_with("move etcd-3")),
        "{k:?}"
    );
    assert!(k.iter().any(|s| s.starts_with("add etcd-3 as a learner")));
}

#[test]
fn dead_members_leave_before_new_ones_join() {
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    // etcd-3 is dead and dropped from the file; etcd-4 is new.
    let wanted = common::desired_from(&common::text_with(4, "").replace(
        "name = \"etcd-3\"\naddress = \"10.0.0.13\"\n",
        "name = \"etcd-9\"\naddress = \"10.0.0.19\"\n",
    ));
    let mut specs = vec![
        HostSpec::running_from(&d3),
        HostSpec::running_from(&d3),
        HostSpec::empty(),
        HostSpec::empty(),
    ];
    specs[2] = HostSpec::empty();
    let _ = d4;
    let l = live(&wanted, &specs, Some(cluster(&d3, &[true, true, false], 0)));
    let p = plan_opts(&wanted, &l, false);
    let k = kinds(&p);
    let rm = k.iter().position(|s| s.starts_with("remove etcd-3"));
    let add = k
        .iter()
        .position(|s| s.starts_with("add etcd-9") || s.starts_with("add etcd-4"));
    assert!(rm.is_some() && rm < add, "{k:?}");
}

#[test]
fn adds_wait_for_a_healthy_cluster() {
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    specs.push(HostSpec::empty());
    // etcd-3 runs but does not answer: not something this plan can repair.
    let l = live(&d4, &specs, Some(cluster(&d3, &[true, true, false], 0)));
    let p = plan_opts(&d4, &l, false);
    assert!(
        !p.steps
            .iter()
            .map(|s| &s.step)
            .any(|s| matches!(s, Step::AddLearner { .. })),
        "{:?}",
        kinds(&p)
    );
    assert_eq!(p.deferred.len(), 1);
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("etcd-3") && n.contains("healthy cluster")),
        "{:?}",
        p.notes
    );
}

#[test]
fn an_interrupted_join_is_resumed() {
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    specs.push(HostSpec::empty());
    // Added as a learner, never started.
    let mut c = cluster(&d4, &[true, true, true, false], 0);
    c.members[3].is_learner = true;
    c.members[3].name = String::new();
    c.members[3].client_urls.clear();
    let l = live(&d4, &specs, Some(c.clone()));
    let p = plan_opts(&d4, &l, false);
    assert_eq!(
        kinds(&p)[1..],
        [
            "write etcd-4's config (initial-cluster from the member list)",
            "start etcd-4",
            "wait until learner etcd-4 has caught up",
            "promote etcd-4 to voter",
            "wait until etcd-4 healthy",
        ]
    );
    // Started but not promoted: only the wait and the promotion remain.
    c.members[3].name = "etcd-4".into();
    let mut specs2 = specs.clone();
    specs2[3] = HostSpec::running_from(&d4);
    let l = live(&d4, &specs2, Some(c));
    let p = plan_opts(&d4, &l, false);
    assert_eq!(
        kinds(&p)[1..],
        [
            "wait until learner etcd-4 has caught up",
            "promote etcd-4 to voter",
            "wait until etcd-4 healthy"
        ]
    );
}

#[test]
fn old_data_of_this_cluster_is_moved_aside_before_a_rejoin() {
    let d3 = desired_with(3, "");
    let d4 = desired_with(4, "");
    let mut specs = vec![HostSpec::running_from(&d3); 3];
    let mut stale = HostSpec::running_from(&d4);
    stale.running = false;
    specs.push(stale);
    let l = live(&d4, &specs, Some(cluster(&d3, &[true; 3], 0)));
    let p = plan_opts(&d4, &l, false);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = kinds(&p);
    assert_eq!(
        k[1],
        "move etcd-4's data (/var/lib/etcd/member) and config aside on 10.0.0.14"
    );
    assert!(k[2].starts_with("add etcd-4 as a learner"));
}

#[test]
fn a_new_tls_cluster_gets_certificates_before_its_files() {
    let text = common::text_with(3, "").replace(
        "[hosts]",
        "[tls]\nclient = true\npeer = true\nclient_cert_auth = true\n[hosts]",
    );
    let d = common::desired_from(&text);
    let l = live(
        &d,
        &[HostSpec::empty(), HostSpec::empty(), HostSpec::empty()],
        None,
    );
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    let k = kinds(&p);
    for m in ["etcd-1", "etcd-2", "etcd-3"] {
        let issue = k
            .iter()
            .position(|s| s.starts_with(&format!("issue {m}'s")));
        let write = k
            .iter()
            .position(|s| s.starts_with("write") && s.ends_with(m));
        assert!(
            matches!((issue, write), (Some(i), Some(w)) if i < w),
            "{k:?}"
        );
    }
    let config = &p.changes[0].files[0].after;
    assert!(
        config.contains("advertise-client-urls: 'https://"),
        "{config}"
    );
    assert!(config.contains("client-cert-auth: true"), "{config}");
    assert!(config.contains("peer-transport-security:"), "{config}");
}

#[test]
fn client_tls_without_client_cert_auth_trusts_no_ca_on_the_client_port() {
    // etcd demands client certificates whenever a trusted CA is set.
    let text = common::text_with(1, "").replace("[hosts]", "[tls]\nclient = true\n[hosts]");
    let d = common::desired_from(&text);
    let l = live(&d, &[HostSpec::empty()], None);
    let p = plan_for(&d, &l);
    let config = &p.changes[0].files[0].after;
    let client = config
        .split("client-transport-security:")
        .nth(1)
        .unwrap_or_default();
    assert!(client.contains("client-cert-auth: false"), "{config}");
    assert!(!config.contains("trusted-ca-file"), "{config}");
    assert!(!config.contains("peer-transport-security"), "{config}");
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
        f.problems.push(ProbeProblem {
            message: "systemctl not found".into(),
            help: "this host does not run systemd; set service = \"process\" in [hosts]".into(),
        });
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
    let a = serde_json::to_string(&plan_for(&d, &l)).unwrap_or_default();
    let b = serde_json::to_string(&plan_for(&d, &l)).unwrap_or_default();
    assert_eq!(a, b);
}

#[test]
fn a_peer_port_change_updates_then_restarts_each_member() {
    let old = desired_with(3, "");
    let d = desired_with(3, "peer_port = 2390\n");
    let l = live(
        &d,
        &vec![HostSpec::running_from(&old); 3],
        Some(cluster(&old, &[true; 3], 1)),
    );
    let p = plan_for(&d, &l);
    let k = kinds(&p);
    for i in 1..=3 {
        let upd = k.iter().position(|s| {
            s == &format!("advertise etcd-{i}'s peer URL as http://10.0.0.1{i}:2390 (MemberUpdate)")
        });
        let rst = k.iter().position(|s| s == &format!("restart etcd-{i}"));
        assert!(upd.is_some() && upd < rst, "{k:?}");
    }
    assert_eq!(
        k.last().map(String::as_str),
        Some("wait until etcd-2 healthy"),
        "the leader goes last: {k:?}"
    );
    snapshot("peer-port-change", &p, &d);
}

#[test]
fn a_member_already_on_its_new_peer_port_only_needs_the_update() {
    let old = desired_with(3, "");
    let d = desired_with(3, "peer_port = 2390\n");
    // An apply stopped after restarting etcd-1 on the new port, before MemberUpdate.
    let mut specs = vec![HostSpec::running_from(&old); 3];
    specs[0] = HostSpec::running_from(&d);
    // And the cluster is degraded (etcd-3 lost its leader), so restarts wait.
    let l = live(&d, &specs, Some(cluster(&old, &[true, true, false], 1)));
    let p = plan_for(&d, &l);
    let k = kinds(&p);
    assert_eq!(
        k[0], "advertise etcd-1's peer URL as http://10.0.0.11:2390 (MemberUpdate)",
        "{k:?}"
    );
    assert!(!k.iter().any(|s| s.starts_with("restart")), "{k:?}");
    assert!(
        matches!(&p.changes[0].kind, ChangeKind::Update { peer_update: Some(url), phase: None }
            if url.to_string() == "http://10.0.0.11:2390"),
        "{:?}",
        p.changes[0].kind
    );
}

#[test]
fn a_saved_plan_is_checked_against_the_etcdfile_and_the_cluster() {
    use etcdplan::observe::fingerprint;
    use etcdplan::plan::file::StaleError;
    let old = desired_with(3, "");
    let d = desired_with(3, "quota_backend_bytes = \"4GiB\"\n");
    let l = live(
        &d,
        &vec![HostSpec::running_from(&old); 3],
        Some(cluster(&old, &[true; 3], 0)),
    );
    let p = plan_for(&d, &l);
    // What `plan --out` writes is what `apply FILE` reads back, step for step.
    let text = serde_json::to_string_pretty(&p).unwrap_or_default();
    let saved: Plan = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => panic!("the saved plan does not read back: {e}\n{text}"),
    };
    assert_eq!(saved.steps, p.steps);
    assert_eq!(saved.changes, p.changes);
    assert_eq!(saved.live_fingerprint, fingerprint(&l));
    assert_eq!(saved.check_saved(&d.file_hash, &fingerprint(&l)), Ok(()));
    assert_eq!(
        saved.check_saved("other", &fingerprint(&l)),
        Err(StaleError::Etcdfile)
    );
    // A member went down meanwhile.
    let l2 = live(
        &d,
        &vec![HostSpec::running_from(&old); 3],
        Some(cluster(&old, &[true, false, true], 0)),
    );
    match saved.check_saved(&d.file_hash, &fingerprint(&l2)) {
        Err(StaleError::Live(what)) => {
            assert!(
                what.iter()
                    .any(|w| w.starts_with("member 1001") && w.contains("healthy=true → ")),
                "{what:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A plan file of another format is refused before anything else.
    let v1 = text.replace("\"format_version\": \"2\"", "\"format_version\": \"1\"");
    let v1: Plan = serde_json::from_str(&v1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v1.check_saved(&d.file_hash, &fingerprint(&l)),
        Err(StaleError::Format("1".into()))
    );
}
