#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs onto a GPU machine without Rust or LLVM: the
# release archc, archc without LLVM with a CUDA artifact of the digits train step, the
# GPU test executables (stripped), and the data sets, as one
# xz tarball (the three binaries share most of their bytes; a large dictionary makes
# the second and third cost a few MB).
#
#   bash scripts/gpu-bundle.sh DIR      # writes DIR/bundle.tar.xz
# On the GPU machine, from the repository root of the same commit:
#   bash scripts/gpu-from-bundle.sh DIR/bundle.tar.xz
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: gpu-bundle.sh DIR}"
mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cargo build --release --locked --bin archc
exe() { cargo test --release --locked "$@" --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))/\1/p' | tail -n1; }
cp target/release/archc "$stage/archc"
# archc without LLVM, and a CUDA artifact of the digits train step for it to train from.
cargo build --release --locked --no-default-features --target-dir target/lite
cp target/lite/release/archc "$stage/archc-lite"
target/release/archc build examples/train_digits.arch --train --target cuda --gpu-arch sm_80 \
  -o "$stage/digits-cuda.archx"
cp "$(exe --test mlir -p archc)" "$stage/test-mlir"
cp "$(exe --test ops -p archc-mlir)" "$stage/test-ops"
cp "$(exe --test driver -p archc-cuda)" "$stage/test-cuda-driver"
cp "$(exe --test blas -p archc-cuda)" "$stage/test-cuda-blas"
strip "$stage"/archc "$stage"/archc-lite "$stage"/test-*
pwd > "$stage/build-root"
mkdir -p "$stage/data"
cp data/*.gz data/*.npz data/*.pt "$stage/data/" 2>/dev/null || true
# preset 9e: 53.7 MB instead of 60.8 MB at preset 2 (ten minutes on two cores instead of
# two), which keeps the bundle and the checkout within the GPU machine's 64 MiB.
tar cf - -C "$stage" . | xz -T1 --lzma2=preset=9e,dict=512MiB > "$out/bundle.tar.xz"
ls -la "$out/bundle.tar.xz"
