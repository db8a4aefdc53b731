#!/usr/bin/env bash
# The whole test suite (README command 2; CI runs it through .ci/run):
# formatting, lints, the template checks (cfn-lint, sam validate --lint,
# checkov), unit and property tests, integration tests through the real AWS
# SDK against a local moto server (among them the load-and-fault test), the
# local pipeline run with the functions under cargo-lambda's runtime, and
# sam build.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "the botocore model (cli/models/) is what the pinned botocore gives (scripts/botocore-model.py --check)"
python3 scripts/botocore-model.py --check

step "cfn-lint template.yaml signing-key.yaml forwarder.yaml"
cfn-lint template.yaml signing-key.yaml forwarder.yaml

step "sam validate --lint"
scripts/sam.sh validate --lint --region "$AWS_REGION" --template template.yaml

step "checkov (each accepted finding is skipped in template.yaml with its reason)"
CHECKOV_BIN=$(tool_dir checkov)
"$CHECKOV_BIN/checkov" --file template.yaml --file signing-key.yaml --file forwarder.yaml --framework cloudformation --skip-download --compact --quiet

trap stop_moto EXIT
start_moto

step "cargo test (unit, property and integration tests against $AWS_ENDPOINT_URL)"
cargo test --workspace --locked

step "SHA-256: the sha2 build gives the published hashes too (feature sha2-hash)"
cargo test --locked -p trailkeep-shared --features sha2-hash --lib digest::sha256

stop_moto
unset AWS_ENDPOINT_URL

step "local pipeline under cargo-lambda, then the console in headless chromium (CONSOLE_TEST=1 scripts/local-run.sh)"
CONSOLE_TEST=1 "$ROOT/scripts/local-run.sh"

step "the README's CLI install: cargo install --locked --path cli (debug, into a temporary root)"
install_root=$(mktemp -d)
cargo install --locked --path cli --debug --root "$install_root" --quiet
version=$("$install_root/bin/trailkeep" --version)
rm -rf "$install_root"
[ "$version" = "trailkeep $(sed -n 's/^version = "\(.*\)"/\1/p' cli/Cargo.toml | head -1) (commit $(git rev-parse --short=12 HEAD))" ] \
  || die "trailkeep --version printed '$version': not the version and commit"
echo "$version"

step "sam build (scripts/sam-build.sh)"
SAM_BUILD_OPTIONAL=${SAM_BUILD_OPTIONAL:-1} "$ROOT/scripts/sam-build.sh"

step "all tests passed"
