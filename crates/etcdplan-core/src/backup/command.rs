//! The `[backup] copy_command` template: which placeholders it may hold, and
//! the command line it becomes for one snapshot, paths shell-quoted so a
//! file name can never be read as shell syntax.

use crate::model::shell_quote;

/// The placeholder replaced by the path of the file to copy.
pub const PATH: &str = "{path}";
/// The placeholder replaced by the path of the snapshot's manifest.
pub const MANIFEST: &str = "{manifest}";

/// Why a copy command template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// It does not say which file to copy.
    #[error("the copy command does not name {{path}}, the file to copy")]
    NoPath,
    /// A `{word}` that is not one of ours (and not `${VAR}`).
    #[error("unknown placeholder {0} (the copy command knows {{path}} and {{manifest}})")]
    Unknown(String),
    /// Empty or only spaces.
    #[error("the copy command is empty")]
    Empty,
}

/// Checks a template: not empty, names `{path}`, and every other
/// `{identifier}` not preceded by `$` (a shell `${VAR}` stays as written) is
/// one of ours.
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    if template.trim().is_empty() {
        return Err(TemplateError::Empty);
    }
    for (start, word) in placeholders(template) {
        let shell_var = start > 0 && template.as_bytes()[start - 1] == b'$';
        if !shell_var && word != PATH && word != MANIFEST {
            return Err(TemplateError::Unknown(word.to_owned()));
        }
    }
    if !template.contains(PATH) {
        return Err(TemplateError::NoPath);
    }
    Ok(())
}

/// Every `{identifier}` in `s` with its byte offset.
fn placeholders(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = s[from..].find('{').map(|i| from + i) {
        let Some(close) = s[open..].find('}').map(|i| open + i) else {
            break;
        };
        let inner = &s[open + 1..close];
        if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push((open, &s[open..=close]));
            from = close + 1;
        } else {
            from = open + 1;
        }
    }
    out
}

/// The command line for one snapshot: `{path}` and `{manifest}` replaced by
/// the shell-quoted paths.
pub fn substitute(template: &str, path: &str, manifest: &str) -> String {
    template
        .replace(PATH, &shell_quote(path))
        .replace(MANIFEST, &shell_quote(manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_so_a_file_name_is_never_shell_syntax() {
        let c = substitute(
            "cp {path} {manifest} /remote/",
            "/b/it's here; rm -rf ~.db",
            "/b/plain.db.json",
        );
        assert_eq!(
            c,
            "cp '/b/it'\\''s here; rm -rf ~.db' /b/plain.db.json /remote/"
        );
        assert_eq!(
            substitute("aws s3 cp {path} s3://b/", "/s/c-1.db.age", "m"),
            "aws s3 cp /s/c-1.db.age s3://b/"
        );
    }

    #[test]
    fn the_template_must_name_path_and_only_known_placeholders() {
        assert_eq!(check_template("cp {path} /x/"), Ok(()));
        assert_eq!(check_template("cp {path} {manifest} ${HOME}/x/"), Ok(()));
        assert_eq!(
            check_template("cp {manifest} /x/"),
            Err(TemplateError::NoPath)
        );
        assert_eq!(
            check_template("cp {path} {host}:/x"),
            Err(TemplateError::Unknown("{host}".into()))
        );
        assert_eq!(check_template("  "), Err(TemplateError::Empty));
        // Braces that are not placeholders (awk, shell groups) stay.
        assert_eq!(check_template("{ cp {path} /x; }"), Ok(()));
    }
}
