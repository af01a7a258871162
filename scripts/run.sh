#!/usr/bin/env bash
# Sets up what is missing, builds Banter in release mode and runs it on the
# embedded default (one process, data in ./data), with the help bot in #help
# so a first visit has someone to talk to. Extra arguments go to `banter`
# (see `banter --help`), e.g. scripts/run.sh --addr 0.0.0.0:8080
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh

say "cargo leptos build --release (and banter-cli)"
cargo leptos build --release
cargo build --release --features ssr --bin banter-cli
say "starting Banter"
exec target/release/banter --help-bot "$@"
