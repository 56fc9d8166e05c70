//! The systemd unit's state against described live states: what `status`
//! shows of it (human and JSON), and what the plan says of a unit that would
//! not bring its member back after a reboot. Pure: no etcd, no systemd.

mod common;

use common::plans::{notes_but_end_of_life, plan_for};
use common::{HostSpec, cluster, live};
use etcdplan::config::Desired;
use etcdplan::diff::Action;
use etcdplan::observe::{ActiveState, HostState, Live, UnitFileState, UnitState};
use etcdplan::render::{self, Style};

/// The 3-member etcdfile of `text_with`, under systemd.
fn systemd_desired() -> Desired {
    common::desired_from(
        &common::text_with(3, "").replace("service = \"process\"", "service = \"systemd\""),
    )
}

fn unit(active: &str, sub: &str, enabled: &str, needs_reload: bool) -> UnitState {
    UnitState {
        active: ActiveState::from_systemd(active),
        sub: sub.into(),
        enabled: UnitFileState::from_systemd(enabled),
        needs_reload,
    }
}

/// A healthy running cluster whose members' units are as given.
fn running_with_units(d: &Desired, units: [Option<UnitState>; 3]) -> Live {
    let specs: Vec<HostSpec> = units
        .into_iter()
        .map(|unit| HostSpec {
            unit,
            ..HostSpec::running_from(d)
        })
        .collect();
    live(d, &specs, Some(cluster(d, &[true; 3], 0)))
}

fn human(l: &Live, d: &Desired) -> String {
    render::status_human(l, d, Style::PLAIN)
}

fn json(l: &Live, d: &Desired) -> String {
    serde_json::to_string_pretty(&render::status_json(l, d)).unwrap_or_default()
}

#[test]
fn status_under_process_shows_no_unit() {
    let d = common::desired_with(3, "");
    let l = live(
        &d,
        &vec![HostSpec::running_from(&d); 3],
        Some(cluster(&d, &[true; 3], 0)),
    );
    let out = human(&l, &d);
    assert!(!out.contains("Units:"), "{out}");
    let v = render::status_json(&l, &d);
    assert_eq!(v["hosts"]["etcd-1"]["unit"], serde_json::Value::Null);
    insta::assert_snapshot!("status-process-human", out);
    insta::assert_snapshot!("status-process-json", json(&l, &d));
}

#[test]
fn status_under_systemd_shows_each_members_unit() {
    let d = systemd_desired();
    let mut l = running_with_units(
        &d,
        [
            Some(unit("active", "running", "enabled", false)),
            Some(unit("active", "running", "disabled", true)),
            Some(unit("failed", "failed", "enabled", false)),
        ],
    );
    // etcd-3's unit failed: its etcd is down and does not answer.
    if let Some(c) = l.cluster.as_mut() {
        c.members[2].status = Err("connection refused".into());
    }
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[2].name) {
        f.service = etcdplan::service::ServiceState::Stopped;
        f.listener = None;
    }
    let out = human(&l, &d);
    assert!(
        out.contains("etcd-1  etcd.service active (running), enabled\n"),
        "{out}"
    );
    assert!(
        out.contains("etcd-2  etcd.service active (running), disabled: the member would not start at boot; its file changed since systemd loaded it"),
        "{out}"
    );
    assert!(
        out.contains("etcd-3  etcd.service failed (failed), enabled\n"),
        "{out}"
    );
    let v = render::status_json(&l, &d);
    assert_eq!(
        v["hosts"]["etcd-2"]["unit"],
        serde_json::json!({
            "name": "etcd.service",
            "active": "active",
            "sub": "running",
            "enabled": "disabled",
            "needs_daemon_reload": true,
        })
    );
    insta::assert_snapshot!("status-systemd-human", out);
    insta::assert_snapshot!("status-systemd-json", json(&l, &d));
}

#[test]
fn status_of_a_down_cluster_still_shows_the_units() {
    let d = systemd_desired();
    let stopped = |unit| HostSpec {
        running: false,
        unit,
        ..HostSpec::running_from(&d)
    };
    let l = live(
        &d,
        &[
            stopped(Some(unit("inactive", "dead", "enabled", false))),
            stopped(Some(unit("inactive", "dead", "masked", false))),
            // systemd did not answer (no unit fact).
            stopped(None),
        ],
        None,
    );
    let out = human(&l, &d);
    assert!(
        out.contains("etcd-2  etcd.service inactive (dead), masked: systemd refuses to start it"),
        "{out}"
    );
    assert!(
        out.contains("etcd-3  etcd.service: state unknown (systemd did not answer the probe)"),
        "{out}"
    );
    insta::assert_snapshot!("status-systemd-down-human", out);
}

#[test]
fn a_disabled_or_reloaded_unit_of_a_running_member_is_a_note_not_a_change() {
    let d = systemd_desired();
    let l = running_with_units(
        &d,
        [
            Some(unit("active", "running", "enabled", false)),
            Some(unit("active", "running", "disabled", false)),
            Some(unit("active", "running", "enabled", true)),
        ],
    );
    let p = plan_for(&d, &l);
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert_eq!(
        notes_but_end_of_life(&p),
        [
            "etcd-2: etcd.service is disabled on 10.0.0.12: the member would not start at boot; run `systemctl enable etcd.service` there (etcdplan enables it at the member's next start)",
            "etcd-3: etcd.service changed on 10.0.0.13 since systemd loaded it: etcd runs under the unit as it was until its next restart, which reloads it",
        ]
    );
    // Every unit enabled and loaded: nothing to say.
    let fine = running_with_units(
        &d,
        std::array::from_fn(|_| Some(unit("active", "running", "enabled", false))),
    );
    assert_eq!(
        notes_but_end_of_life(&plan_for(&d, &fine)),
        Vec::<String>::new()
    );
}

#[test]
fn a_member_the_plan_restarts_gets_its_unit_enabled_without_a_note() {
    // A settings change restarts every member; each start enables the unit.
    let d = common::desired_from(
        &common::text_with(3, "quota_backend_bytes = \"4GiB\"\n")
            .replace("service = \"process\"", "service = \"systemd\""),
    );
    let before = systemd_desired();
    let specs: Vec<HostSpec> = (0..3)
        .map(|_| HostSpec {
            unit: Some(unit("active", "running", "disabled", true)),
            ..HostSpec::running_from(&before)
        })
        .collect();
    let l = live(&d, &specs, Some(cluster(&d, &[true; 3], 0)));
    let p = plan_for(&d, &l);
    assert_eq!(p.changes.len(), 3);
    assert!(p.changes.iter().all(|c| c.action() == Action::Restart));
    assert!(
        !p.notes.iter().any(|n| n.contains("etcd.service")),
        "{:?}",
        p.notes
    );
}

#[test]
fn a_masked_unit_blocks_a_start_and_is_a_note_while_it_runs() {
    let d = systemd_desired();
    let mut l = running_with_units(
        &d,
        [
            Some(unit("active", "running", "enabled", false)),
            Some(unit("inactive", "dead", "masked", false)),
            Some(unit("active", "running", "masked-runtime", false)),
        ],
    );
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[1].name) {
        f.service = etcdplan::service::ServiceState::Stopped;
        f.listener = None;
    }
    if let Some(c) = l.cluster.as_mut() {
        c.members[1].status = Err("connection refused".into());
    }
    let p = plan_for(&d, &l);
    let messages: Vec<(&str, &str)> = p
        .blockers
        .iter()
        .map(|b| (b.message.as_str(), b.help.as_str()))
        .collect();
    assert_eq!(
        messages,
        [(
            "etcd-2: etcd.service is masked on 10.0.0.12: systemd refuses to start it",
            "if etcd should run there, run `systemctl unmask etcd.service` on 10.0.0.12, then plan again; nothing was changed"
        )]
    );
    assert!(!p.applicable);
    assert_eq!(
        p.notes
            .iter()
            .filter(|n| n.contains("etcd.service"))
            .collect::<Vec<_>>(),
        [
            "etcd-3: etcd.service is masked-runtime on 10.0.0.13: systemd refuses to start it, so the member would not start again once stopped; run `systemctl unmask etcd.service` there if etcd should run"
        ]
    );
}
