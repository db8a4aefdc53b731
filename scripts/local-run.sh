#!/usr/bin/env bash
# The whole pipeline on this machine (README command 1): installs what it
# needs (pinned), starts moto on 127.0.0.1 unless AWS_ENDPOINT_URL is set,
# creates the stack's resources from template.yaml, runs the ingest function
# as a Lambda under cargo-lambda's local runtime on every payload in events/,
# and prints the event history it stored. Stops whatever it started.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

STACK=trailkeep-local
OUT_DIR="$ROOT/.local"
OUTPUTS="$OUT_DIR/outputs.json"
SERVED_REGIONS=eu-west-1,us-east-1
mkdir -p "$OUT_DIR"

ensure_venv

step "building the CLI and the functions"
cargo build --locked -p trailkeep -p ingest
TRAILKEEP="$CARGO_TARGET_DIR/debug/trailkeep"

WATCH_PID=
cleanup() {
  if [ -n "$WATCH_PID" ]; then
    kill -- -"$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
  fi
  stop_moto
}
trap cleanup EXIT
start_moto

step "creating resources from template.yaml"
"$TRAILKEEP" dev provision --template template.yaml --stack-name "$STACK" --outputs "$OUTPUTS"
output() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUTPUTS" "$1"; }
HISTORY_TABLE=$(output HistoryTableName)
export TRAILKEEP_STATE_TABLE=$(output StateTableName)
LOG_BUCKET=$(output LogBucketName)

step "trails: create one with the AWS CLI's verbs and flags (trailkeep create-trail …)"
"$TRAILKEEP" create-trail --name org-audit --s3-bucket-name "$LOG_BUCKET" \
  --is-multi-region-trail --enable-log-file-validation
"$TRAILKEEP" put-event-selectors --trail-name org-audit --event-selectors \
  '[{"ReadWriteType": "All", "IncludeManagementEvents": true, "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::example-uploads/"]}]}]' >/dev/null
"$TRAILKEEP" start-logging --name org-audit
"$TRAILKEEP" get-trail-status --name org-audit
if "$TRAILKEEP" create-trail --name org-audit --s3-bucket-name "$LOG_BUCKET" 2>"$OUT_DIR/err.txt"; then
  die "a second trail with the same name was accepted"
fi
printf '  refused as expected: %s\n' "$(cat "$OUT_DIR/err.txt")"

step "starting the functions under cargo-lambda's local runtime"
LAMBDA_PORT=$(free_port)
# An env file, not --env-var: values may hold commas (SERVED_REGIONS).
cat >"$OUT_DIR/functions.env" <<ENV
HISTORY_TABLE=$HISTORY_TABLE
STATE_TABLE=$TRAILKEEP_STATE_TABLE
TRAIL_CACHE_SECONDS=0
SERVED_REGIONS=$SERVED_REGIONS
RETENTION_DAYS=90
AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_REGION=$AWS_REGION
RUST_LOG=info
ENV
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --ignore-changes \
  --env-file "$OUT_DIR/functions.env" \
  >"$OUT_DIR/lambda.log" 2>&1 &
WATCH_PID=$!
for _ in $(seq 1 300); do
  curl -s -o /dev/null "http://127.0.0.1:$LAMBDA_PORT/" && break
  kill -0 "$WATCH_PID" 2>/dev/null || { cat "$OUT_DIR/lambda.log" >&2; die "cargo lambda watch exited"; }
  sleep 0.2
done

invoke() {
  cargo lambda invoke ingest --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --data-file "$1" 2>&1
}

step "ingest: every payload in events/ through the ingest Lambda"
failures=0
for f in events/eventbridge/*.json events/s3/*.json; do
  case "$f" in
    */batch-with-bad-record.json) continue ;;
  esac
  if out=$(invoke "$f"); then
    printf '  ok     %-48s %s\n' "$f" "$(printf '%s' "$out" | tr -d '\n' | cut -c1-110)"
  else
    printf '  FAILED %-48s %s\n' "$f" "$out"; failures=$((failures + 1))
  fi
done
# A re-delivery: stored once, reported as a duplicate.
if out=$(invoke events/eventbridge/api-call-write.json) && printf '%s' "$out" | grep -q '"duplicates":1'; then
  printf '  ok     %-48s re-delivered: reported as a duplicate\n' "events/eventbridge/api-call-write.json"
else
  printf '  FAILED re-delivery not reported as a duplicate: %s\n' "$out"; failures=$((failures + 1))
fi

step "ingest: bad input is refused with the field and reason (Lambda retries, then the DLQ)"
for f in events/s3/batch-with-bad-record.json events/malformed/*.json; do
  if out=$(invoke "$f"); then
    printf '  NOT REFUSED %s: %s\n' "$f" "$out"; failures=$((failures + 1))
  else
    printf '  refused %-46s %s\n' "$f" "$(printf '%s' "$out" | grep -o 'record [0-9].*' | head -1 | cut -c1-200)"
  fi
done
[ "$failures" -eq 0 ] || { tail -50 "$OUT_DIR/lambda.log" >&2; die "$failures invocation(s) did not behave"; }

step "event history in $HISTORY_TABLE (global events in each of $SERVED_REGIONS; data events are not history)"
# 5 regional management events + 3 global ones in 2 regions.
"$TRAILKEEP" dev show-history --table "$HISTORY_TABLE" --expect 11

step "deliver: a scheduled run 8 minutes from now, when the windows of the events above are sealed"
python3 - "$OUT_DIR/deliver-event.json" <<'PY'
import datetime, json, sys
t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=8)
event = json.load(open("events/scheduled/deliver.json"))
event["time"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
json.dump(event, open(sys.argv[1], "w"))
PY
out=$(cargo lambda invoke deliver --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --data-file "$OUT_DIR/deliver-event.json" 2>&1) \
  || { echo "$out"; tail -50 "$OUT_DIR/lambda.log" >&2; die "deliver failed"; }
printf '  %s\n' "$out"

step "log files of trail org-audit in s3://$LOG_BUCKET"
# 8 management events (the re-delivery is not logged twice) + 5 S3 object
# events of example-uploads (the trail's data selector).
"$TRAILKEEP" dev show-logs --bucket "$LOG_BUCKET" --expect-records 13

step "done: stack outputs in $OUTPUTS; function logs in $OUT_DIR/lambda.log"
