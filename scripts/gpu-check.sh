#!/usr/bin/env bash
# The GPU check: runs the GPU tests, trains the digits and MNIST-1D CNN examples on the
# GPU, and reports step times, on a machine with an NVIDIA GPU and its driver.
#
#   bash scripts/gpu-check.sh              # builds with cargo first (needs Rust + LLVM 22)
#   ARCHC_PREBUILT=DIR bash scripts/gpu-check.sh
#                                          # uses binaries built elsewhere: DIR/archc and the
#                                          # test executables DIR/test-mlir, DIR/test-ops
#
# Data: `make data` (or a copied data/ folder). Everything it prints is the report.
set -uo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
status=0
# ARCHC_STEP_TIMEOUT=SECONDS bounds each command (default 240; 0: unbounded).
limit=${ARCHC_STEP_TIMEOUT:-240}
bounded() { if [ "$limit" -gt 0 ]; then timeout "$limit" "$@"; else "$@"; fi; }
run() {
  local rc=0
  bounded "$@" || rc=$?
  [ $rc -eq 0 ] || { echo "FAILED (exit $rc): $*"; status=1; }
}

# Seconds since the epoch, for step timings.
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "took %.1f s\n", b - a }'; }
started=$(now)

if [ -n "${ARCHC_PREBUILT:-}" ]; then
  bin="$ARCHC_PREBUILT"
else
  step "build"
  cargo build --release --bin archc || exit 1
  cargo test --release --no-run --test mlir -p archc 2>&1 | tail -n 3
  cargo test --release --no-run --test ops -p archc-mlir 2>&1 | tail -n 3
  cargo test --release --no-run -p archc-cuda 2>&1 | tail -n 3
  bin=target/release
  latest() { ls -t target/release/deps/"$1"-* | grep -v '\.d$' | head -n1; }
  ln -sf "$(latest mlir)" "$bin/test-mlir"
  ln -sf "$(latest ops)" "$bin/test-ops"
  ln -sf "$(latest driver)" "$bin/test-cuda-driver"
  ln -sf "$(latest blas)" "$bin/test-cuda-blas"
  cargo build --release --no-default-features --target-dir target/lite || exit 1
  ln -sf "$PWD/target/lite/release/archc" "$bin/archc-lite"
  "$bin/archc" build examples/train_digits.arch --train --target cuda -o "$bin/digits-cuda.archx" || exit 1
fi

archc="$bin/archc"
step "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi failed"
run "$archc" devices

step "the CUDA runtime: driver, kernels through the mgpu ABI, cuBLAS products and copies"
run "$bin/test-cuda-driver" --test-threads=1
run "$bin/test-cuda-blas" --test-threads=1 --nocapture

step "smoke: the MLP forward on mlir-gpu and on mlir-cpu"
run "$archc" run examples/mlp.arch --backend mlir-gpu --seed 3
run "$archc" run examples/mlp.arch --backend mlir-cpu --seed 3

# One process per test (a GPU fault poisons the CUDA context of its process), all at once:
# they spend most of their time compiling on the host, and only check values. Each one's
# output is printed in the order below once all have finished.
logs="$(mktemp -d)"
names=()
par() { # par NAME TITLE COMMAND...: COMMAND in the background, output in $logs/NAME
  local name=$1 title=$2
  shift 2
  names+=("$name")
  printf '%s' "$title" > "$logs/$name.title"
  (
    rc=0
    bounded "$@" || rc=$?
    echo "$rc" > "$logs/$name.rc"
  ) > "$logs/$name.log" 2>&1 &
}
step "GPU tests: eight processes at once"
t=$(now)
par examples "GPU tests: every example's forward vs the interpreter (device memory, graphs: the default)" \
  "$bin/test-mlir" gpu_every_example --nocapture --test-threads=1
par examples-managed "GPU tests: every example's forward vs the interpreter (ARCHC_GPU_MEMORY=managed)" \
  env ARCHC_GPU_MEMORY=managed "$bin/test-mlir" gpu_every_example --nocapture --test-threads=1
par train "GPU tests: every training example's train-step gradients vs the interpreter (the default)" \
  "$bin/test-mlir" gpu_train_step --nocapture --test-threads=1
par train-managed "GPU tests: every training example's train-step gradients vs the interpreter (ARCHC_GPU_MEMORY=managed)" \
  env ARCHC_GPU_MEMORY=managed "$bin/test-mlir" gpu_train_step --nocapture --test-threads=1
par graphs "GPU tests: train steps launched, then captured and replayed as CUDA graphs, three runs each" \
  "$bin/test-mlir" gpu_graph --nocapture --test-threads=1
par ops "GPU tests: every primitive op vs the interpreter (the default)" \
  env ARCHC_OPS_BACKEND=mlir-gpu "$bin/test-ops" --test-threads=1
par ops-managed "GPU tests: every primitive op vs the interpreter (ARCHC_GPU_MEMORY=managed)" \
  env ARCHC_OPS_BACKEND=mlir-gpu ARCHC_GPU_MEMORY=managed "$bin/test-ops" --test-threads=1
par ops-async "GPU tests: every primitive op, managed memory with launches left unsynchronised (ARCHC_GPU_ASYNC=1)" \
  env ARCHC_OPS_BACKEND=mlir-gpu ARCHC_GPU_MEMORY=managed ARCHC_GPU_ASYNC=1 "$bin/test-ops" --test-threads=1
wait
took "$t"
for name in "${names[@]}"; do
  step "$(cat "$logs/$name.title")"
  cat "$logs/$name.log"
  rc=$(cat "$logs/$name.rc" 2>/dev/null || echo "?")
  [ "$rc" = 0 ] || { echo "FAILED (exit $rc): $name"; status=1; }
done

# ARCHC_GPU_PROFILE=1: each compiled function reports its runs' mean time and counted
# work (launches, waits, driver allocations, cuBLAS calls, copies, graph replays).
export ARCHC_GPU_PROFILE=1
step "train digits MLP on the GPU: managed memory, a wait after each launch (ARCHC_GPU_MEMORY=managed)"
t=$(now)
ARCHC_GPU_MEMORY=managed run "$archc" train examples/train_digits.arch --backend mlir-gpu --quiet \
  --out /tmp/archc-gpu-digits-managed --overwrite
took "$t"

step "train digits MLP on the GPU: device memory without graphs (ARCHC_GPU_GRAPH=0)"
t=$(now)
ARCHC_GPU_GRAPH=0 run "$archc" train examples/train_digits.arch --backend mlir-gpu --quiet \
  --out /tmp/archc-gpu-digits-device --overwrite
took "$t"

step "train digits MLP on the GPU: device memory, steps replayed as CUDA graphs (the default)"
t=$(now)
run "$archc" train examples/train_digits.arch --backend mlir-gpu --quiet --out /tmp/archc-gpu-digits --overwrite
took "$t"
unset ARCHC_GPU_PROFILE

step "a CUDA artifact: archc without LLVM trains the digits MLP from digits-cuda.archx"
t=$(now)
run "$bin/archc-lite" train "$bin/digits-cuda.archx" --quiet --out /tmp/archc-gpu-digits-aot --overwrite
took "$t"

step "train MNIST-1D CNN on the GPU (ARCHC_CNN_EPOCHS, default 150 as in the example)"
t=$(now)
run "$archc" train examples/train_mnist1d_cnn.arch --backend mlir-gpu --quiet --out /tmp/archc-gpu-cnn --overwrite \
  --epochs "${ARCHC_CNN_EPOCHS:-150}"
took "$t"

# PyTorch in three modes: eager, torch.compile's default and reduce-overhead (CUDA graphs);
# each compiled mode compiles for about 15 s per workload on an H200 machine.
step "GPU benchmark: archc train steps (managed, graph) vs PyTorch eager / compile / reduce-overhead"
run python3 scripts/bench_gpu.py --archc "$archc" --steps "${ARCHC_BENCH_STEPS:-30}" \
  --archc-modes "${ARCHC_BENCH_MODES:-managed,graph}" \
  --torch-modes "${ARCHC_TORCH_MODES:-eager,compile,reduce-overhead}"

# ARCHC_GPU_PROFILE=kernels: the GPU time of every launch, cuBLAS call and copy, timed with
# CUDA events (device memory without graphs, so that each piece is timed on its own).
step "where the GPU time goes: the benchmark's train steps, the 20 longest pieces of work each"
for w in "gpu_mlp" "gpu_fno1d --dim N=1024" "gpu_transformer --dim T=256"; do
  set -- $w
  ARCHC_GPU_GRAPH=0 ARCHC_GPU_PROFILE=kernels run "$archc" train "scripts/bench/$1.arch" \
    --backend mlir-gpu --time-steps 10 "${@:2}"
done

step "forward times with graphs (archc run --repeat, median)"
run "$archc" run examples/mlp.arch --backend mlir-gpu --dim B=256 --repeat 20
run "$archc" run examples/fno1d.arch --backend mlir-gpu --dim B=32,N=1024 --repeat 20

step "done"
printf 'gpu-check: '; took "$started"
[ $status -eq 0 ] && echo "gpu-check: all passed" || echo "gpu-check: FAILURES above"
exit $status
