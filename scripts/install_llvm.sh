#!/usr/bin/env bash
# Installs LLVM/MLIR 22 (Debian/Ubuntu packages) when it is missing: the libraries the
# MLIR backend links (melior / mlir-sys) and mlir-opt-22 for the verification test; and
# OpenBLAS, which archc opens at run time for CPU matrix products when it is present.
# Idempotent and quiet when everything is present. Uses sudo when not root.
set -euo pipefail

PREFIX=/usr/lib/llvm-22
PKGS="llvm-22-dev libmlir-22-dev mlir-22-tools libclang-22-dev libpolly-22-dev libzstd-dev zlib1g-dev build-essential libopenblas0-pthread"

have() {
    [ -f "$PREFIX/lib/libMLIRCAPIIR.a" ] && [ -x "$PREFIX/bin/mlir-opt" ] && [ -f "$PREFIX/lib/libPolly.a" ] \
        && [ -f "$PREFIX/lib/libclang-22.so" ]
}

if have && dpkg -s libzstd-dev zlib1g-dev libopenblas0-pthread >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install_llvm: need root or sudo to install: $PKGS" >&2; exit 1; }
    SUDO=sudo
fi
echo "install_llvm: installing LLVM/MLIR 22 ($PKGS)"
$SUDO apt-get update -qq
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PKGS >/tmp/install_llvm.log 2>&1; then
    tail -20 /tmp/install_llvm.log >&2
    echo "install_llvm: apt could not install LLVM/MLIR 22. On Debian 12 it comes from bookworm(-security);" >&2
    echo "install_llvm: elsewhere add https://apt.llvm.org (llvm.sh 22), or build with --no-default-features (no MLIR backend)." >&2
    exit 1
fi
# The downloaded packages are not needed once installed: free their disk for the build.
$SUDO apt-get clean || true
have || { echo "install_llvm: packages installed but $PREFIX is incomplete" >&2; exit 1; }
echo "install_llvm: done ($($PREFIX/bin/llvm-config --version))"
