//! The quorum rule every disruptive step must pass, as a pure function.
//!
//! The executor calls it against the cluster as it is just before the step;
//! the quorum simulator in the tests calls the same function.

use crate::model::{Quorum, quorum};

/// One member as the rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    /// Its name.
    pub name: String,
    /// Healthy now.
    pub healthy: bool,
    /// Learners do not count.
    pub learner: bool,
}

/// Whether `target` may go offline now: the other voters that are down, plus
/// this one, must stay within the cluster's fault tolerance.
pub fn may_disrupt(members: &[Voter], target: &str) -> Result<(), String> {
    let voters: Vec<&Voter> = members.iter().filter(|m| !m.learner).collect();
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
        let mut m = vec![v("a", true), v("b", true), v("c", true)];
        m.push(Voter {
            name: "l".into(),
            healthy: false,
            learner: true,
        });
        assert!(may_disrupt(&m, "a").is_ok());
    }
}
