//! Version changes against described live states: which passes, in which
//! order, what is uploaded, and what is refused. Pure: no etcd, no hosts.

mod common;

use common::versions::{release, running, v, wanting};

use std::path::PathBuf;

use common::{HostSpec, desired_from, live, text_with};
use etcdplan::config::Desired;
use etcdplan::diff::{self, Action};
use etcdplan::model::VersionSpec;
use etcdplan::observe::{Binary, HostState, Live};
use etcdplan::plan::{self, Plan, Step};
use etcdplan::render::{self, Style};

fn plan_with(d: &Desired, l: &Live, allow_downgrade: bool) -> Plan {
    plan::build(d, l, diff::diff_with(d, l, allow_downgrade))
}

fn kinds(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| &s.step)
        .map(Step::describe)
        .collect()
}

fn blocked(p: &Plan, needle: &str) {
    assert!(
        p.blockers.iter().any(|b| b.message.contains(needle)),
        "no blocker with {needle:?}: {:#?}",
        p.blockers
    );
    assert!(p.steps.is_empty() || p.cannot_apply().is_some());
}

#[test]
fn a_minor_upgrade_uploads_then_rolls_followers_first_and_checks_the_cluster_version() {
    let d = wanting("3.5.16", &["3.5.16"]);
    let l = running(&d, &["3.4.23"; 3], 0);
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let steps = kinds(&p);
    // Uploads first (one per host), then the snapshot, before any restart.
    let first_restart = steps.iter().position(|s| s.contains("restart"));
    let snapshot = steps.iter().position(|s| s.starts_with("take a snapshot"));
    let uploads: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.starts_with("upload etcd 3.5.16"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(uploads.len(), 3, "{steps:#?}");
    assert!(uploads.iter().all(|&u| Some(u) < snapshot), "{steps:#?}");
    assert!(snapshot < first_restart, "{steps:#?}");
    // Followers first, the leader (etcd-1) last (its stop hands over); each restart is
    // preceded by the binary switch and followed by a gate and a version check.
    let restarts: Vec<&String> = steps.iter().filter(|s| s.contains("restart")).collect();
    assert_eq!(
        restarts,
        [
            "restart etcd-2",
            "restart etcd-3",
            "restart etcd-1 (leader: etcd hands leadership over as it stops)"
        ]
    );
    for name in ["etcd-1", "etcd-2", "etcd-3"] {
        let r = steps
            .iter()
            .position(|s| s.split(" (").next() == Some(format!("restart {name}").as_str()))
            .unwrap_or_default();
        // The switch comes after the previous member's check (a running etcd
        // is not disturbed by it).
        let link = steps
            .iter()
            .position(|s| *s == format!("point {name}'s binary at etcd 3.5.16"))
            .unwrap_or_default();
        assert!(
            link < r && steps[link..r].iter().all(|s| !s.contains("restart")),
            "{steps:#?}"
        );
        assert_eq!(steps[r + 1], format!("wait until {name} healthy"));
        assert_eq!(steps[r + 2], format!("check {name} runs etcd 3.5.16"));
    }
    assert!(!steps.iter().any(|s| s.starts_with("move leader")));
    assert_eq!(
        steps.last().map(String::as_str),
        Some("wait until the cluster version is 3.5")
    );
    insta::assert_snapshot!(
        "upgrade-3.4-3.5-human",
        render::plan_human(&p, &d, "etcdfile.toml", Style::PLAIN)
    );
    insta::assert_snapshot!(
        "upgrade-3.4-3.5-json",
        serde_json::to_string_pretty(&p).unwrap_or_default()
    );
    // A restart with its phase and binary reads back as written.
    let text = serde_json::to_string(&p).unwrap_or_else(|e| panic!("{e}"));
    let back: Plan = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.changes, p.changes);
}

#[test]
fn two_minor_versions_are_two_passes_each_finished_before_the_next() {
    let d = wanting("3.6", &["3.6.5", "3.5.32", "3.5.16"]);
    let l = running(&d, &["3.4.23"; 3], 2);
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let steps = kinds(&p);
    // Pass 1 goes to 3.5.32 (the floor before 3.6), not the newer-looking 3.5.16.
    let checks: Vec<&String> = steps
        .iter()
        .filter(|s| s.starts_with("check ") || s.starts_with("wait until the cluster"))
        .collect();
    assert_eq!(
        checks,
        [
            "check etcd-1 runs etcd 3.5.32",
            "check etcd-2 runs etcd 3.5.32",
            "check etcd-3 runs etcd 3.5.32",
            "wait until the cluster version is 3.5",
            // Pass 1 moved the leadership to etcd-1: it restarts last now.
            "check etcd-2 runs etcd 3.6.5",
            "check etcd-3 runs etcd 3.6.5",
            "check etcd-1 runs etcd 3.6.5",
            "wait until the cluster version is 3.6",
        ]
    );
    // Both releases are uploaded up front; 3.5.16 is not (it is never run).
    assert_eq!(
        steps.iter().filter(|s| s.starts_with("upload")).count(),
        6,
        "{steps:#?}"
    );
    assert!(!steps.iter().any(|s| s.contains("3.5.16")));
    let passes: Vec<(usize, usize)> = p
        .changes
        .iter()
        .filter_map(|c| c.binary().map(|b| b.pass))
        .collect();
    assert_eq!(passes, [(1, 2), (1, 2), (1, 2), (2, 2), (2, 2), (2, 2)]);
    // A snapshot from the leader before each pass.
    let snapshots: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.starts_with("take a snapshot"))
        .map(|(i, _)| i)
        .collect();
    let second_pass = steps
        .iter()
        .position(|s| s == "wait until the cluster version is 3.5")
        .unwrap_or_default();
    assert_eq!(snapshots.len(), 2, "{steps:#?}");
    assert!(snapshots[1] > second_pass, "{steps:#?}");
    // The 3.5 → 3.6 notes reach the operator.
    assert!(
        p.notes
            .iter()
            .any(|n| n.starts_with("onto 3.6: 3.6 no longer serves clients on peer URLs")),
        "{:#?}",
        p.notes
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.starts_with("onto 3.5: 3.4 → 3.5 is not supported")),
        "{:#?}",
        p.notes
    );
}

#[test]
fn a_pass_without_its_release_is_refused_before_anything_runs() {
    let d = wanting("3.6", &["3.6.5"]);
    let l = running(&d, &["3.4.23"; 3], 0);
    let p = plan_with(&d, &l, false);
    blocked(&p, "passes through etcd 3.5 (3.5.32 or later)");
}

#[test]
fn a_half_done_upgrade_restarts_only_the_members_left() {
    let d = wanting("3.5.16", &["3.5.16"]);
    let mut l = running(&d, &["3.5.16", "3.4.23", "3.4.23"], 0);
    // etcd-1 was upgraded by the earlier apply: its host has the release.
    if let Some(HostState::Reached(f)) = l.hosts.values_mut().next() {
        f.installed.insert(v("3.5.16"), release("3.5.16").sha256);
    }
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let steps = kinds(&p);
    let restarts: Vec<&String> = steps.iter().filter(|s| s.contains("restart")).collect();
    assert_eq!(restarts, ["restart etcd-2", "restart etcd-3"]);
    // Only the two hosts without it get the upload.
    let uploads: Vec<&String> = steps.iter().filter(|s| s.starts_with("upload")).collect();
    assert_eq!(uploads.len(), 2, "{steps:#?}");
    assert!(!uploads.iter().any(|s| s.contains("etcd-1's")));
}

#[test]
fn an_upgraded_cluster_plans_nothing() {
    let d = wanting("3.5", &["3.5.16"]);
    let mut l = running(&d, &["3.5.16"; 3], 0);
    for h in l.hosts.values_mut() {
        if let HostState::Reached(f) = h {
            f.installed.insert(v("3.5.16"), release("3.5.16").sha256);
        }
    }
    let p = plan_with(&d, &l, false);
    assert!(p.is_empty(), "{:#?}", kinds(&p));
}

#[test]
fn without_binary_source_a_binary_already_on_the_hosts_is_rolled_onto() {
    // The operator upgraded the package: 3.5.16 is on disk, 3.4.23 runs.
    let d = wanting("3.5", &[]);
    let mut l = running(&d, &["3.4.23"; 3], 1);
    for h in l.hosts.values_mut() {
        if let HostState::Reached(f) = h {
            f.binary = Binary::Found {
                version: Some(v("3.5.16")),
            };
        }
    }
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let steps = kinds(&p);
    assert!(
        !steps
            .iter()
            .any(|s| s.starts_with("upload") || s.starts_with("point"))
    );
    assert_eq!(
        steps.iter().filter(|s| s.starts_with("check ")).count(),
        3,
        "{steps:#?}"
    );
    // And without it on disk, the member that lacks it is named.
    let l = running(&d, &["3.4.23"; 3], 1);
    let p = plan_with(&d, &l, false);
    blocked(&p, "etcd-1 needs etcd 3.5 (3.5.3 or later)");
}

#[test]
fn refused_version_changes_say_why_and_plan_nothing() {
    // Two minor versions at once is fine as passes, but a downgrade is not
    // without the flag, and a 3.5 → 3.4 downgrade needs 3.4.32+.
    let d = wanting("3.4.23", &["3.4.23"]);
    let l = running(&d, &["3.5.16"; 3], 0);
    blocked(&plan_with(&d, &l, false), "a downgrade");
    blocked(&plan_with(&d, &l, true), "3.4.32 or later");
    // The data-inconsistency releases.
    let d = wanting("3.5.1", &["3.5.1"]);
    let l = running(&d, &["3.4.23"; 3], 0);
    blocked(&plan_with(&d, &l, false), "inconsistent");
    // Too old a 3.5 before 3.6.
    let d = wanting("3.6", &["3.6.5"]);
    let l = running(&d, &["3.5.16"; 3], 0);
    blocked(&plan_with(&d, &l, false), "3.5.32");
}

#[test]
fn three_five_31_to_3_6_is_blocked_naming_the_floor() {
    // Only 3.5.31 and 3.6 at hand: nothing meets the floor.
    let d = wanting("3.6", &["3.6.14", "3.5.31"]);
    let l = running(&d, &["3.5.31"; 3], 0);
    let p = plan_with(&d, &l, false);
    blocked(&p, "3.6 needs 3.5.32 or newer on every member first");
    assert!(p.steps.is_empty(), "{:#?}", kinds(&p));
    // With only the release the members run (the test bed's 3.5.30): the same.
    let d = wanting("3.6", &["3.5.30"]);
    let l = running(&d, &["3.5.30"; 3], 0);
    blocked(
        &plan_with(&d, &l, false),
        "3.6 needs 3.5.32 or newer on every member first",
    );
}

#[test]
fn three_five_32_to_3_7_is_two_passes_and_3_6_10_to_3_7_is_blocked() {
    let d = wanting("3.7", &["3.7.1", "3.6.14"]);
    let l = running(&d, &["3.5.32"; 3], 1);
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let steps = kinds(&p);
    let gates: Vec<&String> = steps
        .iter()
        .filter(|s| s.starts_with("wait until the cluster") || s.starts_with("take a snapshot"))
        .collect();
    assert_eq!(gates.len(), 4, "{steps:#?}");
    assert!(
        gates[1].ends_with("3.6") && gates[3].ends_with("3.7"),
        "{gates:#?}"
    );
    assert!(
        steps.iter().any(|s| s == "check etcd-1 runs etcd 3.6.14")
            && steps.iter().any(|s| s == "check etcd-1 runs etcd 3.7.1"),
        "{steps:#?}"
    );
    assert!(
        p.notes.iter().any(|n| n.starts_with("onto 3.7:")),
        "{:#?}",
        p.notes
    );
    // Every member's v2 store is checked (member stopped) before the first
    // runs 3.6, and not again before 3.7.
    let v2: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.contains("check its v2 store"))
        .map(|(i, _)| i)
        .collect();
    let first_36 = steps
        .iter()
        .position(|s| s.starts_with("check ") && s.ends_with("3.6.14"))
        .unwrap_or_default();
    let first_restart = steps
        .iter()
        .position(|s| s.contains("restart "))
        .unwrap_or_default();
    assert_eq!(v2.len(), 3, "{steps:#?}");
    assert!(
        v2.iter().all(|&i| i < first_restart && i < first_36),
        "{steps:#?}"
    );
    assert!(p.steps.iter().filter(|s| s.step.disruptive()).count() > 6);

    // 3.6.10 → 3.7 with no newer 3.6 at hand: blocked, 3.6.11 named.
    let d = wanting("3.7", &["3.7.1"]);
    let l = running(&d, &["3.6.10"; 3], 0);
    blocked(
        &plan_with(&d, &l, false),
        "3.7 needs 3.6.11 or newer on every member first",
    );
    // With 3.6.14 at hand, it goes there first.
    let d = wanting("3.7", &["3.7.1", "3.6.14"]);
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let checks: Vec<String> = kinds(&p)
        .into_iter()
        .filter(|s| s.starts_with("check etcd-1"))
        .collect();
    assert_eq!(
        checks,
        [
            "check etcd-1 runs etcd 3.6.14",
            "check etcd-1 runs etcd 3.7.1"
        ]
    );
}

#[test]
fn a_3_6_member_beside_a_3_5_below_the_floor_blocks_all_but_the_repair() {
    // No version change asked: the mix blocks, both members named.
    let mut d = wanting("3.6", &[]);
    d.version = None;
    let l = running(&d, &["3.6.2", "3.5.33", "3.5.20"], 0);
    let p = plan_with(&d, &l, false);
    blocked(&p, "etcd-1 runs etcd 3.6.2 beside etcd-3 on 3.5.20");
    // The repair: the old 3.5 onto the floor first, then on to 3.6; the
    // member already on 3.6 is left alone in the first pass.
    let d = wanting("3.6", &["3.6.2", "3.5.33"]);
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let checks: Vec<String> = kinds(&p)
        .into_iter()
        .filter(|s| s.starts_with("check "))
        .collect();
    assert_eq!(
        checks,
        [
            "check etcd-3 runs etcd 3.5.33",
            "check etcd-2 runs etcd 3.6.2",
            "check etcd-3 runs etcd 3.6.2",
        ]
    );
    // Without a release that meets the floor: blocked, both named.
    let d = wanting("3.6", &["3.6.2"]);
    blocked(
        &plan_with(&d, &l, false),
        "etcd-1 runs etcd 3.6.2 beside etcd-3 on 3.5.20",
    );
}

#[test]
fn an_allowed_downgrade_rolls_onto_the_older_release() {
    let d = wanting("3.4.33", &["3.4.33"]);
    let l = running(&d, &["3.5.16"; 3], 0);
    let p = plan_with(&d, &l, true);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let steps = kinds(&p);
    assert_eq!(
        steps
            .iter()
            .filter(|s| s.starts_with("check ") && s.ends_with("3.4.33"))
            .count(),
        3
    );
    assert_eq!(
        steps.last().map(String::as_str),
        Some("wait until the cluster version is 3.4")
    );
}

#[test]
fn a_version_change_waits_for_a_healthy_cluster() {
    let d = wanting("3.5.16", &["3.5.16"]);
    let mut l = running(&d, &["3.4.23"; 3], 0);
    if let Some(c) = &mut l.cluster {
        c.members[2].status = Err("connection refused".into());
    }
    let p = plan_with(&d, &l, false);
    blocked(&p, "starts only from a healthy cluster");
}

/// A member that failed to come back on the new binary: the next plan retries
/// its start and says how to roll it back; with the old version in the file,
/// its binary is pointed back at the old release kept on its host.
#[test]
fn a_member_down_on_the_new_binary_can_be_rolled_back() {
    let d = wanting("3.5.16", &["3.5.16"]);
    let mut l = running(&d, &["3.4.23"; 3], 0);
    let mark_down = |l: &mut Live| {
        if let Some(c) = &mut l.cluster {
            c.members[1].status = Err("connection refused".into());
        }
        if let Some(HostState::Reached(f)) = l.hosts.values_mut().nth(1) {
            f.service = etcdplan::service::ServiceState::Stopped;
            f.listener = None;
            f.binary = Binary::Found {
                version: Some(v("3.5.16")),
            };
            f.installed.insert(v("3.5.16"), release("3.5.16").sha256);
            f.installed.insert(v("3.4.23"), "kept".into());
        }
    };
    mark_down(&mut l);
    let p = plan_with(&d, &l, false);
    let note = p
        .notes
        .iter()
        .find(|n| n.contains("etcd-2 is down"))
        .unwrap_or_else(|| panic!("no rollback note: {:#?}", p.notes));
    assert!(note.contains("version = \"3.4.23\""), "{note}");
    assert!(note.contains("/usr/local/bin/etcd-3.4.23"), "{note}");
    // The start is a retry on 3.5.16; no other member is touched.
    assert!(
        p.changes.iter().all(|c| c.member.as_str() == "etcd-2"),
        "{:#?}",
        p.changes
    );
    assert_eq!(p.changes[0].action(), Action::Start);

    // Rolled back in the file: etcd-2 goes back to 3.4.23, nothing uploaded.
    let mut d = wanting("3.4.23", &["3.4.23"]);
    if let Some(src) = &mut d.etcd.binary_source {
        src.releases[0].sha256 = "kept".into();
    }
    let mut l = running(&d, &["3.4.23"; 3], 0);
    mark_down(&mut l);
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    assert_eq!(
        kinds(&p),
        [
            "point etcd-2's binary at etcd 3.4.23",
            "start etcd-2",
            "wait until etcd-2 healthy"
        ]
    );
}

#[test]
fn a_new_cluster_gets_the_release_before_it_starts() {
    let d = wanting("3.4.23", &["3.4.23"]);
    let specs = vec![HostSpec::empty(); 3];
    let l = live(&d, &specs, None);
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let steps = kinds(&p);
    for name in ["etcd-1", "etcd-2", "etcd-3"] {
        let up = steps.iter().position(|s| {
            *s == format!("upload etcd 3.4.23 to {name}'s host (sha256 000000000000)")
        });
        let link = steps
            .iter()
            .position(|s| *s == format!("point {name}'s binary at etcd 3.4.23"));
        let start = steps.iter().position(|s| *s == format!("start {name}"));
        assert!(up.is_some() && up < link && link < start, "{steps:#?}");
    }
    // The version spec is what [cluster] version says.
    assert_eq!(d.version, VersionSpec::parse("3.4.23").ok());
}

#[test]
fn an_experimental_key_blocks_the_way_to_3_7_at_its_line() {
    // A 3.6 cluster whose etcdfile keeps an experimental key and asks for 3.7.
    let text = text_with(
        3,
        "[etcd.extra]\nexperimental-compaction-batch-limit = 1000\n",
    )
    .replacen(
        "name = \"main\"\n",
        "name = \"main\"\nversion = \"3.7\"\n",
        1,
    );
    let ctx = etcdplan::config::Context {
        base_dir: PathBuf::from("/srv/etcdplan"),
        home: None,
        file_hash: etcdplan::config::hash(&text),
        ..Default::default()
    };
    let out = match etcdplan::config::parse("etcdfile.toml", text.clone(), &ctx) {
        Err(etcdplan::config::ConfigError::Invalid { problems, .. }) => {
            etcdplan::config::render_plain(&problems, 100)
        }
        other => panic!("accepted: {:?}", other.map(|_| ())),
    };
    // The line is shown with the key marked.
    assert!(
        out.contains("experimental-compaction-batch-limit = 1000"),
        "{out}"
    );
    assert!(
        out.contains("experimental-compaction-batch-limit")
            && out.contains("compaction-batch-limit instead"),
        "{out}"
    );
}

#[test]
fn a_member_with_v2_on_blocks_the_way_to_3_6() {
    let d = wanting("3.6", &["3.6.14", "3.5.33"]);
    let mut l = running(&d, &["3.5.33"; 3], 0);
    let cfg = d.members[1].config_file();
    if let Some(HostState::Reached(f)) = l.hosts.get_mut(&d.members[1].name)
        && let Some((_, Some(t))) = f.files.iter_mut().find(|(p, _)| *p == cfg)
    {
        *t = t.replace("enable-v2: false", "enable-v2: true");
    }
    blocked(
        &plan_with(&d, &l, false),
        "etcd-2 runs with enable-v2: true",
    );
}

#[test]
fn each_pass_restarts_a_member_with_the_config_of_the_release_it_starts() {
    let extra = "[etcd.extra]\nexperimental-compaction-batch-limit = 1000\nexperimental-stop-grpc-service-on-defrag = true\nfeature-gates = \"SetMemberLocalAddr=true\"\n";
    let text = text_with(
        3,
        "binary = \"/usr/local/bin/etcd\"\nbinary_source = \"/srv/releases\"\n",
    )
    .replacen(
        "name = \"main\"\n",
        "name = \"main\"\nversion = \"3.6\"\n",
        1,
    )
    .replacen("\n[hosts]", &format!("{extra}\n[hosts]"), 1);
    let mut d = desired_from(&text);
    if let Some(src) = &mut d.etcd.binary_source {
        src.releases = vec![release("3.6.5"), release("3.5.32")];
    }
    let l = running(&d, &["3.4.23"; 3], 2);
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let config = |pass: usize| {
        let c = p
            .changes
            .iter()
            .find(|c| c.member.as_str() == "etcd-1" && c.binary().is_some_and(|b| b.pass.0 == pass))
            .unwrap_or_else(|| panic!("no pass {pass} for etcd-1"));
        c.files
            .iter()
            .find(|f| f.path.ends_with("etcd.conf.yml"))
            .unwrap_or_else(|| panic!("pass {pass} writes no config: {:#?}", c.files))
            .clone()
    };
    let (first, second) = (config(1), config(2));
    // Pass 1 starts 3.5: the experimental names, a key 3.4 did not have.
    let before = first.before.clone().unwrap_or_default();
    assert!(!before.contains("stop-grpc"), "{before}");
    assert!(
        first
            .after
            .contains("experimental-stop-grpc-service-on-defrag: true\n"),
        "{}",
        first.after
    );
    assert!(
        first
            .after
            .contains("experimental-compaction-batch-limit: 1000\n")
    );
    assert!(first.after.contains("enable-v2: false\n"));
    assert!(!first.after.contains("feature-gates"));
    // Pass 2 starts 3.6 from what pass 1 wrote: 3.6's names, no v2.
    assert_eq!(second.before.as_deref(), Some(first.after.as_str()));
    assert!(
        second
            .after
            .contains("feature-gates: 'CompactHashCheck=true,InitialCorruptCheck=true,SetMemberLocalAddr=true,StopGRPCServiceOnDefrag=true'\n"),
        "{}",
        second.after
    );
    assert!(second.after.contains("\ncompaction-batch-limit: 1000\n"));
    assert!(!second.after.contains("experimental-") && !second.after.contains("enable-v2"));
    // Both are written, each before its pass's restart.
    let writes = kinds(&p)
        .into_iter()
        .filter(|s| s.starts_with("write ") && s.ends_with(" for etcd-1"))
        .count();
    assert_eq!(writes, 2, "{:#?}", kinds(&p));
    // The gate 3.5 has no name for is said, member by member.
    for m in ["etcd-1", "etcd-2", "etcd-3"] {
        let note = format!(
            "{m}: `feature-gates: SetMemberLocalAddr` is left out of its etcd config: etcd 3.5 (the release it starts in pass 1 of 2) has no such feature gate"
        );
        assert!(p.notes.contains(&note), "{note} not in {:#?}", p.notes);
    }
}

#[test]
fn a_3_5_below_its_landing_floor_beside_3_4_is_repaired_by_the_pass_onto_3_5() {
    // Someone started etcd-2 on 3.5.1 by hand beside two 3.4 members.
    let mut d = wanting("3.5", &[]);
    d.version = None;
    let l = running(&d, &["3.4.23", "3.5.1", "3.4.23"], 0);
    blocked(
        &plan_with(&d, &l, false),
        "etcd-2 runs etcd 3.5.1 beside etcd-1 on 3.4.23: a cluster may mix 3.4 and 3.5 only while every 3.5 member runs 3.5.3 or newer",
    );
    // The pass onto 3.5 (3.5.3 or later) is its repair, etcd-2 included.
    let d = wanting("3.5", &["3.5.30"]);
    let p = plan_with(&d, &l, false);
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    let checks: Vec<String> = kinds(&p)
        .into_iter()
        .filter(|s| s.starts_with("check "))
        .collect();
    assert_eq!(checks.len(), 3, "{checks:#?}");
    assert!(checks.iter().all(|c| c.ends_with("3.5.30")), "{checks:#?}");
}
