//! A 3.7 → 3.6 downgrade through etcd's downgrade API, walked by the executor
//! against the in-memory fakes (`etcdplan::io::fake`), which model the
//! cluster version, each member's storage version and the downgrade state:
//! a 3.6 binary refuses data still at storage version 3.7, and the
//! downgrade completes once every member runs 3.6. No etcd, no hosts.

mod common;

use common::fakes::apply;

use std::sync::atomic::AtomicBool;

use common::{desired_from, desired_with, text_with};
use etcdplan::config::Desired;
use etcdplan::execute::{self};
use etcdplan::io::HostMap;
use etcdplan::io::fake::FakeCluster;
use etcdplan::model::{EtcdVersion, MinorVersion};
use etcdplan::plan::{self, Plan, Step};
use etcdplan::{diff, observe};

fn minor(s: &str) -> MinorVersion {
    MinorVersion::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// A 3-member cluster running 3.7.1 (etcd-2 leads) whose hosts have 3.6.14
/// installed as `binary` (the running etcds are not disturbed), and the
/// etcdfile asking for 3.6.
fn downgrade_to_3_6() -> (Desired, FakeCluster, HostMap) {
    let old = desired_with(3, "");
    let text = text_with(3, "").replacen(
        "name = \"main\"\n",
        "name = \"main\"\nversion = \"3.6\"\n",
        1,
    );
    let d = desired_from(&text);
    let fake = FakeCluster::running(&old, "3.7.1", 1);
    for m in &d.members {
        fake.install_binary(m.name.as_str(), "3.6.14");
    }
    let hosts = fake.hosts(&d);
    (d, fake, hosts)
}

/// The plan the real planner makes, with `--allow-downgrade`, from what
/// `observe` reads over the fakes; snapshots go to `dir`.
async fn plan_now(d: &Desired, hosts: &HostMap, fake: &FakeCluster, dir: &std::path::Path) -> Plan {
    let live = observe::observe(d, hosts, fake, &Default::default()).await;
    let opts = plan::Options {
        snapshot_dir: dir.to_owned(),
        ..plan::Options::default()
    };
    plan::build_with(d, &live, diff::diff_with(d, &live, true), &opts)
}

/// The index of the first logged call that starts with `prefix`.
fn first(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call {prefix:?} in {calls:#?}"))
}

#[tokio::test]
async fn a_downgrade_applies_and_leaves_the_cluster_at_the_target_with_the_downgrade_done() {
    let (d, fake, hosts) = downgrade_to_3_6();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = plan_now(&d, &hosts, &fake, dir.path()).await;
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let t = minor("3.6");
    assert!(
        p.steps
            .iter()
            .any(|s| s.step == Step::DowngradeEnable { target: t })
    );
    assert_eq!(fake.cluster_version(), Some(minor("3.7")));
    let r = apply(&d, &hosts, &fake, &p).await;
    assert!(r.is_ok(), "{r:?}");
    // The fake's cluster is at the target, the downgrade done, every member
    // on the older binary with its data migrated.
    assert_eq!(fake.cluster_version(), Some(t));
    assert_eq!(fake.downgrade_enabled(), None);
    let v3614 = EtcdVersion::parse("3.6.14");
    assert!(fake.members().iter().all(|m| m.version == v3614));
    assert!(
        fake.storage_versions().iter().all(|(_, s)| *s == Some(t)),
        "{:?}",
        fake.storage_versions()
    );
    // etcd's order: validate, enable, then the first member stops.
    let calls = fake.calls();
    let validate = first(&calls, "etcd downgrade validate 3.6");
    let enable = first(&calls, "etcd downgrade enable 3.6");
    let stop = first(&calls, "host 10.0.0.11: stop etcd-1");
    assert!(validate < enable && enable < stop, "{calls:#?}");
    assert!(calls.iter().all(|c| !c.contains("downgrade cancel")));
    // Nothing left to do.
    let again = plan_now(&d, &hosts, &fake, dir.path()).await;
    assert!(again.is_empty(), "{:#?}", again.steps);
}

#[tokio::test]
async fn a_downgrade_that_fails_half_way_is_cancelled_and_the_report_says_so() {
    let (d, fake, hosts) = downgrade_to_3_6();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = plan_now(&d, &hosts, &fake, dir.path()).await;
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    // The second member's start on 3.6 fails: one member runs 3.6.14, one is
    // stopped, the leader still runs 3.7.1.
    fake.fail_script("start", 2);
    let Err(e) = apply(&d, &hosts, &fake, &p).await else {
        panic!("a failed start went unnoticed");
    };
    assert_eq!(e.description, "restart etcd-3");
    assert!(
        e.done
            .iter()
            .any(|s| s.starts_with("enable the downgrade to 3.6")),
        "{:#?}",
        e.done
    );
    assert!(
        e.remaining
            .iter()
            .any(|s| s.starts_with("check the downgrade to 3.6 has completed")),
        "{:#?}",
        e.remaining
    );
    // The executor sent `downgrade cancel` after the failure, and says so.
    let calls = fake.calls();
    let failed = calls
        .iter()
        .position(|c| c.ends_with("start etcd-3 failed (test hook)"))
        .unwrap_or_else(|| panic!("{calls:#?}"));
    let cancel = first(&calls, "etcd downgrade cancel");
    assert!(failed < cancel, "{calls:#?}");
    assert_eq!(fake.downgrade_enabled(), None);
    assert_eq!(e.afterwards.len(), 1, "{:#?}", e.afterwards);
    assert!(
        e.afterwards[0].starts_with(
            "sent `downgrade cancel`: the downgrade to 3.6 stopped half way and is cancelled"
        ),
        "{:#?}",
        e.afterwards
    );
    let text = etcdplan::view::failure_text(&e);
    assert!(
        text.contains("After the failure:\n  ↺ sent `downgrade cancel`"),
        "{text}"
    );
    // Mixed: the cluster stays at 3.6 while etcd-1 runs 3.6.14.
    assert_eq!(fake.cluster_version(), Some(minor("3.6")));
}

#[tokio::test]
async fn a_failure_before_the_downgrade_is_enabled_sends_no_cancel() {
    let (d, fake, hosts) = downgrade_to_3_6();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = plan_now(&d, &hosts, &fake, dir.path()).await;
    // etcd refuses the downgrade (as it does a target not one minor below).
    fake.fail_downgrade(
        etcdplan::io::EtcdErrorKind::InvalidDowngradeTarget,
        "etcdserver: invalid downgrade target version",
    );
    let Err(e) = apply(&d, &hosts, &fake, &p).await else {
        panic!("a refused validate went unnoticed");
    };
    assert!(e.description.contains("downgrade validate"), "{e}");
    assert!(
        matches!(&e.error, execute::StepError::Etcd(err) if err.kind() == etcdplan::io::EtcdErrorKind::InvalidDowngradeTarget),
        "{e}"
    );
    assert!(e.afterwards.is_empty(), "{:#?}", e.afterwards);
    let calls = fake.calls();
    assert!(calls.iter().all(|c| !c.contains("downgrade cancel")));
    assert!(
        calls.iter().all(|c| !c.contains(": stop etcd-")),
        "{calls:#?}"
    );
    assert_eq!(fake.cluster_version(), Some(minor("3.7")));
}

#[tokio::test]
async fn without_the_api_steps_the_older_binary_refuses_the_newer_data() {
    // What the API steps are for: the same plan with validate, enable and the
    // storage wait taken out stops at the first restart, whose 3.6 etcd will
    // not open data still at storage version 3.7.
    let (d, fake, hosts) = downgrade_to_3_6();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut p = plan_now(&d, &hosts, &fake, dir.path()).await;
    p.steps.retain(|s| {
        !matches!(
            s.step,
            Step::DowngradeValidate { .. }
                | Step::DowngradeEnable { .. }
                | Step::WaitStorageVersion { .. }
        )
    });
    let Err(e) = apply(&d, &hosts, &fake, &p).await else {
        panic!("a 3.6 binary started on 3.7 data");
    };
    assert!(
        e.description.starts_with("wait until etcd-1 healthy")
            || e.description.contains("restart etcd-1"),
        "{e}"
    );
    let log = fake.disk("10.0.0.11").map(|h| h.log).unwrap_or_default();
    assert!(
        log.iter()
            .any(|l| l.contains("will not start on a data dir of storage version 3.7")),
        "{log:#?}"
    );
    // No downgrade was enabled, so none is cancelled.
    assert!(e.afterwards.is_empty(), "{:#?}", e.afterwards);
    assert_eq!(fake.downgrade_enabled(), None);
}

#[tokio::test]
async fn after_a_cancelled_half_way_downgrade_the_next_applies_finish_it() {
    let (d, fake, hosts) = downgrade_to_3_6();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = plan_now(&d, &hosts, &fake, dir.path()).await;
    // The second member cannot be stopped: etcd-1 runs 3.6.14, the others
    // still run 3.7.1, all healthy; the downgrade is cancelled.
    fake.fail_script("stop etcd-3", 1);
    let Err(e) = apply(&d, &hosts, &fake, &p).await else {
        panic!("a failed stop went unnoticed");
    };
    assert!(
        e.afterwards[0].contains("is cancelled"),
        "{:#?}",
        e.afterwards
    );
    assert_eq!(fake.downgrade_enabled(), None);
    assert_eq!(fake.cluster_version(), Some(minor("3.6")));
    // The next plan swaps the rest back without enabling the downgrade
    // again (the cluster runs at 3.6 while etcd-1 does: validate would be
    // refused).
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let p = plan_now(&d, &hosts, &fake, dir.path()).await;
        if p.is_empty() {
            break;
        }
        assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
        let r = apply(&d, &hosts, &fake, &p).await;
        assert!(r.is_ok(), "{r:?}");
        rounds.push(p);
    }
    assert!(plan_now(&d, &hosts, &fake, dir.path()).await.is_empty());
    assert_eq!(rounds.len(), 1, "one plan finishes it");
    assert!(
        rounds.iter().flat_map(|p| &p.steps).all(|s| !matches!(
            s.step,
            Step::DowngradeValidate { .. } | Step::DowngradeEnable { .. }
        )),
        "{:#?}",
        rounds
            .iter()
            .map(|p| p
                .steps
                .iter()
                .map(|s| s.description.clone())
                .collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    assert_eq!(fake.cluster_version(), Some(minor("3.6")));
    let v3614 = EtcdVersion::parse("3.6.14");
    assert!(fake.members().iter().all(|m| m.version == v3614));
}

/// The downgrade to 3.6 stopped half way and left enabled: etcd-1 runs
/// 3.6.14, the others 3.7.1, and the cancel after the failure was refused
/// (the report says so); downgrade calls are answered again afterwards.
async fn left_enabled_half_way(
    d: &Desired,
    hosts: &HostMap,
    fake: &FakeCluster,
    dir: &std::path::Path,
) {
    let p = plan_now(d, hosts, fake, dir).await;
    // Half way, and the cancel after the failure is refused too: the
    // downgrade stays enabled, and the report says so.
    fake.fail_script("stop etcd-3", 1);
    let watch = fake.clone();
    let r = common::fakes::apply_with(d, hosts, fake, &p, &AtomicBool::new(false), &mut |ev| {
        if let execute::Event::StepFinished { .. } = ev
            && watch.downgrade_enabled().is_some()
        {
            watch.fail_downgrade(
                etcdplan::io::EtcdErrorKind::DeadlineExceeded,
                "etcdserver: request timed out",
            );
        }
    })
    .await;
    let Err(e) = r else {
        panic!("a failed stop went unnoticed");
    };
    assert!(
        e.afterwards[0].starts_with("sending `downgrade cancel` for the downgrade to 3.6 failed"),
        "{:#?}",
        e.afterwards
    );
    assert_eq!(fake.downgrade_enabled(), Some(minor("3.6")));
    fake.heal_downgrade();
}

#[tokio::test]
async fn a_downgrade_left_enabled_half_way_is_continued_by_the_next_plan() {
    let (d, fake, hosts) = downgrade_to_3_6();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    left_enabled_half_way(&d, &hosts, &fake, dir.path()).await;
    let p = plan_now(&d, &hosts, &fake, dir.path()).await;
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let t = minor("3.6");
    let kinds: Vec<&Step> = p.steps.iter().map(|s| &s.step).collect();
    assert!(
        kinds.iter().all(|s| !matches!(
            s,
            Step::DowngradeValidate { .. }
                | Step::DowngradeEnable { .. }
                | Step::DowngradeCancel { .. }
        )),
        "{kinds:#?}"
    );
    assert!(kinds.contains(&&Step::WaitStorageVersion { target: t }));
    assert_eq!(kinds.last(), Some(&&Step::DowngradeFinished { target: t }));
    let r = apply(&d, &hosts, &fake, &p).await;
    assert!(r.is_ok(), "{r:?}");
    // The fake completed the downgrade once every member ran 3.6.14.
    assert_eq!(fake.downgrade_enabled(), None);
    assert_eq!(fake.cluster_version(), Some(t));
    let v3614 = EtcdVersion::parse("3.6.14");
    assert!(fake.members().iter().all(|m| m.version == v3614));
    assert!(plan_now(&d, &hosts, &fake, dir.path()).await.is_empty());
}

#[tokio::test]
async fn a_downgrade_left_enabled_is_cancelled_and_rolled_back_up_when_the_etcdfile_asks_for_3_7() {
    let (d, fake, hosts) = downgrade_to_3_6();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    left_enabled_half_way(&d, &hosts, &fake, dir.path()).await;

    // The operator asks for 3.7 again: cancel, etcd-1 back onto 3.7.1, and
    // the cluster version rises once every member runs it.
    let text = text_with(3, "").replacen(
        "name = \"main\"\n",
        "name = \"main\"\nversion = \"3.7\"\n",
        1,
    );
    let up = desired_from(&text);
    for m in &up.members {
        fake.install_binary(m.name.as_str(), "3.7.1");
    }
    let p = plan_now(&up, &hosts, &fake, dir.path()).await;
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let kinds: Vec<&Step> = p.steps.iter().map(|s| &s.step).collect();
    let cancel = kinds
        .iter()
        .position(|s| matches!(s, Step::DowngradeCancel { .. }));
    let restart = kinds.iter().position(|s| matches!(s, Step::Restart { .. }));
    assert!(cancel.is_some() && cancel < restart, "{kinds:#?}");
    let r = apply(&up, &hosts, &fake, &p).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(fake.downgrade_enabled(), None);
    assert_eq!(fake.cluster_version(), Some(minor("3.7")));
    let v371 = EtcdVersion::parse("3.7.1");
    assert!(fake.members().iter().all(|m| m.version == v371));
    assert!(plan_now(&up, &hosts, &fake, dir.path()).await.is_empty());
}
