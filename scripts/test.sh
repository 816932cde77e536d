#!/usr/bin/env bash
# The whole test suite: codec, simulation and property tests of zk-proto, and the
# integration suite against real ZooKeeper servers (started and stopped by the
# tests themselves) for every adapter. Installs ZooKeeper first if it is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-zookeeper.sh
cargo test --workspace --all-features "$@"
