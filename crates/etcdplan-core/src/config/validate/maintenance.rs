//! The `[maintenance]` table: the defragmentation rule, refused at its line
//! when it does not parse, names an unknown variable, writes a decimal size,
//! holds what a rule has no use for, or is not a boolean.

use super::Validator;
use crate::config::diagnostic::Problem;
use crate::config::maintenance::{DefragRule, Maintenance, RuleError, VARIABLES};
use crate::config::raw::RawEtcdfile;

impl Validator<'_> {
    /// `None`: the table has an error (reported).
    pub(super) fn maintenance(&mut self, raw: &RawEtcdfile) -> Option<Maintenance> {
        let Some(m) = &raw.maintenance else {
            return Some(Maintenance::default());
        };
        let Some(rule) = &m.get_ref().defrag_rule else {
            return Some(Maintenance::default());
        };
        match DefragRule::parse(rule.get_ref()) {
            Ok(r) => Some(Maintenance {
                defrag_rule: Some(r),
            }),
            Err(e) => {
                let (label, help) = match &e {
                    RuleError::UnknownVariable { .. } => (
                        "unknown variable",
                        format!("a rule can name {}", VARIABLES.join(", ")),
                    ),
                    RuleError::DecimalSize { binary, .. } => (
                        "decimal size",
                        format!(
                            "sizes in the etcdfile use binary units (B, KiB, MiB, GiB, TiB): write {binary}"
                        ),
                    ),
                    RuleError::BadSize { .. } => (
                        "not a size",
                        "write a whole number with a binary unit: 200MiB, 1GiB".to_owned(),
                    ),
                    RuleError::NotBoolean(_) => (
                        "not true or false",
                        "compare the figures: \"dbSizeFree > 200MiB && dbQuotaUsage > 0.5\""
                            .to_owned(),
                    ),
                    _ => (
                        "in this rule",
                        format!(
                            "a rule is a boolean expression over {} with && || ! comparisons + - * / % and parentheses",
                            VARIABLES.join(", ")
                        ),
                    ),
                };
                self.push(
                    Problem::error("etcdfile::bad-defrag-rule", format!("defrag_rule: {e}"))
                        .label(rule.span(), label)
                        .help(help),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, Context, parse};

    fn refused(rule: &str) -> (String, Option<usize>) {
        let text = format!(
            "[cluster]\nname = \"main\"\n\n[maintenance]\ndefrag_rule = \"{rule}\"\n\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n"
        );
        match parse("etcdfile.toml", text, &Context::default()) {
            Err(ConfigError::Invalid { problems, .. }) => {
                let p = &problems[0];
                assert_eq!(p.code, "etcdfile::bad-defrag-rule");
                (p.message.clone(), p.line())
            }
            other => panic!("{rule}: not refused: {other:?}"),
        }
    }

    #[test]
    fn each_refusal_at_the_rules_line() {
        for (rule, message) in [
            (
                "dbSize > (1",
                "defrag_rule: the rule does not parse: Found an unmatched opening parenthesis '('.",
            ),
            (
                "dbSizeFre > 1",
                "defrag_rule: unknown variable `dbSizeFre` (did you mean `dbSizeFree`?)",
            ),
            (
                "dbSizeFree > 200MB",
                "defrag_rule: `200MB` is a decimal size: etcdfile sizes are binary: write 200MiB",
            ),
            (
                "min(dbSize, 1) > 0",
                "defrag_rule: a rule cannot hold a function call (`min`)",
            ),
            (
                "dbSize = 1",
                "defrag_rule: a rule cannot hold an assignment",
            ),
            (
                "dbSize > 'x'",
                "defrag_rule: a rule cannot hold a string (\"x\")",
            ),
            (
                "dbQuotaUsage * 2",
                "defrag_rule: the rule's value is a number, not true or false",
            ),
        ] {
            let rule = rule.replace('\'', "\\\"");
            assert_eq!(refused(&rule), (message.to_owned(), Some(5)), "{rule}");
        }
    }

    #[test]
    fn a_good_rule_is_kept_on_desired() {
        let text = "[cluster]\nname = \"main\"\n[maintenance]\ndefrag_rule = \"dbSizeFree > 200MiB\"\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n";
        let loaded = parse("etcdfile.toml", text.to_owned(), &Context::default());
        let rule = loaded.ok().and_then(|l| l.desired.maintenance.defrag_rule);
        assert_eq!(rule.as_ref().map(|r| r.text()), Some("dbSizeFree > 200MiB"));
        let none = parse(
            "etcdfile.toml",
            "[cluster]\nname = \"main\"\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n"
                .to_owned(),
            &Context::default(),
        );
        assert!(none.is_ok_and(|l| l.desired.maintenance.defrag_rule.is_none()));
    }
}
