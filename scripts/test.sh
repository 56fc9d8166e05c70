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
cargo test --locked --workspace
scripts/fuzz.sh --ci
