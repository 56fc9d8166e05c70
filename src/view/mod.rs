//! Views: where `apply` and `watch` report what they do, chosen once from the
//! flags and handed down, as Terraform's command views and colmena's progress
//! outputs are. The commands call a [`View`] and never print themselves.
//!
//! - [`Human`]: today's text and colours; plans and the apply recap on
//!   stdout, progress on stderr, and a progress bar for long transfers when
//!   stderr is a terminal.
//! - [`JsonLines`]: one JSON object per line on stdout, each with an `event`
//!   tag and a `time` (UTC, RFC 3339), for scripts and log shippers.
//!
//! Both write to injected streams, so tests read what they print.

mod human;
mod json;

use std::io::Write;
use std::sync::{Arc, Mutex};

pub use human::{Human, failure_text};
pub use json::JsonLines;

use crate::config::{ConfigError, Desired};
use crate::execute::{ApplyError, Event};
use crate::plan::Plan;
use crate::watch::{Trigger, WatchEvent};

/// A stream a view writes to (stdout, stderr, or a buffer in tests).
pub type Stream = Box<dyn Write + Send>;

/// Which command a view reports for: its text differs (apply counts seconds
/// from the walk's start and recaps on stdout; watch stamps the time of day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `etcdplan apply`.
    Apply,
    /// `etcdplan watch`.
    Watch,
}

/// A plan to show.
#[derive(Clone, Copy)]
pub struct Shown<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The desired cluster it was made for.
    pub desired: &'a Desired,
    /// The plan as text for people (rendered once: watch compares it too).
    pub text: &'a str,
    /// What woke the watch loop; none for apply.
    pub trigger: Option<Trigger>,
}

/// What apply and watch report, in the order they happen.
pub trait View: Send {
    /// A plan was made and is shown.
    fn plan(&mut self, shown: &Shown<'_>);
    /// Apply asks for approval (the answer is read by the caller).
    fn prompt(&mut self, cluster: &str);
    /// The walk of a plan of `steps` steps begins.
    fn apply_started(&mut self, steps: usize);
    /// Progress from the walk: a step started or finished, bytes moved.
    fn progress(&mut self, event: &Event);
    /// The walk ended well: what the plan did, in `seconds`.
    fn apply_complete(&mut self, plan: &Plan, seconds: f64);
    /// The walk stopped at a failed step: what was done, what failed, what remains.
    fn apply_failed(&mut self, error: &ApplyError);
    /// The `count`th SIGINT/SIGTERM: the first finishes the current step, the
    /// second exits at once.
    fn signal(&mut self, count: u32);
    /// The walk's record in `etcdplan/history/` could not be written, or was
    /// skipped (NOSPACE): said, never an error of the apply.
    fn history_note(&mut self, message: &str);
    /// A lock could not be released (it lapses on its own) or not taken on
    /// every host: said, never an error of the command.
    fn lock_note(&mut self, message: &str);
    /// A watch event (started, file changed, drift, skipped, stopped).
    fn watch(&mut self, event: &WatchEvent);
    /// Watch: the etcdfile cannot be used (`problems` as `validate --json`
    /// lists them); nothing was changed.
    fn watch_invalid(&mut self, error: ConfigError, problems: Vec<serde_json::Value>);
    /// Watch without `--auto-approve`: a plan was shown and not applied.
    fn watch_not_approved(&mut self);
}

/// The one view of a command, shared by the walk and the signal handler.
#[derive(Clone)]
pub struct SharedView(Arc<Mutex<Box<dyn View>>>);

impl SharedView {
    /// Shares `view`.
    #[must_use]
    pub fn new(view: Box<dyn View>) -> Self {
        Self(Arc::new(Mutex::new(view)))
    }

    /// Runs `f` on the view (a panic elsewhere does not silence it).
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn View) -> R) -> R {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(guard.as_mut())
    }
}

/// The view the flags ask for: JSON Lines on stdout, or text with progress
/// bars when stderr is a terminal.
#[must_use]
pub fn choose(command: Command, json: bool) -> SharedView {
    if json {
        SharedView::new(Box::new(JsonLines::new(
            command,
            Box::new(std::io::stdout()),
        )))
    } else {
        let bars = console::Term::stderr().is_term();
        SharedView::new(Box::new(Human::new(
            command,
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
            bars,
        )))
    }
}

/// What the `count`th SIGINT/SIGTERM does.
#[must_use]
pub fn signal_message(count: u32) -> String {
    if count <= 1 {
        "Stopping after the current step (a second signal aborts at once).".to_owned()
    } else {
        format!(
            "Aborted during a step: it may be half done (a member stopped, a learner added). The cluster's lock expires within {}s; run `etcdplan plan` to see what remains.",
            crate::execute::lock::TTL.as_secs()
        )
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A stream tests can read back.

    use std::sync::{Arc, Mutex};

    /// A cloneable in-memory stream.
    #[derive(Clone, Default)]
    pub struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        /// What was written, as text.
        pub fn text(&self) -> String {
            let b = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&b).into_owned()
        }
    }

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
