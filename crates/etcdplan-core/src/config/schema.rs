//! The JSON Schema of the etcdfile, for editors, derived from the raw model.

use super::raw::RawEtcdfile;

/// The etcdfile's JSON Schema (draft-07, which TOML editor plugins read best).
pub fn schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawEtcdfile>();
    schema.to_value()
}

/// The schema as the pretty JSON checked in at `schemas/etcdfile.schema.json`.
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}
