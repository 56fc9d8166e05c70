//! A systemd service unit as systemd reads it, for the settings that decide how etcd
//! starts: `ExecStart=` (systemd's quoting, C escapes, the `-@:+!` prefixes,
//! specifiers, and at start `$VAR`/`${VAR}` expansion), `Environment=`,
//! `EnvironmentFile=`, `User=`, `Group=`, across the unit and its drop-ins.
//!
//! Rules followed (systemd.syntax(7), systemd.service(5), systemd.exec(5)):
//! a line ending in `\` continues on the next (comment lines inside are skipped);
//! drop-ins apply after the unit in the lexical order of their file names; an
//! empty `ExecStart=`, `Environment=` or `EnvironmentFile=` empties what came
//! before; `Environment=` accumulates with later assignments winning; variables
//! from `EnvironmentFile=` override `Environment=`; a service other than
//! `Type=oneshot` with more than one `ExecStart=` is refused by systemd.

use std::collections::BTreeMap;

use super::envfile;

/// One file of a unit: the unit itself or a drop-in, as read from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitText {
    /// Absolute path on the host.
    pub path: String,
    /// Its content.
    pub text: String,
}

/// Facts systemd fills specifiers with (`%H`, `%u`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecifierContext {
    /// The unit's name (`etcd.service`, `etcd@a.service`).
    pub unit: String,
    /// The host's name (`%H`), as `hostname` prints it.
    pub hostname: String,
}

/// Why a unit cannot be read the way systemd would run it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// A word of a setting systemd cannot split.
    #[error("{file}:{line}: {what}")]
    Syntax {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// A `%` specifier import does not know the value of.
    #[error("{file}:{line}: specifier %{spec} is not one import can resolve")]
    Specifier {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The letter.
        spec: char,
    },
    /// No `ExecStart=` left after the drop-ins.
    #[error("{unit} has no ExecStart=")]
    NoExecStart {
        /// The unit.
        unit: String,
    },
    /// More than one `ExecStart=` in a service that is not oneshot: systemd refuses it.
    #[error(
        "{unit} has {count} ExecStart= lines; systemd refuses that for a service that is not Type=oneshot"
    )]
    SeveralExecStart {
        /// The unit.
        unit: String,
        /// How many.
        count: usize,
    },
}

/// Where a line of a unit is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file (the unit or a drop-in).
    pub file: String,
    /// The 1-based line the setting starts on.
    pub line: usize,
    /// The file is a drop-in, not the unit itself.
    pub dropin: bool,
}

/// `ExecStart=` once parsed: the program and its words before variable expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecStart {
    /// Where it was written.
    pub place: Place,
    /// The program to run (the first word).
    pub path: String,
    /// argv as written: argv\[0\] (the path, or the second word with `@`) and the arguments.
    pub argv: Vec<String>,
    /// The `:` prefix: no `$` expansion.
    pub no_expand: bool,
    /// The prefixes as written (`-`, `@`, `+`, `!`, `!!`, `:`, `|`).
    pub prefixes: String,
}

/// One `Environment=` assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAssignment {
    /// The variable.
    pub key: String,
    /// Its value (specifiers resolved).
    pub value: String,
    /// Where.
    pub place: Place,
}

/// One `EnvironmentFile=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileRef {
    /// The file on the host (specifiers resolved).
    pub path: String,
    /// `-` prefix: a missing file is not an error.
    pub optional: bool,
    /// Where it was named.
    pub place: Place,
}

/// A service unit with its drop-ins applied: what systemd would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The unit's name.
    pub name: String,
    /// The path of the unit file.
    pub path: String,
    /// The one `ExecStart=`.
    pub exec_start: ExecStart,
    /// `Environment=` assignments in the order systemd applies them (later wins).
    pub environment: Vec<EnvAssignment>,
    /// `EnvironmentFile=` entries in order (a later file wins).
    pub environment_files: Vec<EnvFileRef>,
    /// `User=`, if set.
    pub user: Option<String>,
    /// `Group=`, if set.
    pub group: Option<String>,
    /// `Type=`, if set.
    pub service_type: Option<String>,
    /// `WorkingDirectory=`, if set.
    pub working_directory: Option<String>,
    /// Lines systemd ignores, with why (invalid assignments).
    pub warnings: Vec<String>,
}

/// One `Key=Value` of a unit file, continuations joined.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    section: String,
    key: String,
    value: String,
    line: usize,
}

/// Splits a unit file into its settings (systemd.syntax(7)).
fn entries(file: &str, text: &str) -> Result<Vec<Entry>, UnitError> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = raw.trim();
        if let Some((buf, start)) = pending.take() {
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                pending = Some((buf, start));
                continue;
            }
            let joined = format!("{buf}{raw}");
            match continued(&joined) {
                Some(head) => pending = Some((head, start)),
                None => out.push(entry(file, &section, &joined, start)?),
            }
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            match trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                Some(name) => section = name.to_owned(),
                None => {
                    return Err(UnitError::Syntax {
                        file: file.to_owned(),
                        line: n,
                        what: format!("bad section header {trimmed:?}"),
                    });
                }
            }
            continue;
        }
        match continued(raw) {
            Some(head) => pending = Some((head, n)),
            None => out.push(entry(file, &section, raw, n)?),
        }
    }
    if let Some((buf, start)) = pending {
        out.push(entry(file, &section, &buf, start)?);
    }
    Ok(out)
}

/// A line ending in an unescaped backslash, with the backslash made a blank.
fn continued(line: &str) -> Option<String> {
    let t = line.trim_end();
    let trailing = t.chars().rev().take_while(|&c| c == '\\').count();
    (trailing % 2 == 1).then(|| format!("{} ", &t[..t.len() - 1]))
}

fn entry(file: &str, section: &str, line: &str, n: usize) -> Result<Entry, UnitError> {
    let (k, v) = line.split_once('=').ok_or_else(|| UnitError::Syntax {
        file: file.to_owned(),
        line: n,
        what: format!("{:?} is not Key=Value", line.trim()),
    })?;
    Ok(Entry {
        section: section.to_owned(),
        key: k.trim().to_owned(),
        value: v.trim().to_owned(),
        line: n,
    })
}

/// A word of a setting and whether it was written bare (no quotes, no escapes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    text: String,
    bare: bool,
}

/// systemd's `extract_first_word` with `EXTRACT_UNQUOTE` (and `EXTRACT_CUNESCAPE` when
/// `cunescape`): words split at blanks, `'…'` and `"…"` quoting anywhere in a word.
fn split_words(s: &str, cunescape: bool) -> Result<Vec<Word>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut text = String::new();
        let mut bare = true;
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '\'' | '"') => {
                    quote = Some(c);
                    bare = false;
                }
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    bare = false;
                    let e = chars.next().ok_or("a backslash ends the line")?;
                    if cunescape {
                        text.push_str(&c_unescape(e, &mut chars)?);
                    } else {
                        text.push(e);
                    }
                }
                (_, c) => text.push(c),
            }
        }
        if quote.is_some() {
            return Err(format!("unbalanced quote in {s:?}"));
        }
        out.push(Word { text, bare });
    }
}

/// One C escape after a backslash (systemd's `cunescape_one`).
fn c_unescape(
    e: char,
    rest: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<String, String> {
    let mut digits = |n: usize, radix: u32| -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = rest
                .next()
                .and_then(|c| c.to_digit(radix))
                .ok_or_else(|| format!("bad escape \\{e}"))?;
            v = v * radix + d;
        }
        Ok(v)
    };
    let c = match e {
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        's' => ' ',
        '\\' | '"' | '\'' | ';' => e,
        'x' => char::from_u32(digits(2, 16)?).ok_or("bad escape \\x")?,
        'u' => char::from_u32(digits(4, 16)?).ok_or("bad escape \\u")?,
        'U' => char::from_u32(digits(8, 16)?).ok_or("bad escape \\U")?,
        '0'..='7' => {
            let high = e.to_digit(8).unwrap_or(0);
            char::from_u32(high * 64 + digits(2, 8)?).ok_or("bad octal escape")?
        }
        other => return Err(format!("bad escape \\{other}")),
    };
    Ok(c.to_string())
}

/// Resolves `%` specifiers in one word.
fn specifiers(word: &str, ctx: &SpecifierContext, user: Option<&str>) -> Result<String, char> {
    let (prefix, instance) = {
        let stem = ctx
            .unit
            .rsplit_once('.')
            .map_or(ctx.unit.as_str(), |(s, _)| s);
        match stem.split_once('@') {
            Some((p, i)) => (p.to_owned(), i.to_owned()),
            None => (stem.to_owned(), String::new()),
        }
    };
    let stem = ctx
        .unit
        .rsplit_once('.')
        .map_or(ctx.unit.clone(), |(s, _)| s.to_owned());
    let mut out = String::new();
    let mut it = word.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let s = it.next().ok_or('%')?;
        let v = match s {
            '%' => "%".to_owned(),
            'n' => ctx.unit.clone(),
            'N' => stem.clone(),
            'p' | 'P' => prefix.clone(),
            'i' | 'I' => instance.clone(),
            'f' => format!(
                "/{}",
                if instance.is_empty() {
                    &prefix
                } else {
                    &instance
                }
            ),
            'H' => ctx.hostname.clone(),
            'l' => ctx
                .hostname
                .split('.')
                .next()
                .unwrap_or_default()
                .to_owned(),
            'u' => user.unwrap_or("root").to_owned(),
            't' => "/run".to_owned(),
            'S' => "/var/lib".to_owned(),
            'C' => "/var/cache".to_owned(),
            'L' => "/var/log".to_owned(),
            'E' => "/etc".to_owned(),
            'T' => "/tmp".to_owned(),
            'V' => "/var/tmp".to_owned(),
            other => return Err(other),
        };
        out.push_str(&v);
    }
    Ok(out)
}

impl Unit {
    /// Reads a unit and its drop-ins (any order: they are applied in the lexical
    /// order of their file names; of two with the same name, the first given wins,
    /// as `systemctl cat` shows only the one that applies).
    pub fn parse(
        unit: &UnitText,
        dropins: &[UnitText],
        ctx: &SpecifierContext,
    ) -> Result<Self, UnitError> {
        let mut files: Vec<(&UnitText, bool)> = vec![(unit, false)];
        let mut seen = BTreeMap::new();
        for d in dropins {
            let base = d.path.rsplit('/').next().unwrap_or(&d.path).to_owned();
            seen.entry(base).or_insert(d);
        }
        files.extend(seen.into_values().map(|d| (d, true)));

        let mut execs: Vec<ExecStart> = Vec::new();
        let mut environment: Vec<EnvAssignment> = Vec::new();
        let mut environment_files: Vec<EnvFileRef> = Vec::new();
        let mut user = None;
        let mut group = None;
        let mut service_type = None;
        let mut working_directory = None;
        let mut warnings = Vec::new();

        // User= is needed for %u before the other lines are read.
        for (f, _) in &files {
            for e in entries(&f.path, &f.text)? {
                if e.section == "Service" && e.key == "User" {
                    user = (!e.value.is_empty()).then(|| e.value.clone());
                }
            }
        }

        for (f, dropin) in files {
            for e in entries(&f.path, &f.text)? {
                if e.section != "Service" {
                    continue;
                }
                let place = Place {
                    file: f.path.clone(),
                    line: e.line,
                    dropin,
                };
                let syntax = |what: String| UnitError::Syntax {
                    file: f.path.clone(),
                    line: e.line,
                    what,
                };
                let spec = |w: &str| {
                    specifiers(w, ctx, user.as_deref()).map_err(|spec| UnitError::Specifier {
                        file: f.path.clone(),
                        line: e.line,
                        spec,
                    })
                };
                match e.key.as_str() {
                    "ExecStart" => {
                        if e.value.is_empty() {
                            execs.clear();
                            continue;
                        }
                        let prefixes: String = e
                            .value
                            .chars()
                            .take_while(|c| "-@:+!|".contains(*c))
                            .collect();
                        let rest = &e.value[prefixes.len()..];
                        let words = split_words(rest, true).map_err(syntax)?;
                        if let Some(w) = words.iter().find(|w| w.bare && w.text == ";") {
                            return Err(syntax(format!(
                                "{:?} separates several commands, which systemd allows only for Type=oneshot",
                                w.text
                            )));
                        }
                        let mut words = words
                            .iter()
                            .map(|w| spec(&w.text))
                            .collect::<Result<Vec<_>, _>>()?;
                        if words.is_empty() {
                            return Err(syntax("ExecStart= names no program".to_owned()));
                        }
                        let path = words.remove(0);
                        let argv = if prefixes.contains('@') {
                            if words.is_empty() {
                                return Err(syntax(
                                    "ExecStart=@ needs argv[0] after the program".to_owned(),
                                ));
                            }
                            words
                        } else {
                            std::iter::once(path.clone()).chain(words).collect()
                        };
                        execs.push(ExecStart {
                            place,
                            path,
                            argv,
                            no_expand: prefixes.contains(':'),
                            prefixes,
                        });
                    }
                    "Environment" => {
                        if e.value.is_empty() {
                            environment.clear();
                            continue;
                        }
                        for w in split_words(&e.value, true).map_err(syntax)? {
                            let w = spec(&w.text)?;
                            match w.split_once('=') {
                                Some((k, v)) if envfile::valid_name(k) => {
                                    environment.push(EnvAssignment {
                                        key: k.to_owned(),
                                        value: v.to_owned(),
                                        place: place.clone(),
                                    });
                                }
                                _ => warnings.push(format!(
                                    "{}:{}: systemd ignores the invalid environment assignment {w:?}",
                                    f.path, e.line
                                )),
                            }
                        }
                    }
                    "EnvironmentFile" => {
                        if e.value.is_empty() {
                            environment_files.clear();
                            continue;
                        }
                        let (optional, p) = match e.value.strip_prefix('-') {
                            Some(p) => (true, p),
                            None => (false, e.value.as_str()),
                        };
                        environment_files.push(EnvFileRef {
                            path: spec(p.trim())?,
                            optional,
                            place,
                        });
                    }
                    "Group" => group = (!e.value.is_empty()).then(|| e.value.clone()),
                    "Type" => service_type = (!e.value.is_empty()).then(|| e.value.clone()),
                    "WorkingDirectory" => {
                        working_directory =
                            (!e.value.is_empty()).then(|| spec(&e.value)).transpose()?;
                    }
                    _ => {}
                }
            }
        }
        let exec_start = match execs.len() {
            0 => {
                return Err(UnitError::NoExecStart {
                    unit: ctx.unit.clone(),
                });
            }
            1 => execs.remove(0),
            count => {
                return Err(UnitError::SeveralExecStart {
                    unit: ctx.unit.clone(),
                    count,
                });
            }
        };
        Ok(Self {
            name: ctx.unit.clone(),
            path: unit.path.clone(),
            exec_start,
            environment,
            environment_files,
            user,
            group,
            service_type,
            working_directory,
            warnings,
        })
    }
}

/// Where a word of the command line systemd runs came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgOrigin {
    /// Written in `ExecStart=`.
    Written,
    /// From the expansion of this variable.
    Variable(String),
}

/// One word of the command line systemd runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The word.
    pub text: String,
    /// Where it came from.
    pub origin: ArgOrigin,
}

/// The command line systemd runs for `ExecStart=` (systemd's `replace_env_argv`): a
/// word that is `$NAME` becomes the variable's value split at blanks (quotes
/// honoured), zero or more words; `${NAME}` inside a word is replaced by the value as
/// is; `$$` is a `$`; a `$` followed by anything else stays. Unset variables expand to
/// nothing (systemd warns); their names are returned.
pub fn expand(exec: &ExecStart, env: &dyn Fn(&str) -> Option<String>) -> (Vec<Arg>, Vec<String>) {
    let mut unset = Vec::new();
    let mut out = Vec::new();
    for (i, w) in exec.argv.iter().enumerate() {
        if exec.no_expand || i == 0 && !exec.prefixes.contains('@') {
            out.push(Arg {
                text: w.clone(),
                origin: ArgOrigin::Written,
            });
            continue;
        }
        if let Some(name) = w.strip_prefix('$').filter(|n| !n.starts_with(['{', '$'])) {
            match env(name) {
                Some(v) => {
                    let words = split_words(&v, false).unwrap_or_else(|_| {
                        v.split_whitespace()
                            .map(|t| Word {
                                text: t.to_owned(),
                                bare: true,
                            })
                            .collect()
                    });
                    out.extend(words.into_iter().map(|t| Arg {
                        text: t.text,
                        origin: ArgOrigin::Variable(name.to_owned()),
                    }));
                }
                None => unset.push(name.to_owned()),
            }
            continue;
        }
        let mut text = String::new();
        let mut origin = ArgOrigin::Written;
        let mut rest = w.as_str();
        while let Some(at) = rest.find('$') {
            text.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(r) = after.strip_prefix('$') {
                text.push('$');
                rest = r;
            } else if let Some((name, r)) = after.strip_prefix('{').and_then(|a| a.split_once('}'))
            {
                match env(name) {
                    Some(v) => text.push_str(&v),
                    None => unset.push(name.to_owned()),
                }
                if origin == ArgOrigin::Written {
                    origin = ArgOrigin::Variable(name.to_owned());
                }
                rest = r;
            } else {
                text.push('$');
                rest = after;
            }
        }
        text.push_str(rest);
        out.push(Arg { text, origin });
    }
    (out, unset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> SpecifierContext {
        SpecifierContext {
            unit: "etcd.service".into(),
            hostname: "node1.example".into(),
        }
    }

    fn text(path: &str, text: &str) -> UnitText {
        UnitText {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn quoting_escapes_continuations_and_specifiers() {
        let u = Unit::parse(
            &text(
                "/etc/systemd/system/etcd.service",
                concat!(
                    "[Service]\n",
                    "User=etcd\n",
                    "Environment=\"A=x y\" B=%H C=%l\n",
                    "Environment=D=100%%\n",
                    "ExecStart=-/usr/bin/etcd --name %H \\\n",
                    "  # a comment inside the continuation\n",
                    "  \"--data-dir=/var/lib/etcd/%u data\" \\\n",
                    "  --log-level\\x3dinfo\n",
                ),
            ),
            &[],
            &ctx(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u.exec_start.argv,
            [
                "/usr/bin/etcd",
                "--name",
                "node1.example",
                "--data-dir=/var/lib/etcd/etcd data",
                "--log-level=info"
            ]
        );
        assert_eq!(u.exec_start.prefixes, "-");
        assert_eq!(u.exec_start.place.line, 5);
        let env: Vec<(&str, &str)> = u
            .environment
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("A", "x y"),
                ("B", "node1.example"),
                ("C", "node1"),
                ("D", "100%")
            ]
        );
        assert_eq!(u.user.as_deref(), Some("etcd"));
    }

    #[test]
    fn dropins_reset_exec_start_and_apply_in_name_order() {
        let unit = text(
            "/lib/systemd/system/etcd.service",
            "[Service]\nExecStart=/usr/bin/etcd --name a\nEnvironmentFile=-/etc/default/%p\n",
        );
        let b = text(
            "/etc/systemd/system/etcd.service.d/20-b.conf",
            "[Service]\nExecStart=\nExecStart=/opt/etcd --name b\n",
        );
        let a = text(
            "/run/systemd/system/etcd.service.d/10-a.conf",
            "[Service]\nExecStart=\nExecStart=/opt/etcd --name a2\nEnvironment=X=1\n",
        );
        let u = Unit::parse(&unit, &[b, a], &ctx()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.exec_start.argv, ["/opt/etcd", "--name", "b"]);
        assert!(u.exec_start.place.dropin);
        assert_eq!(u.environment_files[0].path, "/etc/default/etcd");
        assert!(u.environment_files[0].optional);
        assert_eq!(u.environment.len(), 1);

        // Without the reset, a drop-in's ExecStart= adds a second one: systemd refuses.
        let c = text(
            "/etc/systemd/system/etcd.service.d/30-c.conf",
            "[Service]\nExecStart=/opt/etcd --name c\n",
        );
        assert!(matches!(
            Unit::parse(&unit, &[c], &ctx()),
            Err(UnitError::SeveralExecStart { count: 2, .. })
        ));
    }

    #[test]
    fn expansion_splits_bare_variables_only() {
        let exec = ExecStart {
            place: Place {
                file: "u".into(),
                line: 1,
                dropin: false,
            },
            path: "/usr/bin/etcd".into(),
            argv: vec![
                "/usr/bin/etcd".into(),
                "$DAEMON_ARGS".into(),
                "--name=${NAME}".into(),
                "--x=$NAME".into(),
                "$$literal".into(),
                "$UNSET".into(),
            ],
            no_expand: false,
            prefixes: String::new(),
        };
        let env = |k: &str| match k {
            "DAEMON_ARGS" => Some("--a=1  '--b=two words'".to_owned()),
            "NAME" => Some("n 1".to_owned()),
            _ => None,
        };
        let (args, unset) = expand(&exec, &env);
        let words: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
        assert_eq!(
            words,
            [
                "/usr/bin/etcd",
                "--a=1",
                "--b=two words",
                "--name=n 1",
                "--x=$NAME",
                "$literal"
            ]
        );
        assert_eq!(args[1].origin, ArgOrigin::Variable("DAEMON_ARGS".into()));
        assert_eq!(unset, ["UNSET"]);
    }
}
