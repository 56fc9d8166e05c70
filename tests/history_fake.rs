//! The apply records (`etcdplan::history`) over the in-memory fake etcd:
//! the start record replaced by the end under one key, the newest 100 kept
//! after a write, NOSPACE skipping the record with a note, and how a walk's
//! result maps to the record's outcome. No etcd, no hosts.

mod common;

use common::desired_with;
use etcdplan::execute::{ApplyError, Report, StepError};
use etcdplan::history::{self, Outcome, PREFIX, Recording};
use etcdplan::io::EtcdApi as _;
use etcdplan::io::fake::FakeCluster;
use etcdplan::{diff, observe, plan};

async fn setup() -> (
    etcdplan::config::Desired,
    FakeCluster,
    etcdplan::live::Live,
    plan::Plan,
) {
    let d = desired_with(3, "");
    let fake = FakeCluster::running(&d, "3.5.16", 1);
    let hosts = fake.hosts(&d);
    let live = observe::observe(&d, &hosts, &fake, &Default::default()).await;
    let p = plan::build(&d, &live, diff::diff(&d, &live));
    (d, fake, live, p)
}

async fn records(fake: &FakeCluster, d: &etcdplan::config::Desired) -> Vec<(String, String)> {
    fake.prefix_values(&d.client_urls()[0], PREFIX, 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn start_is_replaced_by_the_end_under_one_key() {
    let (d, fake, live, p) = setup().await;
    let (rec, note) = Recording::start(&fake, d.client_urls(), "apply", &p, &live).await;
    assert_eq!(note, None);
    let stored = records(&fake, &d).await;
    assert_eq!(stored.len(), 1);
    let (key, value) = &stored[0];
    assert_eq!(key, &rec.record().key());
    let v: serde_json::Value = serde_json::from_str(value).unwrap_or_default();
    assert_eq!(v["result"], "started");
    assert_eq!(v["operation"], "apply");
    assert!(v["who"].as_str().is_some_and(|w| w.contains('@')), "{v}");
    assert_eq!(v["plan_sha256"], history::plan_hash(&p));

    let note = rec.finish(&fake, Outcome::Applied).await;
    assert_eq!(note, None);
    let stored = records(&fake, &d).await;
    assert_eq!(stored.len(), 1, "the end replaces the start");
    assert_eq!(&stored[0].0, key);
    let v: serde_json::Value = serde_json::from_str(&stored[0].1).unwrap_or_default();
    assert_eq!(v["result"], "applied");
    assert!(v["finished"].is_string());

    let listed = history::read(&fake, &d.client_urls(), 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0]
            .record
            .as_ref()
            .is_ok_and(|r| r.outcome == Outcome::Applied)
    );
}

#[tokio::test]
async fn only_the_newest_hundred_are_kept() {
    let (d, fake, live, p) = setup().await;
    // 105 older records, and a key of someone else's under etcdplan/.
    for i in 0..105 {
        fake.put(&format!("{PREFIX}20200101T{i:06}.000Z-0123456789ab"), "{}");
    }
    fake.put("etcdplan/other", "kept");
    let (rec, _) = Recording::start(&fake, d.client_urls(), "apply", &p, &live).await;
    let key = rec.record().key();
    assert_eq!(rec.finish(&fake, Outcome::Applied).await, None);
    let stored = records(&fake, &d).await;
    assert_eq!(stored.len(), 100);
    let keys: Vec<&str> = stored.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&key.as_str()), "the new record stays");
    // 106 records: the 6 oldest went.
    assert_eq!(
        keys[0],
        format!("{PREFIX}20200101T000006.000Z-0123456789ab")
    );
    assert!(!keys.iter().any(|k| k.contains("T000005.")));
    let other = fake
        .get_value(&d.client_urls()[0], "etcdplan/other")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.as_deref(), Some("kept"));
}

#[tokio::test]
async fn nospace_skips_the_record_with_a_note() {
    let (d, fake, _, p) = setup().await;
    fake.raise_alarm("etcd-1", "NOSPACE");
    let hosts = fake.hosts(&d);
    let live = observe::observe(&d, &hosts, &fake, &Default::default()).await;
    let (rec, note) = Recording::start(&fake, d.client_urls(), "apply", &p, &live).await;
    assert!(
        note.as_deref().is_some_and(|n| n.contains("NOSPACE")),
        "{note:?}"
    );
    let note = rec.finish(&fake, Outcome::Applied).await;
    assert!(
        note.as_deref()
            .is_some_and(|n| n.contains("skipped") && n.contains("NOSPACE")),
        "{note:?}"
    );
    assert!(records(&fake, &d).await.is_empty());
    // The start is not tried; the end is, once, and etcd refuses it.
    let puts = fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("etcd put") && c.contains(PREFIX))
        .count();
    assert_eq!(puts, 1, "{:#?}", fake.calls());
}

#[tokio::test]
async fn a_cluster_that_does_not_answer_gives_a_note_not_an_error() {
    let (d, fake, live, p) = setup().await;
    let (rec, _) = Recording::start(&fake, d.client_urls(), "apply", &p, &live).await;
    for name in ["etcd-1", "etcd-2", "etcd-3"] {
        fake.kill(name);
    }
    let note = rec.finish(&fake, Outcome::Applied).await;
    assert!(
        note.as_deref()
            .is_some_and(|n| n.contains("could not be written")),
        "{note:?}"
    );
}

#[allow(clippy::result_large_err)] // the shape execute::apply returns
fn failed(error: StepError) -> Result<Report, ApplyError> {
    Err(ApplyError {
        index: 2,
        total: 5,
        description: "restart etcd-2".into(),
        error,
        done: vec![],
        remaining: vec![],
        afterwards: vec![],
    })
}

#[test]
fn the_walks_result_maps_to_the_outcome() {
    let ok: Result<Report, ApplyError> = Ok(Report {
        steps: vec![],
        seconds: 1.0,
    });
    assert_eq!(history::outcome(&ok), Outcome::Applied);
    assert_eq!(
        history::outcome(&failed(StepError::Interrupted)),
        Outcome::Cancelled { step: 3 }
    );
    let Outcome::Failed {
        step,
        description,
        error,
    } = history::outcome(&failed(StepError::Local {
        what: "write the snapshot".into(),
        why: "disk full".into(),
    }))
    else {
        panic!("not failed");
    };
    assert_eq!((step, description.as_str()), (3, "restart etcd-2"));
    assert_eq!(error, "could not write the snapshot: disk full");
}
