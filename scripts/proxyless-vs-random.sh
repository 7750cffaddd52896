#!/usr/bin/env bash
# ProxylessNAS against random search under one latency bound, on MNIST-1D:
#   1. `archc supernet proxyless` learns the choices of examples/proxyless_space.arch
#      under the bound and prints the derived subnet;
#   2. the derived subnet is trained from scratch with the train block's budget;
#   3. `archc search --strategy random` trains 20 random candidates that meet the same
#      bound (measured the same way) with the same budget.
# Usage: scripts/proxyless-vs-random.sh [BOUND_MS] [BACKEND]   (default 2.0 cranelift)
# SPACE and OUT (environment) replace the space file and the output folder.
set -euo pipefail
bound=${1:-2.0}
backend=${2:-cranelift}
space=${SPACE:-examples/proxyless_space.arch}
out=${OUT:-runs/proxyless-vs-random}
archc=${ARCHC:-target/release/archc}
mkdir -p "$out"
epochs=$(sed -n 's/^ *epochs: *\([0-9]*\).*/\1/p' "$space" | head -1)

"$archc" supernet proxyless "$space" --latency-bound "$bound" --backend "$backend" \
    --out "$out/proxyless" | tee "$out/proxyless.txt"
derived=$(sed -n 's/^derived: \([^ ]*\) .*/\1/p' "$out/proxyless.txt")
"$archc" train "$space" --choices "$derived" --backend "$backend" --out "$out/derived" \
    2>&1 | tee "$out/derived.txt" | tail -3
"$archc" search "$space" --strategy random --budget 20 --objective accuracy,latency \
    --train-epochs "$epochs" --max-latency "$bound" --backend "$backend" --out "$out/random" \
    --overwrite --quiet | tee "$out/random.txt" | tail -3
python3 - "$out" <<'PY'
import json, sys, re
out = sys.argv[1]
trials = [json.loads(l) for l in open(f"{out}/random/trials.jsonl")]
scored = [t for t in trials if t.get("metrics", {}).get("accuracy") is not None]
best = max(scored, key=lambda t: t["metrics"]["accuracy"])
print(f"random: {len(scored)} candidates under the bound; best accuracy {best['metrics']['accuracy']:.4f}")
PY
