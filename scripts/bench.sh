#!/usr/bin/env bash
# Runs the benchmarks and rewrites the results table in BENCHMARKS.md.
# Usage: scripts/bench.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

step "criterion: normalization per trigger shape"
cargo bench --locked -p trailkeep-shared --bench normalize -- --warm-up-time 1 --measurement-time 3

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
rows = []
group = os.path.join(crit, "normalize")
for shape in sorted(os.listdir(group)):
    est = os.path.join(group, shape, "new", "estimates.json")
    if not os.path.exists(est):
        continue
    e = json.load(open(est))
    mean_ns = e["mean"]["point_estimate"]
    lo = e["mean"]["confidence_interval"]["lower_bound"]
    hi = e["mean"]["confidence_interval"]["upper_bound"]
    rows.append(f"| normalize: {shape} (payload bytes → classified, serialized record) | "
                f"{mean_ns/1000:.2f} µs/event ({lo/1000:.2f}–{hi/1000:.2f}) | target: a few µs | "
                f"{1e9/mean_ns:,.0f} events/s/core | {machine} | `cargo bench -p trailkeep-shared --bench normalize` |")
out = f"""# Benchmarks

Rewritten by `scripts/bench.sh` (which runs every benchmark listed here);
numbers from one run on the machine named in each row. criterion reports
the mean with its 95% confidence interval. {rustc}, release profile
(LTO, 1 codegen unit).

| what | figure | baseline / target | ratio / rate | machine | command |
|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
open("BENCHMARKS.md", "w").write(out)
print(out)
PY
