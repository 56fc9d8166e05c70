//! The view for scripts: one JSON object per line on stdout, each with an
//! `event` tag and a `time`. Watch keeps the events it always had; apply
//! sends `plan`, `apply_started`, `step_started`, `step_finished`, `transfer`
//! (a start and an end per transfer, never one per chunk), then `applied` or
//! `apply_failed`; a signal sends `signal`.

use std::io::Write as _;

use serde_json::{Value, json};

use super::{Command, Shown, Stream, View, signal_message};
use crate::config::ConfigError;
use crate::execute::{ApplyError, Event, TransferPhase};
use crate::plan::Plan;
use crate::watch::WatchEvent;

/// JSON Lines.
pub struct JsonLines {
    out: Stream,
    /// The time for each line.
    clock: fn() -> String,
}

impl JsonLines {
    /// A view writing one line per event to `out`. The command does not
    /// change the lines: an event means the same in apply and watch.
    #[must_use]
    pub fn new(_command: Command, out: Stream) -> Self {
        Self {
            out,
            clock: now_rfc3339,
        }
    }

    /// The same, with another clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> String) -> Self {
        self.clock = clock;
        self
    }

    /// Writes `v` (an object with an `event` tag) with the time, as one line.
    fn emit(&mut self, mut v: Value) {
        if let Some(map) = v.as_object_mut() {
            map.insert("time".into(), Value::String((self.clock)()));
        }
        let _ = writeln!(self.out, "{v}");
        let _ = self.out.flush();
    }

    fn emit_serialized(&mut self, e: &impl serde::Serialize) {
        match serde_json::to_value(e) {
            Ok(v) => self.emit(v),
            Err(err) => self.emit(json!({"event": "error", "message": err.to_string()})),
        }
    }
}

impl View for JsonLines {
    fn plan(&mut self, shown: &Shown<'_>) {
        let mut v = json!({
            "event": "plan",
            "changes": shown.plan.changed_members(),
            "plan": shown.plan,
        });
        if let (Some(t), Some(map)) = (shown.trigger, v.as_object_mut()) {
            map.insert(
                "trigger".into(),
                serde_json::to_value(t).unwrap_or(Value::Null),
            );
        }
        self.emit(v);
    }

    /// Never reached: `apply --json` needs `--auto-approve` or a saved plan,
    /// since a prompt would end up inside the stream.
    fn prompt(&mut self, _cluster: &str) {}

    fn apply_started(&mut self, steps: usize) {
        self.emit(json!({"event": "apply_started", "steps": steps}));
    }

    fn progress(&mut self, event: &Event) {
        if matches!(
            event,
            Event::Transfer {
                phase: TransferPhase::Progress,
                ..
            }
        ) {
            return;
        }
        self.emit_serialized(event);
    }

    fn apply_complete(&mut self, plan: &Plan, seconds: f64) {
        let s = &plan.summary;
        self.emit_serialized(&WatchEvent::Applied {
            add: s.add,
            change: s.change,
            remove: s.remove,
            seconds,
        });
    }

    fn apply_failed(&mut self, error: &ApplyError) {
        self.emit_serialized(&WatchEvent::ApplyFailed {
            error: error.to_string(),
            done: error.done.clone(),
            remaining: error.remaining.clone(),
            afterwards: error.afterwards.clone(),
        });
    }

    fn history_note(&mut self, message: &str) {
        self.emit(json!({ "event": "history", "message": message }));
    }

    fn lock_note(&mut self, message: &str) {
        self.emit(json!({ "event": "lock", "message": message }));
    }

    fn signal(&mut self, count: u32) {
        self.emit(json!({
            "event": "signal",
            "count": count,
            "message": signal_message(count),
        }));
    }

    fn watch(&mut self, event: &WatchEvent) {
        match event {
            WatchEvent::Step(e) => self.progress(e),
            other => self.emit_serialized(other),
        }
    }

    fn watch_invalid(&mut self, _error: ConfigError, problems: Vec<Value>) {
        self.emit_serialized(&WatchEvent::Invalid { problems });
    }

    /// Watch without `--auto-approve` says so only to people.
    fn watch_not_approved(&mut self) {}
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
