//! The quorum rules every disruptive or membership step must pass, as pure
//! functions over the members' health.
//!
//! The planner checks them against its simulation of the cluster, the executor
//! against the live cluster just before each step, and the quorum simulator in
//! the tests calls the same functions.

use crate::model::{Quorum, quorum};

/// One member as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    /// Its name.
    pub name: String,
    /// Healthy now (for a learner: running and caught up).
    pub healthy: bool,
    /// Learners do not count toward quorum.
    pub learner: bool,
}

fn voters(members: &[Voter]) -> Vec<&Voter> {
    members.iter().filter(|m| !m.learner).collect()
}

fn healthy_voters(members: &[Voter]) -> usize {
    voters(members).iter().filter(|m| m.healthy).count()
}

fn names<'a>(it: impl Iterator<Item = &'a Voter>) -> String {
    it.map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Whether `target` may go offline now: the other voters that are down, plus
/// this one, must stay within the cluster's fault tolerance.
pub fn may_disrupt(members: &[Voter], target: &str) -> Result<(), String> {
    let voters = voters(members);
    let down: Vec<&str> = voters
        .iter()
        .filter(|m| m.name != target && !m.healthy)
        .map(|m| m.name.as_str())
        .collect();
    let q = Quorum {
        voters: voters.len(),
        down: down.len(),
    };
    if q.may_take_one_down() {
        return Ok(());
    }
    Err(if down.is_empty() {
        format!(
            "a cluster of {} voter{} tolerates no member down (quorum is {})",
            q.voters,
            if q.voters == 1 { "" } else { "s" },
            quorum(q.voters)
        )
    } else {
        format!(
            "{} of {} voters are down now ({}); one more would put quorum at risk",
            q.down,
            q.voters,
            down.join(", ")
        )
    })
}

/// Whether a learner may be added: every voter healthy (etcd refuses adds while
/// one is down, and a join streams a snapshot from the leader), and no other
/// learner (etcd allows one at a time).
pub fn may_add(members: &[Voter]) -> Result<(), String> {
    let down: Vec<&Voter> = voters(members).into_iter().filter(|m| !m.healthy).collect();
    if !down.is_empty() {
        return Err(format!(
            "voters are unhealthy ({}); members are added only to a healthy cluster",
            names(down.into_iter())
        ));
    }
    let learners: Vec<&Voter> = members.iter().filter(|m| m.learner).collect();
    if !learners.is_empty() {
        return Err(format!(
            "a learner is already in the cluster ({}); etcd allows one at a time",
            names(learners.into_iter())
        ));
    }
    Ok(())
}

/// Whether `learner` may become a voter: it is caught up, and with it the
/// healthy voters still form a quorum of the larger cluster.
pub fn may_promote(members: &[Voter], learner: &str) -> Result<(), String> {
    let Some(l) = members.iter().find(|m| m.name == learner && m.learner) else {
        return Err(format!("{learner} is not a learner"));
    };
    if !l.healthy {
        return Err(format!("{learner} has not caught up"));
    }
    let n = voters(members).len() + 1;
    let healthy = healthy_voters(members) + 1;
    if healthy >= quorum(n) {
        Ok(())
    } else {
        Err(format!(
            "with {learner}, {healthy} of {n} voters would be healthy, below the quorum of {}",
            quorum(n)
        ))
    }
}

/// Whether `target` may be removed: the cluster has quorum now (the removal is
/// a raft proposal), and the members that stay still form a quorum.
pub fn may_remove(members: &[Voter], target: &str) -> Result<(), String> {
    let Some(t) = members.iter().find(|m| m.name == target) else {
        return Err(format!("{target} is not in the cluster"));
    };
    if t.learner {
        return Ok(());
    }
    let n = voters(members).len();
    let healthy = healthy_voters(members);
    if healthy < quorum(n) {
        return Err(format!(
            "only {healthy} of {n} voters are healthy: without quorum no membership change can commit"
        ));
    }
    let n_after = n - 1;
    let healthy_after = healthy - usize::from(t.healthy);
    if n_after == 0 {
        return Err("it is the last voter".into());
    }
    if healthy_after < quorum(n_after) {
        return Err(format!(
            "after it, {healthy_after} of {n_after} voters would be healthy, below the quorum of {}",
            quorum(n_after)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str, healthy: bool) -> Voter {
        Voter {
            name: name.into(),
            healthy,
            learner: false,
        }
    }

    fn l(name: &str, healthy: bool) -> Voter {
        Voter {
            name: name.into(),
            healthy,
            learner: true,
        }
    }

    #[test]
    fn three_healthy_allow_one_restart() {
        let m = [v("a", true), v("b", true), v("c", true)];
        assert!(may_disrupt(&m, "a").is_ok());
    }

    #[test]
    fn one_down_of_three_blocks_a_second() {
        let m = [v("a", true), v("b", false), v("c", true)];
        let e = may_disrupt(&m, "a");
        assert!(e.is_err_and(|e| e.contains("b")));
        // Restarting the down member itself is a repair, not a new disruption.
        assert!(may_disrupt(&m, "b").is_ok());
    }

    #[test]
    fn single_member_cannot_be_disrupted_safely() {
        assert!(may_disrupt(&[v("a", true)], "a").is_err());
    }

    #[test]
    fn learners_do_not_count() {
        let m = [v("a", true), v("b", true), v("c", true), l("d", false)];
        assert!(may_disrupt(&m, "a").is_ok());
    }

    #[test]
    fn adds_need_a_healthy_cluster_and_no_learner() {
        assert!(may_add(&[v("a", true), v("b", true), v("c", true)]).is_ok());
        assert!(may_add(&[v("a", true), v("b", false), v("c", true)]).is_err());
        assert!(may_add(&[v("a", true), l("b", true)]).is_err());
    }

    #[test]
    fn promotion_needs_a_caught_up_learner_and_quorum_after() {
        assert!(may_promote(&[v("a", true), l("b", true)], "b").is_ok());
        assert!(may_promote(&[v("a", true), l("b", false)], "b").is_err());
        // 2 voters, one down: with the learner 2 of 3 healthy, quorum 2: fine.
        assert!(may_promote(&[v("a", true), v("c", false), l("b", true)], "b").is_ok());
        // 3 voters, two down: 2 of 4 healthy, quorum 3: refused.
        assert!(
            may_promote(
                &[v("a", true), v("c", false), v("d", false), l("b", true)],
                "b"
            )
            .is_err()
        );
    }

    #[test]
    fn removals_keep_quorum() {
        let three = [v("a", true), v("b", true), v("c", true)];
        assert!(may_remove(&three, "a").is_ok());
        // Removing a dead member is a repair.
        assert!(may_remove(&[v("a", true), v("b", true), v("c", false)], "c").is_ok());
        // Removing a healthy one while another is dead leaves 1 of 2 healthy.
        assert!(may_remove(&[v("a", true), v("b", true), v("c", false)], "a").is_err());
        // 2 → 1 works only while both are healthy.
        assert!(may_remove(&[v("a", true), v("b", true)], "b").is_ok());
        assert!(may_remove(&[v("a", true), v("b", false)], "a").is_err());
        assert!(may_remove(&[v("a", true)], "a").is_err());
    }
}
