#!/usr/bin/env bash
# The main job: set up this machine, apply the demo etcdfile.toml (three etcd
# members on 127.0.0.11-13, data under ./demo-cluster/), and show the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked --quiet
./target/debug/etcdplan apply --auto-approve
./target/debug/etcdplan status
