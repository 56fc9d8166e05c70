//! Problems found in an etcdfile, as miette diagnostics that point into the file.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity};

/// The etcdfile's text, shared by every problem that points into it.
pub type Source = Arc<NamedSource<String>>;

/// Whether a problem stops etcdplan or only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The file is refused.
    Error,
    /// The file is accepted; the operator should know.
    Warning,
}

/// One problem in the etcdfile: a message, labelled spans, an optional help line.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Error or warning.
    pub level: Level,
    /// A stable code such as `etcdfile::unknown-key`, for scripts and docs.
    pub code: &'static str,
    /// One line saying what is wrong.
    pub message: String,
    /// Where in the file, with a short text per place.
    pub labels: Vec<(Range<usize>, String)>,
    /// What to do about it.
    pub help: Option<String>,
    /// The file's text; attached when the problem is reported.
    pub source: Option<Source>,
}

impl Problem {
    /// An error with one label.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            level: Level::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            source: None,
        }
    }

    /// A warning.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            level: Level::Warning,
            ..Self::error(code, message)
        }
    }

    /// Adds a labelled span.
    #[must_use]
    pub fn label(mut self, span: Range<usize>, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }

    /// Sets the help line.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The 1-based line of the first label, for JSON output and sorting.
    pub fn line(&self) -> Option<usize> {
        let src = self.source.as_ref()?;
        let (span, _) = self.labels.first()?;
        let text = src.inner();
        let upto = span.start.min(text.len());
        Some(text[..upto].matches('\n').count() + 1)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<Severity> {
        Some(match self.level {
            Level::Error => Severity::Error,
            Level::Warning => Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_deref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().map(|(span, text)| {
            LabeledSpan::new_with_span(Some(text.clone()), span.clone())
        })))
    }
}

/// Renders problems without colour, as the golden tests and `--no-color` show them.
pub fn render_plain(problems: &[Problem], width: usize) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(width)
            .with_links(false);
    let mut out = String::new();
    for p in problems {
        // Rendering into a String cannot fail.
        let _ = handler.render_report(&mut out, p);
    }
    out
}

/// Suggests the closest candidate to a misspelt word, if one is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
