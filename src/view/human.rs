//! The view for people: the plan and the apply recap on stdout, progress and
//! prompts on stderr, worded as `apply` and `watch` always have been; a long
//! transfer draws a progress bar when stderr is a terminal, and nothing
//! otherwise.

use std::io::Write as _;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Command, Shown, Stream, View, signal_message};
use crate::config::ConfigError;
use crate::execute::{ApplyError, Event, TransferPhase};
use crate::plan::Plan;
use crate::render;
use crate::watch::WatchEvent;

/// Text for people.
pub struct Human {
    command: Command,
    out: Stream,
    err: Stream,
    /// Draw progress bars (stderr is a terminal).
    bars: bool,
    /// The time of day for watch lines.
    clock: fn() -> String,
    /// When the walk began (apply lines count seconds from it).
    started: Instant,
    /// Step outcomes worth repeating in the recap (snapshots, warnings).
    details: Vec<String>,
    /// The bar of the transfer under way.
    bar: Option<ProgressBar>,
}

impl Human {
    /// A view writing plans and the recap to `out`, everything else to `err`;
    /// `bars` when `err` is a terminal.
    #[must_use]
    pub fn new(command: Command, out: Stream, err: Stream, bars: bool) -> Self {
        Self {
            command,
            out,
            err,
            bars,
            clock: crate::watch::clock,
            started: Instant::now(),
            details: Vec::new(),
            bar: None,
        }
    }

    /// The same, with another clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> String) -> Self {
        self.clock = clock;
        self
    }

    /// Writes to stderr, where progress goes; write errors are not worth
    /// stopping a walk for.
    fn say(&mut self, text: &str) {
        self.clear_bar();
        let _ = self.err.write_all(text.as_bytes());
        let _ = self.err.flush();
    }

    /// A watch line: `[HH:MM:SSZ] text`.
    fn stamped(&mut self, text: &str) {
        let line = format!("[{}] {text}\n", (self.clock)());
        self.say(&line);
    }

    /// The indent of a "done" line, under the step's stamp.
    fn indent(&self) -> &'static str {
        match self.command {
            Command::Apply => "          ",
            Command::Watch => "           ",
        }
    }

    fn clear_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    fn transfer(
        &mut self,
        phase: TransferPhase,
        what: &str,
        host: &str,
        done: u64,
        total: Option<u64>,
    ) {
        if !self.bars {
            return;
        }
        match phase {
            TransferPhase::Start => {
                self.clear_bar();
                let bar = match total {
                    Some(n) => ProgressBar::new(n),
                    None => ProgressBar::new_spinner(),
                };
                let template = format!(
                    "{}{{msg}} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}}",
                    self.indent()
                );
                if let Ok(style) = ProgressStyle::with_template(&template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(format!("{what} ({host})"));
                self.bar = Some(bar);
            }
            TransferPhase::Progress => {
                if let Some(b) = &self.bar {
                    if let Some(n) = total
                        && b.length() != Some(n)
                    {
                        b.set_length(n);
                    }
                    b.set_position(done);
                }
            }
            TransferPhase::End => self.clear_bar(),
        }
    }
}

impl View for Human {
    fn plan(&mut self, shown: &Shown<'_>) {
        let _ = self.out.write_all(shown.text.as_bytes());
        let _ = self.out.flush();
    }

    fn prompt(&mut self, cluster: &str) {
        self.say(&format!(
            "\nDo you want to perform these actions on cluster {cluster:?}?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
        ));
    }

    fn apply_started(&mut self, _steps: usize) {
        self.started = Instant::now();
        self.details.clear();
        if self.command == Command::Apply {
            self.say("\n");
        }
    }

    fn progress(&mut self, event: &Event) {
        match event {
            Event::StepStarted {
                index,
                total,
                description,
            } => {
                let n = index + 1;
                match self.command {
                    Command::Apply => {
                        let at = self.started.elapsed().as_secs_f64();
                        self.say(&format!("[{at:>5.1}s] {n}/{total} {description} …\n"));
                    }
                    Command::Watch => self.stamped(&format!("{n}/{total} {description} …")),
                }
            }
            Event::StepFinished {
                seconds, outcome, ..
            } => {
                let indent = self.indent();
                let line = match outcome.text() {
                    Some(d) => format!("{indent}done in {seconds:.2}s: {d}\n"),
                    None => format!("{indent}done in {seconds:.2}s\n"),
                };
                self.say(&line);
                self.details.extend(outcome.summary());
            }
            Event::Transfer {
                phase,
                what,
                host,
                done,
                total,
            } => self.transfer(*phase, what, host, *done, *total),
        }
    }

    fn apply_complete(&mut self, plan: &Plan, seconds: f64) {
        let s = &plan.summary;
        match self.command {
            Command::Apply => {
                self.clear_bar();
                let mut text = format!(
                    "\nApply complete! Members: {} added, {} changed, {} removed. ({seconds:.1}s)\n",
                    s.add, s.change, s.remove
                );
                for c in &plan.changes {
                    text.push_str(&format!(
                        "  ✓ {} {}\n",
                        c.member,
                        render::action_word(c.action())
                    ));
                }
                for d in &self.details {
                    text.push_str(&format!("  {d}\n"));
                }
                let _ = self.out.write_all(text.as_bytes());
                let _ = self.out.flush();
            }
            Command::Watch => self.stamped(&format!(
                "Applied: {} added, {} changed, {} removed ({seconds:.1}s)",
                s.add, s.change, s.remove
            )),
        }
    }

    fn apply_failed(&mut self, error: &ApplyError) {
        self.say(&failure_text(error));
        if self.command == Command::Watch {
            self.stamped("Apply failed; the next check re-plans from what is live.");
        }
    }

    fn signal(&mut self, count: u32) {
        self.say(&format!("\n{}\n", signal_message(count)));
    }

    fn history_note(&mut self, message: &str) {
        match self.command {
            Command::Apply => self.say(&format!("note: {message}\n")),
            Command::Watch => self.stamped(&format!("note: {message}")),
        }
    }

    fn lock_note(&mut self, message: &str) {
        self.history_note(message);
    }

    fn watch(&mut self, event: &WatchEvent) {
        match event {
            WatchEvent::Watching {
                file,
                interval_seconds,
                auto_approve,
            } => self.stamped(&format!(
                "Watching {file} (drift check every {interval_seconds}s; {})",
                if *auto_approve {
                    "safe plans are applied"
                } else {
                    "plans are shown, not applied"
                }
            )),
            WatchEvent::FileChanged { file } => self.stamped(&format!("{file} changed")),
            WatchEvent::Invalid { .. } => self.stamped(INVALID),
            WatchEvent::Drift { changes } => self.stamped(&format!(
                "Drift: the cluster differs from the etcdfile ({changes} member{} to change)",
                if *changes == 1 { "" } else { "s" }
            )),
            // The plan's text is shown by `plan`.
            WatchEvent::Plan { .. } => {}
            WatchEvent::Skipped { reason } => self.stamped(&format!("Not applied: {reason}")),
            WatchEvent::Step(e) => self.progress(e),
            WatchEvent::Applied {
                add,
                change,
                remove,
                seconds,
            } => self.stamped(&format!(
                "Applied: {add} added, {change} changed, {remove} removed ({seconds:.1}s)"
            )),
            WatchEvent::ApplyFailed { .. } => {
                self.stamped("Apply failed; the next check re-plans from what is live.");
            }
            WatchEvent::Stopped { reason } => self.stamped(&format!("Watch ended: {reason}")),
            WatchEvent::Snapshot {
                path,
                revision,
                keys,
                bytes,
            } => self.stamped(&format!(
                "Snapshot saved to {path} (revision {revision}, {keys} keys, {bytes} bytes; checked, manifest beside it)"
            )),
            WatchEvent::SnapshotFailed { error } => self.stamped(&format!(
                "Scheduled snapshot failed: {error}; the next interval tries again"
            )),
            WatchEvent::Copied { file } => self.stamped(&format!("Copied {file} with copy_command")),
            WatchEvent::CopyFailed { file, error } => self.stamped(&format!(
                "Copy of {file} failed: {error}; the snapshot is kept and its copy retried at the next interval"
            )),
            WatchEvent::Pruned { files } => self.stamped(&format!(
                "Deleted the oldest snapshots beyond keep: {}",
                files.join(", ")
            )),
        }
    }

    fn watch_invalid(&mut self, error: ConfigError, _problems: Vec<serde_json::Value>) {
        self.say(&format!("{:?}\n", miette::Report::new(error)));
        self.stamped(INVALID);
    }

    fn watch_not_approved(&mut self) {
        self.stamped(
            "Not applied: watch shows plans; run `etcdplan apply`, or watch with --auto-approve",
        );
    }
}

const INVALID: &str = "Not applied: the etcdfile is invalid; nothing was changed, and nothing will be until it is fixed.";

/// What was done, what failed and what remains, for people.
#[must_use]
pub fn failure_text(e: &ApplyError) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("\nDone:\n");
    for d in &e.done {
        let _ = writeln!(s, "  ✓ {d}");
    }
    let _ = writeln!(s, "Failed:\n  ✗ {}", e.description);
    if !e.remaining.is_empty() {
        s.push_str("Not started:\n");
        for r in &e.remaining {
            let _ = writeln!(s, "  · {r}");
        }
    }
    if !e.afterwards.is_empty() {
        s.push_str("After the failure:\n");
        for a in &e.afterwards {
            let _ = writeln!(s, "  ↺ {a}");
        }
    }
    s.push('\n');
    s
}
