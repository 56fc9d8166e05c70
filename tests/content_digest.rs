//! The content digest a snapshot's manifest records and a restore is checked
//! against, read page by page over the fake etcd.

mod common;

use std::time::Duration;

use common::desired_with;
use etcdplan::backup::content_digest;
use etcdplan::io::fake::FakeCluster;

#[tokio::test]
async fn every_page_is_read_and_a_changed_value_changes_the_digest()
-> Result<(), etcdplan::backup::ContentError> {
    let d = desired_with(3, "");
    let fake = FakeCluster::running(&d, "3.5.16", 0);
    for i in 0..1201 {
        fake.put(&format!("/k/{i:05}"), &format!("v{i}"));
    }
    let ep = d.client_urls()[0].clone();
    let (a, _) = content_digest(&fake, &ep, 0, Duration::from_secs(5)).await?;
    assert_eq!(a.keys, 1201, "three pages of 500 and one of 201");
    fake.put("/k/00600", "changed");
    let (b, _) = content_digest(&fake, &ep, 0, Duration::from_secs(5)).await?;
    assert_eq!(b.keys, 1201);
    assert_ne!(a.sha256, b.sha256);
    Ok(())
}
