# archc: `make demo` runs the main job, `make test` runs every test.
# Both install LLVM/MLIR 22 when it is missing (scripts/install_llvm.sh, apt) and fetch
# the real data sets on first use (`make data`). The env vars that point mlir-sys at
# LLVM 22 live in .cargo/config.toml.

CARGO ?= cargo
ARCHC := target/release/archc
EXAMPLES := $(wildcard examples/*.arch)
STDLIB := $(wildcard stdlib/*.arch)

.PHONY: all build demo test check-arch fixtures fmt clean llvm fuzz

# The data stamp (see `data` below) must be known before the targets that use it.
DATA_STAMP := $(or $(ARCHC_DATA),data)/.stamp

all: build

build: llvm
	$(CARGO) build --release --locked

# LLVM/MLIR 22 for the MLIR backend (a no-op when installed).
llvm:
	bash scripts/install_llvm.sh

# Check every example, then train the digits MLP on real data (scikit-learn's digits,
# 80/20 split): progress, test accuracy, and where the curves and checkpoint went.
demo: build $(DATA_STAMP)
	$(ARCHC) check $(STDLIB) $(EXAMPLES)
	$(ARCHC) train examples/train_digits.arch --out runs/demo --overwrite

test: build check-arch $(DATA_STAMP)
	$(CARGO) test --release --locked --workspace
	# every op again through the GPU path's staging (kernels' host code), lowered for the CPU
	ARCHC_OPS_BACKEND=gpu-staging $(CARGO) test --release --locked -p archc-mlir --test ops
	$(MAKE) check-lite
	$(MAKE) fuzz-smoke

# archc without LLVM (`--no-default-features`, into target/lite) runs the artifacts the
# full archc compiles: it trains the digits MLP from one and runs the transformer from
# another at sizes it was not built with.
LITE := target/lite/release/archc
.PHONY: check-lite
check-lite: build $(DATA_STAMP)
	$(CARGO) build --release --locked --no-default-features --target-dir target/lite
	@if ldd $(LITE) | grep -E 'LLVM|MLIR'; then echo "check-lite: $(LITE) links LLVM" >&2; exit 1; fi
	@echo "archc without LLVM: $$(du -k $(LITE) | cut -f1) KiB"
	@tmp=$$(mktemp -d) && set -e && \
	$(ARCHC) build examples/train_digits.arch --train --target cpu -o $$tmp/digits.archx && \
	$(LITE) train $$tmp/digits.archx --epochs 2 --out $$tmp/run --quiet && \
	$(ARCHC) build examples/transformer.arch --target cpu -o $$tmp/transformer.archx && \
	$(LITE) run $$tmp/transformer.archx --dim B=3,T=7 && \
	rm -rf $$tmp

check-arch: build
	$(ARCHC) check $(STDLIB) $(EXAMPLES)
	$(ARCHC) fmt --check $(STDLIB) $(EXAMPLES)

# Fuzzing (README, "Fuzzing"): `archc-fuzz` mutates the .arch files of examples/, stdlib/,
# tests/ui/ and tests/defects/, TIR text, data files and .archx manifests with its own
# mutators (stable Rust has no libFuzzer) and fails on any panic or hang; failing inputs
# go to fuzz/crashes/. `make fuzz` (not in CI) runs 1,000,000 inputs on every core;
# options: FUZZ_ARGS="--seed 7 --seconds 600 --jobs 4" (`archc-fuzz --help`).
# `make fuzz-smoke` (in `make test`) runs 20,000 inputs or 60 s, whichever ends first.
FUZZ_ARGS ?=
fuzz:
	$(CARGO) run --release --locked -p archc-fuzz -- $(FUZZ_ARGS)

.PHONY: fuzz-smoke
fuzz-smoke:
	$(CARGO) run --release --locked -p archc-fuzz -- --budget 20000 --seconds 60 --progress-secs 0

# PyTorch reference fixtures (not part of CI). Needs a Python with torch, numpy and
# safetensors, e.g. `python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install
# torch numpy safetensors`, then `make fixtures PYTHON=/tmp/torchenv/bin/python`.
PYTHON ?= python3
fixtures:
	$(PYTHON) scripts/gen_fixtures.py
	$(PYTHON) scripts/gen_proxy_fixtures.py
	$(PYTHON) scripts/gen_import_fixtures.py

# Real data sets (digits, mnist_5k, mnist1d, darcy, burgers; ~6 MB, plus a 345 MB venv
# in data/.venv for the MNIST-1D generator) from PyPI into $ARCHC_DATA or data/
# (gitignored). Idempotent: `make data` skips what exists. A target that needs the data
# can depend on $(DATA_STAMP), which runs the fetch only when the stamp is missing.
.PHONY: data
data:
	bash scripts/fetch_data.sh

$(DATA_STAMP):
	bash scripts/fetch_data.sh

# Benchmark (not part of CI): archc's MLIR CPU backend against PyTorch eager and
# torch.compile (interleaved in one run, when $(PYTHON) has torch) on five workloads: a
# 1024^3 f32 matmul, epochs of the digits and mnist_5k MLPs and of the MNIST-1D CNN, and
# an FNO-1d forward pass; prints medians and archc's speed-up over the fastest PyTorch
# variant. With PyTorch: `make bench PYTHON=/tmp/torchenv/bin/python`; options:
# BENCH_ARGS="--rounds 3 --only fno1d --backends mlir-cpu,interp" (see
# `python3 scripts/bench.py --help`).
BENCH_ARGS ?=
.PHONY: bench
bench: build $(DATA_STAMP)
	$(PYTHON) scripts/bench.py --archc $(ARCHC) $(BENCH_ARGS)

# The CPU tiers (not part of CI): train-step compile times, Cranelift against MLIR, and
# whole `archc train` processes (1 epoch and a long run) on auto, cranelift and mlir-cpu;
# options: TIERS_BENCH_ARGS="--rounds 9 --long-epochs 60" (`scripts/bench_tiers.py --help`).
TIERS_BENCH_ARGS ?=
.PHONY: bench-tiers
bench-tiers: build $(DATA_STAMP)
	python3 scripts/bench_tiers.py --archc $(ARCHC) $(TIERS_BENCH_ARGS)

# Training-free search throughput (not part of CI): `archc search` (random, synflow) on
# examples/search_mnist1d.arch against the same candidates built and scored with synflow
# in PyTorch eager, in one run; prints candidates per minute and the ratio. Needs a Python
# with torch: `make bench-search PYTHON=/tmp/torchenv/bin/python`; options:
# SEARCH_BENCH_ARGS="--n 200 --rounds 1 --threads 1" (`scripts/bench_search.py --help`).
SEARCH_BENCH_ARGS ?=
.PHONY: bench-search
bench-search: build $(DATA_STAMP)
	$(PYTHON) scripts/bench_search.py --archc $(ARCHC) $(SEARCH_BENCH_ARGS)

# On a machine with an NVIDIA GPU: the GPU tests, training on the GPU and the GPU
# benchmark against PyTorch (scripts/gpu-check.sh builds the test executables first).
.PHONY: gpu-check
gpu-check: llvm $(DATA_STAMP)
	bash scripts/gpu-check.sh

# The training results of examples/train_*.arch (MNIST-1D MLP/CNN/GRU, mnist_5k MLP,
# Darcy FNO-2d at 16x16 and zero-shot 32x32, a hypernetwork on permuted digits, and the
# research gallery): each trains in release mode and fails if its goal is missed, with
# the MLIR CPU backend. `make reproduce BACKEND=interp` trains with the reference
# interpreter (much slower), `BACKEND=cranelift` with the Cranelift tier.
.PHONY: reproduce
BACKEND ?= mlir-cpu
reproduce: llvm data
	ARCHC_BACKEND=$(BACKEND) $(CARGO) test --release --locked --test reproduce -- --ignored --test-threads=1 --nocapture

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
