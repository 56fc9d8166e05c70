//! systemd's `EnvironmentFile=` format, as systemd reads it (`load_env_file` in
//! systemd's env-file.c): `KEY=VALUE` lines, `#` and `;` comments at the start of a
//! line, single quotes taken literally, double quotes with shell escapes, a
//! backslash-newline continuing a value, trailing blanks of an unquoted value
//! dropped. There is no `export` and no variable expansion: a line systemd would
//! drop is reported, not guessed at.
//!
//! Debian's `/etc/default/etcd` and the Ansible roles' `/etc/etcd/etcd.conf` are
//! this format (a shell could read them too, but systemd is what reads them).

/// One assignment systemd keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The variable.
    pub key: String,
    /// Its value, unquoted.
    pub value: String,
    /// The 1-based line the key is on.
    pub line: usize,
}

/// What systemd makes of an environment file: assignments in order (a later one
/// of the same key wins) and the lines it drops, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    /// Kept assignments, in file order.
    pub assignments: Vec<Assignment>,
    /// `(line, reason)` for each line systemd ignores (not a comment, not an assignment).
    pub dropped: Vec<(usize, String)>,
}

impl EnvFile {
    /// The value systemd ends with for `key` (the last assignment).
    pub fn get(&self, key: &str) -> Option<&Assignment> {
        self.assignments.iter().rev().find(|a| a.key == key)
    }
}

/// Whether systemd accepts `name` as a variable name (`env_name_is_valid`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    PreKey,
    Key,
    PreValue,
    Value,
    ValueEscape,
    Single,
    Double,
    DoubleEscape,
    Comment,
}

/// Characters a backslash escapes inside double quotes (systemd's `SHELL_NEED_ESCAPE`).
const SHELL_NEED_ESCAPE: &str = "\"\\`$";

/// Parses an environment file as systemd does.
pub fn parse(text: &str) -> EnvFile {
    let mut out = EnvFile::default();
    let mut state = State::PreKey;
    let mut key = String::new();
    let mut value = String::new();
    // Length of the value before its trailing blanks (unquoted values only).
    let mut value_trim: Option<usize> = None;
    let mut line = 1usize;
    let mut key_line = 1usize;

    let push = |key: &mut String,
                value: &mut String,
                trim: Option<usize>,
                at: usize,
                out: &mut EnvFile| {
        if let Some(t) = trim {
            value.truncate(t);
        }
        let k = key.trim_end().to_owned();
        if valid_name(&k) {
            out.assignments.push(Assignment {
                key: k,
                value: std::mem::take(value),
                line: at,
            });
        } else {
            out.dropped.push((
                at,
                format!("{k:?} is not a valid variable name; systemd ignores the line"),
            ));
        }
        key.clear();
        value.clear();
    };

    for c in text.chars() {
        let newline = c == '\n' || c == '\r';
        match state {
            State::PreKey => {
                if c == '#' || c == ';' {
                    state = State::Comment;
                } else if !c.is_whitespace() {
                    state = State::Key;
                    key_line = line;
                    key.push(c);
                }
            }
            State::Key => {
                if newline {
                    out.dropped.push((
                        key_line,
                        format!("{:?} has no '='; systemd ignores the line", key.trim_end()),
                    ));
                    key.clear();
                    state = State::PreKey;
                } else if c == '=' {
                    state = State::PreValue;
                    value_trim = None;
                } else {
                    key.push(c);
                }
            }
            State::PreValue => {
                if newline {
                    push(&mut key, &mut value, None, key_line, &mut out);
                    state = State::PreKey;
                } else if c == '\'' {
                    state = State::Single;
                } else if c == '"' {
                    state = State::Double;
                } else if c == '\\' {
                    state = State::ValueEscape;
                } else if !c.is_whitespace() {
                    state = State::Value;
                    value_trim = None;
                    value.push(c);
                }
            }
            State::Value => {
                if newline {
                    push(&mut key, &mut value, value_trim, key_line, &mut out);
                    state = State::PreKey;
                } else if c == '\\' {
                    state = State::ValueEscape;
                    value_trim = None;
                } else {
                    if !c.is_whitespace() {
                        value_trim = None;
                    } else if value_trim.is_none() {
                        value_trim = Some(value.len());
                    }
                    value.push(c);
                }
            }
            State::ValueEscape => {
                state = State::Value;
                if !newline {
                    value.push(c);
                }
            }
            State::Single => {
                if c == '\'' {
                    state = State::PreValue;
                } else {
                    value.push(c);
                }
            }
            State::Double => {
                if c == '"' {
                    state = State::PreValue;
                } else if c == '\\' {
                    state = State::DoubleEscape;
                } else {
                    value.push(c);
                }
            }
            State::DoubleEscape => {
                state = State::Double;
                if SHELL_NEED_ESCAPE.contains(c) {
                    value.push(c);
                } else if c != '\n' {
                    value.push('\\');
                    value.push(c);
                }
            }
            State::Comment => {
                if newline {
                    state = State::PreKey;
                }
            }
        }
        if c == '\n' {
            line += 1;
        }
    }
    match state {
        State::PreValue
        | State::ValueEscape
        | State::Single
        | State::Double
        | State::DoubleEscape => push(&mut key, &mut value, None, key_line, &mut out),
        State::Value => push(&mut key, &mut value, value_trim, key_line, &mut out),
        State::Key => out.dropped.push((
            key_line,
            format!("{:?} has no '='; systemd ignores the line", key.trim_end()),
        )),
        State::PreKey | State::Comment => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(f: &EnvFile) -> Vec<(&str, &str)> {
        f.assignments
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect()
    }

    #[test]
    fn quotes_comments_and_blanks_as_systemd_reads_them() {
        let f = parse(concat!(
            "# comment\n",
            "  ; also a comment\n",
            "ETCD_NAME=infra0   \n",
            "ETCD_INITIAL_CLUSTER=\"infra0=http://10.0.0.1:2380,infra1=http://10.0.0.2:2380\"\n",
            "DAEMON_ARGS='--snapshot-count 5000 --heartbeat-interval=200'\n",
            "ESCAPED=\"a \\\"b\\\" \\$c \\n\"\n",
            "CONT=one\\\n",
            "two\n",
            "EMPTY=\n",
            "export ETCD_DATA_DIR=/x\n",
            "no equals sign\n",
            "X = spaced \n",
            "TRAIL=\"q\" # not a comment here",
        ));
        assert_eq!(
            pairs(&f),
            [
                ("ETCD_NAME", "infra0"),
                (
                    "ETCD_INITIAL_CLUSTER",
                    "infra0=http://10.0.0.1:2380,infra1=http://10.0.0.2:2380"
                ),
                (
                    "DAEMON_ARGS",
                    "--snapshot-count 5000 --heartbeat-interval=200"
                ),
                ("ESCAPED", "a \"b\" $c \\n"),
                ("CONT", "onetwo"),
                ("EMPTY", ""),
                ("X", "spaced"),
                ("TRAIL", "q# not a comment here"),
            ]
        );
        assert_eq!(f.assignments[4].line, 7);
        let dropped: Vec<usize> = f.dropped.iter().map(|d| d.0).collect();
        assert_eq!(dropped, [10, 11], "{:?}", f.dropped);
    }
}
