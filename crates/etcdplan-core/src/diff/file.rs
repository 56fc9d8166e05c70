//! A host file that changes, and its unified diff.
//!
//! The plan document carries each file whole (what is there now and what will
//! be written), so a saved plan writes exactly what the operator reviewed; its
//! JSON form adds the unified diff and the mode in octal for people and scripts.

use std::fmt::Write as _;
use std::path::PathBuf;

use similar::{ChangeTag, TextDiff};

/// A host file that changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "FileDoc", try_from = "FileDoc")]
pub struct FileChange {
    /// Path on the host.
    pub path: PathBuf,
    /// Mode it is written with.
    pub mode: u32,
    /// The host, as shown to people.
    pub host: String,
    /// Content now (None: absent).
    pub before: Option<String>,
    /// Content wanted.
    pub after: String,
}

/// The kind of a line of a unified diff, for whoever colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// `--- path (on host)`.
    OldHeader,
    /// `+++ path (desired)`.
    NewHeader,
    /// `@@ -a,b +c,d @@`.
    Hunk,
    /// A removed line.
    Removed,
    /// An added line.
    Added,
    /// An unchanged line around a change.
    Context,
}

impl FileChange {
    /// A unified diff from what is on the host to what will be written, each
    /// line passed through `paint` and prefixed with `indent`.
    pub fn unified_diff(&self, indent: &str, paint: &dyn Fn(LineKind, &str) -> String) -> String {
        let before = readable(self.before.as_deref().unwrap_or(""));
        let after = readable(&self.after);
        let old_header = match &self.before {
            Some(_) => format!("{}   (on {})", self.path.display(), self.host),
            None => format!("{}   (absent on {})", self.path.display(), self.host),
        };
        let new_header = format!("{}   (desired)", self.path.display());
        let d = TextDiff::from_lines(before.as_str(), after.as_str());
        let mut out = String::new();
        let mut line = |kind: LineKind, text: &str| {
            let _ = writeln!(out, "{indent}{}", paint(kind, text));
        };
        line(LineKind::OldHeader, &format!("--- {old_header}"));
        line(LineKind::NewHeader, &format!("+++ {new_header}"));
        for group in d.grouped_ops(2) {
            let (Some(first), Some(last)) = (group.first(), group.last()) else {
                continue;
            };
            let (o, n) = (first.old_range().start, first.new_range().start);
            let (oe, ne) = (last.old_range().end, last.new_range().end);
            let start = |s: usize, len: usize| if len == 0 { s } else { s + 1 };
            line(
                LineKind::Hunk,
                &format!(
                    "@@ -{},{} +{},{} @@",
                    start(o, oe - o),
                    oe - o,
                    start(n, ne - n),
                    ne - n
                ),
            );
            for op in &group {
                for ch in d.iter_changes(op) {
                    let text = ch.value().trim_end_matches('\n');
                    match ch.tag() {
                        ChangeTag::Delete => line(LineKind::Removed, &format!("-{text}")),
                        ChangeTag::Insert => line(LineKind::Added, &format!("+{text}")),
                        ChangeTag::Equal => line(LineKind::Context, &format!(" {text}")),
                    }
                }
            }
        }
        out
    }

    /// The unified diff without colours or indent.
    pub fn plain_diff(&self) -> String {
        self.unified_diff("", &|_, text| text.to_owned())
    }
}

/// A file's text as people read it: each PEM certificate becomes one line
/// with its subject, fingerprint and expiry (a CA bundle's diff then says
/// which CA comes and goes, not which base64 lines).
fn readable(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    if !text.contains(BEGIN) {
        return text.to_owned();
    }
    let mut out = String::new();
    for cert in crate::cert::split_bundle(text) {
        match crate::cert::inspect(&cert) {
            Ok(i) => {
                let _ = writeln!(
                    out,
                    "# certificate {:?}, sha256 {}, valid until {}",
                    i.subject,
                    i.short_fingerprint(),
                    crate::cert::date(i.not_after)
                );
            }
            Err(e) => {
                let _ = writeln!(out, "# unreadable certificate: {e}");
            }
        }
    }
    out
}

/// The JSON form of a [`FileChange`]: its fields, the mode in octal as
/// `ls` shows it, and (written, never read) whether it exists and its diff.
#[derive(serde::Serialize, serde::Deserialize)]
struct FileDoc {
    path: PathBuf,
    host: String,
    mode: String,
    #[serde(default, skip_deserializing)]
    exists: bool,
    #[serde(default, skip_deserializing)]
    diff: String,
    before: Option<String>,
    after: String,
}

impl From<FileChange> for FileDoc {
    fn from(f: FileChange) -> Self {
        Self {
            exists: f.before.is_some(),
            diff: f.plain_diff(),
            mode: format!("{:04o}", f.mode),
            path: f.path,
            host: f.host,
            before: f.before,
            after: f.after,
        }
    }
}

impl TryFrom<FileDoc> for FileChange {
    type Error = String;

    fn try_from(f: FileDoc) -> Result<Self, String> {
        let mode = u32::from_str_radix(&f.mode, 8)
            .map_err(|_| format!("mode {:?} of {} is not octal", f.mode, f.path.display()))?;
        Ok(Self {
            path: f.path,
            mode,
            host: f.host,
            before: f.before,
            after: f.after,
        })
    }
}
