#!/usr/bin/env bash
# A Jepsen-style campaign (docs/jepsen.md): a real three-member ZooKeeper ensemble whose
# members reach each other through fault proxies, clients on every adapter, a nemesis drawn
# from the seed (partitions, kill -9, SIGSTOP, client cuts and pauses), then the recorded
# history checked. One line per check, then "N histories checked, M anomalies"; exits
# non-zero on an anomaly and names the file holding the history and the nemesis schedule.
#
#   bash scripts/jepsen.sh [SECONDS] [--seed N] [--selftest]
#
# SECONDS (default 60) is how long the nemesis runs; start-up, the quiet period, the final
# reads and the checks come on top. --seed N replays a schedule (and each client's choice of
# operations; the interleaving is the machine's). --selftest runs sabotaged clients and
# passes only if every check catches them (--sabotage NAME,... for some only). Exit 0: no
# anomaly; 1: anomalies; 3: inconclusive, the servers' replicas diverged (ZooKeeper's own
# fault; the client checks' anomalies may be the servers'). The servers' and proxies'
# chatter goes to target/jepsen/stderr-*.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-zookeeper.sh >/dev/null
cargo build --locked -p zk-jepsen
mkdir -p target/jepsen
log="target/jepsen/stderr-$(date +%s)-$$.log"
status=0
target/debug/zk-jepsen "$@" --out target/jepsen 2>"$log" || status=$?
if [ "$status" != 0 ]; then
  echo "jepsen: exit $status; last lines of $log:" >&2
  grep -v '^proxy: connection not opened' "$log" | tail -n 30 >&2 || true
fi
exit "$status"
