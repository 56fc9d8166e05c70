//! Quorum arithmetic over voting members (learners never count).

/// Votes needed for a decision among `voters` voting members: ⌊n/2⌋+1.
pub fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// How many voters may be down while the rest still form a quorum: ⌊(n−1)/2⌋.
pub fn tolerance(voters: usize) -> usize {
    voters.saturating_sub(1) / 2
}

/// The health of a set of voters, as the planner's safety rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Voting members in the cluster.
    pub voters: usize,
    /// Voters that are unhealthy, unreachable, unstarted or lagging.
    pub down: usize,
}

impl Quorum {
    /// Whether the healthy voters still form a quorum.
    pub fn has_quorum(self) -> bool {
        self.voters > 0 && self.voters - self.down.min(self.voters) >= quorum(self.voters)
    }

    /// Whether one more voter may go offline (a restart, a stop) without losing quorum.
    pub fn may_take_one_down(self) -> bool {
        self.down < tolerance(self.voters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_from_etcd_docs() {
        let q: Vec<usize> = (1..=7).map(quorum).collect();
        let f: Vec<usize> = (1..=7).map(tolerance).collect();
        assert_eq!(q, [1, 2, 2, 3, 3, 4, 4]);
        assert_eq!(f, [0, 0, 1, 1, 2, 2, 3]);
    }

    #[test]
    fn one_down_of_three_allows_only_repairs() {
        let healthy = Quorum { voters: 3, down: 0 };
        let degraded = Quorum { voters: 3, down: 1 };
        assert!(healthy.may_take_one_down());
        assert!(degraded.has_quorum());
        assert!(!degraded.may_take_one_down());
        assert!(!Quorum { voters: 3, down: 2 }.has_quorum());
        assert!(!Quorum { voters: 2, down: 0 }.may_take_one_down());
    }
}
