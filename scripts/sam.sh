#!/usr/bin/env bash
# The project's pinned SAM CLI (scripts/requirements-sam.lock), installed in
# a venv of its own on first use, run from the repository root (where
# scripts/sam-build.sh leaves .aws-sam/build):
#   scripts/sam.sh deploy --guided
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
SAM_BIN=$(tool_dir sam)
SAM_CLI_TELEMETRY=${SAM_CLI_TELEMETRY:-0} exec "$SAM_BIN/sam" "$@"
