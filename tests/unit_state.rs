//! The systemd unit's state against described live states: what `status`
//! shows of it (human and JSON). Pure: no etcd, no systemd.

mod common;

use common::{HostSpec, cluster, live};
use etcdplan::config::Desired;
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
