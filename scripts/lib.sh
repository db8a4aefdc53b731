# Helpers shared by the project's scripts. Source it: `. scripts/lib.sh`.
# - ensure_venv: the pinned Python tools (moto, cargo-lambda, cfn-lint, the
#   AWS CLI) in a venv keyed by the lock file, first on PATH.
# - tool_dir NAME: the bin directory of a tool kept in a venv of its own
#   (scripts/requirements-NAME.lock: sam, checkov), installed on first use.
# - start_moto / stop_moto: a moto server on 127.0.0.1 on a free port,
#   stopped by its PID.
# - start_watch / stop_watch: the functions under `cargo lambda watch`.
# - ensure_chromium: Debian's chromium and chromedriver on PATH (the
#   console's browser test), installed with apt-get if missing.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${TRAILKEEP_CACHE:-$HOME/.cache/trailkeep}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE_DIR/target}

# Dummy credentials and a region: the SDKs need them; moto accepts anything.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=$AWS_REGION
export AWS_EC2_METADATA_DISABLED=true

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# install_venv NAME LOCK: a venv with exactly the pins of LOCK (keyed by its
# hash, so a changed lock gets a new venv); prints its path.
install_venv() {
  local name=$1 lock=$2 hash venv
  hash=$(cat "$lock" "${lock%.lock}.in" | sha256sum | cut -c1-12)
  venv="$CACHE_DIR/$name-$hash"
  if [ ! -f "$venv/.complete" ]; then
    step "installing pinned Python tools ($(basename "$lock")) into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$lock" >&2 \
      || die "pip install -r $lock failed"
    touch "$venv/.complete"
  fi
  printf '%s\n' "$venv"
}

ensure_venv() {
  local venv
  venv=$(install_venv venv "$ROOT/scripts/requirements.lock") || exit 1
  export VIRTUAL_ENV="$venv"
  export PATH="$venv/bin:$PATH"
}

# Not put on PATH: each has its own python3, and cargo-lambda finds zig
# through the first python3 on PATH (the main venv's).
tool_dir() {
  local venv
  venv=$(install_venv "$1" "$ROOT/scripts/requirements-$1.lock") || exit 1
  printf '%s/bin\n' "$venv"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts moto unless AWS_ENDPOINT_URL is already set; exports AWS_ENDPOINT_URL.
MOTO_PID=
start_moto() {
  if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    step "using the endpoint in AWS_ENDPOINT_URL: $AWS_ENDPOINT_URL (no server started)"
    return
  fi
  local port log
  port=$(free_port)
  log="$CACHE_DIR/moto-$port.log"
  mkdir -p "$CACHE_DIR"
  # moto_server with a fix for its O(table) DynamoDB Query (see the script).
  python3 "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if curl -fsS "$AWS_ENDPOINT_URL/moto-api/" >/dev/null 2>&1; then
      step "moto server on $AWS_ENDPOINT_URL (pid $MOTO_PID, log $log)"
      return
    fi
    kill -0 "$MOTO_PID" 2>/dev/null || { cat "$log" >&2; die "moto server exited"; }
    sleep 0.1
  done
  cat "$log" >&2
  die "moto server did not answer on $AWS_ENDPOINT_URL within 10 s"
}

stop_moto() {
  if [ -n "$MOTO_PID" ]; then
    kill "$MOTO_PID" 2>/dev/null && wait "$MOTO_PID" 2>/dev/null
    MOTO_PID=
  fi
  return 0
}

# start_watch PORT ENV_FILE LOG [ARGS…]: the workspace's functions under
# cargo-lambda's local runtime on 127.0.0.1:PORT (its own process group, so
# stop_watch ends cargo and the functions with it), once it answers.
WATCH_PID=
start_watch() {
  local port=$1 env_file=$2 log=$3
  shift 3
  setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --ignore-changes \
    --env-file "$env_file" "$@" >"$log" 2>&1 &
  WATCH_PID=$!
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return
    kill -0 "$WATCH_PID" 2>/dev/null || { cat "$log" >&2; die "cargo lambda watch exited"; }
    sleep 0.2
  done
  cat "$log" >&2; die "cargo lambda watch did not answer on port $port"
}

stop_watch() {
  if [ -n "$WATCH_PID" ]; then
    kill -- -"$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
    WATCH_PID=
  fi
}

# Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver),
# which the console's browser test (tests/console_test.py) drives through
# selenium; nothing is downloaded but Debian's packages.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return
  fi
  local sudo=
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 \
      || die "chromium and chromedriver are needed: install Debian's packages chromium and chromium-driver (apt-get install chromium chromium-driver, as root)"
    sudo=sudo
  fi
  step "installing Debian's chromium and chromium-driver (apt-get)"
  $sudo apt-get update -qq >&2 || die "apt-get update failed"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2 \
    || die "apt-get install chromium chromium-driver failed"
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
    || die "chromium or chromedriver still not on PATH after apt-get install"
}
