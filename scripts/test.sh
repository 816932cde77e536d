#!/usr/bin/env bash
# The whole test suite: codec, simulation and property tests of zk-proto, and the
# integration suite against real ZooKeeper servers (started and stopped by the
# tests themselves) for every adapter, and interop with a real kazoo process.
# Installs ZooKeeper and a kazoo venv first if they are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-zookeeper.sh
# kazoo for the interop tests (a venv under target/, made once).
ZK_KAZOO_PYTHON="${ZK_KAZOO_PYTHON:-$(bash scripts/ensure-kazoo.sh)}"
export ZK_KAZOO_PYTHON
cargo test --workspace --all-features "$@"
