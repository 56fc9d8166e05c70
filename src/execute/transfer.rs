//! Progress of the long transfers inside a step (a release uploaded to a host,
//! a snapshot downloaded from the leader), passed on as [`Event::Transfer`] at
//! a bounded rate: a start, at most one report per [`EVERY`], and an end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::{Event, TransferPhase};
use crate::io::Progress;

/// The shortest time between two progress reports of one transfer.
pub const EVERY: Duration = Duration::from_millis(100);

/// Where a step's transfers report; the walk forwards them to its caller.
#[derive(Clone)]
pub(super) struct Transfers {
    tx: UnboundedSender<Event>,
}

impl Transfers {
    /// Reports sent to `tx`.
    pub(super) fn new(tx: UnboundedSender<Event>) -> Self {
        Self { tx }
    }

    /// Begins a transfer: reports its start now.
    pub(super) fn start(&self, what: String, host: String, total: Option<u64>) -> Transfer {
        let t = Transfer {
            tx: self.tx.clone(),
            what,
            host,
            state: Arc::new(Mutex::new(State {
                done: 0,
                total,
                last: Instant::now(),
            })),
        };
        t.send(TransferPhase::Start, 0, total);
        t
    }
}

struct State {
    done: u64,
    total: Option<u64>,
    last: Instant,
}

/// One transfer under way.
pub(super) struct Transfer {
    tx: UnboundedSender<Event>,
    what: String,
    host: String,
    state: Arc<Mutex<State>>,
}

impl Transfer {
    /// The sink to hand to the edge that moves the bytes.
    pub(super) fn progress(&self) -> Progress {
        let tx = self.tx.clone();
        let what = self.what.clone();
        let host = self.host.clone();
        let state = self.state.clone();
        Progress::new(move |done, total| {
            let Ok(mut s) = state.lock() else {
                return;
            };
            s.done = done;
            if total.is_some() {
                s.total = total;
            }
            if s.last.elapsed() < EVERY {
                return;
            }
            s.last = Instant::now();
            let _ = tx.send(Event::Transfer {
                phase: TransferPhase::Progress,
                what: what.clone(),
                host: host.clone(),
                done,
                total: s.total,
            });
        })
    }

    /// Reports the end (whether or not all bytes moved: the step says how it went).
    pub(super) fn finish(self) {
        let (done, total) = self
            .state
            .lock()
            .map(|s| (s.done, s.total))
            .unwrap_or((0, None));
        self.send(TransferPhase::End, done, total);
    }

    fn send(&self, phase: TransferPhase, done: u64, total: Option<u64>) {
        let _ = self.tx.send(Event::Transfer {
            phase,
            what: self.what.clone(),
            host: self.host.clone(),
            done,
            total,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> Vec<(TransferPhase, u64)> {
        let mut out = Vec::new();
        while let Ok(Event::Transfer { phase, done, .. }) = rx.try_recv() {
            out.push((phase, done));
        }
        out
    }

    #[test]
    fn many_chunks_make_a_start_an_end_and_few_reports() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let t = Transfers::new(tx).start("upload".into(), "h".into(), Some(1000));
        let p = t.progress();
        for done in 1..=1000 {
            p.report(done, Some(1000));
        }
        t.finish();
        let seen = phases(&mut rx);
        assert_eq!(seen.first(), Some(&(TransferPhase::Start, 0)));
        assert_eq!(seen.last(), Some(&(TransferPhase::End, 1000)));
        // A thousand chunks within a few ms: at most a report or two between.
        assert!(seen.len() <= 4, "{seen:?}");
    }

    #[test]
    fn a_slow_transfer_reports_between_start_and_end() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let t = Transfers::new(tx).start("download".into(), "h".into(), None);
        let p = t.progress();
        std::thread::sleep(EVERY + Duration::from_millis(10));
        p.report(10, Some(20));
        t.finish();
        let seen = phases(&mut rx);
        assert_eq!(
            seen,
            vec![
                (TransferPhase::Start, 0),
                (TransferPhase::Progress, 10),
                (TransferPhase::End, 10)
            ]
        );
    }
}
