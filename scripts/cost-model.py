#!/usr/bin/env python3
"""Prices the per-event measurements of tests/integration/cost.rs.

Usage: scripts/cost-model.py [cost-model.json]
(default: $CARGO_TARGET_DIR/tmp/cost-model.json, written by
`cargo test -p trailkeep-tests --test integration cost::` against moto).

Prints a Markdown table of dollars per million events, by service, for
management events and for data events, each at the two rates the test
measures (100 and 10,000 events a minute), beside CloudTrail's prices. The
measured quantities are requests, DynamoDB capacity units and bytes; the
prices and the few assumptions (Lambda durations) are below, in one place.
"""

import json
import os
import sys

# us-east-1 list prices, on demand (checked 2026-11; see docs/cost.md).
PRICE = {
    "lambda_request": 0.20 / 1e6,            # per invocation
    "lambda_gb_second_arm": 0.0000133334,    # per GB-second, arm64
    "dynamodb_wru": 0.625 / 1e6,             # per write request unit
    "dynamodb_rru": 0.125 / 1e6,             # per read request unit
    "dynamodb_gb_month": 0.25,               # storage
    "s3_put": 0.005 / 1000,                  # PUT, COPY, POST, LIST
    "s3_get": 0.0004 / 1000,                 # GET and others
    "s3_gb_month": 0.023,                    # S3 Standard
    "kms_request": 0.03 / 10000,
    "sqs_request": 0.40 / 1e6,               # standard queue, per request
    "cloudtrail_management_copy": 2.00 / 100000,  # each copy after the first
    "cloudtrail_data": 0.10 / 100000,
}

# Assumptions, not measurements: the time a function spends per AWS call
# (in-region latency) and the functions' memory (template.yaml).
MS_PER_CALL = {"dynamodb": 6.0, "s3": 25.0, "kms": 15.0}
MEMORY_GB = {"ingest": 0.25, "deliver": 0.5, "digest": 0.5}
CPU_MS_PER_EVENT = 0.05  # normalization + assembly: tens of µs (BENCHMARKS.md)
HISTORY_MONTHS = 3       # RetentionDays 90
STATE_MONTHS = 7 / 30    # staged copies and delivery markers: a week
LOG_MONTHS = 12          # one year of log files in S3 (choose your own)


def per_million(m):
    n = m["events"]
    out = {}
    wru = rru = 0.0
    lambda_gb_s = 0.0
    s3_put = s3_get = 0
    for function in ("ingest", "deliver", "digest"):
        ms = 0.0
        for action, s in m[function].items():
            service = action.split(":")[0]
            wru += s["writeUnits"]
            rru += s["readUnits"]
            ms += s["requests"] * MS_PER_CALL[service]
            if action == "s3:PutObject":
                s3_put += s["requests"]
            elif action == "s3:GetObject":
                s3_get += s["requests"]
        lambda_gb_s += (ms + CPU_MS_PER_EVENT * n) / 1000 * MEMORY_GB[function]
    scale = 1e6 / n
    out["Lambda: ingest invocations (one per queue batch)"] = (
        PRICE["lambda_request"] * m["ingestInvocations"] * scale
    )
    out["SQS: ingest queue (a send per event; per 10 a receive, delete, confirmation)"] = (
        PRICE["sqs_request"] * m["sqsRequests"] * scale
    )
    out["Lambda: duration (all three functions)"] = lambda_gb_s * scale * PRICE["lambda_gb_second_arm"]
    out["DynamoDB: writes"] = wru * scale * PRICE["dynamodb_wru"]
    out["DynamoDB: reads"] = rru * scale * PRICE["dynamodb_rru"]
    out["DynamoDB: history storage for 90 days"] = (
        m["historyItemBytes"] * scale / 1e9 * PRICE["dynamodb_gb_month"] * HISTORY_MONTHS
    )
    out["DynamoDB: staging and markers for a week"] = (
        m["stateItemBytes"] * scale / 1e9 * PRICE["dynamodb_gb_month"] * STATE_MONTHS
    )
    out["S3: requests (log file PUTs, digest re-reads)"] = (
        (s3_put * PRICE["s3_put"] + s3_get * PRICE["s3_get"]) * scale
    )
    out[f"S3: log files stored for {LOG_MONTHS} months"] = (
        m["logBytesGzipped"] * scale / 1e9 * PRICE["s3_gb_month"] * LOG_MONTHS
    )
    quantities = {
        "WRU/event": wru / n,
        "RRU/event": rru / n,
        "history bytes/event": m["historyItemBytes"] / n,
        "log bytes/event (gzipped)": m["logBytesGzipped"] / n,
        "requests/event": sum(
            s["requests"] for f in ("ingest", "deliver", "digest") for s in m[f].values()
        ) / n,
    }
    return out, quantities


def main():
    default = os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/trailkeep/target")),
        "tmp",
        "cost-model.json",
    )
    path = sys.argv[1] if len(sys.argv) > 1 else default
    data = json.load(open(path))
    if not all("@" in k for k in data):
        sys.exit(f"{path}: written by an older cost test (no per-rate keys); run the cost:: test again")
    # management@100, management@10000, realistic@…, data@…
    kinds = ["management", "realistic", "data"]
    columns = sorted(data, key=lambda k: (kinds.index(k.split("@")[0]), int(k.split("@")[1])))
    rows, quantities = {}, {}
    for c in columns:
        rows[c], quantities[c] = per_million(data[c])

    def label(c):
        kind, rate = c.split("@")
        return f"{kind}, {int(rate):,}/min"

    print("| per million events | " + " | ".join(label(c) for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for item in rows[columns[0]]:
        print(f"| {item} | " + " | ".join(f"${rows[c][item]:,.2f}" for c in columns) + " |")
    total = {c: sum(v.values()) for c, v in rows.items()}
    print("| **trailkeep, total** | " + " | ".join(f"**${total[c]:,.2f}**" for c in columns) + " |")
    cloudtrail = {
        "management": f"$0.00 first copy, ${PRICE['cloudtrail_management_copy'] * 1e6:,.2f} each further",
        "realistic": f"$0.00 first copy, ${PRICE['cloudtrail_management_copy'] * 1e6:,.2f} each further",
        "data": f"${PRICE['cloudtrail_data'] * 1e6:,.2f}",
    }
    print("| CloudTrail trail delivery | " + " | ".join(cloudtrail[c.split("@")[0]] for c in columns) + " |")
    print()
    print("| measured | " + " | ".join(label(c) for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for q in quantities[columns[0]]:
        print(f"| {q} | " + " | ".join(f"{quantities[c][q]:,.2f}" for c in columns) + " |")
    # Where the index's items come from (written since 2026-12-04).
    history = [c for c in columns if data[c].get("historyCopies") and "indexItemsByAttribute" in data[c]]
    if history:
        print()
        print("| index items per history event | " + " | ".join(label(c) for c in history) + " |")
        print("|---|" + "---:|" * len(history))
        attributes = sorted({a for c in history for a in data[c]["indexItemsByAttribute"]})
        for a in attributes:
            print(f"| {a} | " + " | ".join(
                f"{data[c]['indexItemsByAttribute'].get(a, 0) / data[c]['historyCopies']:,.2f}" for c in history
            ) + " |")
        print("| **all** | " + " | ".join(
            f"**{sum(data[c]['indexItemsByAttribute'].values()) / data[c]['historyCopies']:,.2f}**" for c in history
        ) + " |")
        print("| one item per value and batch, whatever the bucket (a bound) | " + " | ".join(
            f"{data[c]['indexItemsOnePerBatchAndValue'] / data[c]['historyCopies']:,.2f}" for c in history
        ) + " |")


if __name__ == "__main__":
    main()
