#!/usr/bin/env bash
# The whole test suite (README command 2; CI runs it through .ci/run):
# formatting, lints, unit and property tests, integration tests through the
# real AWS SDK against a local moto server, the template check, and the
# local pipeline run with the functions under cargo-lambda's runtime.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cfn-lint template.yaml"
cfn-lint template.yaml

trap stop_moto EXIT
start_moto

step "cargo test (unit, property and integration tests against $AWS_ENDPOINT_URL)"
cargo test --workspace --locked

stop_moto
unset AWS_ENDPOINT_URL

step "local pipeline under cargo-lambda (scripts/local-run.sh)"
"$ROOT/scripts/local-run.sh"

step "all tests passed"
