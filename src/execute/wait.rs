//! The one wait primitive of the walk: a condition polled at a fine interval
//! until a deadline, keeping the reason it is still false.
//!
//! Every gate, catch-up, promotion retry, version wait and quorum re-check is
//! a probe handed to [`wait_until`], so they share one policy: probe at once,
//! stop at the first answer that is not "not yet", and after the deadline
//! report the last reason with the time waited. Never a fixed sleep instead
//! of a condition.

use std::fmt::Display;
use std::time::Duration;

use tokio::time::Instant;

/// One look at a condition.
#[derive(Debug)]
pub(super) enum Check<T, E, R = String> {
    /// It holds; the wait ends with this value.
    Ready(T),
    /// It does not hold yet, for this reason; look again after the interval.
    NotYet(R),
    /// It can no longer hold: stop waiting at once with this error.
    Fail(E),
}

/// Why a wait ended without the condition holding.
#[derive(Debug, PartialEq)]
pub(super) enum WaitError<E, R = String> {
    /// The deadline passed while the condition was still false.
    TimedOut {
        /// How long it waited.
        waited: Duration,
        /// The reason the last probe gave.
        last: R,
    },
    /// A probe failed for good.
    Failed(E),
}

/// Probes until it answers [`Check::Ready`] or [`Check::Fail`], sleeping
/// `every` between probes. A "not yet" once `deadline` has passed since the
/// start ends the wait with that last reason; the probe always runs at least
/// once, and the one before the deadline runs in full.
pub(super) async fn wait_until<T, E, R: Display>(
    what: &str,
    deadline: Duration,
    every: Duration,
    probe: impl AsyncFnMut() -> Check<T, E, R>,
) -> Result<T, WaitError<E, R>> {
    wait_backoff(what, deadline, every, every, probe).await
}

/// [`wait_until`] with a tight start: the first sleep is `first`, each next
/// one twice the last, up to `every`. For a condition that usually holds
/// soon (a member restarted a moment ago), so that the wait ends close to
/// when it holds, without polling fast for long.
pub(super) async fn wait_backoff<T, E, R: Display>(
    what: &str,
    deadline: Duration,
    first: Duration,
    every: Duration,
    mut probe: impl AsyncFnMut() -> Check<T, E, R>,
) -> Result<T, WaitError<E, R>> {
    let start = Instant::now();
    let mut sleeps = intervals(first, every);
    loop {
        match probe().await {
            Check::Ready(v) => return Ok(v),
            Check::Fail(e) => return Err(WaitError::Failed(e)),
            Check::NotYet(last) => {
                let waited = start.elapsed();
                if waited >= deadline {
                    return Err(WaitError::TimedOut { waited, last });
                }
                tracing::debug!("{what}: not yet ({last}), {:.1}s", waited.as_secs_f64());
            }
        }
        tokio::time::sleep(sleeps.next().unwrap_or(every)).await;
    }
}

/// The sleeps of [`wait_backoff`]: `first`, doubling, up to `every`.
fn intervals(first: Duration, every: Duration) -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(first.min(every)), move |d| Some((*d * 2).min(every)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn ready_on_the_first_probe_does_not_sleep() {
        let t = Instant::now();
        let r: Result<u8, WaitError<()>> =
            wait_until("x", MS * 100, MS * 500, async || Check::Ready(7)).await;
        assert_eq!(r, Ok(7));
        assert!(t.elapsed() < MS * 400, "it slept: {:?}", t.elapsed());
    }

    #[tokio::test]
    async fn polls_until_the_condition_holds() {
        let mut n = 0;
        let r: Result<u32, WaitError<()>> = wait_until("x", MS * 5000, MS, async || {
            n += 1;
            if n < 4 {
                Check::NotYet(format!("probe {n}"))
            } else {
                Check::Ready(n)
            }
        })
        .await;
        assert_eq!(r, Ok(4));
    }

    #[tokio::test]
    async fn a_failure_ends_the_wait_at_once() {
        let mut n = 0;
        let r: Result<(), WaitError<&str>> = wait_until("x", MS * 5000, MS, async || {
            n += 1;
            if n < 2 {
                Check::NotYet("later".to_owned())
            } else {
                Check::Fail("gone")
            }
        })
        .await;
        assert_eq!(r, Err(WaitError::Failed("gone")));
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn the_deadline_reports_the_last_reason_and_the_time_waited() {
        let mut n = 0;
        let r: Result<(), WaitError<()>> = wait_until("x", MS * 30, MS * 5, async || {
            n += 1;
            Check::NotYet(format!("still false after {n} probes"))
        })
        .await;
        let Err(WaitError::TimedOut { waited, last }) = r else {
            panic!("not a timeout: {r:?}");
        };
        assert!(waited >= MS * 30, "{waited:?}");
        assert_eq!(last, format!("still false after {n} probes"));
        assert!(n >= 2, "probed only {n} times");
    }

    #[test]
    fn backoff_starts_tight_and_doubles_up_to_the_interval() {
        let sleeps: Vec<Duration> = intervals(MS * 10, MS * 100).take(6).collect();
        assert_eq!(sleeps, [10, 20, 40, 80, 100, 100].map(|n| MS * n).to_vec());
        // A first sleep longer than the interval is the interval.
        assert_eq!(intervals(MS * 500, MS * 100).next(), Some(MS * 100));
    }

    #[tokio::test]
    async fn a_zero_deadline_still_probes_once() {
        let mut n = 0;
        let r: Result<(), WaitError<(), &str>> = wait_until("x", Duration::ZERO, MS, async || {
            n += 1;
            Check::NotYet("no")
        })
        .await;
        assert!(matches!(r, Err(WaitError::TimedOut { last: "no", .. })));
        assert_eq!(n, 1);
    }
}
