#!/usr/bin/env bash
# Mutation testing of zk-proto's protocol files with cargo-mutants: every small
# change to the code (an operator flipped, a function body replaced by a default)
# that no zk-proto test notices is a behaviour nobody states. Prints the score,
# caught / viable, where viable = caught + missed + timeout (a timeout counts as
# caught: the mutant hung a test) and unviable mutants (that do not build) are
# left out.
#
#   bash scripts/mutants.sh                 # every mutant (~714; 90 minutes on 2 cores)
#   bash scripts/mutants.sh --sample 8      # one in eight, spread over the files
#   bash scripts/mutants.sh --shard 3/8     # the 4th of 8 round-robin shards
#   bash scripts/mutants.sh --file session  # only zk-proto/src/session/ (each of its files)
#   bash scripts/mutants.sh --list          # list the mutants, run nothing
#
# Other arguments go to cargo-mutants as they are (e.g. `--jobs 2`, `-F regex`).
# Mutants recorded as equivalent (no test can tell them apart) are listed, each
# with its reason, in .cargo/mutants.toml. Installs cargo-mutants when missing.
# Output: target/mutants/mutants.out (caught.txt, missed.txt, timeout.txt, ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FILES=(session frame jute watches hosts path records)
shard=()
only=()
list=0
pass=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sample) shard=(--shard "0/$2" --sharding round-robin); shift 2 ;;
    --shard) shard=(--shard "$2" --sharding round-robin); shift 2 ;;
    --file) only+=("$2"); shift 2 ;;
    --list) list=1; shift ;;
    *) pass+=("$1"); shift ;;
  esac
done
[[ ${#only[@]} -gt 0 ]] && FILES=("${only[@]}")
file_args=()
# A name is a file (`frame`: zk-proto/src/frame.rs) or a module directory
# (`session`: every file of zk-proto/src/session/, each passed by name).
for f in "${FILES[@]}"; do
  if [[ -d "zk-proto/src/$f" ]]; then
    for p in "zk-proto/src/$f"/*.rs; do file_args+=(-f "$p"); done
  else
    file_args+=(-f "zk-proto/src/$f.rs")
  fi
done

if ! command -v cargo-mutants >/dev/null; then
  cargo install cargo-mutants --locked
fi

common=(-p zk-proto "${file_args[@]}" "${shard[@]+"${shard[@]}"}")
if [[ $list -eq 1 ]]; then
  cargo mutants "${common[@]}" --list "${pass[@]+"${pass[@]}"}"
  exit 0
fi

out=target/mutants
mkdir -p "$out"
# zk-proto's own tests, with the simulator (`testing`), doc tests left out (each
# builds as its own binary: minutes per mutant for little more coverage).
# cargo-mutants exits non-zero when any mutant survives: the score is the answer.
set +e
cargo mutants "${common[@]}" --features testing --cargo-test-arg=--all-targets \
  --output "$out" --jobs "${MUTANTS_JOBS:-1}" "${pass[@]+"${pass[@]}"}"
status=$?
set -e
# 0: all caught; 2: some missed; 3: some timed out. Anything else is a failure of the run.
if [[ $status -ne 0 && $status -ne 2 && $status -ne 3 ]]; then
  echo "cargo-mutants failed (exit $status)" >&2
  exit "$status"
fi

d="$out/mutants.out"
# Lines in one of cargo-mutants' outcome files (0 when it is missing or empty: grep -c
# prints 0 and fails on an empty file, which must not add a second 0).
count() {
  local n=0
  [[ -f "$d/$1" ]] && n=$(grep -c . "$d/$1" || true)
  echo "${n:-0}"
}
caught=$(count caught.txt)
missed=$(count missed.txt)
timeout=$(count timeout.txt)
unviable=$(count unviable.txt)
viable=$((caught + missed + timeout))
if [[ $viable -gt 0 ]]; then
  pct=$(awk -v c=$((caught + timeout)) -v v=$viable 'BEGIN { printf "%.1f", 100 * c / v }')
else
  pct="n/a"
fi
if [[ $missed -gt 0 ]]; then
  echo "survivors (missed):"
  sed 's/^/  /' "$d/missed.txt"
fi
echo "mutation score: $((caught + timeout)) caught of $viable viable ($pct %): $caught caught, $timeout timeout, $missed missed; $unviable unviable"
