//! etcdplan's own metrics while `watch --metrics-addr` runs: what the loop
//! planned, applied and found drifted, and how old the newest snapshot is,
//! served as `GET /metrics` in Prometheus' text format, so that a watch that
//! stopped converging (or stopped taking snapshots) can be alerted on like
//! etcd itself.
//!
//! The loop updates a [`WatchMetrics`]; the server only reads it. The
//! listener is bound before the loop's first plan, so a bad address is a
//! command-line error, not a silent watch without metrics.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why metrics cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound (in use, not this machine's, no permission).
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address of `--metrics-addr`.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

/// Labels of a metric that has none: a family of one series that can also
/// have no series at all (the snapshot age without `[backup]`).
type NoLabels = Vec<(&'static str, &'static str)>;

/// `etcdplan_applies_total`'s label set: `result`.
type ResultLabel = Vec<(&'static str, &'static str)>;

/// The figures the watch loop keeps up to date.
pub struct WatchMetrics {
    registry: Registry,
    plan_changes: Gauge,
    applies: Family<ResultLabel, Counter>,
    drift: Counter,
    last_success: Gauge<f64, AtomicU64>,
    snapshot_age: Family<NoLabels, Gauge<f64, AtomicU64>>,
    /// When the newest snapshot of `[backup] dir` was taken; `None`: no
    /// `[backup]` or no snapshot yet (then no age series).
    newest_snapshot: Mutex<Option<SystemTime>>,
}

impl Default for WatchMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WatchMetrics {
    /// The metrics, registered, with both apply results at 0.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let plan_changes = Gauge::default();
        registry.register(
            "etcdplan_plan_changes",
            "Members the last plan changes (0: the cluster is what the etcdfile says)",
            plan_changes.clone(),
        );
        let applies = Family::<ResultLabel, Counter>::default();
        registry.register(
            "etcdplan_applies",
            "Plans the watch applied, by result (success or failure)",
            applies.clone(),
        );
        let drift = Counter::default();
        registry.register(
            "etcdplan_drift",
            "Drift checks that found changes without an edit of the etcdfile",
            drift.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "etcdplan_last_apply_success_timestamp_seconds",
            "Unix time of the last apply that succeeded (0: none yet)",
            last_success.clone(),
        );
        let snapshot_age = Family::<NoLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "etcdplan_snapshot_age_seconds",
            "Age of the newest snapshot in [backup] dir (only with [backup] and a snapshot)",
            snapshot_age.clone(),
        );
        // Both series from the start, so that a rate over them is defined
        // before the first apply.
        for result in ["success", "failure"] {
            let _ = applies.get_or_create(&vec![("result", result)]);
        }
        Self {
            registry,
            plan_changes,
            applies,
            drift,
            last_success,
            snapshot_age,
            newest_snapshot: Mutex::new(None),
        }
    }

    /// A plan was made: the members it changes.
    pub fn planned(&self, changed_members: usize) {
        self.plan_changes
            .set(i64::try_from(changed_members).unwrap_or(i64::MAX));
    }

    /// A drift check found changes.
    pub fn drifted(&self) {
        self.drift.inc();
    }

    /// An apply ended, at `at` when it succeeded.
    pub fn applied(&self, success: bool, at: SystemTime) {
        let result = if success { "success" } else { "failure" };
        self.applies.get_or_create(&vec![("result", result)]).inc();
        if success {
            self.last_success.set(unix_seconds(at));
        }
    }

    /// When the newest snapshot was taken (`None`: no `[backup]`, or none yet).
    pub fn newest_snapshot(&self, taken: Option<SystemTime>) {
        if let Ok(mut n) = self.newest_snapshot.lock() {
            *n = taken;
        }
    }

    /// The text format, with the snapshot age as of `now`.
    pub fn encode(&self, now: SystemTime) -> String {
        let newest = self.newest_snapshot.lock().map(|n| *n).unwrap_or(None);
        match newest {
            Some(taken) => {
                let age = now.duration_since(taken).unwrap_or(Duration::ZERO);
                self.snapshot_age
                    .get_or_create(&Vec::new())
                    .set(age.as_secs_f64());
            }
            None => self.snapshot_age.clear(),
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The metrics server; it stops when dropped (when the watch ends).
pub struct Server {
    /// The figures the loop updates.
    pub metrics: Arc<WatchMetrics>,
    /// The address bound (the port chosen when `--metrics-addr` gave 0).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long one connection may last (read the request, answer, write): a
/// stuck or slow client must not hold it forever.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);

/// Binds `addr` (now, so that an error comes before the first plan) and
/// serves `GET /metrics` until the returned [`Server`] is dropped.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(addr: SocketAddr) -> Result<Server, MetricsError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let metrics = Arc::new(WatchMetrics::new());
    let shared = metrics.clone();
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: try again shortly.
                    tracing::warn!("metrics: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let m = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let m = m.clone();
                    async move { Ok::<_, std::convert::Infallible>(respond(&m, &req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                match tokio::time::timeout(CONNECTION_DEADLINE, conn).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!("metrics: connection: {e}"),
                    Err(_) => tracing::debug!("metrics: connection closed at its deadline"),
                }
            });
        }
    });
    tracing::info!("serving metrics on http://{bound}/metrics");
    Ok(Server {
        metrics,
        addr: bound,
        task,
    })
}

/// `GET /metrics` (or `HEAD`): the text format; anything else: 404 or 405.
fn respond<B>(m: &WatchMetrics, req: &Request<B>) -> Response<Full<Bytes>> {
    let (status, body) = if req.uri().path() != "/metrics" {
        (StatusCode::NOT_FOUND, "try /metrics\n".to_owned())
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "GET only\n".to_owned())
    } else {
        (StatusCode::OK, m.encode(SystemTime::now()))
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let content_type = if status == StatusCode::OK {
        prometheus_text::CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_metric_and_the_age_only_with_a_snapshot() {
        let m = WatchMetrics::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let text = m.encode(t0);
        assert!(text.contains("etcdplan_plan_changes 0\n"), "{text}");
        assert!(
            text.contains("etcdplan_applies_total{result=\"success\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("etcdplan_applies_total{result=\"failure\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("etcdplan_drift_total 0\n"), "{text}");
        assert!(!text.contains("etcdplan_snapshot_age_seconds "), "{text}");

        m.planned(3);
        m.drifted();
        m.applied(true, t0);
        m.applied(false, t0 + Duration::from_secs(5));
        m.newest_snapshot(Some(t0 - Duration::from_secs(90)));
        let text = m.encode(t0);
        assert!(text.contains("etcdplan_plan_changes 3\n"), "{text}");
        assert!(text.contains("etcdplan_drift_total 1\n"), "{text}");
        assert!(
            text.contains("etcdplan_applies_total{result=\"success\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("etcdplan_applies_total{result=\"failure\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("etcdplan_last_apply_success_timestamp_seconds 1700000000"),
            "a failure leaves the last success: {text}"
        );
        assert!(text.contains("etcdplan_snapshot_age_seconds 90"), "{text}");
        m.newest_snapshot(None);
        assert!(!m.encode(t0).contains("etcdplan_snapshot_age_seconds "));
    }
}
