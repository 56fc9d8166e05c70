//! Whether the voters hold the same data: HashKV at one explicit revision
//! every voter has applied, compared only between members whose compact
//! revisions are equal (etcd-ops R7.5). A mismatch there is corruption.

use std::collections::BTreeMap;

use crate::model::MemberId;

use super::LiveName;

/// One HashKV answer (etcd's `HashKVResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ApiHashKv {
    /// The hash of the member's keys and values up to the revision asked.
    pub hash: u32,
    /// The member's compact revision: hashes of members that compacted to
    /// different revisions cover different history and cannot be compared.
    pub compact_revision: i64,
    /// The revision the hash covers (etcd 3.6+ `hash_revision`; None before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_revision: Option<i64>,
    /// The member's current revision, from the response header.
    pub header_revision: i64,
}

/// One voter's part in the check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberHash {
    /// The member.
    pub id: MemberId,
    /// Its name.
    pub name: LiveName,
    /// Its answer, or why there is none.
    pub answer: Result<ApiHashKv, String>,
}

/// What the comparison found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum HashVerdict {
    /// Every compared member has the same hash.
    Agree {
        /// The members compared.
        members: Vec<MemberId>,
    },
    /// Hashes differ: `differing` do not hold what `majority` hold (empty
    /// when no hash is held by more than half of the compared members).
    Disagree {
        /// The members holding the majority's hash.
        majority: Vec<MemberId>,
        /// The others.
        differing: Vec<MemberId>,
    },
    /// Nothing could be compared.
    NotComparable {
        /// Why, one sentence.
        reason: String,
    },
}

/// The HashKV check of the voters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HashCheck {
    /// The revision every voter was asked for.
    pub revision: i64,
    /// The voters asked, in MemberList order.
    pub members: Vec<MemberHash>,
    /// The compact revision of the members compared (None when none were).
    pub compact_revision: Option<i64>,
    /// The outcome.
    #[serde(flatten)]
    pub verdict: HashVerdict,
}

impl HashCheck {
    /// The name of a member of the check, or its id when it has none.
    #[must_use]
    pub fn name_of(&self, id: MemberId) -> String {
        self.members
            .iter()
            .find(|m| m.id == id)
            .and_then(|m| m.name.as_started().map(str::to_owned))
            .unwrap_or_else(|| id.to_string())
    }

    /// The hash a member answered, when it did.
    #[must_use]
    pub fn hash_of(&self, id: MemberId) -> Option<u32> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .and_then(|m| m.answer.as_ref().ok().map(|a| a.hash))
    }

    /// Judges the answers of the voters asked at `revision`: the members
    /// sharing the compact revision most of them answered with are compared
    /// (the highest one on a tie); at least two must be.
    #[must_use]
    pub fn judge(revision: i64, members: Vec<MemberHash>) -> Self {
        let answered: Vec<(MemberId, ApiHashKv)> = members
            .iter()
            .filter_map(|m| m.answer.as_ref().ok().map(|a| (m.id, *a)))
            .collect();
        let mut by_compact: BTreeMap<i64, Vec<(MemberId, u32)>> = BTreeMap::new();
        for (id, a) in &answered {
            by_compact
                .entry(a.compact_revision)
                .or_default()
                .push((*id, a.hash));
        }
        // `max_by_key` keeps the last of equals: the highest compact revision.
        let group = by_compact
            .iter()
            .max_by_key(|(_, g)| g.len())
            .map(|(c, g)| (*c, g.clone()));
        let not_comparable = |reason: String, compact| Self {
            revision,
            members: members.clone(),
            compact_revision: compact,
            verdict: HashVerdict::NotComparable { reason },
        };
        let Some((compact, group)) = group.filter(|(_, g)| g.len() >= 2) else {
            let reason = if answered.len() < 2 {
                format!(
                    "{} of {} voters answered HashKV",
                    answered.len(),
                    members.len()
                )
            } else {
                format!(
                    "the voters' compact revisions differ ({}): a compaction is not applied everywhere yet",
                    answered
                        .iter()
                        .map(|(_, a)| a.compact_revision.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return not_comparable(reason, None);
        };
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for (_, h) in &group {
            *counts.entry(*h).or_default() += 1;
        }
        let ids = |keep: &dyn Fn(u32) -> bool| -> Vec<MemberId> {
            group
                .iter()
                .filter(|(_, h)| keep(*h))
                .map(|(id, _)| *id)
                .collect()
        };
        let verdict = if counts.len() == 1 {
            HashVerdict::Agree {
                members: ids(&|_| true),
            }
        } else {
            match counts.iter().find(|(_, n)| **n * 2 > group.len()) {
                Some((&majority, _)) => HashVerdict::Disagree {
                    majority: ids(&|h| h == majority),
                    differing: ids(&|h| h != majority),
                },
                None => HashVerdict::Disagree {
                    majority: Vec::new(),
                    differing: ids(&|_| true),
                },
            }
        };
        Self {
            revision,
            members,
            compact_revision: Some(compact),
            verdict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: u64, answer: Result<(u32, i64), &str>) -> MemberHash {
        MemberHash {
            id: MemberId(i),
            name: LiveName::Started(format!("etcd-{i}")),
            answer: answer
                .map(|(hash, compact_revision)| ApiHashKv {
                    hash,
                    compact_revision,
                    hash_revision: None,
                    header_revision: 50,
                })
                .map_err(str::to_owned),
        }
    }

    #[test]
    fn equal_hashes_agree_and_the_odd_one_out_is_named() {
        let c = HashCheck::judge(40, vec![member(1, Ok((7, 3))), member(2, Ok((7, 3)))]);
        assert_eq!(
            c.verdict,
            HashVerdict::Agree {
                members: vec![MemberId(1), MemberId(2)]
            }
        );
        assert_eq!(c.compact_revision, Some(3));
        let c = HashCheck::judge(
            40,
            vec![
                member(1, Ok((7, 3))),
                member(2, Ok((9, 3))),
                member(3, Ok((7, 3))),
            ],
        );
        assert_eq!(
            c.verdict,
            HashVerdict::Disagree {
                majority: vec![MemberId(1), MemberId(3)],
                differing: vec![MemberId(2)]
            }
        );
        assert_eq!(c.name_of(MemberId(2)), "etcd-2");
        assert_eq!(c.hash_of(MemberId(2)), Some(9));
        // Two of two differing: no majority to trust.
        let c = HashCheck::judge(40, vec![member(1, Ok((7, 3))), member(2, Ok((9, 3)))]);
        assert_eq!(
            c.verdict,
            HashVerdict::Disagree {
                majority: vec![],
                differing: vec![MemberId(1), MemberId(2)]
            }
        );
    }

    #[test]
    fn only_members_with_the_same_compact_revision_are_compared() {
        // etcd-3 has not applied the compaction yet: the other two are compared.
        let c = HashCheck::judge(
            40,
            vec![
                member(1, Ok((7, 3))),
                member(2, Ok((7, 3))),
                member(3, Ok((1, 1))),
            ],
        );
        assert_eq!(
            c.verdict,
            HashVerdict::Agree {
                members: vec![MemberId(1), MemberId(2)]
            }
        );
        let c = HashCheck::judge(
            40,
            vec![
                member(1, Ok((7, 3))),
                member(2, Ok((7, 2))),
                member(3, Ok((1, 1))),
            ],
        );
        assert!(
            matches!(&c.verdict, HashVerdict::NotComparable { reason } if reason.contains("compact revisions differ (3, 2, 1)")),
            "{c:?}"
        );
        let c = HashCheck::judge(40, vec![member(1, Ok((7, 3))), member(2, Err("timeout"))]);
        assert!(
            matches!(&c.verdict, HashVerdict::NotComparable { reason } if reason == "1 of 2 voters answered HashKV"),
            "{c:?}"
        );
    }
}
