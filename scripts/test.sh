#!/usr/bin/env bash
# Sets up what is missing and runs every test Banter has:
#   0. formatting and lints: `cargo fmt --check`, and clippy with warnings
#      as errors for both halves (server, browser) and the load generator
#   1. cargo tests with the server features (unit + the real binary over sockets)
#   2. cargo tests of the shared code with the browser features, and of the
#      load generator (bench/)
#   3. the Playwright suite in Chromium against a release build
# Ends with one summary line, "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh

# --- what only the tests need ---------------------------------------------------
# Chromium for Playwright; Redis, PostgreSQL and nginx for the cluster tests,
# which start private instances of their own on free loopback ports (nothing
# relies on one that happens to be running).
apt_install chromium redis-server postgresql nginx
if [ ! -x /usr/bin/chromium ]; then die "chromium is not at /usr/bin/chromium"; fi
command -v npm >/dev/null || apt_install nodejs npm
LOCK_SUM=$(sha256sum end2end/package-lock.json | cut -d' ' -f1)
if [ "$(cat end2end/node_modules/.banter-lock 2>/dev/null)" != "$LOCK_SUM" ]; then
  say "npm ci (end2end)"
  # Playwright must not download a browser: it drives Debian's Chromium.
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$LOCK_SUM" >end2end/node_modules/.banter-lock
fi

LOG_DIR=$(mktemp -d)
trap 'rm -rf "$LOG_DIR"' EXIT

say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy (ssr, hydrate, bench) -D warnings"
cargo clippy --features ssr --all-targets -- -D warnings
cargo clippy --features hydrate --all-targets -- -D warnings
cargo clippy -p banter-bench --all-targets -- -D warnings
# The one-thread floor the benchmark measures against: its own workspace.
MINIMAL=(--manifest-path bench/baselines/minimal/Cargo.toml)
cargo fmt "${MINIMAL[@]}" --check
cargo clippy "${MINIMAL[@]}" --all-targets -- -D warnings

say "cargo test --features ssr"
cargo test --features ssr 2>&1 | tee "$LOG_DIR/ssr.log"
say "cargo test --lib --features hydrate"
cargo test --lib --features hydrate 2>&1 | tee "$LOG_DIR/hydrate.log"
say "cargo test -p banter-bench, and the minimal baseline's"
cargo test -p banter-bench 2>&1 | tee "$LOG_DIR/bench.log"
cargo test "${MINIMAL[@]}" 2>&1 | tee -a "$LOG_DIR/bench.log"

say "cargo leptos build --release"
cargo leptos build --release
say "playwright test"
(cd end2end && CI="${CI:-}" npx playwright test) 2>&1 | tee "$LOG_DIR/e2e.log"

# --- one summary line across all runners ------------------------------------------
# (awk alone: a grep that matches nothing would end the script under pipefail)
cargo_count() { # sum "N <word>" over cargo's "test result:" lines
  awk -v word="$1" '/^test result:/ { for (i = 2; i <= NF; i++) if ($i ~ "^" word) s += $(i - 1) }
    END { print s + 0 }' "$LOG_DIR"/ssr.log "$LOG_DIR"/hydrate.log "$LOG_DIR"/bench.log
}
e2e_count() { # Playwright's closing "  N passed" / "  N failed" lines
  awk -v word="$1" '$1 ~ /^[0-9]+$/ && $2 == word { s += $1 } END { print s + 0 }' "$LOG_DIR/e2e.log"
}
passed=$(($(cargo_count passed) + $(e2e_count passed)))
failed=$(($(cargo_count failed) + $(e2e_count failed)))
echo "tests: $passed passed, $failed failed"
