#!/usr/bin/env bash
# Cluster mode against one process, at the same load, in one run:
#   one process with SQLite (the embedded default), and
#   two processes with a private Redis and PostgreSQL,
# C = 1,000 listeners, S = 10 senders, as fast as possible and steady at
# 20 msg/s, alternated twice. Servers, Redis and PostgreSQL share CPU 0 (the
# server side gets one core either way); banter-bench is on CPU 1. Everything
# listens on 127.0.0.1 and is stopped by its own PID.
#
# Prints each run and appends it to bench/results/cluster-STAMP.jsonl, with
# Redis's CPU and its commands per message (INFO commandstats) for the
# cluster runs. Needs redis-server and PostgreSQL (scripts/test.sh installs
# them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="bench/results/cluster-$STAMP.jsonl"
# shellcheck source=bench/lib.sh
source bench/lib.sh
build
command -v redis-server >/dev/null || { echo "redis-server is required" >&2; exit 1; }
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)

REDIS_PORT=3391
PG_PORT=3392
PORTS=(3393 3394)
TMP=$(mktemp -d)
chmod 755 "$TMP"
REDIS_PID=
PIDS=()

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$TMP/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  stop_server
  rm -rf "$TMP"
}
trap cleanup EXIT

say "starting Redis and PostgreSQL (private, in $TMP)"
mkdir -p "$TMP/redis" "$TMP/pg"
taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP/redis" \
  --appendonly yes --appendfsync always --save "" --maxmemory-policy noeviction \
  --daemonize no >/dev/null 2>&1 &
REDIS_PID=$!
[ "$(id -u)" = 0 ] && chown -R postgres "$TMP/pg"
as_pg "$PG_BIN/initdb" -D "$TMP/pg/data" -A trust -U postgres >/dev/null
as_pg taskset -c 0 "$PG_BIN/pg_ctl" -D "$TMP/pg/data" -l "$TMP/pg/log" -w start \
  -o "-p $PG_PORT -k $TMP/pg -c listen_addresses=127.0.0.1" >/dev/null
for _ in $(seq 1 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done

REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"

# Redis's CPU time so far, in seconds (utime + stime from /proc).
redis_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$REDIS_PID/stat"; }
# Every command's calls from INFO commandstats, as "cmd=calls" words.
redis_calls() {
  redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' |
    sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1=\2/p'
}

# cluster_bench NAME BENCH-ARGS...: two processes, one run, then stopped.
cluster_bench() {
  local label=$1
  shift
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc \
    "DROP TABLE IF EXISTS messages, rooms, banter_schema" >/dev/null 2>&1 || true
  PIDS=()
  local urls=() pids=() port
  for port in "${PORTS[@]}"; do
    taskset -c 0 "$BANTER" --addr "127.0.0.1:$port" --data-dir "$OUT/data-$port" \
      --redis-url "$REDIS_URL" --database-url "$DATABASE_URL" \
      "${UNLIMITED[@]}" "${UNTHROTTLED[@]}" --log warn >/dev/null 2>&1 &
    PIDS+=($!)
    urls+=(--url "ws://127.0.0.1:$port/start_web_socket")
    pids+=(--server-pid "$!")
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.1
    done
  done
  redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
  local cpu_before
  cpu_before=$(redis_cpu)
  taskset -c 1 "$BENCH" --label "$label" "${urls[@]}" "${pids[@]}" --results "$RESULTS" \
    --connect-timeout 25 --timeout 60 "$@" || true
  local cpu_after senders messages calls
  cpu_after=$(redis_cpu)
  # -s S -m M in the arguments: S × M messages were sent.
  senders=$(echo "$@" | sed -n 's/.*-s \([0-9]*\).*/\1/p')
  messages=$(echo "$@" | sed -n 's/.*-m \([0-9]*\).*/\1/p')
  calls=$(redis_calls | tr '\n' ' ')
  python3 - "$label" "$cpu_before" "$cpu_after" "$((senders * messages))" "$calls" >>"$RESULTS" <<'PY'
import json, sys
label, before, after, sent, calls = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
per = {k: int(v) for k, v in (w.split("=") for w in calls.split())}
total = sum(per.values())
line = {"label": label + "-redis", "redis_cpu_s": round(after - before, 3), "messages": sent,
        "redis_commands": total, "commands_per_message": round(total / max(sent, 1), 2),
        "by_command": {k: round(v / max(sent, 1), 3) for k, v in sorted(per.items(), key=lambda kv: -kv[1])}}
print(json.dumps(line))
print(f"{line['label']}: Redis CPU {line['redis_cpu_s']} s, {total} commands = "
      f"{line['commands_per_message']} per message: " +
      ", ".join(f"{k} {v}" for k, v in list(line['by_command'].items())[:8]), file=sys.stderr)
PY
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}

for round in 1 2; do
  say "round $round: as fast as possible"
  LABEL=one-process bench banter -c 1000 -s 10 -m 200
  cluster_bench two-processes -c 1000 -s 10 -m 200
  say "round $round: steady 20 msg/s"
  LABEL=one-process-steady bench banter -c 1000 -s 10 -m 30 --rate 20
  cluster_bench two-processes-steady -c 1000 -s 10 -m 30 --rate 20
done
say "results in $RESULTS"
