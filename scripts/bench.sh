#!/usr/bin/env bash
# Runs the benchmarks and rewrites the results table in BENCHMARKS.md.
# Usage: scripts/bench.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

step "criterion: normalization per trigger shape"
cargo bench --locked -p trailkeep-shared --bench normalize -- --warm-up-time 1 --measurement-time 3

step "criterion: log file assembly"
cargo bench --locked -p trailkeep-shared --bench logfile -- --warm-up-time 1 --measurement-time 5

step "writing BENCHMARKS.md"
python3 - "$CARGO_TARGET_DIR/criterion" <<'PY'
import json, os, platform, subprocess, sys
crit = sys.argv[1]
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
machine = f"{os.cpu_count()} cores, {cpu}, {platform.machine()}"
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
def mean_ns(group, case):
    est = os.path.join(crit, group, case, "new", "estimates.json")
    if not os.path.exists(est):
        return None
    m = json.load(open(est))["mean"]
    return m["point_estimate"], m["confidence_interval"]["lower_bound"], m["confidence_interval"]["upper_bound"]

rows = []
for shape in sorted(os.listdir(os.path.join(crit, "normalize"))):
    ours = mean_ns("normalize", shape)
    if ours is None:
        continue
    mean, lo, hi = ours
    base = mean_ns("baseline-parse-value", shape)
    base_txt = f"{base[0]/1000:.2f} µs to parse the bytes into a serde_json::Value" if base else "n/a"
    ratio = f"{mean/base[0]:.2f}× the parse" if base else "n/a"
    rows.append(f"| normalize: {shape} (payload bytes → classified, serialized record) | "
                f"{mean/1000:.2f} µs/event ({lo/1000:.2f}–{hi/1000:.2f}); {1e9/mean:,.0f} events/s/core | "
                f"{base_txt}; target: a few µs | {ratio} | {machine} | "
                f"`cargo bench -p trailkeep-shared --bench normalize` |")
ours, base = mean_ns("logfile-assembly", "trailkeep"), mean_ns("logfile-assembly", "baseline-serde-json-gzip")
if ours and base:
    n = 10_000
    rows.append(f"| log file assembly: sort + concatenate + SHA-256 + gzip of 10,000 records (one core) | "
                f"{n/ours[0]*1e9:,.0f} records/s | baseline serde_json `{{\"Records\":[…]}}` + gzip: {n/base[0]*1e9:,.0f} records/s; target ≥ 100,000 records/s | "
                f"{base[0]/ours[0]:.2f}× the baseline's speed | {machine} | `cargo bench -p trailkeep-shared --bench logfile` |")

out = f"""# Benchmarks

Rewritten by `scripts/bench.sh` (which runs every benchmark listed here);
numbers from one run on the machine named in each row. criterion reports
the mean with its 95% confidence interval. {rustc}, release profile
(LTO, 1 codegen unit).

| what | figure | baseline (same run) / target | ratio | machine | command |
|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
open("BENCHMARKS.md", "w").write(out)
print(out)
PY
