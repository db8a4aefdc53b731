#!/usr/bin/env bash
# `sam build` of template.yaml: every function built by cargo-lambda for
# arm64 (release profile, zig as the cross linker) into .aws-sam/build, then
# each bootstrap's size. This is what `sam deploy` uploads.
# Usage: scripts/sam-build.sh [BUILD_DIR]
#
# cargo-lambda needs Rust's aarch64-unknown-linux-gnu standard library; if
# it is missing, rustup downloads it from static.rust-lang.org. Where that
# cannot be reached (CI allows the package registries only) and
# SAM_BUILD_OPTIONAL=1, the build is skipped with a message instead of failing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
BUILD_DIR=${1:-$ROOT/.aws-sam/build}

ensure_venv                    # cargo-lambda and zig, first on PATH
SAM_BIN=$(tool_dir sam)

target=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
  step "adding Rust's $target standard library (rustup target add)"
  if ! rustup target add "$target"; then
    if [ "${SAM_BUILD_OPTIONAL:-}" = 1 ]; then
      step "sam build SKIPPED: rustup could not download $target here; run scripts/sam-build.sh where it can"
      exit 0
    fi
    die "rustup target add $target failed (it downloads from static.rust-lang.org)"
  fi
fi

step "sam build (cargo-lambda, arm64, release) into $BUILD_DIR"
SAM_CLI_TELEMETRY=0 "$SAM_BIN/sam" build --beta-features --build-dir "$BUILD_DIR"

step "function packages"
for f in "$BUILD_DIR"/*/bootstrap; do
  printf '  %-16s %s bytes\n' "$(basename "$(dirname "$f")")" "$(stat -c %s "$f")"
done
