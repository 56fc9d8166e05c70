//! Lists the seed etcdfiles for the structure-aware target (`src/splice.rs`)
//! at build time, so that a new example or test file joins its pool unasked.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn toml_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("..");
    let mut files = toml_in(&root.join("examples"));
    files.push(root.join("etcdfile.toml"));
    files.extend(toml_in(&root.join("tests/etcdfiles/warnings")));
    files.extend(toml_in(&root.join("tests/etcdfiles/invalid")));
    let mut out = String::from("&[\n");
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            f.display().to_string()
        );
    }
    out.push(']');
    for dir in [
        "examples",
        "tests/etcdfiles/warnings",
        "tests/etcdfiles/invalid",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo::rerun-if-changed={}",
        root.join("etcdfile.toml").display()
    );
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("seeds.rs"), out) {
        panic!("cannot write seeds.rs: {e}");
    }
}
