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

/// What a writer presents to members that serve https: the CAs it trusts and
/// its client certificate, all PEM.
#[derive(Clone)]
pub struct WriterTls {
    /// CA bundle.
    pub ca_pem: String,
    /// Client certificate.
    pub cert_pem: String,
    /// Its key.
    pub key_pem: String,
}

impl Writer {
    /// Writes `prefix/N` every `every` through `endpoints`, each put under `deadline`.
    pub fn start(
        endpoints: Vec<String>,
        prefix: &str,
        every: Duration,
        deadline: Duration,
    ) -> Self {
        Self::start_with(endpoints, prefix, every, deadline, None)
    }

    /// The same over https with a client certificate.
    pub fn start_with(
        endpoints: Vec<String>,
        prefix: &str,
        every: Duration,
        deadline: Duration,
        tls: Option<WriterTls>,
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
                // One client per endpoint, and a write tries the next endpoint
                // when one fails, as etcd's own Go client does: a member being
                // restarted must not fail a write the others can take.
                let mut opts = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_millis(300))
                    .with_timeout(deadline / 3);
                if let Some(t) = tls {
                    opts = opts.with_tls(
                        etcd_client::TlsOptions::new()
                            .ca_certificate(etcd_client::Certificate::from_pem(t.ca_pem))
                            .identity(etcd_client::Identity::from_pem(t.cert_pem, t.key_pem)),
                    );
                }
                let mut clients = Vec::new();
                for ep in &endpoints {
                    if let Ok(c) =
                        etcd_client::Client::connect([ep.as_str()], Some(opts.clone())).await
                    {
                        clients.push((ep.clone(), c));
                    }
                }
                // One attempt may take a third of the deadline: a request to a
                // member that is stopping can hang, and the write moves on to
                // the next member, as a client with several endpoints would.
                let attempt = deadline / 3;
                if clients.is_empty() {
                    return;
                }
                let mut n = 0u64;
                let began = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("{p}/{n:06}");
                    let t = Instant::now();
                    let mut last = String::new();
                    let mut acked = false;
                    let mut i = n as usize;
                    while t.elapsed() < deadline {
                        let left = deadline.saturating_sub(t.elapsed());
                        let k = clients.len();
                        let (ep, c) = &mut clients[i % k];
                        let wait = left.min(attempt);
                        match tokio::time::timeout(wait, c.put(key.clone(), "v", None)).await {
                            Ok(Ok(_)) => {
                                acked = true;
                                break;
                            }
                            Ok(Err(e)) => last = format!("{ep}: {e}"),
                            Err(_) => last = format!("{ep}: no answer within {wait:?}"),
                        }
                        i += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    {
                        let mut g = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if acked {
                            g.acked.push(key);
                            g.latencies.push(t.elapsed());
                        } else {
                            g.failed.push(format!(
                                "{key} (sent {:.2}s after the writer started): {last}",
                                t.duration_since(began).as_secs_f64()
                            ));
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
