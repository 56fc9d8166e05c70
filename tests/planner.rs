//! The planner against described live states: diff + plan + render, all pure.

mod common;

use common::plans::{QUOTA_STEPS, kinds, plan_for};
use common::{HostSpec, cluster, desired_with, live};
use etcdplan::diff::{Action, ChangeKind, Situation};
use etcdplan::observe::{Binary, DataDir, HostState, ProbeProblem};
use etcdplan::plan::{Plan, Step};

/// The plan's goldens, named after this file.
fn snapshot(name: &str, p: &Plan, d: &etcdplan::config::Desired) {
    crate::plan_snapshot!(name, p, d);
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
    assert_eq!(kinds(&p), QUOTA_STEPS);
    snapshot("quota-change", &p, &d);
}

#[test]
fn raft_timings_change_together_in_one_rolling_pass() {
    let old = desired_with(3, "");
    let d = desired_with(
        3,
        "heartbeat_interval = \"250ms\"\nelection_timeout = \"2500ms\"\n",
    );
    let l = live(
        &d,
        &vec![HostSpec::running_from(&old); 3],
        Some(cluster(&d, &[true; 3], 1)),
    );
    let p = plan_for(&d, &l);
    // One restart per member, followers first, each gated: both settings
    // ride on the same restart.
    assert_eq!(kinds(&p), QUOTA_STEPS);
    for c in &p.changes {
        let diff = c.files.iter().map(|f| f.after.as_str()).collect::<String>();
        assert!(diff.contains("\nheartbeat-interval: 250\n"), "{diff}");
        assert!(diff.contains("\nelection-timeout: 2500\n"), "{diff}");
    }
    snapshot("raft-timings-change", &p, &d);
}

#[test]
fn extra_keys_and_overrides_roll_the_members_they_change() {
    let old = desired_with(3, "");
    let mut text = common::text_with(
        3,
        "[etcd.extra]\nexperimental-compaction-batch-limit = 500\n",
    );
    // etcd-2 alone logs at debug level.
    text = text.replace(
        "name = \"etcd-2\"\naddress = \"10.0.0.12\"\n",
        "name = \"etcd-2\"\naddress = \"10.0.0.12\"\nlog_level = \"debug\"\n",
    );
    let d = common::desired_from(&text);
    let l = live(
        &d,
        &vec![HostSpec::running_from(&old); 3],
        Some(cluster(&d, &[true; 3], 1)),
    );
    let p = plan_for(&d, &l);
    assert_eq!(kinds(&p), QUOTA_STEPS);
    let diff = |name: &str| {
        p.changes
            .iter()
            .filter(|c| c.member.as_str() == name)
            .flat_map(|c| c.files.iter().map(|f| f.after.clone()))
            .collect::<String>()
    };
    assert!(diff("etcd-2").contains("\nlog-level: 'debug'\n"));
    assert!(!diff("etcd-1").contains("log-level"));
    assert!(diff("etcd-1").contains("\nexperimental-compaction-batch-limit: 500\n"));
    snapshot("extra-keys", &p, &d);
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
    let first_restart = k.iter().position(|s| s.contains("restart "));
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
        common::release(&old, &specs[0]),
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

/// Three members over ssh under systemd.
const SYSTEMD_TEXT: &str = "[cluster]\nname = \"main\"\n[hosts]\ntransport = \"ssh\"\nservice = \"systemd\"\n\
[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n[[member]]\nname = \"etcd-2\"\naddress = \"10.0.0.12\"\n\
[[member]]\nname = \"etcd-3\"\naddress = \"10.0.0.13\"\n";

fn systemd_desired() -> etcdplan::config::Desired {
    common::desired_from(SYSTEMD_TEXT)
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
        let rst = k
            .iter()
            .position(|s| s.split(" (").next() == Some(format!("restart etcd-{i}").as_str()));
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
    assert!(!k.iter().any(|s| s.contains("restart")), "{k:?}");
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
    let v1 = serde_json::from_str::<serde_json::Value>(&v1).unwrap_or_else(|e| panic!("{e}"));
    // Format 1 had another shape altogether: only its format is read.
    let v1 = serde_json::json!({"format_version": v1["format_version"], "steps": ["restart"]});
    assert!(
        matches!(Plan::from_saved(&v1.to_string()), Ok(Err(StaleError::Format(f))) if f == "1")
    );
    assert!(Plan::from_saved("{}").is_err());
    assert!(Plan::from_saved(&text).is_ok_and(|p| p.is_ok()));
}

/// The 3-member process etcdfile of `desired_with` with `run_as = user`.
fn run_as(user: &str) -> etcdplan::config::Desired {
    common::desired_from(
        &common::text_with(3, "").replace("[hosts]\n", &format!("[hosts]\nrun_as = {user:?}\n")),
    )
}

/// The problem the probe reports for a run_as user the host does not have
/// (`service::print_run_as_problem`).
fn no_such_user(user: &str) -> ProbeProblem {
    ProbeProblem {
        message: format!("user {user} (run_as) does not exist"),
        help: "create the user (Debian's etcd-server package creates `etcd`), or set run_as in [hosts] to a user that exists".into(),
    }
}

#[test]
fn a_missing_run_as_user_blocks_the_bootstrap_naming_the_host() {
    let d = run_as("etcd");
    let mut specs = vec![HostSpec::empty(); 3];
    specs[1].problems.push(no_such_user("etcd"));
    let p = plan_for(&d, &live(&d, &specs, None));
    let messages: Vec<&str> = p.blockers.iter().map(|b| b.message.as_str()).collect();
    assert_eq!(
        messages,
        ["etcd-2: user etcd (run_as) does not exist on 10.0.0.12"]
    );
    snapshot("run-as-user-missing", &p, &d);
}

/// A healthy cluster started from the root etcdfile, its etcd and data dirs
/// owned by `user`.
fn running_as(user: &str, d: &etcdplan::config::Desired) -> etcdplan::observe::Live {
    let specs: Vec<HostSpec> = (0..3)
        .map(|_| HostSpec {
            data_owner: Some(user.to_owned()),
            service_user: Some(user.to_owned()),
            ..HostSpec::running_from(&desired_with(3, ""))
        })
        .collect();
    live(d, &specs, Some(cluster(d, &[true; 3], 1)))
}

#[test]
fn root_to_etcd_re_owns_each_data_dir_and_rolls() {
    let d = run_as("etcd");
    let p = plan_for(&d, &running_as("root", &d));
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    // The config does not change: the restarts are for the user alone.
    assert_eq!(
        kinds(&p),
        [
            "restart etcd-1",
            "wait until etcd-1 healthy",
            "restart etcd-3",
            "wait until etcd-3 healthy",
            "restart etcd-2 (leader: etcd hands leadership over as it stops)",
            "wait until etcd-2 healthy",
        ]
    );
    for c in &p.changes {
        assert_eq!(c.action(), Action::Restart);
        assert!(c.files.is_empty());
        assert!(
            c.reason.contains("etcd runs as root") && c.reason.contains("chown -R"),
            "{}",
            c.reason
        );
    }
    snapshot("run-as-root-to-etcd", &p, &d);
    // Once done, nothing is left to do.
    assert!(plan_for(&d, &running_as("etcd", &d)).is_empty());
    // A member running as etcd whose data dir root owns (a restore by hand)
    // is re-owned too.
    let mut l = running_as("etcd", &d);
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[0].name) {
        f.data_owner = Some("root".into());
    }
    let p = plan_for(&d, &l);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(
        p.changes[0].reason,
        "its data dir /var/lib/etcd is owned by root, not by run_as = \"etcd\": given to etcd (chown -R), then etcd restarts"
    );
}

#[test]
fn a_restart_to_a_missing_user_is_blocked() {
    let d = run_as("etcd");
    let mut l = running_as("root", &d);
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[2].name) {
        f.problems.push(no_such_user("etcd"));
    }
    let p = plan_for(&d, &l);
    let messages: Vec<&str> = p.blockers.iter().map(|b| b.message.as_str()).collect();
    assert_eq!(
        messages,
        ["etcd-3: user etcd (run_as) does not exist on 10.0.0.13"]
    );
}

#[test]
fn etcd_back_to_root_restarts_and_leaves_the_data_alone() {
    let d = desired_with(3, "");
    let p = plan_for(&d, &running_as("etcd", &d));
    assert_eq!(p.changes.len(), 3);
    for c in &p.changes {
        assert_eq!(
            c.reason,
            "etcd runs as etcd, the etcdfile says run_as = \"root\": it restarts as root"
        );
    }
}

#[test]
fn a_stopped_member_starting_as_etcd_says_its_data_changes_hands() {
    let d = run_as("etcd");
    let mut l = running_as("root", &d);
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[2].name) {
        f.service = etcdplan::service::ServiceState::Stopped;
        f.service_user = None;
        f.listener = None;
    }
    let p = plan_for(&d, &l);
    let start = p
        .changes
        .iter()
        .find(|c| c.member == d.members[2].name)
        .unwrap_or_else(|| panic!("{:?}", p.changes));
    assert_eq!(start.action(), Action::Start);
    assert_eq!(
        start.reason,
        "member of the cluster, but its etcd is not running; its data dir /var/lib/etcd (owned by root) is given to etcd first (chown -R)"
    );
}

#[test]
fn systemd_root_to_etcd_shows_user_in_the_unit_diff() {
    let old = systemd_desired();
    let d = common::desired_from(&SYSTEMD_TEXT.replace(
        "service = \"systemd\"\n",
        "service = \"systemd\"\nrun_as = \"etcd\"\n",
    ));
    let mut l = running_as("root", &d);
    for (i, m) in d.members.iter().enumerate() {
        if let Some(HostState::Reached(f)) = l.hosts.get_mut(&m.name) {
            let unit = etcdplan::service::systemd::unit(&old, &old.members[i]);
            f.files
                .push((etcdplan::service::systemd::unit_path(), Some(unit)));
        }
    }
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    for c in &p.changes {
        let paths: Vec<String> = c
            .files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        assert_eq!(paths, ["/etc/systemd/system/etcd.service"]);
        assert!(c.files[0].after.contains("User=etcd\n"));
        assert!(c.reason.contains("chown -R"), "{}", c.reason);
    }
    snapshot("run-as-systemd", &p, &d);
}
