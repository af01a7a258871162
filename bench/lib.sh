# Shared by bench/run.sh and bench/flood.sh: building, starting and stopping
# servers, and one bounded benchmark run. Source it from the repository root
# after setting RESULTS (the JSON-lines file runs append to).
#
# Every server is pinned to CPU 0 and banter-bench to CPU 1; all traffic is
# on 127.0.0.1.

PORT=3390
OUT=bench/out
mkdir -p "$OUT" bench/results

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

export PATH="$HOME/.cargo/bin:$PATH"
# Its own target dir: cargo leptos builds target/release/banter with other
# environment variables, and the two would keep rebuilding each other.
export CARGO_TARGET_DIR=target/bench
BANTER=$CARGO_TARGET_DIR/release/banter
BENCH=$CARGO_TARGET_DIR/release/banter-bench
# The one-thread floor (bench/baselines/minimal): its own cargo workspace and
# lock, so it shares the target dir but never Banter's dependency tree.
MINIMAL=$CARGO_TARGET_DIR/release/banter-minimal
DENO=bench/baselines/node_modules/@deno/linux-x64-glibc/deno
BUN=bench/baselines/node_modules/@oven/bun-linux-x64/bin/bun

build() {
  say "building banter, banter-bench and banter-minimal (release)"
  cargo build --release --quiet --features ssr --bin banter
  cargo build --release --quiet -p banter-bench
  cargo build --release --quiet --manifest-path bench/baselines/minimal/Cargo.toml
  command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
  ulimit -n "$(ulimit -Hn)"
}

# The Bun, Deno and Node baselines: ws, and the Bun and Deno binaries too,
# from npm, so one locked `npm ci` installs them all and no install script
# downloads anything of its own.
install_baselines() {
  local lock_sum
  lock_sum=$(sha256sum bench/baselines/package-lock.json | cut -d' ' -f1)
  if [ "$(cat bench/baselines/node_modules/.banter-lock 2>/dev/null)" != "$lock_sum" ]; then
    say "npm ci (baselines: ws, and Bun and Deno from npm)"
    (cd bench/baselines && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" >bench/baselines/node_modules/.banter-lock
  fi
}

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
# deployment. The flood benchmark (banter-limited) keeps the message limit.
UNLIMITED=(--max-connections 100000 --max-connections-per-ip 100000
  --handshake-rate 1000000 --handshake-burst 1000000)
UNTHROTTLED=(--message-rate 1000000 --message-burst 1000000)
# start_server banter|banter-store|banter-nostore|banter-limited|bun|deno|node|minimal [FLAGS...]
#   banter-limited: per-address limits lifted, the per-socket message limit
#   at its defaults (10/s, burst 20). FLAGS go to a banter server and take
#   the place of the same flags in UNLIMITED/UNTHROTTLED.
start_server() {
  local kind=$1
  shift
  local flags=("${UNLIMITED[@]}")
  [ "$kind" != banter-limited ] && flags+=("${UNTHROTTLED[@]}")
  local banter_flags=() i
  for ((i = 0; i < ${#flags[@]}; i += 2)); do
    [[ " $* " == *" ${flags[i]} "* ]] || banter_flags+=("${flags[i]}" "${flags[i + 1]}")
  done
  banter_flags+=("$@")
  case "$kind" in
    banter|banter-store|banter-limited)
      # A fresh SQLite file per run: every run starts from the same state.
      rm -rf "$OUT/data"
      taskset -c 0 "$BANTER" --addr "127.0.0.1:$PORT" --data-dir "$OUT/data" "${banter_flags[@]}" --log warn >/dev/null 2>&1 & ;;
    banter-nostore) taskset -c 0 "$BANTER" --addr "127.0.0.1:$PORT" --data-dir "$OUT/data" --storage off "${banter_flags[@]}" --log warn >/dev/null 2>&1 & ;;
    bun) taskset -c 0 "$BUN" run bench/baselines/bun_chat.ts "127.0.0.1:$PORT" >/dev/null 2>&1 & ;;
    deno) taskset -c 0 "$DENO" run --allow-net bench/baselines/deno_chat.ts "127.0.0.1:$PORT" >/dev/null 2>&1 & ;;
    node) taskset -c 0 node bench/baselines/node_chat.mjs "127.0.0.1:$PORT" >/dev/null 2>&1 & ;;
    minimal) taskset -c 0 "$MINIMAL" "127.0.0.1:$PORT" >/dev/null 2>&1 & ;;
    *) echo "start_server: unknown server $kind" >&2; return 1 ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$kind did not start listening on $PORT" >&2
  return 1
}

# [LABEL=NAME] bench SERVER [--server-args "FLAGS..." --] BENCH-ARGS...
#   One run: start SERVER (with FLAGS, see start_server), run banter-bench
#   against it (results appended to $RESULTS, labelled NAME or SERVER),
#   stop SERVER.
bench() {
  local server=$1
  shift
  local server_args=()
  if [ "${1:-}" = --server-args ]; then
    read -r -a server_args <<<"$2"
    shift 2
    [ "${1:-}" = -- ] && shift
  fi
  start_server "$server" ${server_args[@]+"${server_args[@]}"}
  taskset -c 1 "$BENCH" --label "${LABEL:-$server}" --url "ws://127.0.0.1:$PORT/start_web_socket" \
    --server-pid "$SERVER_PID" --results "$RESULTS" --connect-timeout 25 --timeout 60 "$@" || true
  stop_server
}
