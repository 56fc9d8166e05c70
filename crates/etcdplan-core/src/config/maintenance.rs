//! `[maintenance]`: upkeep etcdplan plans by rule, today when a member is
//! defragmented.
//!
//! The rule is a boolean expression over etcd-defrag's variables (`dbSize`,
//! `dbSizeInUse`, `dbSizeFree`, `dbQuota`, `dbQuotaUsage`), so an operator
//! carries a `--defrag-rule` over as written. The expression is parsed and
//! evaluated by the `evalexpr` crate; the only rewriting done before it sees
//! the text is of size literals (`200MiB`, and a whole number of bytes) into
//! float literals, since the etcdfile writes sizes with binary units. Like
//! etcd-defrag, every variable and every number is a float, so
//! `dbSizeInUse / dbSize` is a ratio, `80/100` is 0.8, and a figure compares
//! equal to a whole number.

use evalexpr::{
    Context as _, ContextWithMutableVariables as _, HashMapContext, Node, Operator, Value,
};

use crate::model::{ByteSize, DbFigures, SizeError, human};

/// The variables a rule may name, etcd-defrag's names.
pub const VARIABLES: [&str; 5] = [
    "dbSize",
    "dbSizeInUse",
    "dbSizeFree",
    "dbQuota",
    "dbQuotaUsage",
];

/// The figures the rule is tried with once at validation, to learn its type
/// (etcd-defrag's own sample: a 100 MiB file, 60 MiB in use, a 2 GiB quota).
const SAMPLE: DbFigures = DbFigures {
    db_size: 100 << 20,
    db_size_in_use: 60 << 20,
    db_quota: 2 << 30,
};

/// `[maintenance]`, validated.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Maintenance {
    /// When a member is defragmented; None: never by rule.
    pub defrag_rule: Option<DefragRule>,
}

/// A checked defragmentation rule: its text as written and the expression
/// parsed from it. Built only by [`DefragRule::parse`], so a rule that exists
/// names known variables and yields a boolean.
#[derive(Debug, Clone, PartialEq)]
pub struct DefragRule {
    text: String,
    tree: Node,
}

impl serde::Serialize for DefragRule {
    /// A rule travels as its text, as the operator wrote it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Why a rule was refused, or could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// The text is empty.
    #[error("the rule is empty")]
    Empty,
    /// The expression does not parse.
    #[error("the rule does not parse: {0}")]
    Parse(String),
    /// A name that is none of [`VARIABLES`].
    #[error("unknown variable `{name}`{}", suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownVariable {
        /// The name written.
        name: String,
        /// The closest known variable, when one is close.
        suggestion: Option<&'static str>,
    },
    /// `200MB`: a decimal unit.
    #[error("`{literal}` is a decimal size: etcdfile sizes are binary: write {binary}")]
    DecimalSize {
        /// The literal written.
        literal: String,
        /// The binary one to write instead.
        binary: String,
    },
    /// A size literal [`ByteSize`] refuses (`1.5GiB`, `2XiB`).
    #[error("`{literal}` is not a size: {source}")]
    BadSize {
        /// The literal written.
        literal: String,
        /// Why.
        source: SizeError,
    },
    /// Something a rule has no use for: a function call, an assignment, a
    /// string, a list, a sequence, `^`.
    #[error("a rule cannot hold {0}")]
    NotAllowed(String),
    /// The rule's value is a number or nothing, not true or false.
    #[error("the rule's value is {0}, not true or false")]
    NotBoolean(String),
    /// A divisor is zero for these figures.
    #[error("division by zero: {0} is 0")]
    DivisionByZero(String),
    /// Any other failure while evaluating.
    #[error("the rule cannot be evaluated: {0}")]
    Eval(String),
}

impl DefragRule {
    /// Parses and checks a rule: known variables only, nothing but
    /// arithmetic, comparisons and logic, and a boolean value (tried once on
    /// sample figures).
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        if text.trim().is_empty() {
            return Err(RuleError::Empty);
        }
        let rewritten = rewrite_sizes(text)?;
        let tree = evalexpr::build_operator_tree(&rewritten)
            .map_err(|e| RuleError::Parse(e.to_string()))?;
        for node in tree.iter() {
            if let Some(what) = refused(node.operator()) {
                return Err(RuleError::NotAllowed(what));
            }
        }
        if let Some(name) = tree
            .iter_read_variable_identifiers()
            .find(|name| !VARIABLES.contains(name))
        {
            return Err(RuleError::UnknownVariable {
                name: name.to_owned(),
                suggestion: super::did_you_mean(name, VARIABLES),
            });
        }
        let rule = Self {
            text: text.to_owned(),
            tree,
        };
        rule.holds(&SAMPLE)?;
        Ok(rule)
    }

    /// The rule as written in the etcdfile.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the rule holds for a member's figures. A divisor that is zero
    /// for them (`dbSizeInUse / dbSize` on an empty file) is an error, not an
    /// infinity that quietly compares.
    pub fn holds(&self, f: &DbFigures) -> Result<bool, RuleError> {
        let ctx = context(f)?;
        // evalexpr evaluates every operand (no short circuit), so every
        // divisor in the tree is one the result depends on.
        for node in self.tree.iter() {
            if matches!(node.operator(), Operator::Div | Operator::Mod)
                && let [_, divisor] = node.children()
            {
                let value = divisor
                    .eval_number_with_context(&ctx)
                    .map_err(|e| RuleError::Eval(e.to_string()))?;
                if value == 0.0 {
                    let names = read_names(divisor);
                    let what = if names.is_empty() {
                        "a divisor".to_owned()
                    } else {
                        names.join(", ")
                    };
                    return Err(RuleError::DivisionByZero(what));
                }
            }
        }
        match self.tree.eval_with_context(&ctx) {
            Ok(Value::Boolean(b)) => Ok(b),
            Ok(other) => Err(RuleError::NotBoolean(kind(&other))),
            Err(e) => Err(RuleError::Eval(e.to_string())),
        }
    }

    /// The figures the rule names, with this member's values, in the order
    /// the rule names them: "dbSizeFree 312.4 MiB, dbQuotaUsage 0.610".
    /// What a plan shows beside the rule to say why a member is defragmented.
    #[must_use]
    pub fn explain(&self, f: &DbFigures) -> String {
        read_names(&self.tree)
            .iter()
            .map(|name| match *name {
                "dbSize" => format!("dbSize {}", human(f.db_size)),
                "dbSizeInUse" => format!("dbSizeInUse {}", human(f.db_size_in_use)),
                "dbSizeFree" => format!("dbSizeFree {}", human(f.free())),
                "dbQuota" => format!("dbQuota {}", human(f.db_quota)),
                "dbQuotaUsage" => format!("dbQuotaUsage {:.3}", f.quota_usage()),
                other => other.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The variables a subtree reads, itself included (evalexpr's iterators
/// visit only the descendants of the node they start from).
fn read_names(node: &Node) -> Vec<&str> {
    let mut names = Vec::new();
    for n in std::iter::once(node).chain(node.iter()) {
        if let Operator::VariableIdentifierRead { identifier } = n.operator()
            && !names.contains(&identifier.as_str())
        {
            names.push(identifier.as_str());
        }
    }
    names
}

/// The figures as evalexpr variables, every one a float (etcd-defrag's
/// `float64`s).
#[allow(clippy::cast_precision_loss)]
fn context(f: &DbFigures) -> Result<HashMapContext, RuleError> {
    let mut ctx = HashMapContext::new();
    let values = [
        ("dbSize", f.db_size as f64),
        ("dbSizeInUse", f.db_size_in_use as f64),
        ("dbSizeFree", f.free() as f64),
        ("dbQuota", f.db_quota as f64),
        ("dbQuotaUsage", f.quota_usage()),
    ];
    for (name, value) in values {
        ctx.set_value(name.to_owned(), Value::Float(value))
            .map_err(|e| RuleError::Eval(e.to_string()))?;
    }
    // Function calls are refused at parse; no builtin is reachable either.
    ctx.set_builtin_functions_disabled(true)
        .map_err(|e| RuleError::Eval(e.to_string()))?;
    Ok(ctx)
}

/// What an operator a rule may not use is, for the message; None if allowed.
fn refused(op: &Operator) -> Option<String> {
    Some(match op {
        Operator::FunctionIdentifier { identifier } => format!("a function call (`{identifier}`)"),
        Operator::Assign
        | Operator::AddAssign
        | Operator::SubAssign
        | Operator::MulAssign
        | Operator::DivAssign
        | Operator::ModAssign
        | Operator::ExpAssign
        | Operator::AndAssign
        | Operator::OrAssign
        | Operator::VariableIdentifierWrite { .. } => "an assignment".to_owned(),
        Operator::Const {
            value: Value::String(s),
        } => format!("a string (\"{s}\")"),
        Operator::Tuple => "a list (`,`)".to_owned(),
        Operator::Chain => "a sequence (`;`)".to_owned(),
        // Go, where etcd-defrag rules come from, reads `^` as XOR.
        Operator::Exp => "`^` (write the multiplication out)".to_owned(),
        _ => return None,
    })
}

/// A value's kind, for "the rule's value is …".
fn kind(v: &Value) -> String {
    match v {
        Value::Int(_) | Value::Float(_) => "a number".to_owned(),
        Value::String(_) => "a string".to_owned(),
        Value::Boolean(b) => format!("{b}"),
        Value::Tuple(_) => "a list".to_owned(),
        Value::Empty => "empty".to_owned(),
    }
}

/// Decimal units and their binary counterparts, for the hint.
const DECIMAL: [(&str, &str); 9] = [
    ("K", "KiB"),
    ("KB", "KiB"),
    ("kB", "KiB"),
    ("M", "MiB"),
    ("MB", "MiB"),
    ("G", "GiB"),
    ("GB", "GiB"),
    ("T", "TiB"),
    ("TB", "TiB"),
];

/// Replaces each size literal (`200MiB`, `1GiB`, `512B`, and a whole number
/// of bytes, `209715200`) with its bytes as a float literal; fractions,
/// exponents and everything else are left to evalexpr. A number glued to letters that are no binary unit is refused
/// here, with the binary unit to write for a decimal one.
fn rewrite_sizes(text: &str) -> Result<String, RuleError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let in_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '"' {
            // Copy a string through whole; the tree check refuses it.
            out.push(c);
            i += 1;
            while i < chars.len() {
                out.push(chars[i]);
                if chars[i] == '\\' && i + 1 < chars.len() {
                    out.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                i += 1;
                if chars[i - 1] == '"' {
                    break;
                }
            }
            continue;
        }
        if !c.is_ascii_digit() || in_word || (i > 0 && chars[i - 1] == '.') {
            out.push(c);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        let number_end = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let number: String = chars[start..number_end].iter().collect();
        let unit: String = chars[number_end..i].iter().collect();
        let literal = format!("{number}{unit}");
        // `1e6`, `1e+6`: a float's exponent, not a unit.
        let exponent = if unit.eq_ignore_ascii_case("e") {
            chars.get(i).is_some_and(|c| matches!(c, '+' | '-'))
        } else {
            unit.starts_with(['e', 'E']) && unit[1..].chars().all(|c| c.is_ascii_digit())
        };
        if unit.is_empty() {
            // `200 MiB`: a unit parted from its number.
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let word: String = chars[j..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .collect();
            let is_unit = |w: &str| {
                ["B", "KiB", "MiB", "GiB", "TiB"].contains(&w)
                    || DECIMAL.iter().any(|(d, _)| *d == w)
            };
            if j > i && is_unit(&word) {
                return Err(RuleError::BadSize {
                    literal: format!("{number} {word}"),
                    source: SizeError::Space,
                });
            }
        }
        if exponent {
            out.push_str(&literal);
            // `1e+6`: the sign and the exponent's digits go with it.
            if unit.len() == 1 {
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || (matches!(chars[i], '+' | '-') && out.ends_with(['e', 'E'])))
                {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            continue;
        }
        if unit.is_empty() {
            // A whole number is a count of bytes, a size like any other: a
            // float, so that `80/100` is 0.8 and `dbQuota == 2147483648`
            // compares a float with a float, as in etcd-defrag.
            out.push_str(&literal);
            if !number.contains('.') {
                out.push_str(".0");
            }
            continue;
        }
        if let Some((_, binary)) = DECIMAL.iter().find(|(d, _)| *d == unit) {
            return Err(RuleError::DecimalSize {
                binary: format!("{number}{binary}"),
                literal,
            });
        }
        match ByteSize::parse(&literal) {
            Ok(size) => out.push_str(&format!("{}.0", size.bytes())),
            Err(source) => return Err(RuleError::BadSize { literal, source }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn figures(size: u64, in_use: u64, quota: u64) -> DbFigures {
        DbFigures {
            db_size: size,
            db_size_in_use: in_use,
            db_quota: quota,
        }
    }

    fn rule(text: &str) -> DefragRule {
        match DefragRule::parse(text) {
            Ok(r) => r,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn holds_and_does_not_hold() {
        let r = rule("dbSizeFree > 200MiB && dbQuotaUsage > 0.5");
        // 1.5 GiB file, 1 GiB in use, 2 GiB quota: 512 MiB free, 75% used.
        assert_eq!(
            r.holds(&figures(1536 * MIB, 1024 * MIB, 2048 * MIB)),
            Ok(true)
        );
        // Same file, 1.4 GiB in use: 112 MiB free.
        assert_eq!(
            r.holds(&figures(1536 * MIB, 1424 * MIB, 2048 * MIB)),
            Ok(false)
        );
        // Plenty free but a 10% used quota.
        assert_eq!(
            r.holds(&figures(1536 * MIB, 1024 * MIB, 16384 * MIB)),
            Ok(false)
        );
        assert_eq!(r.text(), "dbSizeFree > 200MiB && dbQuotaUsage > 0.5");
    }

    #[test]
    fn every_variable_and_etcd_defrags_own_example() {
        let r = rule("dbSize > dbQuota*80/100 || dbSize - dbSizeInUse > 200*1024*1024");
        assert_eq!(
            r.holds(&figures(1700 * MIB, 1650 * MIB, 2048 * MIB)),
            Ok(true)
        );
        assert_eq!(
            r.holds(&figures(500 * MIB, 400 * MIB, 2048 * MIB)),
            Ok(false)
        );
        assert_eq!(
            r.holds(&figures(500 * MIB, 250 * MIB, 2048 * MIB)),
            Ok(true)
        );
        let r =
            rule("dbSizeFree == dbSize - dbSizeInUse && dbQuota == 2GiB && !(dbQuotaUsage >= 1)");
        assert_eq!(r.holds(&figures(300, 100, 2 << 30)), Ok(true));
    }

    #[test]
    fn division_is_float_division() {
        // As integers 30/100 would be 0 and the rule would hold.
        let r = rule("dbSizeInUse / dbSize < 0.5");
        assert_eq!(r.holds(&figures(100, 30, 1000)), Ok(true));
        assert_eq!(r.holds(&figures(100, 70, 1000)), Ok(false));
        assert_eq!(r.holds(&figures(3, 1, 1000)), Ok(true));
        assert_eq!(r.holds(&figures(3, 2, 1000)), Ok(false));
        // A size over a size is a ratio too.
        assert_eq!(rule("1MiB / 2MiB == 0.5").holds(&SAMPLE), Ok(true));
    }

    #[test]
    fn division_by_zero_is_an_error_not_a_panic() {
        let r = rule("dbSizeInUse / dbSize < 0.5");
        assert_eq!(
            r.holds(&figures(0, 0, 1000)),
            Err(RuleError::DivisionByZero("dbSize".into()))
        );
        let r = rule("dbSize % dbQuota > 1");
        assert_eq!(
            r.holds(&figures(10, 0, 0)),
            Err(RuleError::DivisionByZero("dbQuota".into()))
        );
        // A constant zero divisor is refused when the file is read.
        assert_eq!(
            DefragRule::parse("dbSize / 0 > 1"),
            Err(RuleError::DivisionByZero("a divisor".into()))
        );
    }

    #[test]
    fn sizes_are_binary() {
        for (size, bytes) in [("512B", 512.0), ("4KiB", 4096.0), ("3MiB", 3.0 * 1048576.0)] {
            assert_eq!(
                rewrite_sizes(&format!("dbSize > {size}")),
                Ok(format!("dbSize > {bytes:.1}"))
            );
        }
        assert_eq!(
            rewrite_sizes("dbSize > 1TiB"),
            Ok("dbSize > 1099511627776.0".into())
        );
        // Whole numbers are bytes, floats too; fractions and exponents
        // are left as written; digits inside a name are the name's.
        assert_eq!(
            rewrite_sizes("a1 > 0.5 + 10 + 1e3 + 2e+4"),
            Ok("a1 > 0.5 + 10.0 + 1e3 + 2e+4".into())
        );
        assert_eq!(
            DefragRule::parse("dbSizeFree > 200MB"),
            Err(RuleError::DecimalSize {
                literal: "200MB".into(),
                binary: "200MiB".into()
            })
        );
        let e = DefragRule::parse("dbSizeFree > 200MB")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("`200MB` is a decimal size: etcdfile sizes are binary: write 200MiB")
        );
        assert!(matches!(
            DefragRule::parse("dbSize > 1.5GiB"),
            Err(RuleError::BadSize { .. })
        ));
        assert!(matches!(
            DefragRule::parse("dbSize > 2XiB"),
            Err(RuleError::BadSize { .. })
        ));
        assert_eq!(
            DefragRule::parse("dbSize > 200 MiB"),
            Err(RuleError::BadSize {
                literal: "200 MiB".into(),
                source: SizeError::Space
            })
        );
        // An exponent is the crate's: 1e+3 and 2E3 are floats.
        assert_eq!(
            rule("dbSize > 1e+3 && dbSize < 2E9").holds(&SAMPLE),
            Ok(true)
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            DefragRule::parse("dbSizeFre > 1"),
            Err(RuleError::UnknownVariable {
                name: "dbSizeFre".into(),
                suggestion: Some("dbSizeFree")
            })
        );
        assert_eq!(
            DefragRule::parse("quux > 1"),
            Err(RuleError::UnknownVariable {
                name: "quux".into(),
                suggestion: None
            })
        );
        assert!(matches!(
            DefragRule::parse("dbSize > (1"),
            Err(RuleError::Parse(_))
        ));
        assert!(matches!(
            DefragRule::parse("dbSize > 1)"),
            Err(RuleError::Parse(_))
        ));
        // Parsed by the crate into a half tree; the trial evaluation refuses it.
        assert!(matches!(
            DefragRule::parse("dbSize >> 1"),
            Err(RuleError::Eval(_))
        ));
        assert_eq!(DefragRule::parse("  "), Err(RuleError::Empty));
        for (text, what) in [
            ("max(dbSize, 1) > 2", "a function call (`max`)"),
            ("dbSize = 1", "an assignment"),
            ("dbSize += 1", "an assignment"),
            ("dbSize > \"1\"", "a string (\"1\")"),
            ("dbSize > 1, true", "a list (`,`)"),
            ("dbSize > 1; true", "a sequence (`;`)"),
            ("dbSize > 2^20", "`^` (write the multiplication out)"),
        ] {
            assert_eq!(
                DefragRule::parse(text),
                Err(RuleError::NotAllowed(what.into())),
                "{text}"
            );
        }
        // Every number is a float, as in etcd-defrag: 80/100 is 0.8, a
        // figure equals a whole number, 7 % 2 is 1.
        assert_eq!(rule("dbSize < 80/100 * dbQuota").holds(&SAMPLE), Ok(true));
        assert_eq!(rule("80/100 == 0.8 && 7 % 2 == 1").holds(&SAMPLE), Ok(true));
        assert_eq!(rule("dbQuota == 2147483648").holds(&SAMPLE), Ok(true));
        assert_eq!(rule("1MiB / 2 == 524288").holds(&SAMPLE), Ok(true));
        assert_eq!(
            DefragRule::parse("dbSize - dbSizeInUse"),
            Err(RuleError::NotBoolean("a number".into()))
        );
        assert_eq!(
            DefragRule::parse("dbQuotaUsage"),
            Err(RuleError::NotBoolean("a number".into()))
        );
        // A boolean mixed with a number fails in the crate, not in a panic.
        assert!(matches!(
            DefragRule::parse("dbSize && true"),
            Err(RuleError::Eval(_))
        ));
    }

    #[test]
    fn explain_names_the_rules_figures() {
        let r = rule("dbSizeFree > 200MiB && dbQuotaUsage > 0.5 || dbSizeFree > 1GiB");
        let f = figures(1536 * MIB, 1224 * MIB, 2048 * MIB);
        assert_eq!(r.explain(&f), "dbSizeFree 312.0 MiB, dbQuotaUsage 0.750");
        let r = rule("dbSize > dbQuota * 0.8 && dbSizeInUse < 1GiB");
        assert_eq!(
            r.explain(&f),
            "dbSize 1.5 GiB, dbQuota 2.0 GiB, dbSizeInUse 1.2 GiB"
        );
    }

    #[test]
    fn serializes_as_its_text() {
        let m = Maintenance {
            defrag_rule: Some(rule("dbSize > 1GiB")),
        };
        assert_eq!(
            serde_json::to_string(&m).ok().as_deref(),
            Some(r#"{"defrag_rule":"dbSize > 1GiB"}"#)
        );
    }
}
