//! Stage 1 of the pipeline: read `etcdfile.toml` into a validated [`Desired`].
//!
//! Syntax errors, unknown keys, wrong types and every semantic problem are
//! collected and reported together, each pointing at its place in the file.

mod auth;
mod check;
mod desired;
mod diagnostic;
pub mod etcd_keys;
mod maintenance;
mod raw;
mod releases;
mod schema;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource};
use sha2::{Digest, Sha256};

pub use auth::{
    Access, Auth, AuthName, AuthNameError, DesiredRole, DesiredUser, Login, Permission, ROOT,
    SecretSource, TokenKind, prefix_end,
};
pub use desired::{
    Backup, BinarySource, ClientFiles, Desired, DesiredMember, EtcdSettings, ExternalPki, Hosts,
    Issuer, LogLevel, MemberSettings, Millis, PathTemplates, Release, ReleaseTool, ServiceKind,
    Ssh, Tls, TlsPaths, Transport,
};
pub use diagnostic::{Level, Problem, Source, did_you_mean, render_plain};
pub use maintenance::{DefragRule, Maintenance, RuleError, VARIABLES};
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

/// sha256 of the file's text, in hex.
pub fn hash(text: &str) -> String {
    crate::model::hex(&Sha256::digest(text.as_bytes()))
}

/// Parses and validates etcdfile text. Pure: the facts from outside the file
/// (its folder, the operator's home, the releases found at `binary_source`)
/// come in `ctx`, so tests feed it strings.
pub fn parse(name: &str, text: String, ctx: &Context) -> Result<Loaded, ConfigError> {
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
    let checked = check::check(&mut doc, schema::cached());
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
    let mut refused = false;
    if let Some(d) = &mut desired {
        let span = raw.cluster.get_ref().version.as_ref().map(|v| v.span());
        if let (Some(want), Some(span)) = (d.version, span)
            && let Some(p) = releases::unknown_version(want, span)
        {
            semantic.push(p);
            refused = true;
        }
        let found = releases::attach(d, &ctx.releases);
        refused |= !found.refusals.is_empty();
        semantic.extend(found.refusals);
        // Shown, not a refusal: the diff blocks the plan with what the live
        // cluster needs too (see `releases::Attached::mismatch`).
        semantic.extend(found.mismatch);
    }
    if checked.dropped_top.iter().any(|k| k == "member") {
        // `member` was there but malformed; "no members" would only repeat it.
        semantic.retain(|p| p.code != "etcdfile::no-members");
    }
    let structural_errors = !structural.is_empty();
    let problems = attach(structural.into_iter().chain(semantic).collect());
    match desired {
        Some(desired) if !structural_errors && !refused => Ok(Loaded {
            desired,
            warnings: problems,
        }),
        _ => Err(ConfigError::Invalid {
            name: name.to_owned(),
            problems,
        }),
    }
}
