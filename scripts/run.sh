#!/usr/bin/env bash
# Sets up what is missing, builds Banter in release mode and runs it on the
# embedded default (one process, data in ./data). Extra arguments go to
# `banter` (see `banter --help`), e.g. scripts/run.sh --addr 0.0.0.0:8080
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh

say "cargo leptos build --release"
cargo leptos build --release
say "starting Banter"
exec target/release/banter "$@"
