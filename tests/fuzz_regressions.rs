//! Replays the fuzzers' finds through `config::parse` on stable, with the
//! fuzz targets' own property checks (`fuzz/src/props.rs`): every input in
//! `fuzz/regressions/` (inputs that once broke a target, kept after the fix in the core, and hand-made edge inputs)
//! and the committed corpora of the text targets, which cover the parser's
//! paths the fuzzer found. `scripts/fuzz.sh` is the fuzzer itself.

#[path = "../fuzz/src/props.rs"]
#[allow(dead_code)]
mod props;

use std::path::{Path, PathBuf};

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    out.sort();
    out
}

fn replay(dir: &str) -> usize {
    let inputs = files(dir);
    for path in &inputs {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = props::text_of(&data);
        let caught = std::panic::catch_unwind(|| props::check(&text, true));
        assert!(caught.is_ok(), "{} broke a property", path.display());
    }
    inputs.len()
}

#[test]
fn every_kept_input_keeps_every_property() {
    assert!(replay("fuzz/regressions") > 0, "no regression inputs found");
}

#[test]
fn the_fuzz_corpora_keep_every_property() {
    let n = replay("fuzz/corpus/parse_raw") + replay("fuzz/corpus/parse_props");
    assert!(n > 0, "the corpora are empty");
}
