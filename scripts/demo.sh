#!/usr/bin/env bash
# A short tour of the client on zk-tokio against a throwaway ZooKeeper server on a
# free loopback port; the demo starts the server and stops it at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-zookeeper.sh
cargo run --release -p zk-tests --bin demo
