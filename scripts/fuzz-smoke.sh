#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time, each on a scratch
# copy of its checked-in seed corpus (fuzz/corpus/<target>/ is left untouched).
#
#   scripts/fuzz-smoke.sh [seconds per target, default 20]
#
# Uses nightly, or stable with RUSTC_BOOTSTRAP=1; installs cargo-fuzz if missing. Exits
# non-zero if any target crashes, leaks, times out or fails to build; the
# crashing input is kept under fuzz/artifacts/<target>/.
set -euo pipefail

secs="${1:-20}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: $0 [seconds per target]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

# cargo-fuzz passes -Zsanitizer flags: nightly if the machine has it, else the
# default toolchain with RUSTC_BOOTSTRAP=1 (its std ships the ASan runtime).
if rustup run nightly rustc --version >/dev/null 2>&1; then
  tc=(+nightly)
else
  echo "fuzz-smoke: no nightly toolchain; using $(rustc --version) with RUSTC_BOOTSTRAP=1" >&2
  tc=()
  export RUSTC_BOOTSTRAP=1
fi
if ! cargo "${tc[@]}" fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo "${tc[@]}" fuzz build

status=0
for target in $(cargo "${tc[@]}" fuzz list); do
  seeds="corpus/$target"
  if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
    echo "FAIL $target: no seed corpus in fuzz/$seeds" >&2
    status=1
    continue
  fi
  mkdir -p "$work/$target"
  cp -R "$seeds/." "$work/$target/"
  log="$work/$target.log"
  if cargo "${tc[@]}" fuzz run "$target" "$work/$target" -- \
      -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    echo "ok   $target: ${execs:-?} executions in ${secs}s"
  else
    echo "FAIL $target (inputs kept in fuzz/artifacts/$target/):" >&2
    tail -n 60 "$log" >&2
    status=1
  fi
done
exit "$status"
