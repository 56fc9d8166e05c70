#!/usr/bin/env bash
# The tests: set up this machine, then formatting, lints, and every test level
# (unit, planner goldens and quorum simulator, real etcd in network namespaces).
# The real-etcd tests need root; with CI=true a test that cannot run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
# The booted test hosts' root file system (tests/systemd_hosts.rs), built once
# per machine and cached; built here so its minutes are not spent in a test.
if [ "$(id -u)" -eq 0 ]; then
    scripts/booted-rootfs.sh >/dev/null
fi
cargo fmt --check
cargo clippy --locked --workspace --all-targets --quiet -- -D warnings
# Build the tests first, then fuzz (its own nightly build and 40 s of
# fuzzing) beside the test run, which mostly waits on etcd and ssh: the
# fuzzing's minutes then overlap the tests' instead of adding to them.
cargo test --locked --workspace --no-run --quiet
fuzz_log="$(mktemp)"
scripts/fuzz.sh --ci >"$fuzz_log" 2>&1 &
fuzz_pid=$!
tests=0
cargo test --locked --workspace || tests=$?
fuzz=0
wait "$fuzz_pid" || fuzz=$?
cat "$fuzz_log"
rm -f "$fuzz_log"
if [ "$fuzz" -ne 0 ]; then
    echo "test.sh: scripts/fuzz.sh --ci failed (exit $fuzz)" >&2
fi
if [ "$tests" -ne 0 ] || [ "$fuzz" -ne 0 ]; then
    exit 1
fi
