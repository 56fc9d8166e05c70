//! Which snapshots `[backup] keep` deletes: the oldest beyond `keep`, but
//! never the newest verified one (the last one known to be good) and never
//! one whose copy off the machine has not succeeded yet.

/// One snapshot in the backup folder, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The snapshot's file name.
    pub file: String,
    /// When it was taken.
    pub taken: time::OffsetDateTime,
    /// Whether it passed its checks (and did not fail a restore check).
    pub verified: bool,
    /// Whether its copy is still to be made (a copy command is set and has
    /// not succeeded for it).
    pub copy_pending: bool,
}

/// The file names to delete so that `keep` remain, oldest first; fewer when
/// the rules above protect some.
pub fn to_prune(entries: &[Entry], keep: u32) -> Vec<String> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    // Newest first; the file name breaks ties so the choice is stable.
    sorted.sort_by(|a, b| b.taken.cmp(&a.taken).then_with(|| b.file.cmp(&a.file)));
    let newest_verified = sorted.iter().find(|e| e.verified).map(|e| e.file.clone());
    let keep = usize::try_from(keep.max(1)).unwrap_or(usize::MAX);
    let mut out: Vec<String> = sorted
        .iter()
        .skip(keep)
        .filter(|e| !e.copy_pending && Some(&e.file) != newest_verified.as_ref())
        .map(|e| e.file.clone())
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(n: i64, verified: bool, copy_pending: bool) -> Entry {
        Entry {
            file: format!("c-{n}.db"),
            taken: time::OffsetDateTime::UNIX_EPOCH + time::Duration::hours(n),
            verified,
            copy_pending,
        }
    }

    #[test]
    fn the_oldest_beyond_keep_go_oldest_first() {
        let all: Vec<Entry> = (1..=5).map(|n| e(n, true, false)).collect();
        assert_eq!(to_prune(&all, 3), ["c-1.db", "c-2.db"]);
        assert!(to_prune(&all, 5).is_empty());
        assert!(to_prune(&all, 9).is_empty());
    }

    #[test]
    fn the_newest_verified_one_is_never_pruned() {
        // The three newest failed their restore check: the last good one stays.
        let all = vec![
            e(1, true, false),
            e(2, true, false),
            e(3, false, false),
            e(4, false, false),
            e(5, false, false),
        ];
        assert_eq!(to_prune(&all, 3), ["c-1.db"]);
        // keep = 0 cannot happen (validation), and is read as 1.
        let one = vec![e(1, true, false)];
        assert!(to_prune(&one, 0).is_empty());
    }

    #[test]
    fn a_snapshot_not_yet_copied_is_never_pruned() {
        let all = vec![
            e(1, true, true),
            e(2, true, false),
            e(3, true, false),
            e(4, true, false),
        ];
        assert_eq!(to_prune(&all, 2), ["c-2.db"]);
    }
}
