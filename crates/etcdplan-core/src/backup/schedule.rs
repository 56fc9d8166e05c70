//! When a scheduled snapshot is due, and the systemd service and timer that
//! run `etcdplan snapshot --if-due` for hosts without a `watch`.

use std::path::Path;
use std::time::Duration;

/// Whether a snapshot is due: none was taken yet, or the newest is at least
/// `interval` old (a clock set back makes it due, not never).
pub fn is_due(
    newest: Option<time::OffsetDateTime>,
    now: time::OffsetDateTime,
    interval: Duration,
) -> bool {
    match newest {
        None => true,
        Some(t) if t > now => true,
        Some(t) => (now - t).unsigned_abs() >= interval,
    }
}

/// Quotes a word for a systemd `ExecStart=` line: as is when plain, else in
/// double quotes; `%` is doubled, since systemd expands specifiers in it.
fn systemd_word(s: &str) -> String {
    let s = s.replace('%', "%%");
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=,@+%".contains(c))
    {
        return s;
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The service and timer units (with their file names in comments) that run
/// `<binary> -f <etcdfile> snapshot --if-due` every `interval` after the
/// last run; the paths should be absolute.
pub fn timer_units(cluster: &str, binary: &Path, etcdfile: &Path, interval: Duration) -> String {
    let unit = format!("etcdplan-snapshot-{cluster}");
    let secs = interval.as_secs().max(1);
    format!(
        "# /etc/systemd/system/{unit}.service\n\
[Unit]\n\
Description=etcdplan: a snapshot of etcd cluster {cluster} when one is due\n\
Wants=network-online.target\n\
After=network-online.target\n\
\n\
[Service]\n\
Type=oneshot\n\
ExecStart={bin} -f {file} snapshot --if-due\n\
\n\
# /etc/systemd/system/{unit}.timer\n\
[Unit]\n\
Description=etcdplan: snapshots of etcd cluster {cluster} every {secs}s\n\
\n\
[Timer]\n\
OnBootSec=1min\n\
OnUnitActiveSec={secs}s\n\
\n\
[Install]\n\
WantedBy=timers.target\n\
\n\
# Enable with: systemctl daemon-reload && systemctl enable --now {unit}.timer\n",
        bin = systemd_word(&binary.display().to_string()),
        file = systemd_word(&etcdfile.display().to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_when_none_or_the_newest_is_an_interval_old() {
        let t0 = time::OffsetDateTime::UNIX_EPOCH;
        let i = Duration::from_secs(3600);
        assert!(is_due(None, t0, i));
        assert!(!is_due(Some(t0), t0 + time::Duration::minutes(59), i));
        assert!(is_due(Some(t0), t0 + time::Duration::minutes(60), i));
        // A newest snapshot "in the future" (the clock went back): due.
        assert!(is_due(Some(t0 + time::Duration::hours(2)), t0, i));
    }

    #[test]
    fn the_timer_runs_snapshot_if_due_every_interval() {
        let u = timer_units(
            "c1",
            Path::new("/usr/local/bin/etcdplan"),
            Path::new("/srv/my etcd/etcdfile.toml"),
            Duration::from_secs(6 * 3600),
        );
        assert!(u.contains(
            "ExecStart=/usr/local/bin/etcdplan -f \"/srv/my etcd/etcdfile.toml\" snapshot --if-due\n"
        ));
        assert!(u.contains("OnUnitActiveSec=21600s\n"));
        assert!(u.contains("# /etc/systemd/system/etcdplan-snapshot-c1.timer\n"));
        assert_eq!(systemd_word("/a/100%"), "/a/100%%");
    }
}
