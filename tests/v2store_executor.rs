//! The v2 store check before 3.6 (`Step::CheckV2Store`) against the fakes:
//! each member is stopped, checked with `etcdutl check v2store`, and started
//! again on its binary whatever the check found; custom v2 content stops the
//! apply with etcd's ways out, before any member runs 3.6.

mod common;

use common::desired_with;
use common::fakes::apply;
use etcdplan::execute::StepError;
use etcdplan::io::fake::FakeCluster;
use etcdplan::model::MemberName;
use etcdplan::plan::{self, Plan, PlannedStep, Step};
use etcdplan::{diff, observe};

fn name(s: &str) -> MemberName {
    MemberName::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// A no-op plan of a running cluster whose steps are the check of every
/// member, each followed by its gate (as the planner orders them).
async fn check_plan(fake: &FakeCluster, d: &etcdplan::config::Desired) -> Plan {
    let hosts = fake.hosts(d);
    let live = observe::observe(d, &hosts, fake, &Default::default()).await;
    let mut p = plan::build(d, &live, diff::diff(d, &live));
    let steps: Vec<Step> = ["etcd-1", "etcd-2", "etcd-3"]
        .iter()
        .flat_map(|m| {
            [
                Step::CheckV2Store { member: name(m) },
                Step::WaitHealthy {
                    members: vec![name(m)],
                },
            ]
        })
        .collect();
    p.steps = steps
        .into_iter()
        .enumerate()
        .map(|(i, step)| PlannedStep {
            index: i,
            description: step.describe(),
            disruptive: step.disruptive(),
            after: i.checked_sub(1).into_iter().collect(),
            step,
        })
        .collect();
    p
}

#[tokio::test]
async fn every_member_is_stopped_checked_and_started_again() {
    let d = desired_with(3, "");
    let fake = FakeCluster::running(&d, "3.5.33", 0);
    let hosts = fake.hosts(&d);
    let p = check_plan(&fake, &d).await;
    let r = apply(&d, &hosts, &fake, &p).await;
    assert!(r.is_ok(), "{r:?}");
    let calls: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("host "))
        .filter(|c| !c.contains("probe"))
        .collect();
    for m in ["etcd-1", "etcd-2", "etcd-3"] {
        let at = |what: &str| calls.iter().position(|c| c.ends_with(what));
        let (s, c, t) = (
            at(&format!("stop {m}")),
            at(&format!("check {m}'s v2 store")),
            at(&format!("start {m}")),
        );
        assert!(s.is_some() && s < c && c < t, "{m}: {calls:#?}");
    }
    // All three still run.
    for ip in ["10.0.0.11", "10.0.0.12", "10.0.0.13"] {
        assert!(fake.disk(ip).is_some_and(|h| h.running), "{ip}");
    }
}

#[tokio::test]
async fn custom_v2_content_stops_the_apply_with_the_member_running_again() {
    let d = desired_with(3, "");
    let fake = FakeCluster::running(&d, "3.5.33", 0);
    let hosts = fake.hosts(&d);
    let p = check_plan(&fake, &d).await;
    fake.fail_script("check etcd-2's v2 store", 1);
    let Err(e) = apply(&d, &hosts, &fake, &p).await else {
        panic!("custom v2 content went unnoticed");
    };
    assert_eq!(e.description, p.steps[2].description);
    match &e.error {
        StepError::Command { tail, .. } => {
            assert!(
                tail.contains("etcd 3.6 would refuse this data dir"),
                "{tail}"
            );
            assert!(tail.contains("write-only-skip-check"), "{tail}");
        }
        other => panic!("not the check: {other}"),
    }
    // etcd-2 was started again on its binary; etcd-3 was never touched.
    assert!(fake.disk("10.0.0.12").is_some_and(|h| h.running));
    let calls = fake.calls();
    assert!(
        !calls.iter().any(|c| c.contains("stop etcd-3")),
        "{calls:#?}"
    );
    assert!(
        e.remaining.iter().any(|s| s.contains("etcd-3")),
        "{:?}",
        e.remaining
    );
}
