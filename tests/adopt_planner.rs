//! Adopting members etcdplan did not start, planned against described live
//! states: a hand-written unit on every host, bare processes, a data dir the
//! etcdfile gets wrong, and a cluster without quorum.

mod common;

use std::path::PathBuf;

use common::plans::{kinds, plan_for};
use common::{HostSpec, cluster, live};
use etcdplan::diff::Action;
use etcdplan::observe::{DataDir, Listener, ListenerUnit};

const SYSTEMD_TEXT: &str = "[cluster]\nname = \"main\"\n[hosts]\ntransport = \"ssh\"\nservice = \"systemd\"\n\
[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n[[member]]\nname = \"etcd-2\"\naddress = \"10.0.0.12\"\n\
[[member]]\nname = \"etcd-3\"\naddress = \"10.0.0.13\"\n";

/// A running member whose etcd a hand-written `etcd.service` runs with flags.
fn by_hand(i: usize) -> HostSpec {
    HostSpec {
        running: true,
        data: DataDir::Member,
        foreign: Some(Listener {
            pid: 500 + i as u32,
            cmdline: vec![
                "/usr/bin/etcd".into(),
                format!("--name=etcd-{}", i + 1),
                "--data-dir=/var/lib/etcd".into(),
            ],
            unit: Some(ListenerUnit {
                name: "etcd.service".into(),
                fragment: Some(PathBuf::from("/etc/systemd/system/etcd.service")),
                dropins: vec![PathBuf::from(
                    "/etc/systemd/system/etcd.service.d/override.conf",
                )],
                env_files: vec![PathBuf::from("/etc/default/etcd")],
            }),
        }),
        ..HostSpec::empty()
    }
}

#[test]
fn a_cluster_run_by_a_hand_written_unit_is_adopted_member_by_member() {
    let d = common::desired_from(SYSTEMD_TEXT);
    let specs: Vec<HostSpec> = (0..3).map(by_hand).collect();
    let l = live(&d, &specs, Some(cluster(&d, &[true; 3], 1)));
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert!(p.changes.iter().all(|c| c.action() == Action::Adopt));
    // Followers first, the leader (etcd-2) last after handing over; a gate after each.
    assert_eq!(
        kinds(&p),
        [
            "take etcd-1 over from etcd.service (2 files, one job on its host)",
            "wait until etcd-1 healthy",
            "take etcd-3 over from etcd.service (2 files, one job on its host)",
            "wait until etcd-3 healthy",
            "move leader etcd-2 → etcd-1",
            "take etcd-2 over from etcd.service (2 files, one job on its host)",
            "wait until etcd-2 healthy",
        ]
    );
    // No member is added, removed or moved; the config says "existing".
    for c in &p.changes {
        let config = &c.files[0].after;
        assert!(
            config.contains("initial-cluster-state: 'existing'"),
            "{config}"
        );
    }
    let human =
        etcdplan::render::plan_human(&p, &d, "etcdfile.toml", etcdplan::render::Style::PLAIN);
    assert!(
        human.contains("Plan: 0 to add, 3 to change, 0 to remove."),
        "{human}"
    );
    assert!(!human.contains("not running"), "{human}");
    crate::plan_snapshot!("adopt-hand-written-unit", &p, &d);
}

#[test]
fn bare_processes_are_adopted_into_the_process_service() {
    let d = common::desired_with(3, "");
    let specs: Vec<HostSpec> = (0..3)
        .map(|i| HostSpec {
            foreign: by_hand(i).foreign.map(|l| Listener { unit: None, ..l }),
            ..by_hand(i)
        })
        .collect();
    let l = live(&d, &specs, Some(cluster(&d, &[true; 3], 0)));
    let p = plan_for(&d, &l);
    assert!(p.blockers.is_empty(), "{:?}", p.blockers);
    assert_eq!(
        kinds(&p)[0],
        "take etcd-2 over from the etcd process 501 (1 file, one job on its host)"
    );
    assert_eq!(p.changes.len(), 3);
}

#[test]
fn a_data_dir_the_etcdfile_gets_wrong_blocks_and_is_never_offered_for_moving_aside() {
    let d = common::desired_from(SYSTEMD_TEXT);
    let mut specs: Vec<HostSpec> = (0..3).map(by_hand).collect();
    specs[2].data = DataDir::Absent;
    let l = live(&d, &specs, Some(cluster(&d, &[true; 3], 0)));
    let p = plan_for(&d, &l);
    assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
    let b = &p.blockers[0];
    assert_eq!(
        b.message,
        "etcd-3: etcd.service runs it on 10.0.0.13, but the etcdfile's data dir /var/lib/etcd holds no member data there"
    );
    assert!(!b.help.contains("aside"), "{}", b.help);
}

#[test]
fn a_cluster_without_quorum_is_not_adopted() {
    let d = common::desired_from(SYSTEMD_TEXT);
    let specs: Vec<HostSpec> = (0..3).map(by_hand).collect();
    let l = live(&d, &specs, None);
    let p = plan_for(&d, &l);
    assert_eq!(p.blockers.len(), 3, "{:?}", p.blockers);
    assert!(
        p.blockers[0]
            .message
            .contains("etcd.service runs it on 10.0.0.11, and the cluster has no quorum")
    );
    assert!(p.changes.is_empty(), "{:?}", p.changes);
}

#[test]
fn a_data_dir_holding_another_members_id_blocks_naming_both() {
    let d = common::desired_from(SYSTEMD_TEXT);
    let mut specs: Vec<HostSpec> = (0..3).map(by_hand).collect();
    specs[1].data_owner_id = Some((
        etcdplan::model::MemberId(0xabc),
        etcdplan::model::ClusterId(1),
    ));
    let l = live(&d, &specs, Some(cluster(&d, &[true; 3], 0)));
    let p = plan_for(&d, &l);
    assert_eq!(p.blockers.len(), 1, "{:?}", p.blockers);
    assert_eq!(
        p.blockers[0].message,
        "etcd-2: its data dir /var/lib/etcd on 10.0.0.12 holds member abc, but the cluster lists etcd-2 as member 1001"
    );
    // Its own ID there: no blocker.
    specs[1].data_owner_id = Some((
        etcdplan::model::MemberId(0x1001),
        etcdplan::model::ClusterId(1),
    ));
    let l = live(&d, &specs, Some(cluster(&d, &[true; 3], 0)));
    assert!(plan_for(&d, &l).blockers.is_empty());
}
