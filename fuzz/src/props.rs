//! The properties every etcdfile text must keep, whatever its bytes: checked by
//! the fuzz targets and replayed by `tests/fuzz_regressions.rs` (which
//! includes this file by `#[path]`), so both hold one definition.
//!
//! `parse` must not panic; a refusal carries at least one error; every
//! problem's labels lie within the text, on character boundaries, and its
//! line within the text's lines; the report renders; and the same text parsed
//! twice gives the same result.

use std::path::PathBuf;

use etcdplan_core::config::{self, ConfigError, Context, Level, Loaded, Problem};

/// The fixed outside facts a fuzzed file is parsed with: nothing is read from
/// this machine, so a run is deterministic.
pub fn context(text: &str) -> Context {
    Context {
        base_dir: PathBuf::from("/srv/etcdplan"),
        home: Some(PathBuf::from("/home/operator")),
        file_hash: config::hash(text),
        ..Default::default()
    }
}

/// Bytes as the text a user's file would give: lossy UTF-8, as the fuzzer's
/// inputs are arbitrary bytes and most are valid UTF-8 once mutated from the corpus.
pub fn text_of(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Parses `text` once; panics only if `parse` does.
pub fn parse(text: &str) -> Result<Loaded, ConfigError> {
    config::parse("etcdfile.toml", text.to_owned(), &context(text))
}

/// Checks every property of [this module](self) on `text`, panicking with
/// the text's length and the broken property; `render` also renders the
/// problems as the user sees them (slower, so the raw target leaves it out).
pub fn check(text: &str, render: bool) {
    let first = parse(text);
    let problems: &[Problem] = match &first {
        Ok(loaded) => {
            for p in &loaded.warnings {
                assert_eq!(
                    p.level,
                    Level::Warning,
                    "accepted with an error: {}",
                    p.message
                );
            }
            &loaded.warnings
        }
        Err(ConfigError::Invalid { problems, .. }) => {
            assert!(
                problems.iter().any(|p| p.level == Level::Error),
                "refused without an error: {problems:?}"
            );
            problems
        }
        Err(e @ ConfigError::Read { .. }) => panic!("parse cannot read: {e}"),
    };
    let lines = text.matches('\n').count() + 1;
    for p in problems {
        for (span, label) in &p.labels {
            assert!(
                span.start <= span.end && span.end <= text.len(),
                "{}: label {label:?} at {span:?} outside the {} bytes of the text",
                p.code,
                text.len()
            );
            assert!(
                text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
                "{}: label {label:?} at {span:?} splits a character",
                p.code
            );
        }
        if let Some(line) = p.line() {
            assert!(
                (1..=lines).contains(&line),
                "{}: line {line} outside 1..={lines}",
                p.code
            );
        }
    }
    if render {
        let _ = config::render_plain(problems, 100);
    }
    let second = parse(text);
    assert_eq!(
        format!("{first:?}"),
        format!("{second:?}"),
        "the same text parsed twice gave two results"
    );
}
