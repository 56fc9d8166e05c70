//! End to end on real etcd 3.5 (Debian sid's 3.5.30, uploaded by etcdplan)
//! over ssh: a NOSPACE alarm raised by a small quota is repaired by the plan
//! (compaction, each member defragmented with the leader last, the alarm
//! disarmed, a test write) with no acknowledged value lost; and when the
//! backend is really full of live data the repair stops at the disarm until
//! the quota is raised in the etcdfile.

mod harness;

use std::process::Output;

use harness::fill::{Backend, Kv, alarms, backends, mib, value};
use harness::release::etcd_3_5_30_or_skip;
use harness::testbed::{Testbed, up_or_skip};
use harness::text;

/// Where the members' binary lives: per host (the test bed's hosts share /usr).
const BIN: &str = "/var/lib/etcdplan/bin/etcd";

/// Small enough to fill in seconds, large enough for 3.5's bootstrap.
const QUOTA: &str = "16MiB";

/// Fill values: 64 KiB each.
const VALUE: usize = 64 * 1024;

fn etcdfile(tb: &Testbed, source: &str, quota: &str) -> String {
    tb.etcdfile(
        "nospace",
        &format!(
            "binary = \"{BIN}\"\nbinary_source = \"{source}\"\nquota_backend_bytes = \"{quota}\"\n\
auto_compaction_mode = \"revision\"\nauto_compaction_retention = \"10\"\n"
        ),
        &tb.all(),
        &[],
    )
    .replacen(
        "name = \"nospace\"\n",
        "name = \"nospace\"\nversion = \"3.5.30\"\n",
        1,
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "etcdplan failed:\n{}", text(&out));
    text(&out)
}

fn endpoints(tb: &Testbed) -> Vec<String> {
    tb.client_endpoints(&tb.all())
}

/// A 3-member 3.5.30 cluster with the small quota, or None (skipped).
fn bootstrap() -> Option<(Testbed, String)> {
    let tb = up_or_skip(3)?;
    let source = etcd_3_5_30_or_skip()?.display().to_string();
    ok(tb.etcdplan(&etcdfile(&tb, &source, QUOTA), &["apply", "--auto-approve"]));
    Some((tb, source))
}

/// `s` without whitespace or miette's frame, to find words it wrapped.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

/// The plan's numbered steps, in order, without their numbers.
fn order(plan: &str) -> Vec<String> {
    plan.lines()
        .skip_while(|l| l.trim() != "Order:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.trim().split_once(". ").map(|(_, s)| s.to_owned()))
        .collect()
}

/// The position of the first step that starts with `prefix`.
fn step(steps: &[String], prefix: &str) -> usize {
    // A restart's write folded in: `write 1 file and restart etcd-1`.
    steps
        .iter()
        .position(|s| s.starts_with(prefix) || s.contains(&format!(" and {prefix}")))
        .unwrap_or_else(|| panic!("no step {prefix:?} in {steps:#?}"))
}

/// The index (0-based, = etcd-(i+1)) of the leader.
fn leader(figures: &[Backend]) -> usize {
    figures
        .iter()
        .position(Backend::is_leader)
        .unwrap_or_else(|| panic!("no leader in {figures:?}"))
}

/// Asserts the NOSPACE repair's plan: the alarm named, each member's
/// defragmentation with its figures against the quota, the leader last
/// after a leader move, then the disarm and the test write.
fn assert_repair_plan(plan: &str, leader: usize) -> Vec<String> {
    let steps = order(plan);
    assert!(plan.contains("NOSPACE"), "{plan}");
    assert!(plan.contains("of its 16.0 MiB quota"), "{plan}");
    let compact = step(
        &steps,
        "compact the history to the current revision less 10",
    );
    let lead = format!("etcd-{}", leader + 1);
    let mut defrags = Vec::new();
    for i in 1..=3 {
        let d = step(&steps, &format!("defragment etcd-{i} (backend "));
        assert!(
            d > compact,
            "defragmented before the compaction: {steps:#?}"
        );
        assert_eq!(
            steps.get(d + 1).map(String::as_str),
            Some(format!("wait until etcd-{i} healthy").as_str()),
            "{steps:#?}"
        );
        defrags.push(d);
    }
    let last = step(&steps, &format!("defragment {lead} "));
    assert_eq!(
        Some(&last),
        defrags.iter().max(),
        "leader not last: {steps:#?}"
    );
    let moved = step(&steps, &format!("move leader {lead} → "));
    assert!(
        moved < last
            && moved
                > defrags
                    .iter()
                    .copied()
                    .filter(|d| *d != last)
                    .max()
                    .unwrap_or(0),
        "leader moved at the wrong time: {steps:#?}"
    );
    let disarm = step(
        &steps,
        "disarm the NOSPACE alarm once every member's backend is below 90% of its 16.0 MiB quota",
    );
    assert!(disarm > last, "{steps:#?}");
    let write = step(&steps, "write and delete a test key");
    assert_eq!(write, disarm + 1, "{steps:#?}");
    steps
}

/// The overwritten history fills the backend; the plan compacts it away,
/// defragments every member (leader last) and disarms: nothing acknowledged
/// is lost, every backend shrank, and the plan after is empty.
#[test]
fn a_nospace_alarm_from_history_is_repaired_by_the_plan_and_nothing_is_lost() {
    let Some((tb, source)) = bootstrap() else {
        return;
    };
    let file = etcdfile(&tb, &source, QUOTA);
    let eps = endpoints(&tb);
    let mut kv = Kv::connect(&eps);

    // Keys that must survive, then the history that fills the backend.
    let mut keep = std::collections::BTreeMap::new();
    for i in 0..20 {
        let k = format!("keep/{i}");
        let v = value(&k, 100);
        kv.put(&k, v.clone())
            .unwrap_or_else(|e| panic!("put {k}: {e}"));
        keep.insert(k, v);
    }
    let filled = kv.overwrite_until_refused("fill", 8, VALUE, 2000);
    eprintln!(
        "filled: {} puts acknowledged, stopped by {:?}",
        filled.puts, filled.stopped_by
    );
    let stopped = filled.stopped_by.clone().unwrap_or_default();
    assert!(
        stopped.contains("database space exceeded"),
        "the fill ended without NOSPACE: {stopped:?} after {} puts",
        filled.puts
    );
    let raised = alarms(&eps[0]);
    assert!(
        raised.iter().any(|a| a.contains("NOSPACE")),
        "alarm list: {raised:?}"
    );
    let refused = harness::etcdctl(&eps[1], &["put", "probe", "x"]);
    assert!(
        !refused.status.success() && text(&refused).contains("database space exceeded"),
        "{}",
        text(&refused)
    );
    let before = backends(&eps);
    for (i, b) in before.iter().enumerate() {
        eprintln!(
            "before: etcd-{}: dbSize {}, in use {}{}",
            i + 1,
            mib(b.db_size),
            mib(b.in_use),
            if b.is_leader() { " (leader)" } else { "" }
        );
    }

    let plan = ok(tb.etcdplan(&file, &["plan"]));
    eprintln!("{plan}");
    let steps = assert_repair_plan(&plan, leader(&before));
    // The figures in the plan are each member's own.
    let now = backends(&eps);
    for (i, b) in now.iter().enumerate() {
        let planned = &steps[step(&steps, &format!("defragment etcd-{} ", i + 1))];
        eprintln!(
            "etcd-{}: measured dbSize {} / plan says {planned:?}",
            i + 1,
            mib(b.db_size)
        );
    }

    let applied = ok(tb.etcdplan(&file, &["apply", "--auto-approve"]));
    eprintln!("{applied}");

    let after_alarms = alarms(&eps[0]);
    assert!(after_alarms.is_empty(), "alarms after: {after_alarms:?}");
    kv.put("after/probe", b"ok".to_vec())
        .unwrap_or_else(|e| panic!("put after the repair: {e}"));
    let after = backends(&eps);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        eprintln!(
            "etcd-{}: dbSize {} → {} (in use {} → {})",
            i + 1,
            mib(b.db_size),
            mib(a.db_size),
            mib(b.in_use),
            mib(a.in_use)
        );
        assert!(
            a.db_size < b.db_size,
            "etcd-{}: dbSize did not drop: {} → {}",
            i + 1,
            b.db_size,
            a.db_size
        );
    }
    // Only history was compacted: every acknowledged value is there, read
    // through each member.
    for ep in &eps {
        let mut one = Kv::connect(std::slice::from_ref(ep));
        assert_eq!(one.lost(&keep), Vec::<String>::new(), "keep/* via {ep}");
        let (lost, refused_applied) = filled.lost(&mut one);
        assert_eq!(lost, Vec::<String>::new(), "fill/* via {ep}");
        eprintln!("via {ep}: the put refused with NOSPACE was applied: {refused_applied}");
    }
    let out = tb.etcdplan(&file, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Live data fills the backend: compaction cannot free it, so the plan says
/// so and proposes a larger quota, and the apply stops at the disarm with
/// the alarm still raised and nothing lost; raising quota_backend_bytes
/// restarts the members with it, then disarms.
#[test]
fn a_nospace_alarm_from_live_data_waits_for_a_larger_quota() {
    let Some((tb, source)) = bootstrap() else {
        return;
    };
    let file = etcdfile(&tb, &source, QUOTA);
    let eps = endpoints(&tb);
    let mut kv = Kv::connect(&eps);
    let filled = kv.add_until_refused("live", VALUE, 2000);
    eprintln!(
        "filled: {} puts acknowledged, stopped by {:?}",
        filled.puts, filled.stopped_by
    );
    assert!(
        filled
            .stopped_by
            .as_deref()
            .is_some_and(|s| s.contains("database space exceeded")),
        "{:?}",
        filled.stopped_by
    );
    assert!(alarms(&eps[0]).iter().any(|a| a.contains("NOSPACE")));
    let before = backends(&eps);
    for (i, b) in before.iter().enumerate() {
        eprintln!(
            "before: etcd-{}: dbSize {}, in use {}",
            i + 1,
            mib(b.db_size),
            mib(b.in_use)
        );
    }

    let plan = ok(tb.etcdplan(&file, &["plan"]));
    eprintln!("{plan}");
    assert!(plan.contains("compaction may not free enough"), "{plan}");
    assert!(plan.contains("quota_backend_bytes"), "{plan}");
    assert_repair_plan(&plan, leader(&before));

    let out = tb.etcdplan(&file, &["apply", "--auto-approve"]);
    let t = text(&out);
    eprintln!("{t}");
    assert!(!out.status.success(), "the apply went through: {t}");
    // miette wraps the error to the terminal: compare without blanks.
    let flat = squash(&t);
    assert!(
        flat.contains(&squash("cannot disarm the NOSPACE alarm")),
        "{t}"
    );
    assert!(
        (1..=3).any(|i| flat.contains(&squash(&format!("etcd-{i} is still full")))),
        "no member named: {t}"
    );
    assert!(alarms(&eps[0]).iter().any(|a| a.contains("NOSPACE")));
    for ep in &eps {
        let mut one = Kv::connect(std::slice::from_ref(ep));
        let (lost, refused_applied) = filled.lost(&mut one);
        assert_eq!(lost, Vec::<String>::new(), "live/* via {ep}");
        eprintln!("via {ep}: the put refused with NOSPACE was applied: {refused_applied}");
    }

    // A larger quota: restarts with it, then the disarm.
    let larger = etcdfile(&tb, &source, "64MiB");
    let plan = ok(tb.etcdplan(&larger, &["plan"]));
    eprintln!("{plan}");
    let steps = order(&plan);
    let disarm = step(&steps, "disarm the NOSPACE alarm");
    for i in 1..=3 {
        let r = step(&steps, &format!("restart etcd-{i}"));
        assert!(r < disarm, "restart after the disarm: {steps:#?}");
    }
    // The restarts change the leader (the leader's, last, hands over as it
    // stops, to the member restarted first: its connection is the oldest):
    // the defragmentations must put that member last, not the leader the
    // plan observed.
    let compact = step(&steps, "compact the history");
    let moved_to = steps[..compact].iter().find_map(|s| {
        s.split_once("restart ")?
            .1
            .split(' ')
            .next()
            .map(str::to_owned)
    });
    let last = steps[compact..].iter().rev().find_map(|s| {
        s.strip_prefix("defragment ")?
            .split_once(' ')
            .map(|(m, _)| m.to_owned())
    });
    // Checked at the end, after what the apply must do anyway.
    let leader_last = match &moved_to {
        Some(to) if last.as_deref() != Some(to.as_str()) => Some(format!(
            "the leader after the restarts ({to}) is not defragmented last ({last:?} is): {steps:#?}"
        )),
        _ => None,
    };
    let applied = ok(tb.etcdplan(&larger, &["apply", "--auto-approve"]));
    eprintln!("{applied}");
    assert!(alarms(&eps[0]).is_empty());
    // A new client: the old one's connections died with the restarts.
    let mut kv = Kv::connect(&eps);
    kv.put("after/probe", b"ok".to_vec())
        .unwrap_or_else(|e| panic!("put after the quota raise: {e}"));
    for ep in &eps {
        let mut one = Kv::connect(std::slice::from_ref(ep));
        let (lost, refused_applied) = filled.lost(&mut one);
        assert_eq!(lost, Vec::<String>::new(), "live/* via {ep}");
        eprintln!("via {ep}: the put refused with NOSPACE was applied: {refused_applied}");
    }
    let out = tb.etcdplan(&larger, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(leader_last, None);
    assert!(
        !applied.contains("is not the leader now"),
        "a leader move before a defragmentation found another leader: {applied}"
    );
}
