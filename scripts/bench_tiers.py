#!/usr/bin/env python3
"""Benchmark of archc's CPU tiers: compile times (Cranelift against MLIR) and the time a
whole training process takes to its first epoch and to its end, per backend.

Usage: `make bench-tiers` (builds archc and fetches the data first), or from the
repository root after `make build data`:

    python3 scripts/bench_tiers.py                 # 5 rounds
    python3 scripts/bench_tiers.py --rounds 9 --long-epochs 60

Not part of CI; the standard library only. Run speed on Cranelift as a ratio to mlir-cpu
is `make bench BENCH_ARGS="--backends mlir-cpu,cranelift,auto"`.

- compile: `archc build FILE --train --emit mlir --timings`, which compiles the train
  step with each tier and prints both times (Cranelift: the whole compile; MLIR: parse
  and verify, passes, LLVM JIT). Medians over the rounds.
- first epoch: the wall time of a whole `archc train examples/train_digits.arch
  --epochs 1` process (start-up, data, compiles, one epoch with its test evaluation and
  checkpoint) on each backend; `--long-epochs` epochs likewise, the whole run. The
  backends alternate within each round; medians over the rounds.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench import cpu_vector_flags  # scripts/bench.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPILE = ["examples/train_mnist1d_cnn.arch", "examples/bench_mnist5k.arch", "examples/train_digits.arch"]
TRAIN = "examples/train_digits.arch"
BACKENDS = ["auto", "cranelift", "mlir-cpu"]
CLIF_RE = re.compile(r"Cranelift ([\d.]+) ms")
MLIR_RE = re.compile(r"MLIR parse \+ verify ([\d.]+) ms, passes ([\d.]+) ms, LLVM JIT ([\d.]+) ms")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archc", default=os.path.join(ROOT, "target", "release", "archc"),
                   help="the archc binary (default target/release/archc)")
    p.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    p.add_argument("--long-epochs", type=int, default=30,
                   help="epochs of the long training run (default 30, the file's own)")
    args = p.parse_args()
    if args.rounds < 1 or args.long_epochs < 1:
        p.error("--rounds and --long-epochs must be >= 1")
    return args


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"bench_tiers: {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def compile_times(archc, path):
    """(Cranelift ms, MLIR ms) of one `build --timings` of the file's train step."""
    r = run([archc, "build", path, "--train", "--emit", "mlir", "--timings"])
    c, m = CLIF_RE.search(r.stderr), MLIR_RE.search(r.stderr)
    if not (c and m):
        sys.exit(f"bench_tiers: no timings in the output of `archc build {path}`:\n{r.stderr}")
    return float(c.group(1)), sum(float(x) for x in m.groups())


def train_wall(archc, backend, epochs, out):
    """Seconds of a whole `archc train` process."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    run([archc, "train", TRAIN, "--backend", backend, "--epochs", str(epochs), "--out", out, "--quiet"])
    return time.perf_counter() - t0


def main():
    args = parse_args()
    archc = os.path.abspath(args.archc)
    if not os.access(archc, os.X_OK):
        sys.exit(f"bench_tiers: {archc} not found: run `make build` (or `make bench-tiers`)")
    print(f"archc: {archc}; {os.cpu_count()} CPUs ({cpu_vector_flags()}); {args.rounds} rounds\n")
    comp = {p: ([], []) for p in COMPILE}
    walls = {(b, e): [] for b in BACKENDS for e in (1, args.long_epochs)}
    with tempfile.TemporaryDirectory(prefix="archc-tiers-") as tmp:
        for rnd in range(args.rounds):
            for p in COMPILE:
                c, m = compile_times(archc, p)
                comp[p][0].append(c)
                comp[p][1].append(m)
            for epochs in (1, args.long_epochs):
                for b in BACKENDS:
                    walls[(b, epochs)].append(train_wall(archc, b, epochs, os.path.join(tmp, b)))
            print(f"round {rnd + 1} done", flush=True)
    print("\n| train step | Cranelift compile | MLIR compile | MLIR / Cranelift |")
    print("|---|---|---|---|")
    for p in COMPILE:
        c, m = statistics.median(comp[p][0]), statistics.median(comp[p][1])
        print(f"| {os.path.basename(p)} | {c:.1f} ms | {m:.1f} ms | {m / c:.0f}x |")
    print(f"\n| `archc train {os.path.basename(TRAIN)}`, whole process | "
          + " | ".join(BACKENDS) + " |")
    print("|---|" + "---|" * len(BACKENDS))
    for epochs in (1, args.long_epochs):
        cells = [f"{statistics.median(walls[(b, epochs)]):.2f} s" for b in BACKENDS]
        print(f"| {epochs} epoch{'s' if epochs > 1 else ''} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
