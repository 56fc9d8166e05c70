//! A member's backend as the quota and the defragmentation rule see it: the
//! figures etcd reports, under the names etcd-defrag's rules use.

/// One member's backend figures (etcd's Status, with the quota from where
/// the member's release reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbFigures {
    /// The backend file's size, free pages included (`dbSize`): what the
    /// quota is compared with.
    pub db_size: u64,
    /// Bytes in use inside it (`dbSizeInUse`): what a defragmentation
    /// shrinks the file to.
    pub db_size_in_use: u64,
    /// The quota the member enforces (`dbQuota`).
    pub db_quota: u64,
}

impl DbFigures {
    /// Free pages a defragmentation would give back (`dbSizeFree`).
    #[must_use]
    pub fn free(&self) -> u64 {
        self.db_size.saturating_sub(self.db_size_in_use)
    }

    /// The share of the quota the file takes, 0 to 1 (`dbQuotaUsage`);
    /// 0 with no quota.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn quota_usage(&self) -> f64 {
        if self.db_quota == 0 {
            0.0
        } else {
            self.db_size as f64 / self.db_quota as f64
        }
    }

    /// The share of the file that is free pages, 0 to 1 (the monitoring
    /// mixin's fragmentation alert looks at in use / size, its complement).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn free_ratio(&self) -> f64 {
        if self.db_size == 0 {
            0.0
        } else {
            self.free() as f64 / self.db_size as f64
        }
    }
}

/// etcd's default backend quota when none is set (2 GiB, every release).
pub const DEFAULT_QUOTA: u64 = 2 * 1024 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_and_usage() {
        let f = DbFigures {
            db_size: 800,
            db_size_in_use: 200,
            db_quota: 1000,
        };
        assert_eq!(f.free(), 600);
        assert!((f.quota_usage() - 0.8).abs() < 1e-9);
        assert!((f.free_ratio() - 0.75).abs() < 1e-9);
        let none = DbFigures {
            db_size: 0,
            db_size_in_use: 10,
            db_quota: 0,
        };
        assert_eq!(none.free(), 0);
        assert_eq!(none.quota_usage(), 0.0);
    }
}
