#!/usr/bin/env bash
# Coverage-guided fuzzing of the etcdfile parser and validator
# (etcdplan_core::config::parse) with libFuzzer, built by the nightly toolchain
# with the same sanitizer-coverage flags cargo-fuzz passes, so that nothing has
# to be installed first (cargo-fuzz itself would take a build of its own).
# The targets are in fuzz/fuzz_targets/, their corpora in fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh --ci              # parse_props and parse_spliced, 20 s each (the test command)
#   scripts/fuzz.sh --seconds 600     # each target for 600 s (the bench command)
#   scripts/fuzz.sh --seconds 600 parse_spliced   # one target
#   scripts/fuzz.sh --cmin            # minimize the committed corpora in place
#
# A crash fails the run; libFuzzer writes the input to fuzz/artifacts/<target>/.
# Fix it in the core and copy the input into fuzz/regressions/, which
# `cargo test --test fuzz_regressions` replays on stable.
# New inputs found in a run go to fuzz/target/corpus-new/<target>/ (not the
# committed corpus); --cmin merges them into the committed one, minimized.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=""
ci=0
cmin=0
asan=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --ci) seconds=20; ci=1 ;;
        --seconds) seconds="$2"; shift ;;
        --cmin) cmin=1 ;;
        # AddressSanitizer: for the long run; the core is safe Rust, only its
        # dependencies' unsafe code could be caught, at twice the cost.
        --asan) asan=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1") ;;
    esac
    shift
done
if [ "${#targets[@]}" -eq 0 ] && [ "$ci" -eq 1 ]; then
    # parse_props runs every check parse_raw does and more.
    targets=(parse_props parse_spliced)
elif [ "${#targets[@]}" -eq 0 ]; then
    targets=(parse_raw parse_props parse_spliced)
fi
if [ -z "$seconds" ] && [ "$cmin" -eq 0 ]; then
    echo "fuzz.sh: give --ci, --seconds N or --cmin" >&2
    exit 2
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 1
fi

# libfuzzer-sys compiles libFuzzer (C++) with the cc crate.
if ! command -v c++ >/dev/null 2>&1; then
    echo "fuzz.sh: a C++ compiler is needed for libFuzzer (apt-get install g++)" >&2
    exit 1
fi

triple="$(rustup run nightly rustc -vV | sed -n 's/^host: //p')"
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
target_dir="target"
if [ "$asan" -eq 1 ]; then
    flags+=" -Zsanitizer=address"
    target_dir="target/asan"
fi
started=$(date +%s)
# --target keeps the flags off the build scripts and proc macros.
RUSTFLAGS="$flags" cargo +nightly build --locked --profile fuzz --quiet \
    --target "$triple" --target-dir "$target_dir" --bins
echo "fuzz.sh: built in $(( $(date +%s) - started )) s" >&2
bin="$target_dir/$triple/fuzz"

for t in "${targets[@]}"; do
    corpus="corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    if [ "$cmin" -eq 1 ]; then
        # Merge the committed corpus and what runs found into a minimal set.
        fresh="target/corpus-new/$t"
        mkdir -p "$fresh"
        merged="$(mktemp -d)"
        "$bin/$t" -merge=1 "$merged" "$corpus" "$fresh" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" >&2 || true
        rm -rf "$corpus"
        mv "$merged" "$corpus"
        echo "fuzz.sh: $t: corpus minimized to $(ls "$corpus" | wc -l) files" >&2
        continue
    fi
    new="target/corpus-new/$t"
    mkdir -p "$new"
    echo "fuzz.sh: $t for ${seconds} s" >&2
    # The first directory receives new inputs; the committed corpus is only read.
    # -timeout: one input taking over 10 s is a hang and fails the run.
    # The spliced target draws its edits from the bytes: let it have enough at once.
    len=(-max_len=8192)
    if [ "$t" = parse_spliced ]; then len=(-max_len=1024 -len_control=0); fi
    "$bin/$t" "$new" "$corpus" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 "${len[@]}" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" 2>"target/$t.log" || {
        tail -n 40 "target/$t.log" >&2
        echo "fuzz.sh: $t FAILED; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    }
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)" "target/$t.log" >&2 || true
done
echo "fuzz.sh: done in $(( $(date +%s) - started )) s" >&2
