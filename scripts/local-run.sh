#!/usr/bin/env bash
# The whole pipeline on this machine (README command 1): installs what it
# needs (pinned), starts moto on 127.0.0.1 unless AWS_ENDPOINT_URL is set,
# creates the stack's resources from template.yaml, runs the functions as
# Lambdas under cargo-lambda's local runtime: every payload in events/
# through the ingest queue to ingest (one forged direct invocation refused), then deliver and digest over three simulated hours (two without
# deliveries); prints the event history, the log files, and the validator's
# report (online, and offline on a downloaded copy with the PEM key). Stops
# whatever it started.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

STACK=trailkeep-local
OUT_DIR="$ROOT/.local"
OUTPUTS="$OUT_DIR/outputs.json"
SERVED_REGIONS=eu-west-1,us-east-1
mkdir -p "$OUT_DIR"

ensure_venv

step "building the CLI, the dev tooling and the functions"
cargo build --locked -p trailkeep -p trailkeep-dev -p ingest -p deliver -p digests -p lookup
TRAILKEEP="$CARGO_TARGET_DIR/debug/trailkeep"
DEV="$CARGO_TARGET_DIR/debug/trailkeep-dev"

PROXY_PID=
CONSOLE_PID=
cleanup() {
  [ -z "$PROXY_PID" ] || kill "$PROXY_PID" 2>/dev/null || true
  [ -z "$CONSOLE_PID" ] || kill "$CONSOLE_PID" 2>/dev/null || true
  stop_watch
  stop_moto
}
trap cleanup EXIT
# The account of the sample events (events/): the local stack is that
# account's, so ingest takes them as its own (another account's events
# are refused without an organization: docs/organizations.md).
export MOTO_ACCOUNT_ID=111122223333
start_moto

step "creating resources from template.yaml"
LAMBDA_PORT=$(free_port)
# The queues and the audit bus with the AWS CLI; tables, bucket and key by
# `trailkeep-dev provision` (dev/) from template.yaml's definitions.
local_aws() { aws --endpoint-url "$AWS_ENDPOINT_URL" --region "$AWS_REGION" "$@"; }
INGEST_DLQ=$(local_aws sqs create-queue --queue-name "$STACK-ingest-dlq" --query QueueUrl --output text)
INGEST_QUEUE=$(local_aws sqs create-queue --queue-name "$STACK-ingest" \
  --attributes VisibilityTimeout=180 --query QueueUrl --output text)
SCHEDULE_DLQ=$(local_aws sqs create-queue --queue-name "$STACK-schedule-dlq" --query QueueUrl --output text)
local_aws events create-event-bus --name "$STACK-audit" >/dev/null
"$DEV" provision --template template.yaml --stack-name "$STACK" --outputs "$OUTPUTS" \
  --set "IngestFunctionArn=arn:aws:lambda:$AWS_REGION:$MOTO_ACCOUNT_ID:function:ingest" \
  --set "AuditBusName=$STACK-audit" \
  --set "IngestDeadLetterQueueUrl=$INGEST_DLQ" \
  --set "IngestQueueArn=arn:aws:sqs:$AWS_REGION:$MOTO_ACCOUNT_ID:$STACK-ingest" \
  --set "ScheduleDeadLetterQueueUrl=$SCHEDULE_DLQ" \
  --set "LookupUrl=http://127.0.0.1:$LAMBDA_PORT/lambda-url/lookup" \
  --set "ApiUrl=http://127.0.0.1:$LAMBDA_PORT/lambda-url/lookup" \
  --set "DigestFunctionRoleArn=arn:aws:iam::$MOTO_ACCOUNT_ID:role/$STACK-DigestFunctionRole" \
  --set "DeliverFunctionRoleArn=arn:aws:iam::$MOTO_ACCOUNT_ID:role/$STACK-DeliverFunctionRole" \
  --set "LookupFunctionRoleArn=arn:aws:iam::$MOTO_ACCOUNT_ID:role/$STACK-LookupFunctionRole"
output() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUTPUTS" "$1"; }
HISTORY_TABLE=$(output HistoryTableName)
export TRAILKEEP_STATE_TABLE=$(output StateTableName)
LOG_BUCKET=$(output LogBucketName)
SIGNING_KEY=$(output SigningKeyArn)

step "starting the functions under cargo-lambda's local runtime"
# An env file, not --env-var: values may hold commas (SERVED_REGIONS).
cat >"$OUT_DIR/functions.env" <<ENV
HISTORY_TABLE=$HISTORY_TABLE
STATE_TABLE=$TRAILKEEP_STATE_TABLE
TRAIL_CACHE_SECONDS=0
INGEST_QUEUE_URL=$INGEST_QUEUE
INGEST_QUEUE_VISIBILITY_SECONDS=180
SERVED_REGIONS=$SERVED_REGIONS
RETENTION_DAYS=90
HISTORY_SHARDS=4
GRACE_SECONDS=120
SIGNING_KEYS=$SIGNING_KEY
SETTLE_SECONDS=30
LOOKUP_TOKEN_KEY=local-run-token-key-not-a-secret-0123456789
TRAIL_ADMIN_ARNS=*
ACCOUNT_ID=$(aws sts get-caller-identity --endpoint-url "$AWS_ENDPOINT_URL" --query Account --output text)
AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_REGION=$AWS_REGION
RUST_LOG=info
ENV
start_watch "$LAMBDA_PORT" "$OUT_DIR/functions.env" "$OUT_DIR/lambda.log"

step "trails: create one with the AWS CLI's verbs and flags (trailkeep create-trail …, through trailkeep's API)"
export TRAILKEEP_API_URL=$(output ApiUrl)
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

# invoke FILE [--forge]: FILE sent to the ingest queue and received from
# it, as an EventBridge rule (or S3) and Lambda's poller would, then the
# batch handed to ingest. With --forge, a made-up batch handed to ingest
# directly, as a principal with lambda:InvokeFunction could.
invoke() {
  python3 scripts/sqs_batch.py "$INGEST_QUEUE" "$@" >"$OUT_DIR/sqs-event.json" || return 1
  cargo lambda invoke ingest --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
    --data-file "$OUT_DIR/sqs-event.json" 2>&1
}
last_log() { grep "$1" "$OUT_DIR/lambda.log" | tail -1 | sed 's/.*}: //' | cut -c1-"${2:-150}"; }

step "ingest: every payload in events/ through the ingest queue and the ingest Lambda"
failures=0
for f in events/eventbridge/*.json events/s3/*.json; do
  case "$f" in
    */batch-with-bad-record.json) continue ;;
  esac
  if out=$(invoke "$f") && printf '%s' "$out" | grep -q '"batchItemFailures":\[\]'; then
    printf '  ok     %-48s %s\n' "$f" "$(last_log 'batch ingested' 110)"
  else
    printf '  FAILED %-48s %s\n' "$f" "$out"; failures=$((failures + 1))
  fi
done
# A re-delivery: stored once, reported as a duplicate.
if out=$(invoke events/eventbridge/api-call-write.json) && last_log 'batch ingested' | grep -q 'duplicates=1'; then
  printf '  ok     %-48s re-delivered: reported as a duplicate\n' "events/eventbridge/api-call-write.json"
else
  printf '  FAILED re-delivery not reported as a duplicate: %s\n' "$out"; failures=$((failures + 1))
fi

step "ingest: bad input is refused with the field and reason (handed back to the queue, then its DLQ)"
for f in events/s3/batch-with-bad-record.json events/malformed/*.json; do
  if out=$(invoke "$f") && printf '%s' "$out" | grep -q '"itemIdentifier"'; then
    printf '  refused %-46s %s\n' "$f" "$(last_log 'message failed' 200 | grep -o 'record [0-9].*' | cut -c1-200)"
  else
    printf '  NOT REFUSED %s: %s\n' "$f" "$out"; failures=$((failures + 1))
  fi
done
# A forged event: an AWS API call, invoked directly as if from the queue.
if out=$(invoke events/eventbridge/api-call-read.json --forge) || ! printf '%s' "$out" | grep -q ForgedMessages; then
  printf '  NOT REFUSED forged direct invocation: %s\n' "$out"; failures=$((failures + 1))
else
  printf '  refused %-46s %s\n' "a direct invocation with a made-up message" "$(printf '%s' "$out" | grep -o 'the ingest queue does not know[^"]*' | cut -c1-80)"
fi
[ "$failures" -eq 0 ] || { tail -50 "$OUT_DIR/lambda.log" >&2; die "$failures invocation(s) did not behave"; }

step "event history in $HISTORY_TABLE (global events stored once, shown in each of $SERVED_REGIONS; data events are not history)"
# 5 regional management events + 3 global ones, and the 4 trail changes
# made through the API above (create, selectors, start, the refused second
# create).
"$DEV" show-history --table "$HISTORY_TABLE" --expect 12

# Scheduled runs at simulated times: deliver 8 minutes from now (the
# events' windows are sealed by then), then for each of the next three hours
# H a deliver run at H+5 min and a digest run at H+10 min.
schedule() {  # schedule FUNCTION MINUTES_FROM_NOW_OR_@HOUR+MIN
  python3 - "$1" "$2" "$OUT_DIR/$1-event.json" <<'PY'
import datetime, json, sys
name, when, path = sys.argv[1:4]
now = datetime.datetime.now(datetime.timezone.utc)
if when.startswith("@"):
    hours, minutes = (int(x) for x in when[1:].split("+"))
    t = now.replace(minute=0, second=0, microsecond=0) + datetime.timedelta(hours=hours, minutes=minutes)
else:
    t = now + datetime.timedelta(minutes=int(when))
event = json.load(open(f"events/scheduled/{name}.json"))
event["time"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
json.dump(event, open(path, "w"))
print(event["time"])
PY
}
run_scheduled() {  # run_scheduled FUNCTION WHEN
  local at out
  at=$(schedule "$1" "$2")
  out=$(cargo lambda invoke "$1" --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --data-file "$OUT_DIR/$1-event.json" 2>&1) \
    || { echo "$out"; tail -50 "$OUT_DIR/lambda.log" >&2; die "$1 at $at failed"; }
  printf '  %-7s at %s  %s\n' "$1" "$at" "$out"
}

step "lookup: the AWS CLI's own CloudTrail client against the lookup function's URL (aws cloudtrail lookup-events --endpoint-url …)"
LOOKUP_URL=$(output LookupUrl)
aws cloudtrail lookup-events --endpoint-url "$LOOKUP_URL" --region "$AWS_REGION" \
  --lookup-attributes AttributeKey=EventName,AttributeValue=ConsoleLogin \
  --query 'Events[].[EventTime,EventName,Username,EventId]' --output text | sed 's/^/  /'
logins=$(aws cloudtrail lookup-events --endpoint-url "$LOOKUP_URL" --region "$AWS_REGION" \
  --lookup-attributes AttributeKey=EventName,AttributeValue=ConsoleLogin --query 'length(Events)')
[ "$logins" = 2 ] || die "lookup-events found $logins console sign-ins in $AWS_REGION, expected 2"
if aws cloudtrail lookup-events --endpoint-url "$LOOKUP_URL" --region "$AWS_REGION" --max-results 51 \
    >"$OUT_DIR/err.txt" 2>&1; then
  die "MaxResults 51 was accepted"
fi
printf '  refused as expected: %s\n' "$(grep -o 'InvalidMaxResultsException.*' "$OUT_DIR/err.txt" | head -1)"

step "trailkeep lookup-events (SigV4-signed, through the function URL) and export-history (reading the table)"
"$TRAILKEEP" lookup-events --endpoint-url "$LOOKUP_URL" \
  --lookup-attributes AttributeKey=Username,AttributeValue=bob --max-items 1 \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); [print("  ", e["EventTime"], e["EventName"], e["Username"]) for e in d["Events"]]; print("   NextToken:", "yes" if d.get("NextToken") else "no")'
"$TRAILKEEP" export-history --history-table "$HISTORY_TABLE" --region eu-west-1 --format csv \
  --output "$OUT_DIR/history-eu-west-1.csv"
sed 's/^/  /' "$OUT_DIR/history-eu-west-1.csv" | cut -c1-150
rows=$(($(wc -l <"$OUT_DIR/history-eu-west-1.csv") - 1))
[ "$rows" = 8 ] || die "export-history wrote $rows events for eu-west-1, expected 8"

step "deliver: a scheduled run 8 minutes from now, when the windows of the events above are sealed"
run_scheduled deliver 8

step "log files of trail org-audit in s3://$LOG_BUCKET"
# 8 management events (the re-delivery is not logged twice) + 5 S3 object
# events of example-uploads (the trail's data selector) + the 2 trail
# changes made while org-audit logged (its start-logging, the refused
# second create-trail).
"$DEV" show-logs --bucket "$LOG_BUCKET" --expect-records 15

step "digest: three simulated hours (deliver at H+5 min, digest at H+10 min); the last two have no deliveries"
for h in 1 2 3; do
  run_scheduled deliver "@$h+5"
  run_scheduled digest "@$h+10"
done

step "get-trail-status: what deliver and digest last did (through the API)"
"$TRAILKEEP" get-trail-status --name org-audit | tee "$OUT_DIR/status.json" | sed 's/^/  /'
python3 - "$OUT_DIR/status.json" <<'PY' || die "get-trail-status does not report the deliveries"
import json, sys
s = json.load(open(sys.argv[1]))
assert s.get("LatestDeliveryTime") and s.get("LatestDigestDeliveryTime"), s
assert "LatestDeliveryError" not in s and "LatestDigestDeliveryError" not in s, s
PY

TRAIL_ARN=$("$TRAILKEEP" get-trail --name org-audit | python3 -c 'import json,sys; print(json.load(sys.stdin)["Trail"]["TrailARN"])')
START=$(python3 -c 'import datetime as d; print((d.datetime.now(d.timezone.utc) - d.timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z"))')
END=$(python3 -c 'import datetime as d; print((d.datetime.now(d.timezone.utc) + d.timedelta(hours=3)).strftime("%Y-%m-%dT%H:15:00Z"))')

step "validate-logs (online: digests and logs from S3, the stack's signing key from KMS, chain heads from the state table)"
"$TRAILKEEP" validate-logs --trail-arn "$TRAIL_ARN" --start-time "$START" --end-time "$END" --verbose \
  --signing-key-arn "$SIGNING_KEY"

step "offline: list-public-keys --pem-dir, download-logs, validate-logs --local-dir --public-key"
rm -rf "$OUT_DIR/keys" "$OUT_DIR/copy"
"$TRAILKEEP" list-public-keys --signing-key-arn "$SIGNING_KEY" --pem-dir "$OUT_DIR/keys" | tee "$OUT_DIR/keys.json"
"$TRAILKEEP" download-logs --trail-arn "$TRAIL_ARN" --local-dir "$OUT_DIR/copy"
# One key signs every region here: it is listed with each region it signed.
python3 - "$OUT_DIR/keys.json" "$OUT_DIR/copy" <<'PY' || die "list-public-keys does not name every region the key signed"
import json, pathlib, sys
listed = json.load(open(sys.argv[1]))["PublicKeyList"]
signed = sorted({p.name for p in pathlib.Path(sys.argv[2]).glob("AWSLogs/*/CloudTrail-Digest/*")})
assert len(listed) == 1 and len(signed) >= 2, (listed, signed)
assert sorted(listed[0]["Regions"]) == signed, (listed[0]["Regions"], signed)
print("the key is listed with every region it signed:", ", ".join(signed))
PY
(
  unset TRAILKEEP_STATE_TABLE
  "$TRAILKEEP" validate-logs --trail-arn "$TRAIL_ARN" --start-time "$START" --end-time "$END" \
    --local-dir "$OUT_DIR/copy" --public-key "$OUT_DIR"/keys/*.pem
)

step "tampering is caught: a gzip member appended to one log file of the copy"
victim=$(find "$OUT_DIR/copy" -path '*/CloudTrail/*' -name '*.json.gz' | sort | head -1)
printf '{"Records":[]}' | gzip -n >>"$victim"
if (unset TRAILKEEP_STATE_TABLE; "$TRAILKEEP" validate-logs --trail-arn "$TRAIL_ARN" --start-time "$START" --end-time "$END" \
    --local-dir "$OUT_DIR/copy" --public-key "$OUT_DIR"/keys/*.pem) >"$OUT_DIR/tampered.txt" 2>&1; then
  cat "$OUT_DIR/tampered.txt"; die "validate-logs accepted a tampered log file"
fi
sed 's/^/  /' "$OUT_DIR/tampered.txt"
printf '  exit status non-zero, as expected\n'

step "trailkeep's API with the stock AWS CLI (aws trailkeep …, the model trailkeep install-aws-model installs), signed for lambda as a deployed function URL checks; every change is an event"
API_URL=$(output ApiUrl)
# The model, where botocore looks (AWS_DATA_PATH here; ~/.aws/models by default).
"$TRAILKEEP" install-aws-model --dir "$OUT_DIR/aws-models" | sed 's/^/  /'
export AWS_DATA_PATH="$OUT_DIR/aws-models"
# A loopback stand-in for the function URL's IAM auth: it verifies each
# SigV4 signature (scope lambda, the test credentials) before forwarding.
rm -f "$OUT_DIR/proxy.port"
python3 "$ROOT/scripts/sigv4_proxy.py" --upstream "$API_URL" --region "$AWS_REGION" --port-file "$OUT_DIR/proxy.port" \
  2>"$OUT_DIR/proxy.log" &
PROXY_PID=$!
for _ in $(seq 50); do [ -s "$OUT_DIR/proxy.port" ] && break; sleep 0.1; done
[ -s "$OUT_DIR/proxy.port" ] || die "the SigV4 proxy did not start"
SIGNED_URL="http://127.0.0.1:$(cat "$OUT_DIR/proxy.port")/lambda-url/lookup"
tk() { aws trailkeep --endpoint-url "$SIGNED_URL" --region "$AWS_REGION" "$@"; }
recorded() { tk lookup-events --lookup-attributes AttributeKey=EventSource,AttributeValue=trailkeep --query 'length(Events)'; }
changes_before=$(recorded)
tk create-trail --name api-audit --s3-bucket-name "$LOG_BUCKET" --enable-log-file-validation \
  --tags-list Key=team,Value=security \
  --query '[Name,TrailARN,LogFileValidationEnabled]' --output text | sed 's/^/  created   /'
tk put-event-selectors --trail-name api-audit --advanced-event-selectors \
  '[{"Name": "management writes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["false"]}]}]' \
  --query 'AdvancedEventSelectors[0].Name' --output text | sed 's/^/  selectors /'
API_TRAIL_ARN=$(tk get-trail --name api-audit --query Trail.TrailARN --output text)
tk add-tags --resource-id "$API_TRAIL_ARN" --tags-list Key=owner,Value=audit-team
tk list-tags --resource-id-list "$API_TRAIL_ARN" --query 'ResourceTagList[0].TagsList[].[Key,Value]' --output text \
  | sed 's/^/  tag       /'
tk start-logging --name api-audit
tk get-trail-status --name api-audit --query '[IsLogging,StartLoggingTime]' --output text | sed 's/^/  status    /'
tk list-trails --query 'Trails[].Name' --output text | sed 's/^/  trails    /'
tk describe-trails --trail-name-list api-audit \
  --query 'trailList[0].[Name,HomeRegion,HasCustomEventSelectors]' --output text | sed 's/^/  described /'
tk list-public-keys --query 'PublicKeyList[].[Fingerprint,ValidityStartTime,ValidityEndTime]' --output text \
  | sed 's/^/  key       /'
[ "$(tk list-public-keys --query 'length(PublicKeyList)')" = 1 ] || die "list-public-keys did not list the signing key"
tk stop-logging --name api-audit
[ "$(tk get-trail-status --name api-audit --query IsLogging)" = false ] || die "stop-logging did not stop api-audit"
stops=$(tk lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=StopLogging --query 'length(Events)')
[ "$stops" = 1 ] || die "lookup-events found $stops StopLogging events, expected 1"
tk lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=StopLogging \
  --query 'Events[0].CloudTrailEvent' --output json \
  | python3 -c 'import json,sys; e=json.loads(json.load(sys.stdin)); print("  recorded ", e["eventTime"], e["eventSource"], e["eventName"], e["recipientAccountId"], json.dumps(e["requestParameters"]))'
tk delete-trail --name api-audit
if tk get-trail --name api-audit >"$OUT_DIR/err.txt" 2>&1; then die "api-audit still exists after delete-trail"; fi
grep -q TrailNotFoundException "$OUT_DIR/err.txt" || { cat "$OUT_DIR/err.txt"; die "get-trail after delete: not TrailNotFoundException"; }
changes=$(($(recorded) - changes_before))
[ "$changes" = 6 ] || die "lookup-events found $changes new recorded API changes, expected 6 (create, selectors, add-tags, start, stop, delete)"
printf '  %s changes recorded in the history (eventSource trailkeep); %s in all, org-audit'"'"'s included\n' "$changes" "$(recorded)"
# boto3's client("trailkeep") with the model's paginator: pages of 2.
python3 - "$SIGNED_URL" <<'PY' | sed 's/^/  /'
import sys, boto3
client = boto3.client("trailkeep", endpoint_url=sys.argv[1])
pages = list(client.get_paginator("lookup_events").paginate(
    LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "trailkeep"}],
    PaginationConfig={"PageSize": 2}))
events = sum(len(p["Events"]) for p in pages)
assert len(pages) > 1 and events > 2, (len(pages), events)
print("boto3 client('trailkeep'): %d recorded changes in %d pages of at most 2" % (events, len(pages)))
PY
# The stand-in refuses what a function URL refuses: a request signed for
# cloudtrail (as `aws cloudtrail` signs), a signature by another secret,
# one for another region.
if aws cloudtrail describe-trails --endpoint-url "$SIGNED_URL" --region "$AWS_REGION" >"$OUT_DIR/err.txt" 2>&1; then
  die "a request signed for cloudtrail passed the SigV4 check"
fi
printf '  refused as expected: %s\n' "$(grep -o 'Forbidden.*' "$OUT_DIR/err.txt" | head -1)"
if AWS_SECRET_ACCESS_KEY=not-the-secret tk describe-trails >"$OUT_DIR/err.txt" 2>&1; then
  die "a request signed with another secret passed the SigV4 check"
fi
printf '  refused as expected: %s\n' "$(grep -o 'Forbidden.*' "$OUT_DIR/err.txt" | head -1)"
other_region=$([ "$AWS_REGION" = eu-west-1 ] && echo us-east-1 || echo eu-west-1)
if aws trailkeep describe-trails --endpoint-url "$SIGNED_URL" --region "$other_region" >"$OUT_DIR/err.txt" 2>&1; then
  die "a request signed for another region passed the SigV4 check"
fi
printf '  refused as expected: %s\n' "$(grep -o 'Forbidden.*' "$OUT_DIR/err.txt" | head -1)"
printf '  SigV4 (scope lambda) verified on %s requests, refused on %s\n' \
  "$(grep -c verified "$OUT_DIR/proxy.log")" "$(grep -c refused "$OUT_DIR/proxy.log")"
kill "$PROXY_PID" 2>/dev/null || true
wait "$PROXY_PID" 2>/dev/null || true
PROXY_PID=

if [ "${CONSOLE_TEST:-}" = 1 ]; then
  step "trailkeep console in headless chromium (tests/console_test.py): filter, load more, expand, downloads, trails, validate now, hostile input, secrets"
  ensure_chromium
  CONSOLE_PORT=$(free_port)
  # Credentials of its own, for the console process only (the local function
  # URL checks no signature): none of them may show in a page, a download or
  # its log. "Validate now" trusts the stack's signing key, as validate-logs
  # above, and reads chain heads from TRAILKEEP_STATE_TABLE.
  console_secret=console-secret-$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  console_session=console-session-$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  AWS_ACCESS_KEY_ID=AKIACONSOLETEST00001 AWS_SECRET_ACCESS_KEY="$console_secret" AWS_SESSION_TOKEN="$console_session" \
    "$TRAILKEEP" console --port "$CONSOLE_PORT" --api-url "$(output ApiUrl)" --regions "$SERVED_REGIONS" \
    --signing-key-arn "$SIGNING_KEY" >"$OUT_DIR/console.log" 2>&1 &
  CONSOLE_PID=$!
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$CONSOLE_PORT/events" -o /dev/null 2>/dev/null && break
    kill -0 "$CONSOLE_PID" 2>/dev/null || { cat "$OUT_DIR/console.log" >&2; die "trailkeep console exited"; }
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$CONSOLE_PORT/events" -o /dev/null \
    || { cat "$OUT_DIR/console.log" >&2; die "trailkeep console did not answer on port $CONSOLE_PORT within 30 s"; }
  printf '  trailkeep console on http://127.0.0.1:%s (pid %s, log %s)\n' "$CONSOLE_PORT" "$CONSOLE_PID" "$OUT_DIR/console.log"
  rm -rf "$OUT_DIR/console"
  python3 tests/console_test.py --console-url "http://127.0.0.1:$CONSOLE_PORT" --api-url "$(output ApiUrl)" \
    --trailkeep "$TRAILKEEP" --out-dir "$OUT_DIR/console" --console-log "$OUT_DIR/console.log" \
    --validate-start "$START" --validate-end "$END" \
    --secret "$console_secret" --secret "$console_session" \
    --secret "$(sed -n 's/^LOOKUP_TOKEN_KEY=//p' "$OUT_DIR/functions.env")" 2>&1 | sed 's/^/  /' \
    || { tail -30 "$OUT_DIR/console.log" >&2; die "the console's browser test failed (screenshots in $OUT_DIR/console, log $OUT_DIR/console.log)"; }
  kill "$CONSOLE_PID" 2>/dev/null || true
  wait "$CONSOLE_PID" 2>/dev/null || true
  CONSOLE_PID=
fi

step "done: stack outputs (template.yaml's Output names) in $OUTPUTS; function logs in $OUT_DIR/lambda.log"
sed 's/^/  /' "$OUTPUTS"
# This stack stops when the script exits: the command is for a running one.
printf '  to browse a stack in a browser: trailkeep console --api-url URL --regions %s --signing-key-arn ARN\n' "$SERVED_REGIONS"
printf '    (its ApiUrl and SigningKeyArn outputs, here %s and %s; README "Browse it")\n' "$(output ApiUrl)" "$SIGNING_KEY"
