//! Stage 5: plans and status for people (text) and for scripts (JSON), and
//! the Prometheus rules for the cluster (`alerts`), the client endpoints in
//! their consumers' forms (`endpoints`), the apply records (`history`).
//!
//! Renderers are pure: they take the plan (and the live state) and return text,
//! so golden files pin exactly what operators and scripts read.

mod alerts;
mod endpoints;
mod history;
mod plan;
mod status;

pub use alerts::{AlertsError, DEFAULT_JOB as ALERTS_DEFAULT_JOB, alerts, metrics_instance};
pub use endpoints::{
    ClientFiles, EndpointSet, EndpointsError, EndpointsFormat, endpoints,
    healthy as healthy_endpoints,
};
pub use history::{human as history_human, json as history_json};
pub use plan::{action_word, human as plan_human, unified_diff};
pub use status::{human as status_human, json as status_json};

/// Colours on or off (off for pipes, `NO_COLOR`, and golden files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Whether to emit ANSI colours.
    pub color: bool,
}

impl Style {
    /// No colours.
    pub const PLAIN: Self = Self { color: false };

    fn paint(self, s: &str, style: console::Style) -> String {
        if self.color {
            style.force_styling(true).apply_to(s).to_string()
        } else {
            s.to_owned()
        }
    }

    fn green(self, s: &str) -> String {
        self.paint(s, console::Style::new().green())
    }

    fn red(self, s: &str) -> String {
        self.paint(s, console::Style::new().red())
    }

    fn yellow(self, s: &str) -> String {
        self.paint(s, console::Style::new().yellow())
    }

    fn bold(self, s: &str) -> String {
        self.paint(s, console::Style::new().bold())
    }

    fn dim(self, s: &str) -> String {
        self.paint(s, console::Style::new().dim())
    }
}
