//! The JSON Schema of the etcdfile, for editors, derived from the raw model.

use std::sync::LazyLock;

use super::raw::RawEtcdfile;

/// The etcdfile's JSON Schema (draft-07, which TOML editor plugins read best).
pub fn schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawEtcdfile>();
    schema.to_value()
}

/// The schema, derived once per process: every `parse` checks the file's
/// keys and types against it, and deriving it anew each time was wasted work.
pub(crate) fn cached() -> &'static serde_json::Value {
    static SCHEMA: LazyLock<serde_json::Value> = LazyLock::new(schema);
    &SCHEMA
}

/// The schema as the pretty JSON checked in at `schemas/etcdfile.schema.json`.
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}
