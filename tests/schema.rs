//! The checked-in JSON Schema is current, and every example passes both
//! `etcdplan validate` and an independent JSON Schema validator (boon).

mod common;

use std::path::Path;

use assert_cmd::Command;

const SCHEMA_PATH: &str = "schemas/etcdfile.schema.json";

fn compiled_schema() -> (boon::Schemas, boon::SchemaIndex) {
    let text = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let loc = "file:///etcdfile.schema.json";
    if let Err(e) = compiler.add_resource(loc, json) {
        panic!("schema does not load: {e}");
    }
    let idx = compiler
        .compile(loc, &mut schemas)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
    (schemas, idx)
}

fn as_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn checked_in_schema_is_current() {
    let on_disk = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    assert!(
        on_disk == etcdplan::config::schema_text(),
        "{SCHEMA_PATH} is out of date: run `cargo run -- schema > {SCHEMA_PATH}`"
    );
}

#[test]
fn examples_pass_etcdplan_validate() {
    let files = common::example_etcdfiles();
    assert!(
        files.len() >= 4,
        "expected the examples and the demo, found {files:?}"
    );
    for f in files {
        Command::cargo_bin("etcdplan")
            .unwrap_or_else(|e| panic!("{e}"))
            .args(["validate", "-f"])
            .arg(&f)
            .assert()
            .success();
    }
}

#[test]
fn examples_pass_the_json_schema() {
    let (schemas, idx) = compiled_schema();
    for f in common::example_etcdfiles() {
        if let Err(e) = schemas.validate(&as_json(&f), idx) {
            panic!("{} fails the schema: {e}", f.display());
        }
    }
}

#[test]
fn schema_rejects_what_etcdplan_rejects_structurally() {
    let (schemas, idx) = compiled_schema();
    let bad = [
        r#"[cluster]
name = "x"
[etcd]
clent_port = 1"#,
        r#"[cluster]
name = "x"
[etcd]
client_port = 70000"#,
        r#"[cluster]
name = "x"
[hosts]
transport = "telnet""#,
        r#"[etcd]
client_port = 1"#,
    ];
    for text in bad {
        let json: serde_json::Value = toml::from_str(text).unwrap_or_default();
        assert!(
            schemas.validate(&json, idx).is_err(),
            "schema accepted:\n{text}"
        );
    }
}

#[test]
fn local_demo_example_is_the_repository_etcdfile() {
    let a = std::fs::read_to_string("etcdfile.toml").unwrap_or_default();
    let b = std::fs::read_to_string("examples/local-demo.toml").unwrap_or_default();
    assert_eq!(
        a, b,
        "examples/local-demo.toml must stay a copy of etcdfile.toml"
    );
}

#[test]
fn schema_command_prints_the_checked_in_schema() {
    let out = Command::cargo_bin("etcdplan")
        .unwrap_or_else(|e| panic!("{e}"))
        .arg("schema")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    let on_disk = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    assert_eq!(String::from_utf8_lossy(&out.stdout), on_disk);
}
