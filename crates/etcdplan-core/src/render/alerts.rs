//! `etcdplan alerts`: a Prometheus rule file for the cluster the etcdfile
//! describes.
//!
//! The alert names, expressions, `for` durations and severities are those of
//! etcd's own monitoring mixin (`contrib/mixin/alerts/alerts.libsonnet`), so
//! runbooks written for the mixin apply. What the etcdfile adds: the selector
//! names exactly this cluster's members (their metrics listeners), and the
//! figures that depend on the member count (how many members make a quorum,
//! how many should be up) are computed from it instead of guessed from the
//! series Prometheus happens to have.
//!
//! The YAML is written by hand, deterministically: expressions as literal
//! block scalars (no escaping inside), annotations single-quoted.

use std::fmt::Write as _;

use crate::config::{Desired, DesiredMember};
use crate::model::{self, Address, Endpoint};

/// The Prometheus job label used when none is given: the mixin's default
/// scrape job name.
pub const DEFAULT_JOB: &str = "etcd";

/// Why no rule file could be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertsError {
    /// The job name is empty or holds a control character (it is written
    /// into PromQL strings and YAML block scalars, one line each).
    #[error("the job name {0:?} must be non-empty and hold no control characters")]
    Job(String),
    /// The etcdfile names no member (nothing to select).
    #[error("the etcdfile names no member")]
    NoMembers,
}

/// Where Prometheus scrapes a member, as its `instance` label reads
/// (`host:port`): the member's first `listen_metrics_urls` when set (a
/// wildcard bind address stands for the member's own address), else its
/// client URL, which serves `/metrics` too.
pub fn metrics_instance(d: &Desired, m: &DesiredMember) -> String {
    let ep = m
        .settings
        .listen_metrics_urls
        .first()
        .and_then(|u| Endpoint::parse(u))
        .map(|ep| match ep.host {
            Address::Ip(ip) if ip.is_unspecified() => Endpoint {
                host: m.address.clone(),
                ..ep
            },
            _ => ep,
        })
        .unwrap_or_else(|| m.client_url(&d.tls));
    format!("{}:{}", ep.host, ep.port)
}

/// The rule file for the cluster, scraped by the Prometheus job `job`.
pub fn alerts(d: &Desired, job: &str) -> Result<String, AlertsError> {
    if job.is_empty() || job.chars().any(char::is_control) {
        return Err(AlertsError::Job(job.to_owned()));
    }
    if d.members.is_empty() {
        return Err(AlertsError::NoMembers);
    }
    let instances: Vec<String> = d.members.iter().map(|m| metrics_instance(d, m)).collect();
    let alternatives: Vec<String> = instances.iter().map(|i| regex_escape(i)).collect();
    let sel = format!(
        "job=\"{}\",instance=~\"{}\"",
        promql_escape(job),
        promql_escape(&alternatives.join("|"))
    );
    let n = d.members.len();
    let q = model::quorum(n);
    let cluster = d.cluster.as_str();
    let c = format!("etcd cluster \"{cluster}\"");

    let rules = [
        Rule {
            alert: "etcdMembersDown",
            // The mixin counts `up == 0`; knowing how many members there are,
            // a member Prometheus does not scrape at all counts as down too.
            expr: format!(
                "max without (endpoint) (\n  ({n} - sum without (instance) (up{{{sel}}} == bool 1))\nor\n  {n} * absent(up{{{sel}}})\nor\n  count without (To) (\n    sum without (instance) (rate(etcd_network_peer_sent_failures_total{{{sel}}}[120s])) > 0.01\n  )\n)\n> 0"
            ),
            for_: "20m",
            severity: "warning",
            summary: format!("{c}: members are down."),
            description: format!(
                "{c}: {{{{ $value }}}} of its {n} members are down or cannot reach their peers."
            ),
        },
        Rule {
            alert: "etcdInsufficientMembers",
            expr: format!("sum without (instance) (up{{{sel}}} == bool 1) < {q}"),
            for_: "3m",
            severity: "critical",
            summary: format!("{c} has insufficient number of members."),
            description: format!(
                "{c}: only {{{{ $value }}}} of its {n} members are up, fewer than the quorum of {q}: the cluster takes no writes."
            ),
        },
        Rule {
            alert: "etcdNoLeader",
            expr: format!("etcd_server_has_leader{{{sel}}} == 0"),
            for_: "1m",
            severity: "critical",
            summary: format!("{c} has no leader."),
            description: format!("{c}: member {{{{ $labels.instance }}}} has no leader."),
        },
        Rule {
            alert: "etcdHighNumberOfLeaderChanges",
            expr: format!(
                "increase((max without (instance) (etcd_server_leader_changes_seen_total{{{sel}}}) or 0*absent(etcd_server_leader_changes_seen_total{{{sel}}}))[15m:1m]) >= 4"
            ),
            for_: "5m",
            severity: "warning",
            summary: format!("{c} has high number of leader changes."),
            description: format!(
                "{c}: {{{{ $value }}}} leader changes within the last 15 minutes. Frequent elections may be a sign of insufficient resources, high network latency, or disruptions by other components and should be investigated."
            ),
        },
        Rule {
            alert: "etcdGRPCRequestsSlow",
            expr: format!(
                "histogram_quantile(0.99, sum(rate(grpc_server_handling_seconds_bucket{{{sel},grpc_method!=\"Defragment\",grpc_type=\"unary\"}}[5m])) without (grpc_type))\n> 0.15"
            ),
            for_: "10m",
            severity: "critical",
            summary: format!("{c}: gRPC requests are slow."),
            description: format!(
                "{c}: 99th percentile of gRPC requests is {{{{ $value }}}}s on etcd instance {{{{ $labels.instance }}}} for {{{{ $labels.grpc_method }}}} method."
            ),
        },
        Rule {
            alert: "etcdMemberCommunicationSlow",
            expr: format!(
                "histogram_quantile(0.99, rate(etcd_network_peer_round_trip_time_seconds_bucket{{{sel}}}[5m]))\n> 0.15"
            ),
            for_: "10m",
            severity: "warning",
            summary: format!("{c}: member communication is slow."),
            description: format!(
                "{c}: member communication with {{{{ $labels.To }}}} is taking {{{{ $value }}}}s on etcd instance {{{{ $labels.instance }}}}."
            ),
        },
        Rule {
            alert: "etcdHighNumberOfFailedProposals",
            expr: format!("rate(etcd_server_proposals_failed_total{{{sel}}}[15m]) > 5"),
            for_: "15m",
            severity: "warning",
            summary: format!("{c} has high number of proposal failures."),
            description: format!(
                "{c}: {{{{ $value }}}} proposal failures per second over the last 15 minutes on etcd instance {{{{ $labels.instance }}}}."
            ),
        },
        Rule {
            alert: "etcdHighFsyncDurations",
            expr: fsync(&sel, "0.5"),
            for_: "10m",
            severity: "warning",
            summary: format!("{c}: 99th percentile fsync durations are too high."),
            description: fsync_description(&c),
        },
        Rule {
            alert: "etcdHighFsyncDurations",
            expr: fsync(&sel, "1"),
            for_: "10m",
            severity: "critical",
            summary: format!("{c}: 99th percentile fsync durations are too high."),
            description: fsync_description(&c),
        },
        Rule {
            alert: "etcdHighCommitDurations",
            expr: format!(
                "histogram_quantile(0.99, rate(etcd_disk_backend_commit_duration_seconds_bucket{{{sel}}}[5m]))\n> 0.25"
            ),
            for_: "10m",
            severity: "warning",
            summary: format!("{c}: 99th percentile commit durations are too high."),
            description: format!(
                "{c}: 99th percentile commit durations {{{{ $value }}}}s on etcd instance {{{{ $labels.instance }}}}."
            ),
        },
        Rule {
            alert: "etcdDatabaseQuotaLowSpace",
            expr: format!(
                "(last_over_time(etcd_mvcc_db_total_size_in_bytes{{{sel}}}[5m]) / last_over_time(etcd_server_quota_backend_bytes{{{sel}}}[5m]))*100 > 95"
            ),
            for_: "10m",
            severity: "critical",
            summary: format!("{c}: database is running full."),
            description: format!(
                "{c}: database size exceeds the defined quota on etcd instance {{{{ $labels.instance }}}}, please defrag or increase the quota (quota_backend_bytes) as the writes to etcd will be disabled when it is full."
            ),
        },
        Rule {
            alert: "etcdExcessiveDatabaseGrowth",
            expr: format!(
                "predict_linear(etcd_mvcc_db_total_size_in_bytes{{{sel}}}[4h], 4*60*60) > etcd_server_quota_backend_bytes{{{sel}}}"
            ),
            for_: "10m",
            severity: "warning",
            summary: format!("{c}: database growing very fast."),
            description: format!(
                "{c}: Predicting running out of disk space in the next four hours, based on write observations within the past four hours on etcd instance {{{{ $labels.instance }}}}, please check as it might be disruptive."
            ),
        },
        Rule {
            alert: "etcdDatabaseHighFragmentationRatio",
            expr: format!(
                "(last_over_time(etcd_mvcc_db_total_size_in_use_in_bytes{{{sel}}}[5m]) / last_over_time(etcd_mvcc_db_total_size_in_bytes{{{sel}}}[5m])) < 0.5 and etcd_mvcc_db_total_size_in_use_in_bytes{{{sel}}} > 104857600"
            ),
            for_: "10m",
            severity: "warning",
            summary: format!(
                "{c}: database size in use is less than 50% of the allocated storage."
            ),
            description: format!(
                "{c}: database size in use on instance {{{{ $labels.instance }}}} is {{{{ $value | humanizePercentage }}}} of the actual allocated disk space, please run defragmentation (e.g. etcdctl defrag) to retrieve the unused fragmented disk space."
            ),
        },
    ];

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Prometheus alerting rules for etcd cluster \"{cluster}\", generated by `etcdplan alerts`\n\
         # from its etcdfile: {n} member{} (quorum {q}), scraped by job \"{}\" at\n\
         # {}.\n\
         # Alert names and thresholds follow etcd's monitoring mixin (contrib/mixin).",
        if n == 1 { "" } else { "s" },
        job.replace('"', "\\\""),
        instances.join(", ")
    );
    out.push_str("groups:\n");
    let _ = writeln!(out, "  - name: etcd-{cluster}");
    out.push_str("    rules:\n");
    for r in &rules {
        r.write(&mut out);
    }
    Ok(out)
}

/// One alerting rule, as the mixin shapes them.
struct Rule {
    alert: &'static str,
    expr: String,
    for_: &'static str,
    severity: &'static str,
    summary: String,
    description: String,
}

impl Rule {
    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "      - alert: {}", self.alert);
        out.push_str("        expr: |-\n");
        for line in self.expr.lines() {
            let _ = writeln!(out, "          {line}");
        }
        let _ = writeln!(out, "        for: {}", self.for_);
        out.push_str("        labels:\n");
        let _ = writeln!(out, "          severity: {}", self.severity);
        out.push_str("        annotations:\n");
        let _ = writeln!(out, "          summary: {}", yaml_single(&self.summary));
        let _ = writeln!(
            out,
            "          description: {}",
            yaml_single(&self.description)
        );
    }
}

fn fsync(sel: &str, threshold: &str) -> String {
    format!(
        "histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{{{sel}}}[5m]))\n> {threshold}"
    )
}

fn fsync_description(c: &str) -> String {
    format!(
        "{c}: 99th percentile fsync durations are {{{{ $value }}}}s on etcd instance {{{{ $labels.instance }}}}."
    )
}

/// A YAML single-quoted scalar: only `'` needs escaping (doubled).
fn yaml_single(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The text of a PromQL double-quoted string.
fn promql_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A literal for Prometheus' RE2 regular expressions (`instance=~`): the
/// dots of an IP address and the brackets of an IPv6 one match only themselves.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if "\\.+*?()|[]{}^$".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Context};

    fn desired(text: &str) -> Desired {
        let ctx = Context {
            base_dir: std::path::PathBuf::from("/srv"),
            home: None,
            file_hash: config::hash(text),
            ..Default::default()
        };
        match config::parse("etcdfile.toml", text.to_owned(), &ctx) {
            Ok(l) => l.desired,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn file(etcd: &str, members: &[(&str, &str, &str)]) -> String {
        let mut s = format!(
            "[cluster]\nname = \"prod\"\nversion = \"3.5\"\n[etcd]\n{etcd}\n[hosts]\nservice = \"process\"\n"
        );
        for (name, address, extra) in members {
            s.push_str(&format!(
                "[[member]]\nname = \"{name}\"\naddress = \"{address}\"\n{extra}\n"
            ));
        }
        s
    }

    /// The rule file, or the test fails with the error.
    fn rules(d: &Desired, job: &str) -> String {
        alerts(d, job).unwrap_or_else(|e| panic!("{e}"))
    }

    fn three() -> Desired {
        desired(&file(
            "listen_metrics_urls = [\"http://{address}:2381\"]",
            &[
                ("a", "10.0.0.1", ""),
                ("b", "10.0.0.2", ""),
                ("c", "10.0.0.3", ""),
            ],
        ))
    }

    #[test]
    fn three_members_golden() {
        let out = rules(&three(), DEFAULT_JOB);
        insta::assert_snapshot!("alerts_three", out);
    }

    #[test]
    fn five_members_change_the_selector_and_the_quorum() {
        let five = desired(&file(
            "",
            &[
                ("a", "10.0.0.1", ""),
                ("b", "10.0.0.2", ""),
                ("c", "10.0.0.3", ""),
                ("d", "10.0.0.4", ""),
                ("e", "etcd-e.example.com", ""),
            ],
        ));
        let three = rules(&three(), DEFAULT_JOB);
        let out = rules(&five, "kube-etcd");
        assert_ne!(three, out);
        assert!(out.contains("sum without (instance) (up{job=\"kube-etcd\",instance=~\"10\\\\.0\\\\.0\\\\.1:2379|10\\\\.0\\\\.0\\\\.2:2379|10\\\\.0\\\\.0\\\\.3:2379|10\\\\.0\\\\.0\\\\.4:2379|etcd-e\\\\.example\\\\.com:2379\"} == bool 1) < 3"), "{out}");
        assert!(three.contains("== bool 1) < 2\n"), "{three}");
        assert!(out.contains("(5 - sum without"), "{out}");
        insta::assert_snapshot!("alerts_five", out);
    }

    #[test]
    fn instance_is_the_first_metrics_url_else_the_client_url() {
        let d = desired(&file(
            "",
            &[
                (
                    "a",
                    "10.0.0.1",
                    "listen_metrics_urls = [\"http://127.0.0.1:9000\", \"http://{address}:2381\"]",
                ),
                ("b", "10.0.0.2", ""),
                (
                    "c",
                    "fd00::3",
                    "listen_metrics_urls = [\"http://{address}:2381\"]",
                ),
                (
                    "d",
                    "etcd-d.example.com",
                    "listen_metrics_urls = [\"http://{address}:2381\"]",
                ),
            ],
        ));
        let got: Vec<String> = d.members.iter().map(|m| metrics_instance(&d, m)).collect();
        assert_eq!(
            got,
            [
                "127.0.0.1:9000",
                "10.0.0.2:2379",
                "[fd00::3]:2381",
                "etcd-d.example.com:2381"
            ]
        );
        let out = rules(&d, DEFAULT_JOB);
        assert!(out.contains("\\\\[fd00::3\\\\]:2381"), "{out}");
    }

    #[test]
    fn bad_job_names_are_refused() {
        assert_eq!(alerts(&three(), ""), Err(AlertsError::Job(String::new())));
        assert!(matches!(alerts(&three(), "a\nb"), Err(AlertsError::Job(_))));
        let out = rules(&three(), "we\"ird\\");
        assert!(out.contains("job=\"we\\\"ird\\\\\""), "{out}");
    }

    #[test]
    fn the_output_is_yaml_with_every_rule() {
        let out = rules(&three(), DEFAULT_JOB);
        let docs = yaml_rust2::YamlLoader::load_from_str(&out)
            .unwrap_or_else(|e| panic!("not YAML ({e}):\n{out}"));
        let Some(rules) = docs[0]["groups"][0]["rules"].as_vec() else {
            panic!("no groups[0].rules:\n{out}");
        };
        let names: Vec<&str> = rules
            .iter()
            .map(|r| r["alert"].as_str().unwrap_or_default())
            .collect();
        for want in [
            "etcdMembersDown",
            "etcdInsufficientMembers",
            "etcdNoLeader",
            "etcdHighNumberOfLeaderChanges",
            "etcdHighFsyncDurations",
            "etcdHighCommitDurations",
            "etcdDatabaseQuotaLowSpace",
            "etcdDatabaseHighFragmentationRatio",
            "etcdGRPCRequestsSlow",
            "etcdExcessiveDatabaseGrowth",
            "etcdMemberCommunicationSlow",
            "etcdHighNumberOfFailedProposals",
        ] {
            assert!(names.contains(&want), "{want} missing: {names:?}");
        }
        for r in rules {
            assert!(
                r["annotations"]["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("\"prod\"")),
                "{r:?}"
            );
            assert!(r["labels"]["severity"].as_str().is_some());
        }
        let insufficient = rules
            .iter()
            .find(|r| r["alert"].as_str() == Some("etcdInsufficientMembers"));
        assert_eq!(
            insufficient
                .and_then(|r| r["expr"].as_str())
                .unwrap_or_default(),
            "sum without (instance) (up{job=\"etcd\",instance=~\"10\\\\.0\\\\.0\\\\.1:2381|10\\\\.0\\\\.0\\\\.2:2381|10\\\\.0\\\\.0\\\\.3:2381\"} == bool 1) < 2"
        );
    }
}
