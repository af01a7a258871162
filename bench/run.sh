#!/usr/bin/env bash
# The standard benchmark matrix: Banter against the Bun, Deno and Node
# baselines (the tutorial chat as each runtime's docs teach it) and the
# one-thread minimal server (what the kernel costs: one frame encoded per
# message, one write per socket), each server pinned to CPU 0 and
# banter-bench to CPU 1, every run bounded in time, all traffic on 127.0.0.1.
# Writes the raw results to bench/results/ and rewrites bench/RESULTS.md
# (table) and bench/results.png (plot).
#
#   bench/run.sh            the full matrix (~35 minutes)
#   bench/run.sh --quick    C=1000 only, for a quick comparison
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

QUICK=${1:-}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="bench/results/$STAMP.jsonl"
# shellcheck source=bench/lib.sh
source bench/lib.sh
build
install_baselines

if [ "$QUICK" = "--quick" ]; then
  SIZES=(1000)
else
  SIZES=(100 1000 5000 10000)
fi

for C in "${SIZES[@]}"; do
  for S in 1 10; do
    # As fast as possible: about two million deliveries per run.
    M=$(( 2000000 / C / S ))
    for server in banter bun deno node minimal; do
      bench "$server" -c "$C" -s "$S" -m "$M"
    done
    # Steady: 20 messages per second in total, for 15 seconds.
    M=$(( 300 / S ))
    for server in banter bun deno node minimal; do
      bench "$server" -c "$C" -s "$S" -m "$M" --rate 20
    done
  done
done

# What storage costs: SQLite (group commit, fsync per batch) against the same
# server with storage off, as fast as possible, alternated three times so
# drift on this noisy machine hits both alike.
for _ in 1 2 3; do
  bench banter-store -c 1000 -s 10 -m 200
  bench banter-nostore -c 1000 -s 10 -m 200
done

# Idle memory: RSS per connected client, nothing sent.
bench banter -c 10000 -s 0 -m 0
# A stalled listener must not slow the others or grow memory without bound.
bench banter -c 1000 -s 1 -m 5000 --size 2048 --stalled 10
bench banter -c 1000 -s 1 -m 5000 --size 2048

say "writing bench/RESULTS.md and bench/results.png"
VENV=target/bench/venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet matplotlib
fi
"$VENV/bin/python" bench/report.py "$RESULTS" bench/RESULTS.md bench/results.png
