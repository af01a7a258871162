#!/usr/bin/env bash
# The standard benchmark matrix: Banter against the Deno and Node baselines,
# each server pinned to CPU 0 and banter-bench to CPU 1, every run bounded in
# time, all traffic on 127.0.0.1. Writes the raw results to bench/results/ and
# rewrites bench/RESULTS.md (table) and bench/results.png (plot).
#
#   bench/run.sh            the full matrix (~25 minutes)
#   bench/run.sh --quick    C=1000 only, for a quick comparison
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

QUICK=${1:-}
PORT=3390
OUT=bench/out
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="bench/results/$STAMP.jsonl"
mkdir -p "$OUT" bench/results

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# --- build and install what the runs need -------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
# Its own target dir: cargo leptos builds target/release/banter with other
# environment variables, and the two would keep rebuilding each other.
export CARGO_TARGET_DIR=target/bench
say "building banter and banter-bench (release)"
cargo build --release --quiet --features ssr --bin banter
cargo build --release --quiet -p banter-bench
BANTER=$CARGO_TARGET_DIR/release/banter
BENCH=$CARGO_TARGET_DIR/release/banter-bench
LOCK_SUM=$(sha256sum bench/baselines/package-lock.json | cut -d' ' -f1)
if [ "$(cat bench/baselines/node_modules/.banter-lock 2>/dev/null)" != "$LOCK_SUM" ]; then
  say "npm ci (baselines: ws, and Deno from npm)"
  (cd bench/baselines && npm ci --no-audit --no-fund --loglevel=error)
  echo "$LOCK_SUM" >bench/baselines/node_modules/.banter-lock
fi
DENO=bench/baselines/node_modules/@deno/linux-x64-glibc/deno
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

# Every load-generator client comes from 127.0.0.1 and many send as fast as
# they can: lift the per-address and per-socket limits that protect a real
# deployment (the flood benchmark keeps the message limit on).
UNLIMITED=(--max-connections 100000 --max-connections-per-ip 100000
  --handshake-rate 1000000 --handshake-burst 1000000)
UNTHROTTLED=(--message-rate 1000000 --message-burst 1000000)
start_server() { # start_server banter|banter-store|banter-nostore|deno|node
  case "$1" in
    banter|banter-store)
      # A fresh SQLite file per run: every run starts from the same state.
      rm -rf "$OUT/data"
      taskset -c 0 "$BANTER" --addr "127.0.0.1:$PORT" --data-dir "$OUT/data" "${UNLIMITED[@]}" "${UNTHROTTLED[@]}" --log warn >/dev/null 2>&1 & ;;
    banter-nostore) taskset -c 0 "$BANTER" --addr "127.0.0.1:$PORT" --data-dir "$OUT/data" --storage off "${UNLIMITED[@]}" "${UNTHROTTLED[@]}" --log warn >/dev/null 2>&1 & ;;
    deno) taskset -c 0 "$DENO" run --allow-net bench/baselines/deno_chat.ts "127.0.0.1:$PORT" >/dev/null 2>&1 & ;;
    node) taskset -c 0 node bench/baselines/node_chat.mjs "127.0.0.1:$PORT" >/dev/null 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not start listening on $PORT" >&2
  return 1
}

bench() { # bench SERVER ARGS...
  local server=$1
  shift
  start_server "$server"
  taskset -c 1 "$BENCH" --label "$server" --url "ws://127.0.0.1:$PORT/start_web_socket" \
    --server-pid "$SERVER_PID" --results "$RESULTS" --connect-timeout 25 --timeout 60 "$@" || true
  stop_server
}

if [ "$QUICK" = "--quick" ]; then
  SIZES=(1000)
else
  SIZES=(100 1000 5000 10000)
fi

for C in "${SIZES[@]}"; do
  for S in 1 10; do
    # As fast as possible: about two million deliveries per run.
    M=$(( 2000000 / C / S ))
    for server in banter deno node; do
      bench "$server" -c "$C" -s "$S" -m "$M"
    done
    # Steady: 20 messages per second in total, for 15 seconds.
    M=$(( 300 / S ))
    for server in banter deno node; do
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
