//! The NOSPACE repair, defragmentation and the CORRUPT alarm, planned from
//! what `observe` reads over the in-memory fakes and walked by the executor
//! against them (`etcdplan::io::fake`: per-member backend sizes, the quota,
//! alarms, compaction, a defragmentation that never ends). No etcd, no hosts.

mod common;

use common::fakes::apply;
use common::{desired_with, plans::kinds};
use etcdplan::config::Desired;
use etcdplan::io::HostMap;
use etcdplan::io::fake::FakeCluster;
use etcdplan::plan::{self, Plan};
use etcdplan::render::{self, Style};
use etcdplan::{diff, observe};

const MIB: u64 = 1024 * 1024;

/// A healthy 3-member cluster on 3.5.16 led by etcd-2 whose etcdfile keeps
/// 100 revisions and sets an 8 MiB quota, which Status reports (as 3.6 does).
fn cluster() -> (Desired, FakeCluster, HostMap) {
    let d = desired_with(
        3,
        "quota_backend_bytes = \"8MiB\"\nauto_compaction_mode = \"revision\"\nauto_compaction_retention = \"100\"\n",
    );
    let fake = FakeCluster::running(&d, "3.5.16", 1);
    fake.set_quota(8 * MIB);
    let hosts = fake.hosts(&d);
    (d, fake, hosts)
}

/// The plan the real planner makes from what `observe` reads.
async fn plan_now(d: &Desired, hosts: &HostMap, fake: &FakeCluster) -> Plan {
    let live = observe::observe(d, hosts, fake, &Default::default()).await;
    plan::build(d, &live, diff::diff(d, &live))
}

/// The index of the first logged call that starts with `prefix`.
fn first(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call {prefix:?} in {calls:#?}"))
}

/// Every member full: 8 MiB files of which 2 MiB in use, NOSPACE raised by etcd-1.
fn fill(fake: &FakeCluster) {
    for name in ["etcd-1", "etcd-2", "etcd-3"] {
        fake.set_db(name, 8 * MIB, 2 * MIB);
    }
    // History above what the etcdfile keeps.
    for i in 0..150 {
        fake.put("k", &i.to_string());
    }
    fake.raise_alarm("etcd-1", "NOSPACE");
}

#[tokio::test]
async fn nospace_is_repaired_by_compaction_defragmentation_of_each_member_leader_last_then_the_disarm()
 {
    let (d, fake, hosts) = cluster();
    fill(&fake);
    let p = plan_now(&d, &hosts, &fake).await;
    assert!(p.applicable, "{:#?}", p.blockers);
    assert_eq!(
        kinds(&p),
        [
            "compact the history to the current revision less 100",
            "defragment etcd-1 (backend 8.0 MiB)",
            "wait until etcd-1 healthy",
            "defragment etcd-3 (backend 8.0 MiB)",
            "wait until etcd-3 healthy",
            "move leader etcd-2 → etcd-1",
            "defragment etcd-2 (backend 8.0 MiB)",
            "wait until etcd-2 healthy",
            "disarm the NOSPACE alarm once every member's backend is below 90% of its 8.0 MiB quota",
            "write and delete a test key",
        ]
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("lock file on every member's host")),
        "{:#?}",
        p.notes
    );
    insta::assert_snapshot!(
        "nospace-repair-human",
        render::plan_human(&p, &d, "etcdfile.toml", Style::PLAIN)
    );
    insta::assert_snapshot!(
        "nospace-repair-json",
        serde_json::to_string_pretty(&p).unwrap_or_default()
    );

    fake.mark("apply");
    apply(&d, &hosts, &fake, &p)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let calls = fake.calls();
    let start = first(&calls, "mark apply");
    let calls = &calls[start..];
    let compact = first(calls, "etcd compact");
    let defrags: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.starts_with("etcd defragment"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(defrags.len(), 3, "{calls:#?}");
    assert!(compact < defrags[0]);
    assert!(fake.compacted() > 50, "{}", fake.compacted());
    // The leader (etcd-2, 10.0.0.12) last, after leadership moved.
    assert!(calls[defrags[2]].contains("10.0.0.12"), "{calls:#?}");
    assert!(first(calls, "etcd move_leader") < defrags[2]);
    let disarm = first(calls, "etcd alarm_disarm");
    assert!(defrags[2] < disarm && disarm < first(calls, "etcd put"));
    assert!(fake.alarms().is_empty());
    for (name, size, used) in fake.dbs() {
        assert_eq!((size, used), (2 * MIB, 2 * MIB), "{name}");
    }
    // The repair leaves nothing to do.
    let after = plan_now(&d, &hosts, &fake).await;
    assert!(after.is_empty(), "{after:#?}");
}

#[tokio::test]
async fn nospace_with_the_backend_nearly_all_in_use_says_so_and_never_disarms_into_the_same_wall() {
    let (d, fake, hosts) = cluster();
    fill(&fake);
    fake.set_db("etcd-3", 8 * MIB, 15 * MIB / 2);
    let p = plan_now(&d, &hosts, &fake).await;
    let wall = p
        .notes
        .iter()
        .find(|n| n.starts_with("compaction may not free enough"))
        .unwrap_or_else(|| panic!("{:#?}", p.notes));
    assert!(wall.contains("etcd-3 has 7.5 MiB in use"), "{wall}");
    assert!(wall.contains("quota_backend_bytes"), "{wall}");
    assert!(wall.contains("\"16MiB\""), "{wall}");
    let e = apply(&d, &hosts, &fake, &p)
        .await
        .err()
        .unwrap_or_else(|| panic!("the disarm must refuse"));
    let text = e.to_string();
    assert!(text.contains("disarm the NOSPACE alarm"), "{text}");
    assert!(text.contains("etcd-3 is still full"), "{text}");
    // The alarm stays raised; the others were defragmented.
    assert_eq!(fake.alarms(), [("etcd-1".to_owned(), "NOSPACE".to_owned())]);
    assert!(!fake.calls().iter().any(|c| c.starts_with("etcd put")));

    // With the quota raised in the etcdfile, the repair restarts every
    // member with it before the disarm.
    let raised = desired_with(
        3,
        "quota_backend_bytes = \"16MiB\"\nauto_compaction_mode = \"revision\"\nauto_compaction_retention = \"100\"\n",
    );
    let live = observe::observe(&raised, &hosts, &fake, &Default::default()).await;
    let p = plan::build(&raised, &live, diff::diff(&raised, &live));
    let steps = kinds(&p);
    let restart = steps
        .iter()
        .rposition(|s| s.contains("restart"))
        .unwrap_or_else(|| panic!("{steps:#?}"));
    let disarm = steps
        .iter()
        .position(|s| s.starts_with("disarm the NOSPACE alarm"))
        .unwrap_or_else(|| panic!("{steps:#?}"));
    assert!(restart < disarm, "{steps:#?}");
    // The member the restarts are expected to leave leading (the one
    // restarted first: its connection to the leader, restarted last, is the
    // oldest, and etcd's stop hands over to the longest connected) is the
    // one defragmented last, after handing leadership on.
    let compact = steps
        .iter()
        .position(|s| s.starts_with("compact"))
        .unwrap_or_else(|| panic!("{steps:#?}"));
    assert!(
        !steps[..compact]
            .iter()
            .any(|s| s.starts_with("move leader ")),
        "{steps:#?}"
    );
    let led = steps[..compact]
        .iter()
        .find_map(|s| s.split_once("restart ")?.1.split(' ').next())
        .unwrap_or_else(|| panic!("{steps:#?}"));
    let defrags: Vec<&String> = steps
        .iter()
        .filter(|s| s.starts_with("defragment"))
        .collect();
    assert_eq!(defrags.len(), 3, "{steps:#?}");
    assert!(
        defrags[2].starts_with(&format!("defragment {led} ")),
        "{steps:#?}"
    );
    let last = steps
        .iter()
        .position(|s| s == defrags[2])
        .unwrap_or_default();
    assert!(
        steps[last - 1].starts_with(&format!("move leader {led} → ")),
        "{steps:#?}"
    );
    assert!(
        !p.notes
            .iter()
            .any(|n| n.starts_with("compaction may not free enough")),
        "{:#?}",
        p.notes
    );
}

#[tokio::test]
async fn a_defragmentation_that_never_ends_stops_the_walk_naming_the_member_others_untouched() {
    let (d, fake, hosts) = cluster();
    fill(&fake);
    fake.stall_defrag("etcd-3");
    let mut p = plan_now(&d, &hosts, &fake).await;
    // A short deadline for the fake's endless defragmentation.
    for s in &mut p.steps {
        if let plan::Step::Defragment { timeout_secs, .. } = &mut s.step {
            *timeout_secs = 1;
        }
    }
    let e = apply(&d, &hosts, &fake, &p)
        .await
        .err()
        .unwrap_or_else(|| panic!("the stalled defragmentation must stop the walk"));
    assert_eq!(e.description, "defragment etcd-3 (backend 8.0 MiB)");
    let text = e.to_string();
    assert!(text.contains("defragment etcd-3"), "{text}");
    assert!(text.contains("etcd-3 is healthy again"), "{text}");
    let dbs = fake.dbs();
    // etcd-1 was done before; the leader etcd-2 was not touched.
    assert!(
        dbs.contains(&("etcd-1".to_owned(), 2 * MIB, 2 * MIB)),
        "{dbs:?}"
    );
    assert!(
        dbs.contains(&("etcd-2".to_owned(), 8 * MIB, 2 * MIB)),
        "{dbs:?}"
    );
    assert_eq!(e.remaining.len(), 6, "{:#?}", e.remaining);
    assert!(!fake.alarms().is_empty());
}

#[tokio::test]
async fn a_corrupt_member_is_replaced_and_nothing_else_runs_and_the_alarm_is_left_to_the_operator()
{
    let (_, fake, hosts) = cluster();
    fake.raise_alarm("etcd-3", "CORRUPT");
    // The etcdfile also changes a setting: that waits.
    let changed = desired_with(
        3,
        "quota_backend_bytes = \"16MiB\"\nauto_compaction_mode = \"revision\"\nauto_compaction_retention = \"100\"\n",
    );
    let live = observe::observe(&changed, &hosts, &fake, &Default::default()).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = plan::Options {
        snapshot_dir: dir.path().to_owned(),
        ..plan::Options::default()
    };
    let p = plan::build_with(&changed, &live, diff::diff(&changed, &live), &opts);
    assert!(p.applicable, "{:#?}", p.blockers);
    assert_eq!(p.changes.len(), 1, "{:#?}", p.changes);
    assert_eq!(p.changes[0].member.as_str(), "etcd-3");
    assert!(
        p.changes[0].reason.contains("CORRUPT"),
        "{}",
        p.changes[0].reason
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("2 other changes wait until the corrupt member is replaced")),
        "{:#?}",
        p.notes
    );
    assert!(
        p.notes.iter().any(|n| n.contains("etcdctl alarm disarm")),
        "{:#?}",
        p.notes
    );
    let steps = kinds(&p);
    assert!(
        steps.iter().any(|s| s.starts_with("remove etcd-3")),
        "{steps:#?}"
    );
    assert!(!steps.iter().any(|s| s.contains("restart")), "{steps:#?}");
    apply(&changed, &hosts, &fake, &p)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // etcdplan never disarms CORRUPT.
    assert!(
        fake.alarms().iter().any(|(_, k)| k == "CORRUPT"),
        "{:?}",
        fake.alarms()
    );
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.starts_with("etcd alarm_disarm"))
    );
}

#[tokio::test]
async fn the_defrag_rule_defragments_the_members_it_holds_for_the_leader_last_and_then_rests() {
    let d = desired_with(
        3,
        "quota_backend_bytes = \"8MiB\"\nauto_compaction_mode = \"revision\"\nauto_compaction_retention = \"100\"\n[maintenance]\ndefrag_rule = \"dbSizeFree > 1MiB && dbSizeInUse / dbSize < 0.5\"\n",
    );
    let fake = FakeCluster::running(&d, "3.5.16", 1);
    fake.set_quota(8 * MIB);
    let hosts = fake.hosts(&d);
    fake.set_db("etcd-1", 6 * MIB, MIB);
    fake.set_db("etcd-2", 5 * MIB, 2 * MIB);
    // Free space, but most of the file in use: the rule does not hold.
    fake.set_db("etcd-3", 5 * MIB, 3 * MIB);
    let p = plan_now(&d, &hosts, &fake).await;
    assert_eq!(
        kinds(&p),
        [
            "compact the history to the current revision less 100",
            "defragment etcd-1 (backend 6.0 MiB)",
            "wait until etcd-1 healthy",
            "move leader etcd-2 → etcd-1",
            "defragment etcd-2 (backend 5.0 MiB)",
            "wait until etcd-2 healthy",
        ]
    );
    assert!(
        p.changes[0].reason.contains("dbSizeFree 5.0 MiB"),
        "{}",
        p.changes[0].reason
    );
    insta::assert_snapshot!(
        "defrag-rule-human",
        render::plan_human(&p, &d, "etcdfile.toml", Style::PLAIN)
    );
    apply(&d, &hosts, &fake, &p)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dbs = fake.dbs();
    assert!(dbs.contains(&("etcd-1".to_owned(), MIB, MIB)), "{dbs:?}");
    assert!(
        dbs.contains(&("etcd-2".to_owned(), 2 * MIB, 2 * MIB)),
        "{dbs:?}"
    );
    assert!(
        dbs.contains(&("etcd-3".to_owned(), 5 * MIB, 3 * MIB)),
        "{dbs:?}"
    );
    // The rule no longer holds anywhere.
    let after = plan_now(&d, &hosts, &fake).await;
    assert!(after.is_empty(), "{after:#?}");
}
