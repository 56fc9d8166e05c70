//! Failpoints: named places in a walk where a test holds or pauses etcdplan,
//! read from the environment as etcd's own gofail failpoints are, and
//! compiled into test builds only (the `fakes` feature); a release build's
//! [`reached`] is empty.
//!
//! `ETCDPLAN_FAILPOINT` is a `;`-separated list of `NAME` (hold there for
//! good, to be killed) or `NAME=pause:MS` (sleep MS milliseconds, then go
//! on). On reaching one, etcdplan says so on stderr
//! (`failpoint NAME reached: …`), so that a test acts at exactly that point.
//!
//! The names:
//! - `after-step:N`: step N (from 0) is done, step N+1 not started;
//! - `stopped:MEMBER`: a restart stopped MEMBER's etcd and has not started it;
//! - `started:MEMBER`: a restart started MEMBER's etcd again; the gate after
//!   it has not begun (a fault injected here hits the gate);
//! - `learner-added:MEMBER`: MemberAdd for MEMBER was answered; the learner
//!   is not started.

/// Holds or pauses here when the environment names `name`.
#[cfg(feature = "fakes")]
pub async fn reached(name: &str) {
    let Ok(list) = std::env::var("ETCDPLAN_FAILPOINT") else {
        return;
    };
    for item in list.split(';').map(str::trim) {
        let (point, action) = item.split_once('=').unwrap_or((item, "hold"));
        if point != name {
            continue;
        }
        match action
            .strip_prefix("pause:")
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            Some(ms) => {
                eprintln!("failpoint {name} reached: pausing for {ms} ms");
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            None => {
                eprintln!("failpoint {name} reached: waiting to be killed");
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                }
            }
        }
    }
}

/// Release builds have no failpoints.
#[cfg(not(feature = "fakes"))]
pub async fn reached(_name: &str) {}

/// Whether the environment names `name`: a walk that would otherwise do
/// the work on both sides of the point in one host command (a restart's
/// stop and start) does it in two, so the point falls between them.
#[cfg(feature = "fakes")]
pub fn armed(name: &str) -> bool {
    std::env::var("ETCDPLAN_FAILPOINT").is_ok_and(|list| {
        list.split(';')
            .map(str::trim)
            .any(|item| item.split_once('=').map_or(item, |(p, _)| p) == name)
    })
}

/// Release builds have no failpoints.
#[cfg(not(feature = "fakes"))]
pub fn armed(_name: &str) -> bool {
    false
}
