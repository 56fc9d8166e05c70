//! Each member's backend as observed: its sizes, the quota it enforces and
//! where that figure came from, and whether a defragmentation is running.
//!
//! etcd reports the quota in Status only from 3.6 (`dbSizeQuota`); older
//! members say it in their `/metrics` (`etcd_server_quota_backend_bytes`,
//! from 3.4), else their config file says it, else etcd's default applies.
//! The order is decided here, once, from data the edge read.

use crate::model::{DEFAULT_QUOTA, DbFigures};

use super::ApiStatus;

/// Where a member's quota figure came from, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaSource {
    /// The member's own Status (`dbSizeQuota`, etcd 3.6+).
    Status,
    /// The member's `/metrics` (`etcd_server_quota_backend_bytes`).
    Metrics,
    /// `quota-backend-bytes` in the member's config file on its host.
    Config,
    /// None of those answered: etcd's default ([`DEFAULT_QUOTA`]).
    Default,
}

impl QuotaSource {
    /// The word shown in `status`.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Metrics => "metrics",
            Self::Config => "config",
            Self::Default => "default",
        }
    }
}

/// One member's backend as observed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DbState {
    /// Sizes and quota.
    #[serde(flatten)]
    pub figures: DbFigures,
    /// Where `figures.db_quota` came from.
    pub quota_from: QuotaSource,
    /// Whether a defragmentation runs on the member now (`etcd_disk_defrag_inflight`);
    /// `None` when its metrics could not be read or its release does not have it.
    pub defragmenting: Option<bool>,
}

/// What etcdplan reads from a member's `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsFigures {
    /// `etcd_server_quota_backend_bytes` (3.4+).
    pub quota: Option<u64>,
    /// `etcd_disk_defrag_inflight` != 0, where the release has the metric.
    pub defrag_inflight: Option<bool>,
}

/// The Prometheus name of the quota a member enforces.
pub const METRIC_QUOTA: &str = "etcd_server_quota_backend_bytes";
/// The Prometheus name of the defragmentation in flight gauge.
pub const METRIC_DEFRAG_INFLIGHT: &str = "etcd_disk_defrag_inflight";

impl MetricsFigures {
    /// Reads the two figures from a `/metrics` body (Prometheus text format).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        Self {
            quota: metric_value(text, METRIC_QUOTA)
                .filter(|v| v.is_finite() && *v > 0.0)
                // An integer gauge; the cast saturates.
                .map(|v| v as u64),
            defrag_inflight: metric_value(text, METRIC_DEFRAG_INFLIGHT)
                .filter(|v| v.is_finite())
                .map(|v| v != 0.0),
        }
    }
}

/// The value of the first sample of the metric `name` in Prometheus' text
/// exposition format (`name value`, `name{labels} value`, optionally a
/// timestamp after). Comments (`# HELP`, `# TYPE`) and other metrics,
/// including those whose name only starts with `name`, are skipped.
#[must_use]
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let line = line.trim_start();
        if line.starts_with('#') {
            return None;
        }
        let rest = line.strip_prefix(name)?;
        let rest = if let Some(labelled) = rest.strip_prefix('{') {
            // Label values may hold `}` inside quotes: find the closing brace
            // outside them.
            let mut quoted = false;
            let mut escaped = false;
            let end = labelled.char_indices().find_map(|(i, c)| {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if quoted => escaped = true,
                    '"' => quoted = !quoted,
                    '}' if !quoted => return Some(i),
                    _ => {}
                }
                None
            })?;
            &labelled[end + 1..]
        } else if rest.starts_with([' ', '\t']) {
            rest
        } else {
            return None;
        };
        let value = rest.split_whitespace().next()?;
        match value {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            v => v.parse().ok(),
        }
    })
}

/// The `quota-backend-bytes` a member's config file sets (etcd's YAML key),
/// when it sets one; 0 means etcd's default and is read as unset.
#[must_use]
pub fn config_quota(config_yaml: &str) -> Option<u64> {
    crate::hostfiles::read_value(config_yaml, "quota-backend-bytes")?
        .parse::<u64>()
        .ok()
        .filter(|q| *q > 0)
}

/// A member's backend from its Status, its metrics when they could be read,
/// and the quota its config file sets: the quota from Status, else metrics,
/// else the config file, else etcd's default.
#[must_use]
pub fn db_state(
    status: &ApiStatus,
    metrics: Option<&MetricsFigures>,
    config_quota: Option<u64>,
) -> DbState {
    let (db_quota, quota_from) = status
        .db_quota
        .filter(|q| *q > 0)
        .map(|q| (q, QuotaSource::Status))
        .or_else(|| {
            metrics
                .and_then(|m| m.quota)
                .map(|q| (q, QuotaSource::Metrics))
        })
        .or_else(|| config_quota.map(|q| (q, QuotaSource::Config)))
        .unwrap_or((DEFAULT_QUOTA, QuotaSource::Default));
    DbState {
        figures: DbFigures {
            db_size: status.db_size,
            db_size_in_use: status.db_size_in_use,
            db_quota,
        },
        quota_from,
        defragmenting: metrics.and_then(|m| m.defrag_inflight),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterId, MemberId};

    /// A few lines of what etcd 3.5 serves on /metrics.
    const METRICS: &str = "\
# HELP etcd_disk_defrag_inflight Whether or not defrag is active on the member. 1 means active, 0 means not.
# TYPE etcd_disk_defrag_inflight gauge
etcd_disk_defrag_inflight 0
# HELP etcd_server_quota_backend_bytes Current backend storage quota size in bytes.
# TYPE etcd_server_quota_backend_bytes gauge
etcd_server_quota_backend_bytes_total 1
etcd_server_quota_backend_bytes 1.073741824e+09
etcd_server_version{server_version=\"3.5.17\"} 1
";

    fn status(quota: Option<u64>) -> ApiStatus {
        ApiStatus {
            cluster_id: ClusterId(1),
            member_id: MemberId(2),
            version: None,
            db_size: 800,
            db_size_in_use: 200,
            db_quota: quota,
            leader: None,
            raft_index: 0,
            raft_applied_index: 0,
            raft_term: 0,
            revision: 0,
            is_learner: false,
            errors: Vec::new(),
            storage_version: None,
            downgrade: None,
        }
    }

    #[test]
    fn metrics_are_read_by_exact_name_with_or_without_labels() {
        let m = MetricsFigures::parse(METRICS);
        assert_eq!(m.quota, Some(1 << 30));
        assert_eq!(m.defrag_inflight, Some(false));
        assert_eq!(metric_value(METRICS, "etcd_server_version"), Some(1.0));
        assert_eq!(
            metric_value("a{x=\"}\\\"\"} 3 1700000000\n", "a"),
            Some(3.0)
        );
        assert_eq!(metric_value("a_b 1\n", "a"), None);
        assert_eq!(metric_value("# a 1\n", "a"), None);
        assert_eq!(metric_value("a NaN\n", "a").map(f64::is_nan), Some(true));
        // 3.4 has no defrag gauge: unknown, not "not running".
        let old = MetricsFigures::parse("etcd_server_quota_backend_bytes 2.147483648e+09\n");
        assert_eq!(old.quota, Some(DEFAULT_QUOTA));
        assert_eq!(old.defrag_inflight, None);
        let busy = MetricsFigures::parse("etcd_disk_defrag_inflight 1\n");
        assert_eq!(busy.defrag_inflight, Some(true));
        assert_eq!(busy.quota, None);
    }

    #[test]
    fn the_quota_comes_from_status_then_metrics_then_config_then_default() {
        let metrics = MetricsFigures {
            quota: Some(300),
            defrag_inflight: Some(true),
        };
        let s = db_state(&status(Some(400)), Some(&metrics), Some(500));
        assert_eq!(
            (s.figures.db_quota, s.quota_from),
            (400, QuotaSource::Status)
        );
        assert_eq!(s.defragmenting, Some(true));
        assert_eq!((s.figures.db_size, s.figures.db_size_in_use), (800, 200));
        let s = db_state(&status(None), Some(&metrics), Some(500));
        assert_eq!(
            (s.figures.db_quota, s.quota_from),
            (300, QuotaSource::Metrics)
        );
        let s = db_state(&status(None), Some(&MetricsFigures::default()), Some(500));
        assert_eq!(
            (s.figures.db_quota, s.quota_from),
            (500, QuotaSource::Config)
        );
        assert_eq!(s.defragmenting, None);
        let s = db_state(&status(None), None, None);
        assert_eq!(
            (s.figures.db_quota, s.quota_from),
            (DEFAULT_QUOTA, QuotaSource::Default)
        );
    }

    #[test]
    fn the_config_quota_is_etcds_yaml_key_and_zero_is_the_default() {
        assert_eq!(
            config_quota("name: 'a'\nquota-backend-bytes: 3221225472\n"),
            Some(3 << 30)
        );
        assert_eq!(config_quota("quota-backend-bytes: 0\n"), None);
        assert_eq!(config_quota("name: 'a'\n"), None);
    }
}
