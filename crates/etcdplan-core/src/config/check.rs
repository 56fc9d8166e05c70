//! The structural check: every key and type of the file against the JSON Schema.
//!
//! serde stops at the first unknown key or wrong type. This walk reads the spanned
//! TOML tree and the schema derived from [`raw`](super::raw) together, so that all
//! such problems are reported in one run, each pointing at its key or value.

use std::ops::Range;

use serde_json::Value as Json;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Problem, did_you_mean};

/// Checks `doc` against `schema`; returns every structural problem found, and
/// removes the offending entries from `doc` so that the rest can still be
/// validated in the same run.
pub fn check(doc: &mut Spanned<DeTable<'_>>, schema: &Json) -> Checked {
    let mut walker = Walker {
        root: schema,
        problems: Vec::new(),
        dropped_top: Vec::new(),
    };
    let span = doc.span();
    walker.table(doc.get_mut(), span, schema, &Place::Top);
    Checked {
        problems: walker.problems,
        dropped_top: walker.dropped_top,
    }
}

/// What the structural check found.
pub struct Checked {
    /// The problems.
    pub problems: Vec<Problem>,
    /// Top-level keys that were present but dropped as wrong, and keys of
    /// arrays of tables that lost an entry lacking a required key.
    pub dropped_top: Vec<String>,
}

/// Where a value sits, for messages: `[etcd]`, `[[member]] #2`, `the top level`.
#[derive(Clone)]
enum Place {
    Top,
    Table(String),
}

impl Place {
    fn describe(&self) -> String {
        match self {
            Self::Top => "the top level".into(),
            Self::Table(t) => t.clone(),
        }
    }

    fn child(&self, key: &str, is_array_item: Option<usize>) -> Self {
        let path = match self {
            Self::Top => key.to_owned(),
            Self::Table(t) => {
                let inner = t.trim_start_matches('[').trim_end_matches(']');
                format!("{inner}.{key}")
            }
        };
        match is_array_item {
            Some(i) => Self::Table(format!("[[{path}]] #{}", i + 1)),
            None => Self::Table(format!("[{path}]")),
        }
    }
}

struct Walker<'s> {
    root: &'s Json,
    problems: Vec<Problem>,
    dropped_top: Vec<String>,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn schema_type_name(t: &str) -> &'static str {
    match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean (true or false)",
        "array" => "an array",
        "object" => "a table",
        _ => "a value",
    }
}

fn matches_type(v: &DeValue<'_>, t: &str) -> bool {
    matches!(
        (v, t),
        (DeValue::String(_), "string")
            | (DeValue::Integer(_), "integer" | "number")
            | (DeValue::Float(_), "number")
            | (DeValue::Boolean(_), "boolean")
            | (DeValue::Array(_), "array")
            | (DeValue::Table(_), "object")
    )
}

/// Why `key` may not be set in a `[[member]]`, when it is an `[etcd]` key
/// that must be equal on all members.
fn cluster_wide_only(place: &Place, key: &str) -> Option<&'static str> {
    match place {
        Place::Table(t) if t.starts_with("[[member]]") => super::raw::CLUSTER_WIDE_ONLY
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, why)| *why),
        _ => None,
    }
}

fn int_value(v: &DeValue<'_>) -> Option<i64> {
    let i = v.as_integer()?;
    i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
}

impl<'s> Walker<'s> {
    fn resolve(&self, mut schema: &'s Json) -> &'s Json {
        // `$ref: "#/definitions/X"` (draft-07) or `#/$defs/X`.
        for _ in 0..16 {
            // schemars wraps a described reference as `allOf: [{$ref}]`.
            if let Some(Json::Array(all)) = schema.get("allOf")
                && let [only] = all.as_slice()
            {
                schema = only;
                continue;
            }
            let Some(r) = schema.get("$ref").and_then(Json::as_str) else {
                break;
            };
            let Some(ptr) = r.strip_prefix('#') else {
                break;
            };
            match self.root.pointer(ptr) {
                Some(s) => schema = s,
                None => break,
            }
        }
        schema
    }

    /// The non-null types a schema allows, following anyOf/oneOf.
    fn allowed_types(&self, schema: &'s Json) -> Vec<&'s str> {
        let schema = self.resolve(schema);
        let mut out = Vec::new();
        match schema.get("type") {
            Some(Json::String(t)) => out.push(t.as_str()),
            Some(Json::Array(ts)) => out.extend(ts.iter().filter_map(Json::as_str)),
            _ => {}
        }
        if schema.get("properties").is_some() && out.is_empty() {
            out.push("object");
        }
        if schema.get("enum").is_some() && out.is_empty() {
            out.push("string");
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Json::Array(alts)) = schema.get(key) {
                for a in alts {
                    out.extend(self.allowed_types(a));
                }
            }
        }
        out.retain(|t| *t != "null");
        out.dedup();
        out
    }

    /// The branch of an anyOf/oneOf that fits the value's type, or the schema itself.
    fn branch_for(&self, schema: &'s Json, v: &DeValue<'_>) -> &'s Json {
        let schema = self.resolve(schema);
        for key in ["anyOf", "oneOf"] {
            if let Some(Json::Array(alts)) = schema.get(key) {
                for a in alts {
                    if self.allowed_types(a).iter().any(|t| matches_type(v, t)) {
                        return self.branch_for(a, v);
                    }
                }
            }
        }
        schema
    }

    /// Checks one value; `false` means it is wrong and should be dropped.
    fn value(
        &mut self,
        key: &str,
        v: &mut Spanned<DeValue<'_>>,
        schema: &'s Json,
        place: &Place,
    ) -> bool {
        let allowed = self.allowed_types(schema);
        let value = v.get_ref();
        if !allowed.is_empty() && !allowed.iter().any(|t| matches_type(value, t)) {
            let expected: Vec<&str> = allowed.iter().map(|t| schema_type_name(t)).collect();
            let mut p = Problem::error(
                "etcdfile::wrong-type",
                format!(
                    "`{key}` in {} must be {}, found {}",
                    place.describe(),
                    expected.join(" or "),
                    type_name(value)
                ),
            )
            .label(v.span(), format!("expected {}", expected.join(" or ")));
            if allowed.contains(&"string")
                && !matches!(value, DeValue::Table(_) | DeValue::Array(_))
            {
                p = p.help("quote the value to make it a string");
            }
            if allowed.contains(&"array") && matches!(value, DeValue::Table(_)) {
                p = p.help(format!("write each entry as [[{key}]]"));
            }
            self.problems.push(p);
            return false;
        }
        let schema = self.branch_for(schema, value);
        let span = v.span();
        match v.get_mut() {
            DeValue::Table(t) => {
                let child = place.child(key, None);
                // A table missing a key stays: dropping it would only add a
                // second "missing" problem one level up.
                self.table(t, span, schema, &child);
                true
            }
            DeValue::Array(items) => {
                let item_schema = schema.get("items").unwrap_or(&Json::Null);
                let mut keep = true;
                let mut incomplete = Vec::new();
                for (i, item) in items.iter_mut().enumerate() {
                    let item_place = place.child(key, Some(i));
                    let item_span = item.span();
                    match item.get_mut() {
                        DeValue::Table(t) => {
                            let s = self.resolve(item_schema);
                            if !self.table(t, item_span, s, &item_place) {
                                incomplete.push(i);
                            }
                        }
                        _ => keep &= self.value(key, item, item_schema, place),
                    }
                }
                // An entry without a required key cannot be read at all; the
                // others still can.
                if !incomplete.is_empty() {
                    let mut kept = toml::de::DeArray::new();
                    for (i, item) in items.iter().enumerate() {
                        if !incomplete.contains(&i) {
                            kept.push(item.clone());
                        }
                    }
                    *items = kept;
                }
                if !incomplete.is_empty() && matches!(place, Place::Top) {
                    self.dropped_top.push(key.to_owned());
                }
                keep
            }
            DeValue::String(s) => {
                if let Some(Json::Array(options)) = schema.get("enum") {
                    let opts: Vec<&str> = options.iter().filter_map(Json::as_str).collect();
                    if !opts.contains(&s.as_ref()) {
                        let list = opts
                            .iter()
                            .map(|o| format!("{o:?}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let mut p = Problem::error(
                            "etcdfile::bad-value",
                            format!("`{key}` in {} must be one of {list}", place.describe()),
                        )
                        .label(span.clone(), format!("{s:?} is not one of them"));
                        if let Some(m) = did_you_mean(s, opts.iter().copied()) {
                            p = p.help(format!("did you mean \"{m}\"?"));
                        }
                        self.problems.push(p);
                        return false;
                    }
                }
                true
            }
            DeValue::Integer(_) => self.range(key, v, schema, place),
            _ => true,
        }
    }

    /// Checks an integer against minimum/maximum; `false` when out of range.
    fn range(&mut self, key: &str, v: &Spanned<DeValue<'_>>, schema: &Json, place: &Place) -> bool {
        let n = int_value(v.get_ref());
        let min = schema.get("minimum").and_then(Json::as_i64);
        let max = schema.get("maximum").and_then(Json::as_i64);
        let out = match n {
            Some(n) => min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m),
            None => min.is_some() || max.is_some(),
        };
        if out {
            let (lo, hi) = (min.unwrap_or(i64::MIN), max.unwrap_or(i64::MAX));
            self.problems.push(
                Problem::error(
                    "etcdfile::out-of-range",
                    format!("`{key}` in {} is out of range", place.describe()),
                )
                .label(v.span(), format!("must be between {lo} and {hi}")),
            );
        }
        !out
    }

    /// Checks a table; `false` when it lacks a required key.
    fn table(
        &mut self,
        t: &mut DeTable<'_>,
        span: Range<usize>,
        schema: &'s Json,
        place: &Place,
    ) -> bool {
        let mut complete = true;
        let schema = self.resolve(schema);
        let props = schema.get("properties").and_then(Json::as_object);
        let closed = schema.get("additionalProperties") == Some(&Json::Bool(false));
        let mut drop = Vec::new();
        for (k, v) in t.iter_mut() {
            let key = k.get_ref().as_ref();
            match props.and_then(|p| p.get(key)) {
                Some(sub) if !self.value(key, v, sub, place) => drop.push(key.to_owned()),
                Some(_) => {}
                None if closed => {
                    drop.push(key.to_owned());
                    if let Some(why) = cluster_wide_only(place, key) {
                        self.problems.push(
                            Problem::error(
                                "etcdfile::cluster-wide-only",
                                format!("`{key}` cannot differ between members: {why}"),
                            )
                            .label(k.span(), format!("set per member in {}", place.describe()))
                            .help(format!("set `{key}` once in [etcd]")),
                        );
                        continue;
                    }
                    let known: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let mut p = Problem::error(
                        "etcdfile::unknown-key",
                        format!("unknown key `{key}` in {}", place.describe()),
                    )
                    .label(k.span(), "not a key etcdplan knows here");
                    p = match did_you_mean(key, known.iter().copied()) {
                        Some(m) => p.help(format!("did you mean `{m}`?")),
                        None => p.help(format!("known keys here: {}", known.join(", "))),
                    };
                    self.problems.push(p);
                }
                None => {
                    // An open table whose values have a schema (`[etcd.extra]`).
                    if let Some(extra) = schema.get("additionalProperties")
                        && extra.is_object()
                        && !self.value(key, v, extra, place)
                    {
                        drop.push(key.to_owned());
                    }
                }
            }
        }
        for k in &drop {
            t.remove(k.as_str());
        }
        if matches!(place, Place::Top) {
            self.dropped_top.extend(drop);
        }
        if let Some(Json::Array(required)) = schema.get("required") {
            for r in required.iter().filter_map(Json::as_str) {
                if !t.iter().any(|(k, _)| k.get_ref().as_ref() == r) {
                    let at = match place {
                        Place::Top => 0..0,
                        Place::Table(_) => span.clone(),
                    };
                    let mut p = Problem::error(
                        "etcdfile::missing-key",
                        format!("{} has no `{r}`", place.describe()),
                    )
                    .label(at, format!("`{r}` is required here"));
                    if matches!(place, Place::Top) {
                        p = p.help(format!("add a [{r}] table"));
                    }
                    self.problems.push(p);
                    complete = false;
                }
            }
        }
        complete
    }
}
