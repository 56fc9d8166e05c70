//! What a hand-built etcd member runs with, worked out from what was read on its
//! host: the running etcd's command line and environment (`/proc/PID/cmdline`,
//! `/proc/PID/environ`), the systemd unit that starts it with its drop-ins and
//! `EnvironmentFile=` files, and the `--config-file` YAML if it uses one. No I/O:
//! the edge reads the files and hands them in as [`HostSources`]; [`resolve`] gives
//! the effective [`Settings`], each value with the [`Source`] it came from in words
//! an etcdfile comment can carry, and [`differences`] compares members.
//!
//! etcd's own precedence is followed (etcd 3.4 to 3.6, `etcdmain/config.go` and
//! `pkg/flags/flag.go`):
//! - a config file (`--config-file` or `ETCD_CONFIG_FILE`) makes etcd ignore every
//!   other flag and `ETCD_*` variable (reported as warnings), except
//!   `--raft-read-timeout` and `--raft-write-timeout`, which set globals as they are
//!   parsed;
//! - a flag and the `ETCD_*` variable of the same setting both present is fatal to
//!   etcd ("conflicting environment variable is shadowed by corresponding
//!   command-line flag"), even when the variable is empty: an error here;
//! - an empty `ETCD_*` variable is not used; an `ETCD_*` variable that names no
//!   flag is "unrecognized": warnings;
//! - within systemd, drop-ins override the unit and `EnvironmentFile=` overrides
//!   `Environment=` (see [`systemd`]).
//!
//! The running process is the truth: when the unit as it is now on disk would give
//! a different command line or environment (edited since etcd started), the
//! process's values are used and the difference is a warning.
//!
//! Keys of [`Settings::values`] are etcd's flag names (`initial-advertise-peer-urls`,
//! `peer-cert-file`); config-file keys are mapped to them ([`yaml`]).

pub mod envfile;
pub mod etcdfile;
pub mod flags;
pub mod systemd;
pub mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::model::MinorVersion;
use flags::{FlagError, FlagUse, Kind};
use systemd::{ArgOrigin, SpecifierContext, Unit, UnitError, UnitText};

/// A file read from a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileText {
    /// Absolute path on the host.
    pub path: String,
    /// Its content.
    pub text: String,
}

/// An `EnvironmentFile=` the unit names, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentFileText {
    /// The path, as [`Unit::environment_files`] gives it.
    pub path: String,
    /// Its content, or `None` when the file does not exist.
    pub text: Option<String>,
}

/// The systemd unit that runs etcd, as `systemctl cat` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSources {
    /// The unit's name (`etcd.service`).
    pub name: String,
    /// The unit file that applies (the first `systemctl cat` shows).
    pub unit: UnitText,
    /// Its drop-ins.
    pub dropins: Vec<UnitText>,
    /// Every file named by `EnvironmentFile=` (paths from [`Unit::parse`]).
    pub environment_files: Vec<EnvironmentFileText>,
}

/// The running etcd, from `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSources {
    /// `/proc/PID/cmdline`, argv\[0\] included.
    pub cmdline: Vec<String>,
    /// `/proc/PID/environ`.
    pub environ: Vec<(String, String)>,
}

/// Everything read on one member's host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostSources {
    /// How sources name the host (`10.0.0.11`).
    pub host: String,
    /// The host's name, for systemd's `%H`.
    pub hostname: String,
    /// The running etcd; without it the unit alone says what etcd runs with.
    pub process: Option<ProcessSources>,
    /// The unit that runs it, if systemd does.
    pub unit: Option<UnitSources>,
    /// The file named by `--config-file` or `ETCD_CONFIG_FILE` (see [`config_file_path`]).
    pub config_file: Option<FileText>,
    /// Environment files no unit names but that may have fed a process started by
    /// hand (`/etc/etcd/etcd.conf`, `/etc/default/etcd`): used to name where a
    /// variable of the running etcd came from when the value matches.
    pub other_env_files: Vec<FileText>,
}

/// A setting's value as etcd parses it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A string (paths, names, enums).
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An unsigned integer.
    Uint(u64),
    /// A signed integer.
    Int(i64),
    /// A duration.
    Duration(Duration),
    /// A list (URLs, strings), in the order written.
    List(Vec<String>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write!(f, "{s}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Uint(n) => write!(f, "{n}"),
            Self::Int(n) => write!(f, "{n}"),
            Self::Duration(d) => write!(f, "{d:?}"),
            Self::List(l) => write!(f, "{}", l.join(",")),
        }
    }
}

/// Where on a host a value was set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Written in `ExecStart=` of the unit or of a drop-in.
    ExecStart {
        /// The unit.
        unit: String,
        /// The file it is written in.
        file: String,
        /// That file is a drop-in.
        dropin: bool,
    },
    /// An `Environment=` assignment (the variable itself, or a variable that
    /// `ExecStart=` expands).
    Environment {
        /// The variable.
        var: String,
        /// The unit.
        unit: String,
        /// The file it is written in.
        file: String,
        /// That file is a drop-in.
        dropin: bool,
    },
    /// A line of an environment file.
    EnvironmentFile {
        /// The variable.
        var: String,
        /// The file.
        path: String,
    },
    /// The running etcd's command line, not traced to a file.
    CommandLine,
    /// The running etcd's environment, not traced to a file.
    ProcessEnvironment {
        /// The variable.
        var: String,
    },
    /// etcd's config file.
    ConfigFile {
        /// The file.
        path: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExecStart {
                unit,
                dropin: false,
                ..
            } => write!(f, "ExecStart of {unit}"),
            Self::ExecStart { file, .. } => write!(f, "ExecStart in drop-in {file}"),
            Self::Environment {
                var,
                unit,
                dropin: false,
                ..
            } => write!(f, "Environment={var} of {unit}"),
            Self::Environment { var, file, .. } => write!(f, "Environment={var} in drop-in {file}"),
            Self::EnvironmentFile { var, path } => write!(f, "{var} in {path}"),
            Self::CommandLine => write!(f, "the running etcd's command line"),
            Self::ProcessEnvironment { var } => {
                write!(f, "{var} in the running etcd's environment")
            }
            Self::ConfigFile { path } => write!(f, "--config-file {path}"),
        }
    }
}

/// Where a value came from: words for an etcdfile comment
/// (`ExecStart of etcd.service on 10.0.0.11`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// The host, as [`HostSources::host`] names it.
    pub host: String,
    /// Where on it.
    pub origin: Origin,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.origin, self.host)
    }
}

/// One effective setting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    /// What etcd runs with.
    pub value: Value,
    /// Where it was set.
    pub source: Source,
}

/// Why etcd's settings on a host cannot be told exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Neither a running process nor a unit was given.
    #[error("nothing was read: no running etcd and no unit")]
    NothingToRead,
    /// The running etcd's command line is empty.
    #[error("the running etcd's command line is empty")]
    EmptyCommandLine,
    /// The unit cannot be read as systemd would.
    #[error(transparent)]
    Unit(#[from] UnitError),
    /// An `EnvironmentFile=` was not handed in.
    #[error("EnvironmentFile {path} (named at {file}:{line}) was not read")]
    EnvFileNotRead {
        /// The file.
        path: String,
        /// The unit file naming it.
        file: String,
        /// Its line.
        line: usize,
    },
    /// A required `EnvironmentFile=` does not exist: systemd would not start etcd.
    #[error("EnvironmentFile {path} (named at {file}:{line} without '-') does not exist")]
    EnvFileMissing {
        /// The file.
        path: String,
        /// The unit file naming it.
        file: String,
        /// Its line.
        line: usize,
    },
    /// The command line is one etcd would refuse.
    #[error("etcd's command line from {from}: {error}")]
    CommandLine {
        /// Why.
        error: FlagError,
        /// Where the command line came from.
        from: Source,
    },
    /// A flag the member's etcd version does not have.
    #[error("etcd {version} has no flag --{flag} (from {from})")]
    NotInVersion {
        /// The flag.
        flag: String,
        /// The version.
        version: MinorVersion,
        /// Where it was set.
        from: Source,
    },
    /// A value etcd would refuse.
    #[error("{key} = {text:?} from {from}: {why}")]
    BadValue {
        /// The setting.
        key: String,
        /// The text.
        text: String,
        /// Where it was set.
        from: Source,
        /// Why.
        why: String,
    },
    /// A flag and its `ETCD_*` variable both set: etcd refuses to start.
    #[error(
        "{var} (from {env_source}) and --{flag} (from {flag_source}) set the same setting; etcd refuses to start with both (\"conflicting environment variable is shadowed by corresponding command-line flag\")"
    )]
    FlagAndEnv {
        /// The variable.
        var: String,
        /// The flag.
        flag: String,
        /// Where the variable was set.
        env_source: Source,
        /// Where the flag was set.
        flag_source: Source,
    },
    /// etcd reads a config file that was not handed in.
    #[error("etcd reads its settings from {path} (from {from}), which was not read")]
    ConfigFileNotRead {
        /// The file.
        path: String,
        /// Where it was named.
        from: Source,
    },
    /// The config file cannot be read as etcd reads it.
    #[error("config file {path}: {why}")]
    ConfigFile {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
}

/// Something etcd or systemd ignores or would warn about, or a difference between
/// the unit on disk and the running etcd.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// A line systemd ignores in the unit.
    #[error("{0}")]
    Unit(String),
    /// A line systemd ignores in an environment file.
    #[error("{path}:{line}: {why}")]
    EnvFileLine {
        /// The file.
        path: String,
        /// The line.
        line: usize,
        /// Why.
        why: String,
    },
    /// `ExecStart=` expands a variable nothing sets (systemd makes it empty).
    #[error("ExecStart of {unit} uses ${name}, which nothing sets (it expands to nothing)")]
    UnsetVariable {
        /// The unit.
        unit: String,
        /// The variable.
        name: String,
    },
    /// The unit on disk gives another command line than the running etcd's.
    #[error(
        "the running etcd's command line differs from what {unit} gives now (edited since etcd started?); import describes the running etcd: running {running:?}, unit {unit_gives:?}"
    )]
    CommandLineDiffers {
        /// The unit.
        unit: String,
        /// The running etcd's arguments.
        running: Vec<String>,
        /// The unit's.
        unit_gives: Vec<String>,
    },
    /// A variable of the running etcd differs from what the files give now.
    #[error(
        "{var} is {running:?} in the running etcd but {now:?} in {from} (changed since etcd started?)"
    )]
    EnvDiffers {
        /// The variable.
        var: String,
        /// In the process.
        running: String,
        /// In the files.
        now: String,
        /// Where the files set it.
        from: Source,
    },
    /// The files set a variable the running etcd does not have.
    #[error("{var} from {from} is not in the running etcd's environment (set since etcd started?)")]
    EnvNotInProcess {
        /// The variable.
        var: String,
        /// Where it is set.
        from: Source,
    },
    /// A flag given twice: the last one counts.
    #[error("--{flag} is given more than once; etcd uses the last, from {from}")]
    DuplicateFlag {
        /// The flag.
        flag: String,
        /// The one used.
        from: Source,
    },
    /// A flag etcd accepts and ignores (etcd 2 compatibility).
    #[error("--{flag} (from {from}) is accepted and ignored by etcd")]
    IgnoredFlag {
        /// The flag.
        flag: String,
        /// Where.
        from: Source,
    },
    /// A flag or variable etcd ignores because it reads a config file.
    #[error("{what} (from {from}) is ignored: etcd reads its settings from the config file")]
    IgnoredForConfigFile {
        /// `--name` or `ETCD_NAME`.
        what: String,
        /// Where.
        from: Source,
    },
    /// A key of the config file etcd ignores.
    #[error("{path}: etcd ignores the key {key}")]
    ConfigKeyIgnored {
        /// The file.
        path: String,
        /// The key.
        key: String,
    },
    /// An empty `ETCD_*` variable: etcd does not use it.
    #[error("{var} (from {from}) is empty; etcd ignores it")]
    EmptyEnv {
        /// The variable.
        var: String,
        /// Where.
        from: Source,
    },
    /// An `ETCD_*` variable that names no flag: etcd warns and ignores it.
    #[error(
        "{var} (from {from}) is not a setting etcd knows (\"unrecognized environment variable\")"
    )]
    UnrecognizedEnv {
        /// The variable.
        var: String,
        /// Where.
        from: Source,
    },
}

/// The effective settings of one member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Setting key (etcd's flag name) → value and source.
    pub values: BTreeMap<String, Setting>,
    /// argv\[0\] of the running etcd (or of the unit's command line).
    pub binary: Option<String>,
    /// The config file etcd reads, when it reads one.
    pub config_file: Option<String>,
    /// The unit that runs etcd, as systemd applies it.
    pub unit: Option<Unit>,
    /// Things etcd ignores or warns about, and unit-vs-process differences.
    pub warnings: Vec<Warning>,
    /// Reasons the settings cannot be told exactly: import must refuse.
    pub errors: Vec<ImportError>,
}

impl Settings {
    /// The value of a setting, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).map(|s| &s.value)
    }
}

/// The config file etcd reads, from its command line and environment (the flag
/// wins over `ETCD_CONFIG_FILE`), for the edge to read before [`resolve`].
pub fn config_file_path(cmdline: &[String], environ: &[(String, String)]) -> Option<String> {
    let from_flag = flags::parse_args(cmdline.get(1..).unwrap_or_default())
        .ok()?
        .into_iter()
        .rev()
        .find(|u| u.flag.name == "config-file")
        .map(|u| u.text)
        .filter(|t| !t.is_empty());
    from_flag.or_else(|| {
        environ
            .iter()
            .rev()
            .find(|(k, v)| k == "ETCD_CONFIG_FILE" && !v.is_empty())
            .map(|(_, v)| v.clone())
    })
}

/// A variable with where it was set.
#[derive(Debug, Clone)]
struct Var {
    value: String,
    origin: Origin,
}

/// The environment a unit gives etcd: `Environment=`, then `EnvironmentFile=`s.
fn unit_environment(
    unit: &Unit,
    files: &[EnvironmentFileText],
    out: &mut Settings,
) -> BTreeMap<String, Var> {
    let mut env = BTreeMap::new();
    for a in &unit.environment {
        env.insert(
            a.key.clone(),
            Var {
                value: a.value.clone(),
                origin: Origin::Environment {
                    var: a.key.clone(),
                    unit: unit.name.clone(),
                    file: a.place.file.clone(),
                    dropin: a.place.dropin,
                },
            },
        );
    }
    for r in &unit.environment_files {
        let Some(read) = files.iter().find(|f| f.path == r.path) else {
            out.errors.push(ImportError::EnvFileNotRead {
                path: r.path.clone(),
                file: r.place.file.clone(),
                line: r.place.line,
            });
            continue;
        };
        let Some(text) = &read.text else {
            if !r.optional {
                out.errors.push(ImportError::EnvFileMissing {
                    path: r.path.clone(),
                    file: r.place.file.clone(),
                    line: r.place.line,
                });
            }
            continue;
        };
        let parsed = envfile::parse(text);
        for (line, why) in parsed.dropped {
            out.warnings.push(Warning::EnvFileLine {
                path: r.path.clone(),
                line,
                why,
            });
        }
        for a in parsed.assignments {
            env.insert(
                a.key.clone(),
                Var {
                    value: a.value,
                    origin: Origin::EnvironmentFile {
                        var: a.key,
                        path: r.path.clone(),
                    },
                },
            );
        }
    }
    env
}

/// Works out the settings one member's etcd runs with. `version` (the member's
/// etcd minor version, when known) makes a flag that version lacks an error.
pub fn resolve(src: &HostSources, version: Option<MinorVersion>) -> Settings {
    let mut out = Settings::default();
    let source = |origin: Origin| Source {
        host: src.host.clone(),
        origin,
    };

    // The unit and what it would run.
    let mut unit_env: BTreeMap<String, Var> = BTreeMap::new();
    let mut unit_args: Option<Vec<(String, Origin)>> = None;
    if let Some(u) = &src.unit {
        let ctx = SpecifierContext {
            unit: u.name.clone(),
            hostname: src.hostname.clone(),
        };
        match Unit::parse(&u.unit, &u.dropins, &ctx) {
            Ok(unit) => {
                out.warnings
                    .extend(unit.warnings.iter().cloned().map(Warning::Unit));
                unit_env = unit_environment(&unit, &u.environment_files, &mut out);
                let lookup = |k: &str| unit_env.get(k).map(|v| v.value.clone());
                let (args, unset) = systemd::expand(&unit.exec_start, &lookup);
                out.warnings
                    .extend(unset.into_iter().map(|name| Warning::UnsetVariable {
                        unit: unit.name.clone(),
                        name,
                    }));
                let exec_origin = Origin::ExecStart {
                    unit: unit.name.clone(),
                    file: unit.exec_start.place.file.clone(),
                    dropin: unit.exec_start.place.dropin,
                };
                unit_args = Some(
                    args.into_iter()
                        .map(|a| {
                            let origin = match a.origin {
                                ArgOrigin::Written => exec_origin.clone(),
                                ArgOrigin::Variable(name) => unit_env
                                    .get(&name)
                                    .map_or_else(|| exec_origin.clone(), |v| v.origin.clone()),
                            };
                            (a.text, origin)
                        })
                        .collect(),
                );
                out.unit = Some(unit);
            }
            Err(e) => out.errors.push(e.into()),
        }
    }

    // What etcd runs with: the process when it was read, else the unit.
    let (argv, env): (Vec<(String, Origin)>, BTreeMap<String, Var>) = match &src.process {
        Some(p) => {
            if p.cmdline.is_empty() {
                out.errors.push(ImportError::EmptyCommandLine);
                return out;
            }
            let running: Vec<String> = p.cmdline[1..].to_vec();
            let argv = match &unit_args {
                Some(ua)
                    if ua.len() == p.cmdline.len()
                        && ua[1..].iter().map(|a| &a.0).eq(running.iter()) =>
                {
                    std::iter::once((p.cmdline[0].clone(), ua[0].1.clone()))
                        .chain(ua[1..].iter().cloned())
                        .collect()
                }
                other => {
                    if let (Some(ua), Some(unit)) = (other, &out.unit) {
                        out.warnings.push(Warning::CommandLineDiffers {
                            unit: unit.name.clone(),
                            running: running.clone(),
                            unit_gives: ua.iter().skip(1).map(|a| a.0.clone()).collect(),
                        });
                    }
                    p.cmdline
                        .iter()
                        .map(|a| (a.clone(), Origin::CommandLine))
                        .collect()
                }
            };
            let mut env = BTreeMap::new();
            for (k, v) in &p.environ {
                if !k.starts_with("ETCD_") {
                    continue;
                }
                let origin = match unit_env.get(k) {
                    Some(u) if u.value == *v => u.origin.clone(),
                    Some(u) => {
                        out.warnings.push(Warning::EnvDiffers {
                            var: k.clone(),
                            running: v.clone(),
                            now: u.value.clone(),
                            from: source(u.origin.clone()),
                        });
                        Origin::ProcessEnvironment { var: k.clone() }
                    }
                    None => src
                        .other_env_files
                        .iter()
                        .find(|f| {
                            envfile::parse(&f.text)
                                .get(k)
                                .is_some_and(|a| a.value == *v)
                        })
                        .map_or(Origin::ProcessEnvironment { var: k.clone() }, |f| {
                            Origin::EnvironmentFile {
                                var: k.clone(),
                                path: f.path.clone(),
                            }
                        }),
                };
                env.insert(
                    k.clone(),
                    Var {
                        value: v.clone(),
                        origin,
                    },
                );
            }
            for (k, u) in &unit_env {
                if k.starts_with("ETCD_") && !env.contains_key(k) {
                    out.warnings.push(Warning::EnvNotInProcess {
                        var: k.clone(),
                        from: source(u.origin.clone()),
                    });
                }
            }
            (argv, env)
        }
        None => match unit_args {
            Some(ua) => {
                let env = unit_env
                    .into_iter()
                    .filter(|(k, _)| k.starts_with("ETCD_"))
                    .collect();
                (ua, env)
            }
            None => {
                if src.unit.is_none() {
                    out.errors.push(ImportError::NothingToRead);
                }
                return out;
            }
        },
    };
    out.binary = argv.first().map(|a| a.0.clone());

    // The flags, as Go's flag package reads them.
    let words: Vec<String> = argv.iter().skip(1).map(|a| a.0.clone()).collect();
    let uses: Vec<FlagUse> = match flags::parse_args(&words) {
        Ok(u) => u,
        Err(error) => {
            let origin = argv.get(1).map_or(Origin::CommandLine, |a| a.1.clone());
            out.errors.push(ImportError::CommandLine {
                error,
                from: source(origin),
            });
            return out;
        }
    };
    let flag_source = |u: &FlagUse| {
        let at = u.value_arg.unwrap_or(u.arg) + 1;
        source(argv.get(at).map_or(Origin::CommandLine, |a| a.1.clone()))
    };
    let bit = version.and_then(|v| flags::version_bit(v.minor).map(|b| (v, b)));
    let in_version = |out: &mut Settings, name: &str, versions: u8, src: &Source| match bit {
        Some((v, b)) if versions & b == 0 => {
            out.errors.push(ImportError::NotInVersion {
                flag: name.to_owned(),
                version: v,
                from: src.clone(),
            });
            false
        }
        _ => true,
    };

    // Last use of each flag.
    let mut last: BTreeMap<&str, &FlagUse> = BTreeMap::new();
    for u in &uses {
        if last.insert(u.flag.name, u).is_some() {
            out.warnings.push(Warning::DuplicateFlag {
                flag: u.flag.name.to_owned(),
                from: flag_source(u),
            });
        }
    }

    let config = last
        .get("config-file")
        .filter(|u| !u.text.is_empty())
        .map(|u| (u.text.clone(), flag_source(u)))
        .or_else(|| {
            env.get("ETCD_CONFIG_FILE")
                .filter(|v| !v.value.is_empty())
                .map(|v| (v.value.clone(), source(v.origin.clone())))
        });

    if let Some((path, named_by)) = config {
        out.config_file = Some(path.clone());
        for (name, u) in &last {
            let s = flag_source(u);
            if !in_version(&mut out, name, u.flag.versions, &s) {
                continue;
            }
            match *name {
                "config-file" => {}
                // Set as globals while flags are parsed: they apply with a config file too.
                "raft-read-timeout" | "raft-write-timeout" => {
                    set(&mut out, u.flag.kind, name, &u.text, s)
                }
                _ => out.warnings.push(Warning::IgnoredForConfigFile {
                    what: format!("--{name}"),
                    from: s,
                }),
            }
        }
        for (k, v) in &env {
            if k != "ETCD_CONFIG_FILE" {
                out.warnings.push(Warning::IgnoredForConfigFile {
                    what: k.clone(),
                    from: source(v.origin.clone()),
                });
            }
        }
        match &src.config_file {
            Some(f) if f.path == path => match yaml::parse(&f.text) {
                Ok(file) => {
                    out.warnings.extend(file.ignored.into_iter().map(|key| {
                        Warning::ConfigKeyIgnored {
                            path: path.clone(),
                            key,
                        }
                    }));
                    out.errors
                        .extend(file.errors.into_iter().map(|why| ImportError::ConfigFile {
                            path: path.clone(),
                            why,
                        }));
                    for s in file.settings {
                        let src_ = source(Origin::ConfigFile { path: path.clone() });
                        let versions =
                            flags::lookup(&s.key).map_or(flags::V35 | flags::V36, |f| f.versions);
                        if in_version(&mut out, &s.key, versions, &src_) {
                            out.values.insert(
                                s.key,
                                Setting {
                                    value: s.value,
                                    source: src_,
                                },
                            );
                        }
                    }
                }
                Err(why) => out.errors.push(ImportError::ConfigFile { path, why }),
            },
            _ => out.errors.push(ImportError::ConfigFileNotRead {
                path,
                from: named_by,
            }),
        }
        return out;
    }

    for (name, u) in &last {
        let s = flag_source(u);
        if !in_version(&mut out, name, u.flag.versions, &s) {
            continue;
        }
        if u.flag.kind == Kind::Ignored {
            out.warnings.push(Warning::IgnoredFlag {
                flag: (*name).to_owned(),
                from: s,
            });
            continue;
        }
        set(&mut out, u.flag.kind, name, &u.text, s);
    }
    for (k, v) in &env {
        let s = source(v.origin.clone());
        let Some(flag) = flags::for_env(k) else {
            if k != "ETCD_CONFIG_FILE" {
                out.warnings.push(Warning::UnrecognizedEnv {
                    var: k.clone(),
                    from: s,
                });
            }
            continue;
        };
        if let Some(u) = last.get(flag.name) {
            out.errors.push(ImportError::FlagAndEnv {
                var: k.clone(),
                flag: flag.name.to_owned(),
                env_source: s,
                flag_source: flag_source(u),
            });
            continue;
        }
        if v.value.is_empty() {
            out.warnings.push(Warning::EmptyEnv {
                var: k.clone(),
                from: s,
            });
            continue;
        }
        if !in_version(&mut out, flag.name, flag.versions, &s) {
            continue;
        }
        if flag.kind == Kind::Ignored {
            out.warnings.push(Warning::IgnoredFlag {
                flag: flag.name.to_owned(),
                from: s,
            });
            continue;
        }
        set(&mut out, flag.kind, flag.name, &v.value, s);
    }
    out
}

fn set(out: &mut Settings, kind: Kind, key: &str, text: &str, source: Source) {
    match flags::parse_value(kind, text) {
        Ok(value) => {
            out.values.insert(key.to_owned(), Setting { value, source });
        }
        Err(why) => out.errors.push(ImportError::BadValue {
            key: key.to_owned(),
            text: text.to_owned(),
            from: source,
            why,
        }),
    }
}

/// A setting whose value is not the same on every member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The setting's key.
    pub key: String,
    /// Each member's value (`None`: not set there, etcd's default), in the order given.
    pub values: Vec<(String, Option<Setting>)>,
}

/// The settings that differ between members (a setting set on some members and not
/// on others differs too). Which of them an etcdfile can express per member is the
/// caller's decision; the rest make `import` refuse.
pub fn differences<'a, I>(members: I) -> Vec<Difference>
where
    I: IntoIterator<Item = (&'a str, &'a Settings)>,
{
    let members: Vec<(&str, &Settings)> = members.into_iter().collect();
    let keys: std::collections::BTreeSet<&String> =
        members.iter().flat_map(|(_, s)| s.values.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let values: Vec<(String, Option<Setting>)> = members
                .iter()
                .map(|(name, s)| ((*name).to_owned(), s.values.get(key).cloned()))
                .collect();
            let first = values.first().map(|v| v.1.as_ref().map(|s| &s.value));
            let same = values
                .iter()
                .all(|v| Some(v.1.as_ref().map(|s| &s.value)) == first);
            (!same).then(|| Difference {
                key: key.clone(),
                values,
            })
        })
        .collect()
}
