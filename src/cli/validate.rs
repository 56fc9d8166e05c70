//! `etcdplan validate`: the etcdfile checked, for people or as JSON.

use super::{Cli, CliError, Outcome, warnings_text};
use crate::config::{self, ConfigError, Level};

/// One problem of an etcdfile, for scripts.
pub(super) fn problem_json(p: &config::Problem) -> serde_json::Value {
    serde_json::json!({
        "level": p.level,
        "code": p.code,
        "message": p.message,
        "line": p.line(),
        "help": p.help,
    })
}

/// Whether a loaded file still carries an error: `binary_source` without
/// the version the file names is shown as one, but loads, so that `plan`
/// can say what the live cluster needs besides.
fn has_error(problems: &[config::Problem]) -> bool {
    problems.iter().any(|p| p.level == Level::Error)
}

/// Checks the etcdfile and reports it, valid or not.
pub(super) fn validate(
    cli: &Cli,
    json: bool,
    out: &mut impl std::io::Write,
) -> Result<Outcome, CliError> {
    let result = config::load(&cli.file);
    if json {
        let (valid, problems) = match result {
            Ok(l) => (!has_error(&l.warnings), l.warnings),
            Err(ConfigError::Invalid { problems, .. }) => (false, problems),
            Err(e @ ConfigError::Read { .. }) => {
                let v = serde_json::json!({"valid": false, "error": e.to_string(), "problems": []});
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                )?;
                return Err(CliError::Config(e));
            }
        };
        let list: Vec<serde_json::Value> = problems.iter().map(problem_json).collect();
        let v = serde_json::json!({"valid": valid, "problems": list});
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?;
        return Ok(if valid { Outcome::Ok } else { Outcome::Invalid });
    }
    let loaded = result?;
    let d = &loaded.desired;
    if !loaded.warnings.is_empty() {
        eprint!("{}", warnings_text(&loaded.warnings));
    }
    if has_error(&loaded.warnings) {
        // A file the plan can still read (binary_source lacks the version
        // it names) but that cannot be applied as it is.
        writeln!(
            out,
            "{} is not valid: it cannot be applied as it is (see above)",
            cli.file.display()
        )?;
        return Ok(Outcome::Invalid);
    }
    let warn = loaded
        .warnings
        .iter()
        .filter(|p| p.level == Level::Warning)
        .count();
    writeln!(
        out,
        "{} is valid: cluster {:?}, {} member{}, transport {:?}, service {:?}{}",
        cli.file.display(),
        d.cluster.as_str(),
        d.members.len(),
        if d.members.len() == 1 { "" } else { "s" },
        format!("{:?}", d.hosts.transport).to_lowercase(),
        format!("{:?}", d.hosts.service).to_lowercase(),
        if warn > 0 {
            format!(" ({warn} warning{})", if warn == 1 { "" } else { "s" })
        } else {
            String::new()
        }
    )?;
    Ok(Outcome::Ok)
}
