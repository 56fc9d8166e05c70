//! Stage 1 of the pipeline: read `etcdfile.toml` into a validated [`Desired`].
//!
//! Syntax errors, unknown keys, wrong types and every semantic problem are
//! collected and reported together, each pointing at its place in the file.

mod check;
mod desired;
mod diagnostic;
mod raw;
mod releases;
mod schema;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource};
use sha2::{Digest, Sha256};

pub use desired::{
    BinarySource, Desired, DesiredMember, EtcdSettings, Hosts, PathTemplates, Release, ServiceKind,
    Ssh, Tls, TlsPaths, Transport,
};
pub use diagnostic::{Level, Problem, Source, did_you_mean, render_plain};
pub use schema::{schema, schema_text};
pub use validate::Context;

/// A successfully loaded etcdfile.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated model.
    pub desired: Desired,
    /// Warnings: the file is accepted, but the operator should read these.
    pub warnings: Vec<Problem>,
}

/// Why an etcdfile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file has problems; all are listed.
    #[error("{} has {} {}", name, count_errors(problems), if count_errors(problems) == 1 { "error" } else { "errors" })]
    Invalid {
        /// The file name as shown.
        name: String,
        /// Every problem, errors and warnings, in file order.
        problems: Vec<Problem>,
    },
}

fn count_errors(problems: &[Problem]) -> usize {
    problems.iter().filter(|p| p.level == Level::Error).count()
}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(match self {
            Self::Read { .. } => "etcdfile::read",
            Self::Invalid { .. } => "etcdfile::invalid",
        }))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        match self {
            Self::Read { .. } => Some(Box::new(
                "pass the file with -f/--file or ETCDPLAN_FILE; the default is ./etcdfile.toml",
            )),
            Self::Invalid { .. } => Some(Box::new("nothing was changed")),
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self {
            Self::Invalid { problems, .. } => {
                Some(Box::new(problems.iter().map(|p| p as &dyn Diagnostic)))
            }
            Self::Read { .. } => None,
        }
    }
}

/// Reads and validates an etcdfile from disk.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let base_dir = abs.parent().map(Path::to_owned).unwrap_or_default();
    let ctx = Context {
        base_dir,
        home: std::env::var_os("HOME").map(PathBuf::from),
        file_hash: hash(&text),
    };
    parse_with(&path.display().to_string(), text, &ctx, &|p| {
        crate::io::release::find(p).map_err(|e| e.to_string())
    })
}

/// Finds the releases `binary_source` points at: a binary or folder on this machine.
pub type FindReleases<'a> = &'a dyn Fn(&Path) -> Result<Vec<Release>, String>;

/// sha256 of the file's text, in hex.
pub fn hash(text: &str) -> String {
    crate::model::hex(&Sha256::digest(text.as_bytes()))
}

/// Parses and validates etcdfile text; pure, so tests feed it strings
/// (`binary_source` is not looked at: its releases stay empty).
pub fn parse(name: &str, text: String, ctx: &Context) -> Result<Loaded, ConfigError> {
    parse_with(name, text, ctx, &|_| Ok(Vec::new()))
}

/// Parses and validates etcdfile text, finding `binary_source`'s releases
/// with `find` and checking them against `[cluster] version`.
pub fn parse_with(
    name: &str,
    text: String,
    ctx: &Context,
    find: FindReleases<'_>,
) -> Result<Loaded, ConfigError> {
    let source: Source = Arc::new(NamedSource::new(name, text));
    let text = source.inner().as_str();
    let attach = |mut problems: Vec<Problem>| {
        problems.sort_by_key(|p| (p.labels.first().map_or(0, |l| l.0.start), p.level));
        for p in &mut problems {
            p.source = Some(source.clone());
        }
        problems
    };

    let (mut doc, syntax) = toml::de::DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let problems = syntax
            .iter()
            .map(|e| {
                let span = e.span().unwrap_or(0..0);
                Problem::error(
                    "etcdfile::syntax",
                    format!("TOML syntax error: {}", e.message().trim()),
                )
                .label(span, "here")
            })
            .collect();
        return Err(ConfigError::Invalid {
            name: name.to_owned(),
            problems: attach(problems),
        });
    }

    // Wrong keys and types are reported and pruned, so the rest of the file is
    // still validated in this run.
    let checked = check::check(&mut doc, &schema());
    let structural = checked.problems;
    let raw: raw::RawEtcdfile =
        match serde::Deserialize::deserialize(toml::de::Deserializer::from(doc)) {
            Ok(r) => r,
            Err(e) if structural.is_empty() => {
                // The structural check should have caught this; report serde's view.
                let p = Problem::error("etcdfile::invalid", e.message().trim().to_owned())
                    .label(e.span().unwrap_or(0..0), "here");
                return Err(ConfigError::Invalid {
                    name: name.to_owned(),
                    problems: attach(vec![p]),
                });
            }
            Err(_) => {
                return Err(ConfigError::Invalid {
                    name: name.to_owned(),
                    problems: attach(structural),
                });
            }
        };

    let (mut desired, mut semantic) = validate::validate(&raw, ctx);
    if let Some(d) = &mut desired {
        semantic.extend(releases::attach(d, find));
    }
    if checked.dropped_top.iter().any(|k| k == "member") {
        // `member` was there but malformed; "no members" would only repeat it.
        semantic.retain(|p| p.code != "etcdfile::no-members");
    }
    let structural_errors = !structural.is_empty();
    let problems = attach(structural.into_iter().chain(semantic).collect());
    match desired {
        Some(desired) if !structural_errors => Ok(Loaded {
            desired,
            warnings: problems,
        }),
        _ => Err(ConfigError::Invalid {
            name: name.to_owned(),
            problems,
        }),
    }
}
