//! A client that writes keys at a steady rate during an apply, with a short
//! deadline per request, and remembers which writes etcd acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the writer saw.
#[derive(Debug, Default, Clone)]
pub struct Writes {
    /// Keys etcd acknowledged.
    pub acked: Vec<String>,
    /// Writes that failed or timed out, with why.
    pub failed: Vec<String>,
    /// Latency of each acknowledged write.
    pub latencies: Vec<Duration>,
}

/// A running writer; `stop` ends it and returns what it saw.
pub struct Writer {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Writes>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Writes `prefix/N` every `every` through `endpoints`, each put under `deadline`.
    pub fn start(
        endpoints: Vec<String>,
        prefix: &str,
        every: Duration,
        deadline: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Writes::default()));
        let (s, w, p) = (stop.clone(), seen.clone(), prefix.to_owned());
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let opts = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_secs(1))
                    .with_timeout(deadline);
                let Ok(mut client) = etcd_client::Client::connect(endpoints, Some(opts)).await
                else {
                    return;
                };
                let mut n = 0u64;
                while !s.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("{p}/{n:06}");
                    let t = Instant::now();
                    let r =
                        tokio::time::timeout(deadline, client.put(key.clone(), "v", None)).await;
                    {
                        let mut g = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        match r {
                            Ok(Ok(_)) => {
                                g.acked.push(key);
                                g.latencies.push(t.elapsed());
                            }
                            Ok(Err(e)) => g.failed.push(format!("{key}: {e}")),
                            Err(_) => g
                                .failed
                                .push(format!("{key}: no answer within {deadline:?}")),
                        }
                    }
                    tokio::time::sleep(every).await;
                }
            });
        });
        Self {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Stops the writer and returns what it saw.
    pub fn stop(mut self) -> Writes {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Keys among `keys` that the cluster does not have (read through `endpoint`).
pub fn missing(endpoint: &str, prefix: &str, keys: &[String]) -> Vec<String> {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return keys.to_vec();
    };
    rt.block_on(async {
        let opts = etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(10));
        let Ok(mut c) = etcd_client::Client::connect([endpoint], Some(opts)).await else {
            return keys.to_vec();
        };
        let got = match c
            .get(
                format!("{prefix}/"),
                Some(
                    etcd_client::GetOptions::new()
                        .with_prefix()
                        .with_keys_only(),
                ),
            )
            .await
        {
            Ok(r) => r
                .kvs()
                .iter()
                .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
                .collect::<std::collections::BTreeSet<_>>(),
            Err(_) => return keys.to_vec(),
        };
        keys.iter().filter(|k| !got.contains(*k)).cloned().collect()
    })
}
