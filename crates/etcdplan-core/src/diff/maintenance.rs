//! Keeping a running cluster healthy: a raised NOSPACE alarm becomes its
//! repair (every voter defragmented after a compaction, then the alarm
//! disarmed), `[maintenance] defrag_rule` becomes defragmentations, and a
//! CORRUPT alarm stops every change but the replacement of the member that
//! raised it (etcd-ops R6.2–R6.5).

use super::member::departing;
use super::{Blocker, Change, ChangeKind, DefragCause};
use crate::config::Desired;
use crate::live::{LiveCluster, LiveMember};
use crate::model::{ByteSize, DEFAULT_QUOTA, DbFigures, MemberId};

/// The share of the quota above which disarming NOSPACE only runs into the
/// same wall (etcd-defrag's `--disalarm-threshold` default).
pub const DISARM_BELOW: f64 = 0.9;

/// The quota every member enforces once the plan's restarts are done: the
/// etcdfile's (0 is etcd's default of 2 GiB).
#[must_use]
pub fn planned_quota(d: &Desired) -> u64 {
    match d.etcd.quota_backend_bytes.0 {
        0 => DEFAULT_QUOTA,
        q => q,
    }
}

/// The figures in words: "backend 8.0 MiB of its 8.0 MiB quota (100%), 6.1
/// MiB in use".
#[must_use]
pub fn describe_figures(f: &DbFigures) -> String {
    format!(
        "backend {} of its {} quota ({:.0}%), {} in use",
        ByteSize(f.db_size).human(),
        ByteSize(f.db_quota).human(),
        f.quota_usage() * 100.0,
        ByteSize(f.db_size_in_use).human()
    )
}

/// Whether the cluster reports a raised alarm of this kind.
#[must_use]
pub fn raised(c: &LiveCluster, kind: &str) -> bool {
    c.alarms.iter().any(|a| a.kind == kind)
}

/// Adds the maintenance the live cluster needs to `changes`: the NOSPACE
/// repair, or the defragmentations the rule asks for; under a CORRUPT alarm,
/// the replacement of the member that raised it instead of every other change.
pub(super) fn plan(
    d: &Desired,
    c: &LiveCluster,
    changes: &mut Vec<Change>,
    blockers: &mut Vec<Blocker>,
    notes: &mut Vec<String>,
) {
    if corrupt(d, c, changes, blockers, notes) {
        return;
    }
    if raised(c, "NOSPACE") {
        nospace(d, c, changes, notes);
    } else if let Some(rule) = &d.maintenance.defrag_rule {
        by_rule(rule, c, changes, notes);
    }
}

/// `[maintenance] defrag_rule`: a defragmentation of each voter for which
/// it holds, with the figures that made it true. Learners cannot be
/// defragmented (etcd #21740); members that leave, or that are being
/// defragmented already, are left alone.
fn by_rule(
    rule: &crate::config::DefragRule,
    c: &LiveCluster,
    changes: &mut Vec<Change>,
    notes: &mut Vec<String>,
) {
    for lm in &c.members {
        let (Some(name), Some(f)) = (lm.name.member_name(), lm.db_figures()) else {
            continue;
        };
        match rule.holds(&f) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                notes.push(format!(
                    "defrag_rule could not be evaluated for {name}: {e}"
                ));
                continue;
            }
        }
        if lm.is_learner {
            notes.push(format!(
                "defrag_rule holds for {name}, a learner: etcd refuses to defragment learners (etcd #21740), so it is skipped"
            ));
            continue;
        }
        if changes
            .iter()
            .any(|ch| ch.member == name && ch.departing().is_some())
            || defragmenting(lm, notes)
        {
            continue;
        }
        let mut ch = Change::new(
            name,
            ChangeKind::Defragment {
                figures: f,
                cause: DefragCause::Rule,
            },
            format!(
                "defrag_rule `{}` holds: {} (the file takes {:.0}% of its {} quota)",
                rule.text(),
                rule.explain(&f),
                f.quota_usage() * 100.0,
                ByteSize(f.db_quota).human()
            ),
        );
        ch.id = Some(lm.id);
        ch.leader = c.leader() == Some(lm.id);
        changes.push(ch);
    }
}

/// A CORRUPT alarm: no change runs but the replacement of the member that
/// raised it. Returns whether one is raised.
fn corrupt(
    d: &Desired,
    c: &LiveCluster,
    changes: &mut Vec<Change>,
    blockers: &mut Vec<Blocker>,
    notes: &mut Vec<String>,
) -> bool {
    let mut ids: Vec<MemberId> = c
        .alarms
        .iter()
        .filter(|a| a.kind == "CORRUPT")
        .map(|a| a.member)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return false;
    }
    let mut keep = Vec::new();
    for id in &ids {
        let lm = c.members.iter().find(|m| m.id == *id);
        let name = lm.and_then(|m| m.name.member_name());
        let Some((lm, m)) = lm.zip(name.and_then(|n| d.member(&n))) else {
            blockers.push(Blocker {
                member: None,
                message: format!(
                    "member {id} raised the CORRUPT alarm and is not a member of the etcdfile: etcdplan cannot replace it"
                ),
                help: "compare the members' hashes (`etcdplan status`), remove the corrupt member by hand (`etcdctl member remove`) and disarm the alarm (`etcdctl alarm disarm`) once the others agree; nothing was changed".into(),
            });
            continue;
        };
        let already = changes
            .iter()
            .position(|ch| ch.member == m.name && matches!(ch.kind, ChangeKind::Replace { .. }));
        let replace = match already {
            Some(i) => changes[i].clone(),
            None => {
                let dep = departing(d, lm, c.leader());
                let leader = dep.leader;
                let mut ch = Change::new(
                    m.name.clone(),
                    ChangeKind::Replace {
                        departing: dep,
                        binary: None,
                    },
                    "it raised the CORRUPT alarm (its data differs from the other members'): removed, its data moved aside, and added back fresh from the others",
                );
                ch.id = Some(lm.id);
                ch.leader = leader;
                ch
            }
        };
        keep.push(replace);
    }
    let others = changes
        .iter()
        .filter(|ch| !keep.iter().any(|k| k.member == ch.member))
        .count();
    if others > 0 {
        notes.push(format!(
            "{others} other change{} wait{} until the corrupt member is replaced: a CORRUPT alarm stops every change but that one",
            if others == 1 { "" } else { "s" },
            if others == 1 { "s" } else { "" }
        ));
    }
    if !keep.is_empty() {
        notes.push(
            "etcd keeps the CORRUPT alarm raised after the replacement, and etcdplan never disarms it: once `etcdplan status` shows the members' hashes agree, disarm it with `etcdctl alarm disarm`".into(),
        );
    }
    *changes = keep;
    true
}

/// The NOSPACE repair: every voter that answers is defragmented (after a
/// compaction, the planner's); learners cannot be (etcd #21740).
fn nospace(d: &Desired, c: &LiveCluster, changes: &mut Vec<Change>, notes: &mut Vec<String>) {
    let quota = planned_quota(d);
    let mut wall = Vec::new();
    for lm in &c.members {
        let Some(name) = lm.name.member_name() else {
            continue;
        };
        if lm.is_learner {
            notes.push(format!(
                "{name} is a learner: etcd refuses to defragment learners (etcd #21740), so its backend keeps its free pages"
            ));
            continue;
        }
        let Some(f) = lm.db_figures() else {
            notes.push(format!(
                "{name} does not answer: it is not defragmented by this repair, and the alarm is disarmed only once every member's backend is below {:.0}% of its quota",
                DISARM_BELOW * 100.0
            ));
            continue;
        };
        // Against the quota after the plan: a raise in the etcdfile is
        // rolled out before the alarm is disarmed.
        #[allow(clippy::cast_precision_loss)]
        if f.db_size_in_use as f64 >= DISARM_BELOW * quota as f64 {
            wall.push(format!(
                "{name} has {} in use of a {} quota",
                ByteSize(f.db_size_in_use).human(),
                ByteSize(quota).human()
            ));
        }
        if changes
            .iter()
            .any(|ch| ch.member == name && ch.departing().is_some())
        {
            continue;
        }
        if defragmenting(lm, notes) {
            continue;
        }
        let mut ch = Change::new(
            name,
            ChangeKind::Defragment {
                figures: f,
                cause: DefragCause::NoSpace,
            },
            format!(
                "the NOSPACE alarm is raised; {}: a defragmentation after the compaction gives the space back before the alarm is disarmed",
                describe_figures(&f)
            ),
        );
        ch.id = Some(lm.id);
        ch.leader = c.leader() == Some(lm.id);
        changes.push(ch);
    }
    notes.push(
        "etcd refuses lease grants and puts while NOSPACE is raised, so this repair cannot take the lock in etcd: it holds a lock file on every member's host instead".into(),
    );
    if !wall.is_empty() {
        notes.push(format!(
            "compaction may not free enough: {} (in use counts the history the compaction drops, so how much it frees shows only after it); disarming into the same wall is never done: the disarm step stops the apply unless every backend is below {:.0}% of its quota by then. To be sure, raise quota_backend_bytes in the etcdfile (to \"{}\", say): the plan then restarts the members with the new quota before it disarms",
            wall.join("; "),
            DISARM_BELOW * 100.0,
            ByteSize(quota.saturating_mul(2))
        ));
    }
}

/// Whether the member reports a defragmentation running now (its metrics'
/// `etcd_disk_defrag_inflight`): it is left alone, with a note.
fn defragmenting(lm: &LiveMember, notes: &mut Vec<String>) -> bool {
    let running = lm.db.and_then(|db| db.defragmenting) == Some(true);
    if running {
        notes.push(format!(
            "{} is being defragmented now (etcd_disk_defrag_inflight): left alone until that ends",
            lm.name
        ));
    }
    running
}
