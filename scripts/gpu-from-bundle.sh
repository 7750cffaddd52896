#!/usr/bin/env bash
# Runs scripts/gpu-check.sh with the prebuilt binaries of a bundle from
# scripts/gpu-bundle.sh, on a GPU machine without Rust or LLVM, from the repository root
# of a checkout of the same commit:
#
#   bash scripts/gpu-from-bundle.sh DIR/bundle.tar.xz
#
# The test executables find examples/ and the fixtures through the path they were built
# at (recorded in the bundle as build-root); when that path does not exist here, it is
# made a link to this checkout. Everything it prints is gpu-check's report.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:?usage: gpu-from-bundle.sh BUNDLE}"
bin="$(mktemp -d)"
tar xJf "$bundle" -C "$bin"
root="$(cat "$bin/build-root" 2>/dev/null || true)"
if [ -n "$root" ] && [ ! -e "$root" ]; then
  mkdir -p "$(dirname "$root")"
  ln -s "$PWD" "$root"
fi
ARCHC_DATA="$bin/data" ARCHC_PREBUILT="$bin" exec bash scripts/gpu-check.sh
