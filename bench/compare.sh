#!/usr/bin/env bash
# Alternated before/after runs: two Banter binaries against the baselines,
# in one session, so drift on this noisy machine hits every server alike.
# Each server pinned to CPU 0, banter-bench to CPU 1, all on 127.0.0.1,
# every run bounded (see bench/lib.sh). Appends to bench/results/compare-STAMP.jsonl.
#
#   OLD=/path/to/banter-before NEW=/path/to/banter-after bench/compare.sh [REPS]
#
# Build a "before" binary from another commit with, for example:
#   git worktree add /tmp/before COMMIT &&
#   (cd /tmp/before && CARGO_TARGET_DIR=$PWD/target/bench-old cargo build --release --features ssr --bin banter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPS=${1:-2}
: "${OLD:?set OLD to the before binary}" "${NEW:?set NEW to the after binary}"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="bench/results/compare-$STAMP.jsonl"
# shellcheck source=bench/lib.sh
source bench/lib.sh
build
install_baselines

run() { # run old|new|BASELINE BENCH-ARGS...
  local kind=$1
  shift
  case $kind in
    old) BANTER=$OLD LABEL=banter-before bench banter "$@" ;;
    new) BANTER=$NEW LABEL=banter-after bench banter "$@" ;;
    *) bench "$kind" "$@" ;;
  esac
}

for _ in $(seq 1 "$REPS"); do
  say "steady 20 msg/s, C = 1,000"
  for k in old new minimal bun; do run $k -c 1000 -s 1 -m 300 --rate 20; done
  say "steady 20 msg/s, C = 5,000"
  for k in old new minimal; do run $k -c 5000 -s 1 -m 300 --rate 20; done
  say "as fast as possible, C = 1,000, S = 10"
  for k in old new bun minimal; do run $k -c 1000 -s 10 -m 200; done
  say "connect 5,000 and 10,000 tutorial clients (list presence)"
  for k in old new minimal; do
    run $k --query "" -c 5000 -s 0 -m 0
    run $k --query "" -c 10000 -s 0 -m 0
  done
  say "idle memory, 10,000 delta clients"
  for k in old new; do run $k -c 10000 -s 0 -m 0; done
done
say "results in $RESULTS"
