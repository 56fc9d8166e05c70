//! Each view driven by the events of an apply and a watch, into buffers.

use std::path::PathBuf;

use serde_json::Value;

use super::testing::Buffer;
use super::*;
use crate::execute::{StepError, TransferPhase};
use crate::watch::{Trigger, WatchEvent};

fn desired(text: &str) -> Result<Desired, ConfigError> {
    let ctx = crate::config::Context {
        base_dir: PathBuf::from("/srv/etcdplan"),
        home: None,
        file_hash: crate::config::hash(text),
        ..Default::default()
    };
    crate::config::parse("etcdfile.toml", text.to_owned(), &ctx).map(|l| l.desired)
}

const THREE: &str = "[cluster]\nname = \"main\"\n\n[etcd]\ndata_dir = \"/var/lib/etcd\"\n\n[hosts]\ntransport = \"ssh\"\nservice = \"process\"\n\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n\n[[member]]\nname = \"etcd-2\"\naddress = \"10.0.0.12\"\n\n[[member]]\nname = \"etcd-3\"\naddress = \"10.0.0.13\"\n";

/// A new cluster's plan: three members to add.
fn plan_of(d: &Desired) -> Plan {
    use crate::observe::{Binary, DataDir, HostFacts, HostState, Live};
    let mut live = Live::default();
    for m in &d.members {
        let facts = HostFacts {
            files: vec![(m.config_file(), None)],
            data: DataDir::Absent,
            service: crate::service::ServiceState::Stopped,
            started_config: None,
            binary: Binary::Found {
                version: crate::model::EtcdVersion::parse("3.5.17"),
            },
            listening: Some(Vec::new()),
            listener: None,
            data_owner_id: None,
            problems: Vec::new(),
            certs: crate::observe::HostCerts::default(),
            auth_files: Default::default(),
            started_ca: None,
            installed: std::collections::BTreeMap::new(),
            unit: None,
            data_owner: None,
            service_user: None,
            restore_pending: None,
        };
        live.hosts.insert(m.name.clone(), HostState::Reached(facts));
    }
    crate::plan::build(d, &live, crate::diff::diff(d, &live))
}

fn noon() -> String {
    "12:00:00Z".to_owned()
}

fn started(index: usize, description: &str) -> Event {
    Event::StepStarted {
        index,
        total: 2,
        description: description.to_owned(),
    }
}

fn finished(index: usize, detail: Option<&str>) -> Event {
    // A snapshot step names its file, as membership::snapshot does.
    let snapshot = detail
        .filter(|d| d.starts_with("snapshot saved"))
        .map(|_| std::path::PathBuf::from("/s/main.db"));
    Event::StepFinished {
        index,
        seconds: 1.5,
        outcome: crate::execute::StepOutcome {
            detail: detail.map(str::to_owned),
            snapshot,
            warnings: Vec::new(),
        },
    }
}

fn transfer(phase: TransferPhase, done: u64) -> Event {
    Event::Transfer {
        phase,
        what: "upload etcd 3.5.17".into(),
        host: "10.0.0.11".into(),
        done,
        total: Some(1000),
    }
}

fn failed() -> ApplyError {
    ApplyError {
        index: 1,
        total: 3,
        description: "restart etcd-2".into(),
        error: StepError::Interrupted,
        done: vec!["take a snapshot".into()],
        remaining: vec!["restart etcd-3".into()],
        afterwards: Vec::new(),
    }
}

/// A human view of `command` (no progress bars) writing into buffers: the
/// view, its stdout and its stderr.
fn human(command: Command) -> (Human, Buffer, Buffer) {
    let (out, err) = (Buffer::default(), Buffer::default());
    let v = Human::new(command, Box::new(out.clone()), Box::new(err.clone()), false);
    (v, out, err)
}

/// One walk of two steps, the first a snapshot with an upload in it.
fn walk(v: &mut dyn View, plan: &Plan) {
    v.apply_started(2);
    v.progress(&started(0, "take a snapshot"));
    v.progress(&transfer(TransferPhase::Start, 0));
    v.progress(&transfer(TransferPhase::Progress, 500));
    v.progress(&transfer(TransferPhase::Progress, 900));
    v.progress(&transfer(TransferPhase::End, 1000));
    v.progress(&finished(
        0,
        Some("snapshot saved to /s/main.db (10 bytes, sha256 00…, trailer checked)"),
    ));
    v.progress(&started(1, "start etcd-1"));
    v.progress(&finished(1, None));
    v.apply_complete(plan, 3.25);
}

#[test]
fn human_apply_prints_the_plan_the_prompt_the_steps_and_the_recap() -> Result<(), ConfigError> {
    let d = desired(THREE)?;
    let plan = plan_of(&d);
    let (mut v, out, err) = human(Command::Apply);
    v.plan(&Shown {
        plan: &plan,
        desired: &d,
        text: "PLAN TEXT\n",
        trigger: None,
    });
    v.prompt("main");
    walk(&mut v, &plan);
    let err = err.text();
    assert!(
        err.starts_with(
            "\nDo you want to perform these actions on cluster \"main\"?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: \n["
        ),
        "{err}"
    );
    // The stamp counts from the walk's start: "[  0.0s]".
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[5].starts_with("[  ") && lines[5].ends_with("s] 1/2 take a snapshot …"));
    assert_eq!(
        lines[6],
        "          done in 1.50s: snapshot saved to /s/main.db (10 bytes, sha256 00…, trailer checked)"
    );
    assert!(lines[7].ends_with("s] 2/2 start etcd-1 …"), "{err}");
    assert_eq!(lines[8], "          done in 1.50s");
    // No bar and no line for the transfer when stderr is not a terminal.
    assert_eq!(lines.len(), 9, "{err}");
    let out = out.text();
    assert!(
        out.starts_with(
            "PLAN TEXT\n\nApply complete! Members: 3 added, 0 changed, 0 removed. (3.2s)\n"
        ),
        "{out}"
    );
    for m in ["etcd-1", "etcd-2", "etcd-3"] {
        assert!(out.contains(&format!("  ✓ {m} ")), "{out}");
    }
    assert!(
        out.ends_with("  snapshot saved to /s/main.db (10 bytes, sha256 00…, trailer checked)\n"),
        "{out}"
    );
    Ok(())
}

#[test]
fn human_apply_failure_says_what_was_done_failed_and_remains() {
    let (mut v, out, err) = human(Command::Apply);
    v.apply_failed(&failed());
    v.signal(1);
    assert_eq!(
        err.text(),
        "\nDone:\n  ✓ take a snapshot\nFailed:\n  ✗ restart etcd-2\nNot started:\n  · restart etcd-3\n\n\
\nStopping after the current step (a second signal aborts at once).\n"
    );
    assert_eq!(out.text(), "");
}

#[test]
fn human_watch_stamps_the_time_of_day() -> Result<(), ConfigError> {
    let d = desired(THREE)?;
    let plan = plan_of(&d);
    let (v, out, err) = human(Command::Watch);
    let mut v = v.with_clock(noon);
    v.watch(&WatchEvent::Watching {
        file: "etcdfile.toml".into(),
        interval_seconds: 30,
        auto_approve: true,
    });
    v.watch(&WatchEvent::FileChanged {
        file: "etcdfile.toml".into(),
    });
    v.plan(&Shown {
        plan: &plan,
        desired: &d,
        text: "PLAN TEXT\n",
        trigger: Some(Trigger::Edit),
    });
    walk(&mut v, &plan);
    v.watch(&WatchEvent::Drift { changes: 1 });
    v.watch_not_approved();
    v.watch(&WatchEvent::Skipped {
        reason: "it removes a majority".into(),
    });
    v.apply_failed(&failed());
    v.watch(&WatchEvent::Stopped {
        reason: "stopped by a signal".into(),
    });
    insta::assert_snapshot!(err.text(), @r"
    [12:00:00Z] Watching etcdfile.toml (drift check every 30s; safe plans are applied)
    [12:00:00Z] etcdfile.toml changed
    [12:00:00Z] 1/2 take a snapshot …
               done in 1.50s: snapshot saved to /s/main.db (10 bytes, sha256 00…, trailer checked)
    [12:00:00Z] 2/2 start etcd-1 …
               done in 1.50s
    [12:00:00Z] Applied: 3 added, 0 changed, 0 removed (3.2s)
    [12:00:00Z] Drift: the cluster differs from the etcdfile (1 member to change)
    [12:00:00Z] Not applied: watch shows plans; run `etcdplan apply`, or watch with --auto-approve
    [12:00:00Z] Not applied: it removes a majority

    Done:
      ✓ take a snapshot
    Failed:
      ✗ restart etcd-2
    Not started:
      · restart etcd-3

    [12:00:00Z] Apply failed; the next check re-plans from what is live.
    [12:00:00Z] Watch ended: stopped by a signal
    ");
    assert_eq!(out.text(), "PLAN TEXT\n");
    Ok(())
}

#[test]
fn human_watch_shows_why_the_etcdfile_is_invalid() {
    let Err(e) = desired("[cluster]\nname = 7\n") else {
        panic!("an invalid etcdfile parsed");
    };
    let (v, _, err) = human(Command::Watch);
    let mut v = v.with_clock(noon);
    v.watch_invalid(e, Vec::new());
    let text = err.text();
    assert!(text.contains("etcdfile.toml"), "{text}");
    assert!(
        text.ends_with("[12:00:00Z] Not applied: the etcdfile is invalid; nothing was changed, and nothing will be until it is fixed.\n"),
        "{text}"
    );
}

fn lines(buf: &Buffer) -> Vec<Value> {
    buf.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn names(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|v| v["event"].as_str().unwrap_or("(none)"))
        .collect()
}

#[test]
fn json_apply_is_one_event_per_line_with_a_start_and_an_end_per_transfer() -> Result<(), ConfigError>
{
    let d = desired(THREE)?;
    let plan = plan_of(&d);
    let out = Buffer::default();
    let mut v = JsonLines::new(Command::Apply, Box::new(out.clone()));
    v.plan(&Shown {
        plan: &plan,
        desired: &d,
        text: "PLAN TEXT\n",
        trigger: None,
    });
    v.prompt("main");
    walk(&mut v, &plan);
    v.signal(1);
    v.apply_failed(&failed());
    let seen = lines(&out);
    assert_eq!(
        names(&seen),
        [
            "plan",
            "apply_started",
            "step_started",
            "transfer",
            "transfer",
            "step_finished",
            "step_started",
            "step_finished",
            "applied",
            "signal",
            "apply_failed"
        ]
    );
    assert!(
        seen.iter()
            .all(|v| v["time"].as_str().is_some_and(|t| t.contains('T')))
    );
    assert_eq!(seen[0]["changes"], 3);
    assert!(seen[0]["plan"].is_object());
    assert!(seen[0].get("trigger").is_none());
    assert_eq!(seen[1]["steps"], 2);
    assert_eq!(seen[3]["phase"], "start");
    assert_eq!(seen[4]["phase"], "end");
    assert_eq!(seen[4]["done"], 1000);
    assert_eq!(seen[4]["host"], "10.0.0.11");
    assert!(
        seen[5]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("snapshot saved"))
    );
    assert_eq!(seen[8]["add"], 3);
    assert_eq!(seen[8]["seconds"], 3.25);
    assert_eq!(seen[9]["count"], 1);
    assert_eq!(seen[10]["done"][0], "take a snapshot");
    assert_eq!(seen[10]["remaining"][0], "restart etcd-3");
    Ok(())
}

#[test]
fn json_watch_keeps_its_events() -> Result<(), ConfigError> {
    let d = desired(THREE)?;
    let plan = plan_of(&d);
    let out = Buffer::default();
    let mut v = JsonLines::new(Command::Watch, Box::new(out.clone())).with_clock(noon);
    v.watch(&WatchEvent::Watching {
        file: "etcdfile.toml".into(),
        interval_seconds: 30,
        auto_approve: false,
    });
    v.plan(&Shown {
        plan: &plan,
        desired: &d,
        text: "PLAN TEXT\n",
        trigger: Some(Trigger::Interval),
    });
    v.watch_not_approved();
    v.watch(&WatchEvent::Step(started(0, "take a snapshot")));
    let Err(e) = desired("[cluster]\nname = 7\n") else {
        panic!("an invalid etcdfile parsed");
    };
    v.watch_invalid(
        e,
        vec![serde_json::json!({"level": "error", "message": "bad"})],
    );
    v.watch(&WatchEvent::Stopped {
        reason: "stopped by a signal".into(),
    });
    let seen = lines(&out);
    assert_eq!(
        names(&seen),
        ["watching", "plan", "step_started", "invalid", "stopped"]
    );
    assert!(seen.iter().all(|v| v["time"] == "12:00:00Z"));
    assert_eq!(seen[1]["trigger"], "interval");
    assert_eq!(seen[2]["description"], "take a snapshot");
    assert_eq!(seen[3]["problems"][0]["message"], "bad");
    Ok(())
}

#[test]
fn the_shared_view_reaches_the_one_view() {
    let (v, _, err) = human(Command::Apply);
    let shared = SharedView::new(Box::new(v));
    let other = shared.clone();
    std::thread::spawn(move || other.with(|v| v.signal(1)))
        .join()
        .ok();
    shared.with(|v| v.signal(2));
    let text = err.text();
    assert!(text.contains("Stopping after the current step"), "{text}");
    assert!(text.contains("Aborted during a step"), "{text}");
}

/// The events of a scheduled snapshot round, as watch reports them.
fn backup_events() -> Vec<WatchEvent> {
    vec![
        WatchEvent::Snapshot {
            path: "/b/main-20261202-120000.db".into(),
            revision: 42,
            keys: 7,
            bytes: 20512,
        },
        WatchEvent::Copied {
            file: "main-20261202-120000.db".into(),
        },
        WatchEvent::CopyFailed {
            file: "main-20261202-060000.db".into(),
            error: "exit 3: remote refused".into(),
        },
        WatchEvent::Pruned {
            files: vec!["main-20261201-000000.db".into()],
        },
        WatchEvent::SnapshotFailed {
            error: "no member to take a snapshot from: none answers".into(),
        },
    ]
}

#[test]
fn human_watch_reports_scheduled_snapshots_copies_and_pruning() {
    let (v, _, err) = human(Command::Watch);
    let mut v = v.with_clock(noon);
    for e in backup_events() {
        v.watch(&e);
    }
    insta::assert_snapshot!(err.text(), @r"
    [12:00:00Z] Snapshot saved to /b/main-20261202-120000.db (revision 42, 7 keys, 20512 bytes; checked, manifest beside it)
    [12:00:00Z] Copied main-20261202-120000.db with copy_command
    [12:00:00Z] Copy of main-20261202-060000.db failed: exit 3: remote refused; the snapshot is kept and its copy retried at the next interval
    [12:00:00Z] Deleted the oldest snapshots beyond keep: main-20261201-000000.db
    [12:00:00Z] Scheduled snapshot failed: no member to take a snapshot from: none answers; the next interval tries again
    ");
}

#[test]
fn json_watch_tags_each_backup_event() {
    let out = Buffer::default();
    let mut v = JsonLines::new(Command::Watch, Box::new(out.clone())).with_clock(noon);
    for e in backup_events() {
        v.watch(&e);
    }
    let seen = lines(&out);
    assert_eq!(
        names(&seen),
        [
            "snapshot",
            "copied",
            "copy_failed",
            "pruned",
            "snapshot_failed"
        ]
    );
    assert_eq!(seen[0]["revision"], 42);
    assert_eq!(seen[2]["error"], "exit 3: remote refused");
    assert_eq!(seen[3]["files"][0], "main-20261201-000000.db");
}

/// A note said beside a command's result: the history record's, a lock's.
type Note = fn(&mut dyn View, &str);

#[test]
fn history_and_lock_notes_go_to_stderr_for_people_and_are_events_in_json() {
    let notes: [(Note, &str); 2] = [
        (|v, m| v.history_note(m), "history"),
        (|v, m| v.lock_note(m), "lock"),
    ];
    for (note, event) in notes {
        let (mut v, out, err) = human(Command::Apply);
        note(&mut v, "the end record of this walk was skipped");
        assert_eq!(
            err.text(),
            "note: the end record of this walk was skipped\n"
        );
        assert_eq!(out.text(), "");

        let out = Buffer::default();
        let mut v = JsonLines::new(Command::Apply, Box::new(out.clone()));
        note(&mut v, "skipped");
        let l = lines(&out);
        assert_eq!(names(&l), [event]);
        assert_eq!(l[0]["message"], "skipped");
    }
}
