//! The quorum-loss recovery walked by `execute::apply` over the in-memory
//! fakes: planned from what `observe` reads, it ends with every member back
//! as a voter; and a lost member that answers again before the forced start
//! stops the walk there, saying what was done and what remains.

mod common;

use common::fakes::apply;

use common::desired_with;
use etcdplan::config::Desired;
use etcdplan::execute::StepError;
use etcdplan::io::HostMap;
use etcdplan::io::fake::FakeCluster;
use etcdplan::observe;
use etcdplan::plan::recover::{self, Recovery};
use etcdplan::plan::{Options, Plan};

/// A 3-member cluster (etcd-1 leads) whose etcd-2 and etcd-3 lost their disks.
fn lost_two() -> (Desired, FakeCluster, HostMap) {
    let d = desired_with(3, "");
    let fake = FakeCluster::running(&d, "3.4.23", 0);
    fake.put("k/1", "v");
    fake.lose_disk("etcd-2");
    fake.lose_disk("etcd-3");
    let hosts = fake.hosts(&d);
    (d, fake, hosts)
}

async fn recovery(d: &Desired, hosts: &HostMap, fake: &FakeCluster) -> Plan {
    let live = observe::observe(d, hosts, fake, &Default::default()).await;
    let r = Recovery {
        from: "etcd-1".into(),
        allow_data_loss: false,
    };
    let opts = Options {
        snapshot_dir: std::env::temp_dir().join("etcdplan-recover-executor"),
        ..Options::default()
    };
    recover::build(d, &live, &r, &opts)
}

#[tokio::test]
async fn the_recovery_over_the_fakes_ends_with_three_voters() -> Result<(), String> {
    let (d, fake, hosts) = lost_two();
    let p = recovery(&d, &hosts, &fake).await;
    if !p.blockers.is_empty() {
        return Err(format!("{:?}", p.blockers));
    }
    apply(&d, &hosts, &fake, &p)
        .await
        .map_err(|e| e.to_string())?;
    let members = fake.members();
    let voters: Vec<&str> = members
        .iter()
        .filter(|m| !m.learner)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(voters, ["etcd-1", "etcd-2", "etcd-3"]);
    assert_eq!(fake.leader().as_deref(), Some("etcd-1"));
    // The forced start ran once, and the normal start came after it.
    let calls = fake.calls();
    let at = |needle: &str| {
        calls
            .iter()
            .position(|c| c.ends_with(needle))
            .ok_or_else(|| format!("no {needle:?} in {calls:#?}"))
    };
    let forced = at(": start etcd-1 with force-new-cluster")?;
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.contains("with force-new-cluster"))
            .count(),
        1
    );
    assert!(at(": copy etcd-1's data")? < forced);
    assert!(forced < at(": stop the forced start of etcd-1")?);
    assert!(at(": stop the forced start of etcd-1")? < at("10.0.0.11: start etcd-1")?);
    // The next plan has nothing to do.
    let live = observe::observe(&d, &hosts, &fake, &Default::default()).await;
    let again = etcdplan::plan::build(&d, &live, etcdplan::diff::diff(&d, &live));
    assert!(again.is_empty(), "{:?}", common::plans::kinds(&again));
    Ok(())
}

#[tokio::test]
async fn a_lost_member_that_answers_again_stops_the_forced_start() -> Result<(), String> {
    let (d, fake, hosts) = lost_two();
    let p = recovery(&d, &hosts, &fake).await;
    // etcd-3 comes back with its data before the walk: a fence in the plan
    // stops it, so make the fence of etcd-3 fail and keep it running.
    fake.fail_script("stop etcd-3", 1);
    fake.revive("etcd-3");
    let Err(e) = apply(&d, &hosts, &fake, &p).await else {
        return Err("the walk went on with an old member running".into());
    };
    // The fence's failure to stop is reported by the fence (a warning) and
    // the forced start refuses: etcd-3 answers.
    let StepError::Unsafe { why, .. } = &e.error else {
        return Err(format!("{e}"));
    };
    assert!(why.contains("etcd-3 answers"), "{why}");
    assert!(
        e.description
            .starts_with("start etcd-1 once with --force-new-cluster"),
        "{}",
        e.description
    );
    assert!(e.done.iter().any(|s| s.starts_with("stop etcd-1 and copy")));
    assert!(e.remaining.iter().any(|s| s.starts_with("add etcd-2")));
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.contains("with force-new-cluster")),
        "the forced start ran"
    );
    Ok(())
}
