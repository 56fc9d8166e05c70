//! Downgrades through etcd's downgrade API (3.7 → 3.6, 3.6 → 3.5) against
//! described live states: the API steps around the binary restarts, the
//! refusal without `--allow-downgrade`, and the plans made from a downgrade
//! found half way (continued, or cancelled when the etcdfile asks for the
//! newer version again). Pure: no etcd, no hosts.

mod common;

use common::versions::{v, wanting};

use etcdplan::config::Desired;
use etcdplan::diff;
use etcdplan::live::DowngradeInfo;
use etcdplan::model::MinorVersion;
use etcdplan::observe::Live;
use etcdplan::plan::{self, Plan, Step};
use etcdplan::render::{self, Style};

fn minor(s: &str) -> MinorVersion {
    MinorVersion::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// A healthy cluster led by member 0 whose members run `running`, report
/// `storage` as their data's version (3.6+ only) and `downgrade` as the
/// downgrade state.
fn running(d: &Desired, running: &[&str], storage: &str, downgrade: Option<&str>) -> Live {
    let mut l = common::versions::running(d, running, 0);
    for m in l.cluster.iter_mut().flat_map(|c| c.members.iter_mut()) {
        if let Ok(s) = &mut m.status
            && let Some(ver) = s.reported.version
        {
            let new = (ver.major, ver.minor) >= (3, 6);
            s.reported.storage_version = new.then(|| minor(storage));
            s.reported.downgrade = new.then(|| DowngradeInfo {
                enabled: downgrade.is_some(),
                target: downgrade.map(minor),
            });
        }
    }
    l
}

fn plan_with(d: &Desired, l: &Live, allow_downgrade: bool) -> Plan {
    plan::build(d, l, diff::diff_with(d, l, allow_downgrade))
}

fn steps(p: &Plan) -> Vec<String> {
    p.steps.iter().map(|s| s.step.describe()).collect()
}

/// The steps from the first downgrade or version step on, without the
/// uploads and the snapshot before them.
fn kinds(p: &Plan) -> Vec<&Step> {
    p.steps
        .iter()
        .map(|s| &s.step)
        .filter(|s| !matches!(s, Step::InstallBinary { .. } | Step::Snapshot { .. }))
        .collect()
}

fn position(p: &Plan, f: impl Fn(&Step) -> bool) -> usize {
    p.steps
        .iter()
        .position(|s| f(&s.step))
        .unwrap_or_else(|| panic!("no such step in {:#?}", steps(p)))
}

#[test]
fn a_3_7_to_3_6_downgrade_is_its_api_steps_around_the_binary_restarts() {
    let d = wanting("3.6", &["3.6.14"]);
    let l = running(&d, &["3.7.1"; 3], "3.7", None);
    let p = plan_with(&d, &l, true);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    assert!(p.cannot_apply().is_none());
    let t = minor("3.6");
    // Uploads, then the snapshot, before anything the cluster sees.
    let snapshot = position(&p, |s| matches!(s, Step::Snapshot { .. }));
    let validate = position(&p, |s| *s == Step::DowngradeValidate { target: t });
    assert!(snapshot < validate, "{:#?}", steps(&p));
    let k = kinds(&p);
    assert_eq!(k[0], &Step::DowngradeValidate { target: t });
    assert_eq!(k[1], &Step::DowngradeEnable { target: t });
    assert_eq!(k[2], &Step::WaitStorageVersion { target: t });
    assert_eq!(
        k[k.len() - 2..],
        [
            &Step::ClusterVersion { version: t },
            &Step::DowngradeFinished { target: t }
        ]
    );
    // Between them: each member's binary pointed at 3.6.14 and restarted,
    // followers first, the leader (etcd-1) last (its stop hands over); each checked.
    let middle: Vec<String> = k[3..k.len() - 2].iter().map(|s| s.describe()).collect();
    let restarts: Vec<&String> = middle.iter().filter(|s| s.contains("restart")).collect();
    assert_eq!(
        restarts,
        [
            "restart etcd-2",
            "restart etcd-3",
            "restart etcd-1 (leader: etcd hands leadership over as it stops)"
        ]
    );
    for name in ["etcd-1", "etcd-2", "etcd-3"] {
        let link = format!("point {name}'s binary at etcd 3.6.14");
        let check = format!("check {name} runs etcd 3.6.14");
        assert!(middle.contains(&link), "{middle:#?}");
        assert!(middle.contains(&check), "{middle:#?}");
    }
    // Only API, version and restart steps in the middle: no membership change.
    assert!(
        k[3..k.len() - 2].iter().all(|s| matches!(
            s,
            Step::UseBinary { .. }
                | Step::WriteFiles { .. }
                | Step::Restart { .. }
                | Step::WaitHealthy { .. }
                | Step::CheckVersion { .. }
                | Step::MoveLeader { .. }
        )),
        "{middle:#?}"
    );
    // The restarts carry the via_api flag, which reads back from a saved plan.
    let text = serde_json::to_string(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("\"via_api\":true"), "{text}");
    let back: Plan = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.steps, p.steps);
    insta::assert_snapshot!(
        "downgrade-3.7-3.6-human",
        render::plan_human(&p, &d, "etcdfile.toml", Style::PLAIN)
    );
}

#[test]
fn a_downgrade_without_allow_downgrade_is_refused() {
    let d = wanting("3.6", &["3.6.14"]);
    let l = running(&d, &["3.7.1"; 3], "3.7", None);
    let p = plan_with(&d, &l, false);
    assert!(
        p.blockers
            .iter()
            .any(|b| b.message.contains("a downgrade") && b.help.contains("--allow-downgrade")),
        "{:#?}",
        p.blockers
    );
    assert!(
        p.steps.iter().all(|s| !matches!(
            s.step,
            Step::DowngradeValidate { .. } | Step::DowngradeEnable { .. } | Step::Restart { .. }
        )) || p.cannot_apply().is_some()
    );
    assert!(p.cannot_apply().is_some());
}

#[test]
fn a_3_6_to_3_5_downgrade_takes_the_same_api_steps() {
    let d = wanting("3.5", &["3.5.33"]);
    let l = running(&d, &["3.6.14"; 3], "3.6", None);
    let p = plan_with(&d, &l, true);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let t = minor("3.5");
    let k = kinds(&p);
    assert_eq!(
        k[..3],
        [
            &Step::DowngradeValidate { target: t },
            &Step::DowngradeEnable { target: t },
            &Step::WaitStorageVersion { target: t }
        ]
    );
    assert_eq!(
        k[k.len() - 2..],
        [
            &Step::ClusterVersion { version: t },
            &Step::DowngradeFinished { target: t }
        ]
    );
    let checks = k
        .iter()
        .filter(|s| matches!(s, Step::CheckVersion { version, .. } if *version == v("3.5.33")))
        .count();
    assert_eq!(checks, 3, "{:#?}", steps(&p));
}

#[test]
fn a_downgrade_found_half_way_plans_the_rest_without_enabling_it_again() {
    // Enabled by an earlier apply, data migrated, etcd-3 already on 3.6.14.
    let d = wanting("3.6", &["3.6.14"]);
    let l = running(&d, &["3.7.1", "3.7.1", "3.6.14"], "3.6", Some("3.6"));
    let p = plan_with(&d, &l, true);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let t = minor("3.6");
    let k = kinds(&p);
    assert!(
        k.iter().all(|s| !matches!(
            s,
            Step::DowngradeValidate { .. } | Step::DowngradeEnable { .. }
        )),
        "{:#?}",
        steps(&p)
    );
    assert_eq!(k[0], &Step::WaitStorageVersion { target: t });
    let restarts: Vec<String> = k
        .iter()
        .filter(|s| matches!(s, Step::Restart { .. }))
        .map(|s| s.describe())
        .collect();
    assert_eq!(
        restarts,
        [
            "restart etcd-2",
            "restart etcd-1 (leader: etcd hands leadership over as it stops)"
        ]
    );
    assert_eq!(
        k[k.len() - 2..],
        [
            &Step::ClusterVersion { version: t },
            &Step::DowngradeFinished { target: t }
        ]
    );
    assert!(
        p.notes.iter().any(|n| n.contains("in progress")),
        "{:#?}",
        p.notes
    );
}

#[test]
fn a_downgrade_cancelled_half_way_swaps_the_rest_back_without_the_api() {
    // Cancelled after a failure: no longer enabled, the cluster still at
    // 3.6 while etcd-3 runs it (validate would be refused): the version
    // rules swap the other binaries back, with no API step.
    let d = wanting("3.6", &["3.6.14"]);
    let l = running(&d, &["3.7.1", "3.7.1", "3.6.14"], "3.6", None);
    let p = plan_with(&d, &l, true);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let k = kinds(&p);
    assert!(
        k.iter().all(|s| !matches!(
            s,
            Step::DowngradeValidate { .. }
                | Step::DowngradeEnable { .. }
                | Step::WaitStorageVersion { .. }
                | Step::DowngradeCancel { .. }
                | Step::DowngradeFinished { .. }
        )),
        "{:#?}",
        steps(&p)
    );
    let restarts: Vec<String> = k
        .iter()
        .filter(|s| matches!(s, Step::Restart { .. }))
        .map(|s| s.describe())
        .collect();
    assert_eq!(
        restarts,
        [
            "restart etcd-2",
            "restart etcd-1 (leader: etcd hands leadership over as it stops)"
        ]
    );
    assert_eq!(
        k.last(),
        Some(&&Step::ClusterVersion {
            version: minor("3.6")
        })
    );
}

#[test]
fn a_downgrade_found_half_way_is_cancelled_when_the_etcdfile_asks_for_the_newer_version() {
    let d = wanting("3.7", &["3.7.1"]);
    let l = running(&d, &["3.7.1", "3.7.1", "3.6.14"], "3.6", Some("3.6"));
    let p = plan_with(&d, &l, true);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let k = kinds(&p);
    let cancel = k
        .iter()
        .position(|s| {
            **s == Step::DowngradeCancel {
                target: minor("3.6"),
            }
        })
        .unwrap_or_else(|| panic!("no cancel in {:#?}", steps(&p)));
    let restart = k
        .iter()
        .position(|s| matches!(s, Step::Restart { .. }))
        .unwrap_or_else(|| panic!("no restart in {:#?}", steps(&p)));
    assert!(cancel < restart, "{:#?}", steps(&p));
    // Only etcd-3 rolls back up, then the cluster version rises again.
    let restarts = k
        .iter()
        .filter(|s| matches!(s, Step::Restart { .. }))
        .count();
    assert_eq!(restarts, 1, "{:#?}", steps(&p));
    assert_eq!(
        k.last(),
        Some(&&Step::ClusterVersion {
            version: minor("3.7")
        })
    );
    assert!(k.iter().all(|s| !matches!(
        s,
        Step::DowngradeValidate { .. } | Step::DowngradeEnable { .. }
    )));
}

#[test]
fn a_downgrade_left_enabled_before_any_member_moved_is_named_with_its_way_out() {
    // Enabled (cluster version lowered) but every member still runs 3.7,
    // which the etcdfile asks for: nothing to roll, the cancel is said.
    let d = wanting("3.7", &["3.7.1"]);
    let l = running(&d, &["3.7.1"; 3], "3.6", Some("3.6"));
    let p = plan_with(&d, &l, false);
    assert!(
        p.blockers.iter().any(|b| b
            .message
            .starts_with("a downgrade to 3.6 is enabled on the cluster")
            && b.help.contains("downgrade cancel")),
        "{:#?}",
        p.blockers
    );
    assert!(p.cannot_apply().is_some());
}
