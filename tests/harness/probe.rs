//! A quorum probe: a linearizable read every `every`, sent to every client
//! endpoint of the cluster at once, each under a deadline. A linearizable
//! read needs the leader to confirm it still leads a quorum (ReadIndex), so
//! it is answered exactly while the cluster has a quorum; a read that some
//! member answers proves the quorum was there at that moment.
//!
//! The probe counts a round as failed only when *no* member answered within
//! the deadline. One member restarting (or a learner, or a member not
//! started yet) refuses or stays silent, but the others answer, so a rolling
//! restart shows no failed round; a lost quorum silences every member until
//! it is back, so each of its rounds fails. A leader move delays reads by
//! about one heartbeat, far below the deadline; a read pending when the
//! leader changes ("leader changed") is retried within it, as etcd's Go
//! client retries reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A round that no member answered.
#[derive(Debug, Clone)]
pub struct Unanswered {
    /// Its number, from 0.
    pub round: usize,
    /// When the round was sent, since the probe started.
    pub at: Duration,
    /// Each endpoint's error.
    pub errors: Vec<(String, String)>,
}

/// What the probe saw.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    /// Rounds sent.
    pub rounds: usize,
    /// Rounds no member answered within the deadline.
    pub unanswered: Vec<Unanswered>,
    /// The slowest answered round (its first answer).
    pub slowest: Duration,
}

impl Probes {
    /// Runs of consecutive unanswered rounds: (first sent, last sent, rounds).
    pub fn outages(&self) -> Vec<(Duration, Duration, usize)> {
        let mut out: Vec<(Duration, Duration, usize)> = Vec::new();
        let mut prev: Option<usize> = None;
        for u in &self.unanswered {
            match out.last_mut() {
                Some(o) if prev == Some(u.round.wrapping_sub(1)) => {
                    o.1 = u.at;
                    o.2 += 1;
                }
                _ => out.push((u.at, u.at, 1)),
            }
            prev = Some(u.round);
        }
        out
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        format!(
            "{} rounds, {} unanswered, slowest answer {:?}, outages {:?}",
            self.rounds,
            self.unanswered.len(),
            self.slowest,
            self.outages()
        )
    }

    /// Asserts that every round was answered: the cluster never lost its quorum.
    pub fn assert_quorum_kept(&self, what: &str) {
        eprintln!("{what}: quorum probe: {}", self.summary());
        for u in &self.unanswered {
            eprintln!(
                "{what}: UNANSWERED PROBE at {:.2}s: {:?}",
                u.at.as_secs_f64(),
                u.errors
            );
        }
        assert!(self.rounds > 0, "{what}: the quorum probe sent nothing");
        assert!(
            self.unanswered.is_empty(),
            "{what}: {} probe rounds found no member answering a linearizable read: {}",
            self.unanswered.len(),
            self.summary()
        );
    }
}

/// A running probe; [`Probe::stop`] ends it.
pub struct Probe {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Probes>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    /// Probes `endpoints` (plain `http://ip:2379`) every `every`, each read
    /// under `deadline`.
    pub fn start(endpoints: Vec<String>, every: Duration, deadline: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Probes::default()));
        let (s, w) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(probe_until_stopped(endpoints, every, deadline, s, w));
        });
        Self {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// What it saw so far, without stopping it.
    pub fn snapshot(&self) -> Probes {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stops the probe and returns what it saw.
    pub fn stop(mut self) -> Probes {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.snapshot()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn probe_until_stopped(
    endpoints: Vec<String>,
    every: Duration,
    deadline: Duration,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Probes>>,
) {
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(deadline)
        .with_timeout(deadline);
    // Lazily connecting clients, one per endpoint: a member that is down
    // costs a refused connect, and its client reconnects once it is back.
    let mut clients = Vec::new();
    for ep in &endpoints {
        if let Ok(c) = etcd_client::Client::connect([ep.as_str()], Some(opts.clone())).await {
            clients.push((ep.clone(), c));
        }
    }
    let began = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let mut reads: futures::stream::FuturesUnordered<_> = clients
            .iter()
            .map(|(ep, c)| {
                let mut kv = c.kv_client();
                async move {
                    loop {
                        let left = deadline.saturating_sub(sent.elapsed());
                        // A plain get is linearizable (serializable is opt-in).
                        let e = match tokio::time::timeout(left, kv.get("etcdplan-probe", None))
                            .await
                        {
                            Ok(Ok(_)) => return Ok(sent.elapsed()),
                            Ok(Err(e)) => super::writer::error_text(&e),
                            Err(_) => format!("no answer within {deadline:?}"),
                        };
                        // A read pending when the leader changed fails with
                        // Unavailable "leader changed"; etcd's Go client
                        // retries reads on Unavailable, and so does the
                        // probe, within the round's deadline: without a new
                        // leader (no quorum) the retry fails too.
                        if !e.contains("leader changed") || sent.elapsed() >= deadline {
                            return Err((ep.clone(), e));
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
            .collect();
        // The first answer ends the round; every member must fail for it to fail.
        let mut answered = None;
        let mut errors = Vec::new();
        while let Some(r) = futures::StreamExt::next(&mut reads).await {
            match r {
                Ok(t) => {
                    answered = Some(t);
                    break;
                }
                Err(e) => errors.push(e),
            }
        }
        drop(reads);
        {
            let mut g = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let round = g.rounds;
            g.rounds += 1;
            match answered {
                Some(t) => g.slowest = g.slowest.max(t),
                None => g.unanswered.push(Unanswered {
                    round,
                    at: sent.duration_since(began),
                    errors,
                }),
            }
        }
        tokio::time::sleep(every.saturating_sub(sent.elapsed())).await;
    }
}
