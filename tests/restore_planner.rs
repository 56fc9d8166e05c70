//! The restore plan against described live states: the refusals (data that
//! would be lost, a host that does not answer), the one bump for all
//! members, the steps in their order, the golden plan, a restored member's
//! token kept by later plans, and what `plan` says after a restore that
//! stopped half way.

mod common;

use std::path::PathBuf;

use common::plans::plan_for;
use common::{HostSpec, cluster, live};
use etcdplan::backup_core::{ContentDigest, MANIFEST_FORMAT, Manifest};
use etcdplan::hostfiles;
use etcdplan::model::EtcdVersion;
use etcdplan::observe::{Binary, DataDir, HostState, Live};
use etcdplan::plan::Step;
use etcdplan::plan::restore::{self, Request, RestoreTool};

const STAMP: &str = "20261202-101500";

fn manifest(revision: i64) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT,
        file: "main-20261202-100000.db".into(),
        cluster: "main".into(),
        cluster_id: "c1".into(),
        member: "etcd-1".into(),
        etcd_version: "3.5.30".into(),
        revision,
        size: 20512,
        sha256: "ab".repeat(32),
        taken: "2026-12-02T10:00:00Z".into(),
        content: ContentDigest {
            sha256: "cd".repeat(32),
            keys: 10,
        },
        copied: None,
        copy_error: None,
        encrypted: None,
        restore_check: None,
        etcdfile_sha256: None,
    }
}

fn request(live_revision: Option<i64>, manifest: Option<Manifest>) -> Request {
    Request {
        snapshot: PathBuf::from("/srv/snapshots/main-20261202-100000.db"),
        size: 20512,
        sha256: "ab".repeat(32),
        revision: manifest.as_ref().map(|m| m.revision),
        manifest,
        live_revision,
        stamp: STAMP.into(),
        allow_data_loss: false,
        bump: Some(restore::DEFAULT_BUMP),
        notes: vec!["locked by lock files on every host that answers".into()],
    }
}

fn on(version: &str) -> HostSpec {
    HostSpec {
        binary: Binary::Found {
            version: EtcdVersion::parse(version),
        },
        ..HostSpec::running_from(&common::desired_with(3, ""))
    }
}

fn running(versions: [&str; 3]) -> (etcdplan::config::Desired, Live) {
    let d = common::desired_with(3, "");
    let specs: Vec<HostSpec> = versions.iter().map(|v| on(v)).collect();
    let l = live(&d, &specs, Some(cluster(&d, &[true; 3], 0)));
    (d, l)
}

#[test]
fn a_healthy_cluster_with_newer_revisions_is_refused_with_the_count() {
    let (d, l) = running(["3.5.30"; 3]);
    let p = restore::build(&d, &l, &request(Some(1234), Some(manifest(1000))));
    assert!(!p.applicable);
    assert!(p.steps.is_empty(), "nothing of a blocked restore runs");
    let why = p.cannot_apply().unwrap_or_default();
    assert!(
        why.contains("the 234 revisions written since the snapshot would be lost"),
        "{why}"
    );

    let mut allowed = request(Some(1234), Some(manifest(1000)));
    allowed.allow_data_loss = true;
    let p = restore::build(&d, &l, &allowed);
    assert!(p.applicable, "{:?}", p.blockers);
    assert!(p.notes.iter().any(|n| n.contains("--allow-data-loss")));

    // Nothing written since the snapshot: nothing to allow.
    let p = restore::build(&d, &l, &request(Some(1000), Some(manifest(1000))));
    assert!(p.applicable, "{:?}", p.blockers);
}

#[test]
fn an_unknown_snapshot_revision_against_a_live_cluster_needs_the_flag() {
    let (d, l) = running(["3.5.30"; 3]);
    let p = restore::build(&d, &l, &request(Some(50), None));
    let why = p.cannot_apply().unwrap_or_default();
    assert!(why.contains("the snapshot's revision is unknown"), "{why}");
    // A cluster that does not answer has nothing newer to lose.
    let down = live(&d, &[on("3.5.30"), on("3.5.30"), on("3.5.30")], None);
    let p = restore::build(&d, &down, &request(None, None));
    assert!(p.applicable, "{:?}", p.blockers);
    assert!(
        p.notes.iter().any(|n| n.contains("only its integrity")),
        "{:?}",
        p.notes
    );
}

#[test]
fn a_host_that_does_not_answer_blocks_the_restore() {
    let (d, mut l) = running(["3.5.30"; 3]);
    l.hosts.insert(
        d.members[2].name.clone(),
        HostState::Unreachable {
            reason: "connection refused".into(),
            advice: "check sshd".into(),
        },
    );
    let p = restore::build(&d, &l, &request(Some(1000), Some(manifest(1000))));
    assert!(p.steps.is_empty());
    let why = p.cannot_apply().unwrap_or_default();
    assert!(
        why.contains("etcd-3: its host 10.0.0.13 does not answer"),
        "{why}"
    );
}

#[test]
fn one_member_without_bump_support_means_no_member_bumps() {
    let (d, l) = running(["3.5.30", "3.4.23", "3.5.9"]);
    let p = restore::build(&d, &l, &request(Some(1000), Some(manifest(1000))));
    assert!(p.applicable, "{:?}", p.blockers);
    let tools: Vec<RestoreTool> = p
        .steps
        .iter()
        .filter_map(|s| match &s.step {
            Step::RestoreData { tool, .. } => Some(tool.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        tools,
        [
            RestoreTool::Etcdutl { bump: None },
            RestoreTool::Etcdctl,
            RestoreTool::Etcdutl { bump: None },
        ]
    );
    let note = p
        .notes
        .iter()
        .find(|n| n.starts_with("no revision bump"))
        .cloned()
        .unwrap_or_default();
    assert!(
        note.contains("etcd-2 (etcd 3.4.23), etcd-3 (etcd 3.5.9)"),
        "{note}"
    );
    // The verification expects the snapshot's own revision.
    assert!(p.steps.iter().any(|s| matches!(
        s.step,
        Step::VerifyRestore {
            revision: Some(1000),
            ..
        }
    )));
}

#[test]
fn the_steps_check_and_upload_before_anything_stops() {
    let (d, l) = running(["3.5.30"; 3]);
    let mut req = request(Some(1200), Some(manifest(1000)));
    req.allow_data_loss = true;
    let p = restore::build(&d, &l, &req);
    let kinds: Vec<&str> = p
        .steps
        .iter()
        .map(|s| match s.step {
            Step::UploadSnapshot { .. } => "upload",
            Step::CheckRestoreTool { .. } => "check",
            Step::StopForRestore { .. } => "stop",
            Step::RestoreData { .. } => "restore",
            Step::WriteFiles { .. } => "write",
            Step::Start { .. } => "start",
            Step::WaitHealthy { .. } => "gate",
            Step::VerifyRestore { .. } => "verify",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "upload", "check", "upload", "check", "upload", "check", "stop", "stop", "stop",
            "restore", "restore", "restore", "write", "write", "write", "start", "start", "start",
            "gate", "verify"
        ]
    );
    // Each member restores the same snapshot with its own name and the new token.
    for s in &p.steps {
        if let Step::RestoreData {
            token,
            initial_cluster,
            ..
        } = &s.step
        {
            assert_eq!(token, &format!("main-restored-{STAMP}"));
            assert_eq!(initial_cluster, &hostfiles::Initial::bootstrap(&d).cluster);
        }
    }
    assert!(p.steps.iter().any(|s| matches!(
        s.step,
        Step::VerifyRestore {
            revision: Some(1_000_001_000),
            content: Some(_)
        }
    )));
    crate::plan_snapshot!("restore-three-members", &p, &d);
}

#[test]
fn a_restored_members_token_is_kept_by_later_plans() {
    // After a restore, each member's config names the new token; plan reads
    // the initial-* settings back from a member with data and changes nothing.
    let (d, l) = running(["3.5.30"; 3]);
    let mut req = request(Some(1000), Some(manifest(1000)));
    req.allow_data_loss = true;
    let p = restore::build(&d, &l, &req);
    let mut after = l.clone();
    for s in &p.steps {
        if let Step::WriteFiles { member, files } = &s.step
            && let Some(HostState::Reached(f)) = after.hosts.get_mut(member)
        {
            for file in files {
                for slot in &mut f.files {
                    if slot.0 == file.path {
                        slot.1 = Some(file.after.clone());
                    }
                }
            }
            f.started_config = Some(etcdplan::config::hash(&files[0].after));
            f.data = DataDir::Member;
        }
    }
    let later = plan_for(&d, &after);
    assert!(later.is_empty(), "{:?}", later.changes);
}

#[test]
fn a_restore_that_stopped_half_way_blocks_plan_and_says_how_to_go_back() {
    let d = common::desired_with(3, "");
    let stopped = HostSpec {
        running: false,
        ..on("3.5.30")
    };
    let mut l = live(&d, &[stopped.clone(), stopped.clone(), stopped], None);
    for name in ["etcd-1", "etcd-2"] {
        if let Some(HostState::Reached(f)) = l
            .hosts
            .iter_mut()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, h)| h)
        {
            f.restore_pending = Some(format!("{STAMP}\tmain-restored-{STAMP}"));
        }
    }
    let p = plan_for(&d, &l);
    assert!(!p.applicable);
    let b = &p.blockers[0];
    assert!(
        b.message.contains(&format!(
            "a restore started at {STAMP} did not finish: etcd-1, etcd-2 have"
        )),
        "{}",
        b.message
    );
    assert!(b.help.contains("etcdplan restore SNAPSHOT"), "{}", b.help);
    assert!(
        b.help.contains(&format!(
            "10.0.0.13:/var/lib/etcd/member.restored-aside-{STAMP}"
        )),
        "{}",
        b.help
    );
}

/// Walks a plan of the one step `VerifyRestore` over the fakes.
async fn verify_on_fakes(
    fake: &etcdplan::io::fake::FakeCluster,
    d: &etcdplan::config::Desired,
    revision: Option<i64>,
    content: Option<ContentDigest>,
) -> Result<etcdplan::execute::Report, etcdplan::execute::ApplyError> {
    use etcdplan::plan::PlannedStep;
    let hosts = fake.hosts(d);
    let step = Step::VerifyRestore { revision, content };
    let mut p = restore::build(
        d,
        &etcdplan::observe::observe(d, &hosts, fake, &Default::default()).await,
        &{
            let mut r = request(None, None);
            r.allow_data_loss = true;
            r
        },
    );
    p.steps = vec![PlannedStep {
        index: 0,
        description: step.describe(),
        disruptive: false,
        after: Vec::new(),
        step,
    }];
    let stop = std::sync::atomic::AtomicBool::new(false);
    let ctx = etcdplan::execute::Context {
        desired: d,
        hosts: &hosts,
        etcd: fake,
        deadlines: etcdplan::execute::Deadlines::default(),
        advertised: Vec::new(),
        stop: &stop,
        tolerates: p.tolerates(),
        secrets: Default::default(),
    };
    etcdplan::execute::apply(&p, &ctx, &mut |_| {}).await
}

#[tokio::test]
async fn the_verification_compares_revision_and_content() -> Result<(), Box<dyn std::error::Error>>
{
    let d = common::desired_with(3, "");
    let fake = etcdplan::io::fake::FakeCluster::running(&d, "3.5.30", 0);
    fake.put("a/1", "one");
    fake.put("a/2", "two");
    let ep = d.members[0].client_url(&d.tls);
    let (digest, rev) =
        etcdplan::backup::content_digest(&fake, &ep, 0, std::time::Duration::from_secs(5)).await?;

    // The restored revision reached and the same keys and values: verified.
    verify_on_fakes(&fake, &d, Some(rev), Some(digest.clone())).await?;

    // Other content at that revision: refused, naming both digests' key counts.
    let other = ContentDigest {
        sha256: "00".repeat(32),
        keys: 5,
    };
    let e = verify_on_fakes(&fake, &d, Some(rev), Some(other))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("is not the manifest's (5 keys"), "{e}");

    // A revision behind the snapshot's plus the bump: refused.
    let e = verify_on_fakes(&fake, &d, Some(rev + 1_000), None)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains(&format!(
            "its revision is {rev}, not the snapshot's plus the bump ({})",
            rev + 1_000
        )),
        "{e}"
    );
    Ok(())
}
