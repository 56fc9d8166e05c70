//! The lock for plans that cannot take the lock in etcd: with the quorum lost,
//! under NOSPACE (etcd refuses lease grants and puts) or while every member is
//! stopped for a restore. A lock file in each member's state folder on every
//! host that answers, saying who holds it, with which pid and since when; a
//! background task refreshes it, so one whose holder died goes stale after
//! [`STALE`] and the next etcdplan may take it over.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Desired, DesiredMember};
use crate::io::{Host, HostMap, Script, shell_quote};

use super::lock::LockInfo;

/// Whether taking the lock may create a member's state folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Yes: a restore or recovery, which writes there anyway.
    Folders,
    /// No: an apply not yet approved leaves no trace; a host without the
    /// folder has no etcdplan member to protect and holds no lock file.
    Nothing,
}

/// The lock file's name, in each member's state folder.
pub const FILE: &str = "etcdplan.lock";

/// How long a lock file that is no longer refreshed still holds: as long
/// as the lock in etcd outlives a holder that died, so an apply killed
/// mid-way blocks the next one for the same time whichever lock it meets.
pub const STALE: Duration = super::lock::TTL;

/// How often the holder refreshes its lock files.
const REFRESH: Duration = Duration::from_secs(5);

/// Deadline of one lock script on one host.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(20);

/// Why the host lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum HostLockError {
    /// A fresh lock file names another holder.
    #[error(
        "{host} is locked by {holder} (the lock file {path} is refreshed by its holder; it goes stale {stale}s after that stops)"
    )]
    Held {
        /// The host.
        host: String,
        /// Who holds it, as its file says.
        holder: String,
        /// The lock file.
        path: String,
        /// [`STALE`] in seconds.
        stale: u64,
    },
    /// No host answered: nothing could be locked.
    #[error("no host answered to take the lock: {0}")]
    NoHost(String),
}

/// One lock file on one host.
#[derive(Clone)]
struct Place {
    label: String,
    path: String,
    host: Arc<dyn Host>,
}

/// Lock files held on the hosts that answered; release with [`HostLock::release`].
pub struct HostLock {
    places: Vec<Place>,
    id: String,
    /// Hosts that did not answer and so hold no lock file (they are named in
    /// the plan's output).
    pub skipped: Vec<String>,
    keeper: tokio::task::JoinHandle<()>,
}

/// Where each member's lock file is: one per (host, path) pair, so members
/// sharing a host and folder share one file.
fn places(members: &[&DesiredMember], hosts: &HostMap) -> (Vec<Place>, Vec<String>) {
    let mut out: Vec<Place> = Vec::new();
    let mut missing = Vec::new();
    for m in members {
        let path = m.state_dir.join(FILE).display().to_string();
        let label = m.address.to_string();
        match hosts.get(&m.address) {
            Some(host) => {
                if !out.iter().any(|p| p.label == label && p.path == path) {
                    out.push(Place { label, path, host });
                }
            }
            None => missing.push(format!("{label} (no connection)")),
        }
    }
    (out, missing)
}

/// What a lock file holding lock `id` contains, shell-quoted for `grep`.
fn id_marker(id: &str) -> String {
    shell_quote(&format!("\"id\":\"{id}\""))
}

/// A script that runs `action` on the lock file at `path` (as `$f`) only
/// while it holds lock `id`: a lock taken over by another holder is never
/// touched or removed.
fn if_holds(path: &str, id: &str, what: &str, action: &str) -> Script {
    Script::new(
        format!("{what} {path}"),
        format!(
            "f={f}\nif grep -q {id} \"$f\" 2>/dev/null; then {action}; fi\n",
            f = shell_quote(path),
            id = id_marker(id),
        ),
    )
    .timeout(SCRIPT_DEADLINE)
}

/// Removes the lock file at `path` if it holds lock `id`, saying `removed`.
fn unlock_script(path: &str, id: &str) -> Script {
    if_holds(path, id, "unlock", "rm -f \"$f\"; echo removed")
}

/// The script that takes (or refreshes) a lock file: it writes ours unless
/// the file holds another id and was refreshed within [`STALE`]; it prints
/// `held\t<contents>` when it is another's.
fn take_script(path: &str, id: &str, value: &str, create: bool) -> String {
    let p = shell_quote(path);
    // Without `create`, a host whose state folder does not exist yet has no
    // etcdplan member to protect, and an apply not yet approved must leave
    // no trace: it prints `absent` and holds nothing there.
    let folder = if create {
        "mkdir -p \"$(dirname \"$f\")\"\n"
    } else {
        "if [ ! -d \"$(dirname \"$f\")\" ]; then echo absent; exit 0; fi\n"
    };
    format!(
        "set -e\nf={p}\n{folder}\
if [ -f \"$f\" ] && ! grep -q {id} \"$f\"; then\n\
  age=$(( $(date +%s) - $(stat -c %Y \"$f\") ))\n\
  if [ \"$age\" -lt {stale} ]; then printf 'held\\t'; cat \"$f\"; echo; exit 0; fi\n\
fi\n\
umask 077\nprintf '%s\\n' {value} > \"$f.tmp.$$\"\nmv \"$f.tmp.$$\" \"$f\"\necho taken\n",
        id = id_marker(id),
        stale = STALE.as_secs(),
        value = shell_quote(value),
    )
}

/// Takes the lock file on every host of `members` that answers, waiting up
/// to `wait` for another holder's fresh lock file to go (as `--lock-timeout`
/// does for the lock in etcd). Hosts that do not answer are skipped and
/// listed in [`HostLock::skipped`]; with none answering there is nothing to
/// lock.
pub async fn acquire(
    members: &[&DesiredMember],
    hosts: &HostMap,
    info: &LockInfo,
    wait: Duration,
    create: Create,
) -> Result<HostLock, HostLockError> {
    let start = std::time::Instant::now();
    loop {
        match try_acquire(members, hosts, info, create).await {
            Err(HostLockError::Held { .. }) if start.elapsed() < wait => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

/// One attempt of [`acquire`]: refuses while a fresh lock file of another
/// holder exists on any host. Every host is asked at once (one ssh round
/// trip in all, not one per host); when one refuses, the files taken on the
/// others are removed again, as when they were asked in turn.
async fn try_acquire(
    members: &[&DesiredMember],
    hosts: &HostMap,
    info: &LockInfo,
    create: Create,
) -> Result<HostLock, HostLockError> {
    let value = serde_json::to_string(info).unwrap_or_default();
    let (all, mut skipped) = places(members, hosts);
    let answers = futures::future::join_all(all.iter().map(|place| {
        let script = Script::new(
            format!("lock {}", place.path),
            take_script(&place.path, &info.id, &value, create == Create::Folders),
        )
        .timeout(SCRIPT_DEADLINE);
        async move { place.host.run(&script).await }
    }))
    .await;
    let mut taken: Vec<Place> = Vec::new();
    let mut held = None;
    for (place, answer) in all.into_iter().zip(answers) {
        match answer {
            Ok(out) if out.success() => {
                if let Some(rest) = out.stdout.trim().strip_prefix("held\t") {
                    if held.is_none() {
                        held = Some((place, LockInfo::describe(rest.trim())));
                    }
                } else if out.stdout.trim() != "absent" {
                    taken.push(place);
                }
            }
            Ok(out) => skipped.push(format!("{} ({})", place.label, out.tail())),
            Err(e) => skipped.push(format!("{} ({e})", place.label)),
        }
    }
    if let Some((place, holder)) = held {
        let partial = HostLock {
            places: taken,
            id: info.id.clone(),
            skipped: Vec::new(),
            keeper: tokio::spawn(async {}),
        };
        partial.release().await;
        return Err(HostLockError::Held {
            host: place.label,
            holder,
            path: place.path,
            stale: STALE.as_secs(),
        });
    }
    if taken.is_empty() && !skipped.is_empty() {
        return Err(HostLockError::NoHost(skipped.join("; ")));
    }
    let (refresh, id) = (taken.clone(), info.id.clone());
    let keeper = tokio::spawn(async move {
        loop {
            tokio::time::sleep(REFRESH).await;
            for p in &refresh {
                let script = if_holds(&p.path, &id, "refresh", "touch \"$f\"");
                if let Err(e) = p.host.run(&script).await {
                    tracing::warn!("cannot refresh the lock file on {}: {e}", p.label);
                }
            }
        }
    });
    Ok(HostLock {
        places: taken,
        id: info.id.clone(),
        skipped,
        keeper,
    })
}

impl HostLock {
    /// Removes every lock file that still holds this lock's id, on every
    /// host at once.
    ///
    /// Returns what to tell the operator about lock files that could not be
    /// removed (each goes stale on its own).
    pub async fn release(self) -> Vec<String> {
        self.keeper.abort();
        let id = &self.id;
        futures::future::join_all(self.places.iter().map(|p| async move {
            p.host
                .run(&unlock_script(&p.path, id))
                .await
                .err()
                .map(|e| {
                    format!(
                        "cannot remove the lock file {} on {} (it goes stale within {}s): {e}",
                        p.path,
                        p.label,
                        STALE.as_secs()
                    )
                })
        }))
        .await
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Removes host lock files holding the given id (`force-unlock` of a lock
/// that lives in files); returns the hosts it was removed from.
pub async fn force_unlock(d: &Desired, hosts: &HostMap, id: &str) -> Vec<String> {
    let members: Vec<&DesiredMember> = d.members.iter().collect();
    let (all, _) = places(&members, hosts);
    let mut removed = Vec::new();
    for p in all {
        if let Ok(out) = p.host.run(&unlock_script(&p.path, id)).await
            && out.stdout.contains("removed")
        {
            removed.push(format!("{}:{}", p.label, p.path));
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str) -> String {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn a_fresh_lock_of_another_holder_refuses_a_stale_one_is_taken_over() {
        let dir = std::env::temp_dir().join(format!("etcdplan-hostlock-{}", std::process::id()));
        let path = dir.join("state").join(FILE).display().to_string();
        let value = |id: &str| format!("{{\"id\":\"{id}\",\"who\":\"t\"}}");
        assert_eq!(
            run(&take_script(&path, "aaa", &value("aaa"), true)).trim(),
            "taken"
        );
        let held = run(&take_script(&path, "bbb", &value("bbb"), true));
        assert!(held.starts_with("held\t{\"id\":\"aaa\""), "{held}");
        // Its own holder takes it again (a re-run of the same lock).
        assert_eq!(
            run(&take_script(&path, "aaa", &value("aaa"), true)).trim(),
            "taken"
        );
        // Not refreshed for longer than STALE: another may take it.
        run(&format!(
            "touch -d '-{}seconds' '{path}'",
            STALE.as_secs() + 5
        ));
        assert_eq!(
            run(&take_script(&path, "bbb", &value("bbb"), true)).trim(),
            "taken"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_create_a_missing_state_folder_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("etcdplan-hostlock-n-{}", std::process::id()));
        let path = dir.join("state").join(FILE).display().to_string();
        let out = run(&take_script(&path, "aaa", "{\"id\":\"aaa\"}", false));
        assert_eq!(out.trim(), "absent");
        assert!(!dir.exists(), "the folder was created");
    }

    /// A host that went away: every command fails.
    struct Gone;

    #[async_trait::async_trait]
    impl Host for Gone {
        fn label(&self) -> String {
            "10.0.0.13".into()
        }

        async fn run(
            &self,
            script: &Script,
        ) -> Result<crate::io::CommandOutput, crate::io::HostError> {
            Err(crate::io::HostError::Unreachable {
                host: self.label(),
                what: script.what.clone(),
                message: "ssh 10.0.0.13: connection refused".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_lock_file_that_cannot_be_removed_is_said_and_the_others_go() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let id = "abc123";
        let value = format!("{{\"id\":\"{id}\",\"who\":\"t\"}}");
        // Two lock files on this machine, and one on a host whose commands fail.
        let mut places = Vec::new();
        for name in ["a", "b"] {
            let path = dir.path().join(name).join(FILE).display().to_string();
            assert_eq!(run(&take_script(&path, id, &value, true)).trim(), "taken");
            places.push(Place {
                label: format!("local-{name}"),
                path,
                host: Arc::new(crate::io::LocalHost),
            });
        }
        places.push(Place {
            label: "10.0.0.13".into(),
            path: "/var/lib/etcdplan/etcdplan.lock".into(),
            host: Arc::new(Gone),
        });
        let kept: Vec<String> = places.iter().map(|p| p.path.clone()).collect();
        let lock = HostLock {
            places,
            id: id.into(),
            skipped: Vec::new(),
            keeper: tokio::spawn(async {}),
        };
        let notes = lock.release().await;
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with(
                "cannot remove the lock file /var/lib/etcdplan/etcdplan.lock on 10.0.0.13"
            ) && notes[0].contains(&format!("goes stale within {}s", STALE.as_secs())),
            "{notes:?}"
        );
        assert!(!std::path::Path::new(&kept[0]).exists());
        assert!(!std::path::Path::new(&kept[1]).exists());
    }
}
