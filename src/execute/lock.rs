//! One apply at a time, across processes and machines: a lock held in etcd
//! itself, as a key on a lease that a background task keeps alive. A killed
//! etcdplan stops refreshing it, so the lock ends with its lease (`TTL`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::io::{EtcdApi, EtcdError};
use crate::model::{Endpoint, Scheme};

/// The key the lock lives at.
pub const KEY: &str = "etcdplan/lock";

/// How long a lock outlives an etcdplan that stopped refreshing it.
pub const TTL: Duration = Duration::from_secs(20);

/// Who holds the lock, stored as the key's value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockInfo {
    /// A random id, for `force-unlock`.
    pub id: String,
    /// user@host (pid).
    pub who: String,
    /// What it is doing ("apply").
    pub operation: String,
    /// sha256 of the etcdfile the plan came from.
    pub plan: String,
    /// When it took the lock (UTC).
    pub since: String,
}

impl LockInfo {
    /// A lock description for this process.
    pub fn new(operation: &str, plan: &str) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| {
                // No login name in the environment (services, CI): the uid.
                std::fs::read_to_string("/proc/self/status")
                    .ok()
                    .and_then(|s| {
                        s.lines().find_map(|l| {
                            l.strip_prefix("Uid:").and_then(|r| {
                                r.split_whitespace().next().map(|u| format!("uid {u}"))
                            })
                        })
                    })
                    .unwrap_or_else(|| "unknown".into())
            });
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        let now = time::OffsetDateTime::now_utc();
        let seed = format!(
            "{user}{host}{}{}",
            std::process::id(),
            now.unix_timestamp_nanos()
        );
        let f =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
        Self {
            id: crate::config::hash(&seed)[..12].to_owned(),
            who: format!("{user}@{host} (pid {})", std::process::id()),
            operation: operation.to_owned(),
            plan: plan.chars().take(12).collect(),
            since: now.format(&f).unwrap_or_default(),
        }
    }

    /// Who holds a lock, from its stored value.
    pub fn describe(raw: &str) -> String {
        match serde_json::from_str::<Self>(raw) {
            Ok(i) => format!(
                "{} for {} since {} (lock id {})",
                i.who, i.operation, i.since, i.id
            ),
            Err(_) => format!("an unknown holder ({raw:?})"),
        }
    }
}

/// Why the lock could not be taken or removed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else holds it.
    #[error("the cluster is locked by {0}")]
    Held(String),
    /// `force-unlock` was given another id.
    #[error("the lock is held by {0}, not by the id given")]
    OtherId(String),
    /// The lock is free already.
    #[error("the cluster is not locked")]
    NotLocked,
    /// No member answered.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// A held lock; release it with [`Lock::release`].
pub struct Lock {
    /// Where the lease is refreshed and the key deleted: every member, in both
    /// schemes, since members restart and may switch to TLS while it is held;
    /// shared with the task that refreshes it, so that [`Lock::also_at`] can
    /// add the URLs members advertise once they are observed.
    endpoints: Arc<std::sync::Mutex<Vec<Endpoint>>>,
    value: String,
    lease: i64,
    keeper: tokio::task::JoinHandle<()>,
}

/// Takes the lock through the first member that answers, waiting up to `wait`
/// for a holder to let go.
pub async fn acquire(
    etcd: Arc<dyn EtcdApi>,
    endpoints: &[Endpoint],
    info: &LockInfo,
    wait: Duration,
) -> Result<Lock, LockError> {
    let value = serde_json::to_string(info).unwrap_or_default();
    let start = Instant::now();
    loop {
        let mut last_err = None;
        let mut held = None;
        for ep in endpoints {
            match etcd.create_leased(ep, KEY, &value, TTL).await {
                Ok(Ok(lease)) => {
                    let mut all = vec![ep.clone()];
                    with_twins(&mut all, endpoints);
                    let all = Arc::new(std::sync::Mutex::new(all));
                    let (e, shared) = (etcd.clone(), all.clone());
                    let keeper = tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(TTL / 4).await;
                            let eps = shared.lock().map(|l| l.clone()).unwrap_or_default();
                            let mut last = None;
                            for ep in &eps {
                                match e.keep_alive(ep, lease).await {
                                    Ok(()) => {
                                        last = None;
                                        break;
                                    }
                                    Err(err) => last = Some(err),
                                }
                            }
                            if let Some(err) = last {
                                tracing::warn!("cannot refresh the lock's lease: {err}");
                            }
                        }
                    });
                    return Ok(Lock {
                        endpoints: all,
                        value,
                        lease,
                        keeper,
                    });
                }
                Ok(Err(raw)) => {
                    held = Some(raw);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        match (held, last_err) {
            (Some(raw), _) if start.elapsed() >= wait => {
                return Err(LockError::Held(LockInfo::describe(&raw)));
            }
            (None, Some(e)) => return Err(LockError::Etcd(e)),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Adds each of `endpoints` not in `all` yet, in both schemes.
fn with_twins(all: &mut Vec<Endpoint>, endpoints: &[Endpoint]) {
    for u in endpoints {
        let twin = Endpoint {
            scheme: match u.scheme {
                Scheme::Http => Scheme::Https,
                Scheme::Https => Scheme::Http,
            },
            ..u.clone()
        };
        for x in [u.clone(), twin] {
            if !all.contains(&x) {
                all.push(x);
            }
        }
    }
}

impl Lock {
    /// Refreshes and releases the lock through these endpoints too (the
    /// client URLs members advertise, known once they are observed; they
    /// differ from the etcdfile's while a client port change rolls out).
    pub fn also_at(&self, endpoints: &[Endpoint]) {
        if let Ok(mut all) = self.endpoints.lock() {
            with_twins(&mut all, endpoints);
        }
    }

    /// Deletes the key (if it is still ours) and revokes the lease.
    ///
    /// The delete goes to every member at once and the first answer wins
    /// (it only deletes the key while it holds this lock's value, so a
    /// second one deletes nothing): a member that just restarted does not
    /// hold the release up. Returns what to tell the operator when no member
    /// took it.
    pub async fn release(self, etcd: &dyn EtcdApi) -> Option<String> {
        self.keeper.abort();
        let endpoints = self.endpoints.lock().map(|l| l.clone()).unwrap_or_default();
        if endpoints.is_empty() {
            return None;
        }
        let deletes = endpoints
            .iter()
            .map(|ep| etcd.delete_if(ep, KEY, &self.value, Some(self.lease)));
        match futures::future::select_ok(deletes).await {
            Ok(_) => None,
            Err(e) => Some(format!(
                "cannot release the lock in etcd (it expires within {}s): {e}",
                TTL.as_secs()
            )),
        }
    }
}

/// Removes a lock whose holder is gone, only if it has the given id.
pub async fn force_unlock(
    etcd: &dyn EtcdApi,
    endpoints: &[Endpoint],
    id: &str,
) -> Result<String, LockError> {
    let mut last = None;
    for ep in endpoints {
        match etcd.get_value(ep, KEY).await {
            Ok(None) => return Err(LockError::NotLocked),
            Ok(Some(raw)) => {
                let info: Option<LockInfo> = serde_json::from_str(&raw).ok();
                if info.as_ref().is_none_or(|i| i.id != id) {
                    return Err(LockError::OtherId(LockInfo::describe(&raw)));
                }
                etcd.delete_if(ep, KEY, &raw, None).await?;
                return Ok(LockInfo::describe(&raw));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(LockError::NotLocked, LockError::Etcd))
}
