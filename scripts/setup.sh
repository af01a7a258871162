#!/usr/bin/env bash
# Installs what building Banter needs, skipping whatever is already present
# at the right version, so a second run takes a second or two:
#   - the Rust toolchain and wasm32 target pinned in rust-toolchain.toml
#   - cargo-leptos (built with `no_downloads`: it must never try GitHub)
#   - wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in
#     Cargo.lock (cargo-leptos refuses any other)
#   - wasm-opt (binaryen from npm), used by release builds
# Sourced by scripts/run.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_LEPTOS_VERSION=0.3.11
# binaryen >= 116 understands the reference types wasm-bindgen's glue relies
# on; Debian's 108 rewrites them into a module browsers refuse to run.
BINARYEN_VERSION=132.0.0
BINARYEN_MIN=116

export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG...: installs the packages that are not installed yet.
APT_UPDATED=
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "please install: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    as_root apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# --- Rust toolchain ---------------------------------------------------------
command -v rustup >/dev/null || die "rustup is required (https://rustup.rs), then run this again"
TOOLCHAIN=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if rustup toolchain list | grep -q "^$TOOLCHAIN-" &&
  rustup target list --installed --toolchain "$TOOLCHAIN" | grep -qx wasm32-unknown-unknown; then
  :
else
  # Reads rust-toolchain.toml (components, targets, profile). Needed because
  # machines with RUSTUP_AUTO_INSTALL=0 do not install it on first use.
  say "rustup toolchain install $TOOLCHAIN"
  rustup toolchain install
fi

# --- cargo-leptos -------------------------------------------------------------
if [ "$(cargo leptos --version 2>/dev/null)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
  say "cargo install cargo-leptos $CARGO_LEPTOS_VERSION (a one-off build of ~10 minutes on 2 cores)"
  cargo install cargo-leptos --version "=$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

# --- wasm-bindgen-cli, the exact version in Cargo.lock ------------------------
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
[ -n "$WASM_BINDGEN_VERSION" ] || die "wasm-bindgen not found in Cargo.lock"
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: its lock file names a crate release the registry no longer serves.
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --force
fi

# --- wasm-opt -----------------------------------------------------------------
# From npm's binaryen package (a WebAssembly build, so no C++ compile), linked
# into ~/.cargo/bin, which is on every Rust user's PATH ahead of /usr/bin.
wasm_opt_major() { wasm-opt --version 2>/dev/null | sed -n 's/^wasm-opt version \([0-9]*\).*/\1/p'; }
if [ "$(wasm_opt_major || true)" = "" ] || [ "$(wasm_opt_major)" -lt "$BINARYEN_MIN" ]; then
  command -v npm >/dev/null || apt_install nodejs npm
  say "npm install binaryen@$BINARYEN_VERSION (wasm-opt)"
  TOOLS="$HOME/.local/share/banter-tools"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "binaryen@$BINARYEN_VERSION"
  mkdir -p "$HOME/.cargo/bin"
  ln -sf "$TOOLS/node_modules/binaryen/bin/wasm-opt" "$HOME/.cargo/bin/wasm-opt"
  hash -r
  [ "$(wasm_opt_major)" -ge "$BINARYEN_MIN" ] || die "wasm-opt on PATH is $(command -v wasm-opt), older than $BINARYEN_MIN"
fi
