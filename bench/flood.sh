#!/usr/bin/env bash
# Issue 5's flood benchmark: while one client floods at full speed, the
# others' p99 latency must stay within 2x of its value without the flood.
#
# Banter runs with the per-address limits lifted (every generator client
# comes from 127.0.0.1) but the per-socket message limit at its defaults,
# so the flood limit is what is measured. The measured traffic stays under
# that limit: C listeners, S senders at RATE messages/s in total. Baseline
# runs (no flooder) and flood runs (one flooder) alternate, ROUNDS of each,
# server on CPU 0, generator on CPU 1; each run is bounded (~30 s of
# messages, 60 s at most).
#
# Writes bench/results/flood-<timestamp>.jsonl, prints the summary and
# writes it as the "Flooding" section of bench/RESULTS.md. Exits non-zero
# if median(flood p99) / median(baseline p99) is above 2.
#
# With --diagnose each round also has two flood runs that say where the
# flood's cost comes from (reported apart; the ratio above ignores them):
#   frames-100      the flooder stops writing after 100 frames a connection
#                   (the server reads 41 before closing it): the generator
#                   no longer spends its CPU writing bytes nobody reads.
#   handshakes-10/s the server's per-address handshake limit at its default
#                   rate (10/s; burst C+S+30, so the measured clients can
#                   all connect and the flooder is left the default 30).
#
#   bench/flood.sh
#   bench/flood.sh --diagnose
#   C=50 M=25 ROUNDS=1 bench/flood.sh     a quick check
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIAGNOSE=${1:-}
C=${C:-200}
S=${S:-4}
RATE=${RATE:-20}
# Messages per sender: 125 at 5/s each is 25 s.
M=${M:-125}
ROUNDS=${ROUNDS:-3}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="bench/results/flood-$STAMP.jsonl"
# shellcheck source=bench/lib.sh
source bench/lib.sh
build

for round in $(seq 1 "$ROUNDS"); do
  say "round $round of $ROUNDS: baseline"
  bench banter-limited -c "$C" -s "$S" --rate "$RATE" -m "$M"
  say "round $round of $ROUNDS: one flooder"
  bench banter-limited -c "$C" -s "$S" --rate "$RATE" -m "$M" --flooders 1
  if [ "$DIAGNOSE" = --diagnose ]; then
    say "round $round of $ROUNDS: one flooder, 100 frames a connection"
    LABEL=frames-100 bench banter-limited -c "$C" -s "$S" --rate "$RATE" -m "$M" --flooders 1 --flood-frames 100
    say "round $round of $ROUNDS: one flooder, handshakes at 10/s per address"
    LABEL=handshakes-10/s bench banter-limited --server-args "--handshake-rate 10 --handshake-burst $((C + S + 30))" -- \
      -c "$C" -s "$S" --rate "$RATE" -m "$M" --flooders 1
  fi
done

say "summary (also in bench/RESULTS.md, raw data in $RESULTS)"
python3 bench/flood_report.py "$RESULTS" bench/RESULTS.md
