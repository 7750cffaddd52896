#!/usr/bin/env python3
"""Benchmark: archc's MLIR CPU backend against PyTorch eager and torch.compile.

Usage: `make bench` (builds archc and fetches the data first), or directly, from the
repository root, after `make build data`:

    python3 scripts/bench.py                      # archc only, unless python3 has torch
    /tmp/torchenv/bin/python scripts/bench.py     # archc and PyTorch, interleaved
    make bench PYTHON=/tmp/torchenv/bin/python BENCH_ARGS="--rounds 3"
    /tmp/torchenv/bin/python scripts/bench.py --only fno1d --rounds 1 --repeat 3

Not part of CI. Needs only the standard library; PyTorch is optional (without it the
script prints archc's numbers and says PyTorch was not found, and still exits 0).

Workloads (`--only NAME,...`; goal = the speed-up over the fastest PyTorch variant that
the MLIR CPU backend aims for):

- matmul: f32 `a @ b`, 1024x1024x1024 (`scripts/bench/matmul.arch`), one forward pass;
  also in GFLOP/s. PyTorch: `torch.mm` (MKL). Goal >= 0.9x.
- digits: an epoch of `examples/train_digits.arch`, MLP 64-128-10, AdamW, batch 64,
  1437 train samples. Goal >= 5x.
- mnist_5k: an epoch of `examples/bench_mnist5k.arch`, MLP 784-256-10, Adam, batch 64,
  4000 train samples. Goal >= 2.5x.
- mnist1d_cnn: an epoch of `examples/train_mnist1d_cnn.arch`, three strided Conv1d
  (25 channels) and a Linear, Adam lr 1e-2, batch 100, the 4000 samples of the npz's
  train split (`data/mnist1d.npz`). Goal >= 5x.
- fno1d: a forward pass of `examples/fno1d.arch` (width 64, 16 modes, depth 4) on
  a: f32[32, 1024, 2]; PyTorch mirrors the operator and stdlib `SpectralConv1d` op for
  op (rfft, four real einsums, zero padding, irfft) under `torch.no_grad()`. Goal >= 3x.

archc runs with `--backends` (default mlir-cpu; also `cranelift`, the fast-compiling
tier, `auto`, the two tiered, and `interp`, the reference interpreter, which is slow: over
a second per mnist_5k epoch). With mlir-cpu and another backend, each workload's speed
on the other is also given as a ratio to mlir-cpu's (`--backends mlir-cpu,cranelift`). The MLIR backend runs its matrix products on
the `gemm` crate, which uses every core for large products (RAYON_NUM_THREADS limits it).
Training workloads: `archc train FILE --backend B --epochs warmup+epochs` per set; the
epoch time is the time in train steps (train samples / `samples_per_s` of each
`metrics.jsonl` record: feeding the batch, the train-step function, finiteness checks),
comparable with PyTorch's timed loop (zero_grad, forward, loss, backward, optimizer
step, loss and accuracy sums); "wall" (printed under the table) is the record's
`seconds`, which adds the per-epoch test evaluation, batch gathers, metrics and the
checkpoint. The first `--warmup` epochs of a set are dropped (archc's first epoch
includes JIT compilation). Workloads whose epochs are short time more of them, on both
sides: `--epochs` and `--warmup` are multiplied by the workload's `epochs_x` (digits: 10,
so 40 timed epochs of about a millisecond, not 4). With `--sgd`, each training workload is also run with its
optimizer replaced by `sgd(lr = 0.1)` (archc: a copy of the `.arch` file in a temporary
directory). Forward workloads: `archc run FILE --backend B --repeat R`, whose median over
R runs after the first (which compiles) is the set's time.

PyTorch trains with the optimizer of the `.arch` file's `optimizer:` entry (schedules
are not applied) on pre-batched tensors (loading, splitting and batching happen outside
the timed region; batch order is fixed, archc reshuffles), with a fresh model per set,
once per `--torch-threads` value (default 2 and 1: on a loaded 2-core machine two OpenMP
threads can be slower than one). Each is run eager and with torch.compile (forward and
loss in one compiled function, whose backward AOTAutograd compiles, and a compiled
optimizer step; dynamic=False, so a smaller last batch gets its own graph): compilation
happens in the warm-up (at least one warm-up epoch or call is run for compiled sets),
and Dynamo's cache is reset before each compiled set, so that every thread count gets
kernels built for it (Inductor's on-disk cache makes later rounds compile faster). If
torch.compile fails for a workload, the reason is printed and the workload goes on
eager only. The ratio is taken against the fastest PyTorch variant.

Measurement: the machines are noisy, so archc and PyTorch alternate in one run: for each
round, for each workload, archc runs one set (a process), then PyTorch one set per
thread count and mode. Reported numbers are medians: of every kept epoch of every round
(training), of the per-set medians (forward). The load average is printed before and
after: numbers taken above a load of 2 (on 2 cores) are not comparable with quiet runs.
"""

import argparse
import ast
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SGD = "sgd(lr = 0.1)"
MODES = ("eager", "compile")


class Workload:
    """One benchmark. kind "train": epochs of a `train` block; kind "forward": forward runs."""

    def __init__(self, name, kind, arch, desc, goal, **kw):
        self.name, self.kind, self.arch, self.desc, self.goal = name, kind, arch, desc, goal
        self.train_args = kw.get("train_args")  # the `train Net(...)` arguments PyTorch mirrors
        self.model = kw.get("model")  # "mlp" or "cnn1d" (train), "matmul" or "fno1d" (forward)
        self.data = kw.get("data")  # ("csv", file, pixel scale, train fraction) or ("npz", file)
        self.params = kw.get("params", {})  # forward: `--args` of archc run / the PyTorch model
        self.dims = kw.get("dims", {})  # forward: `--dim` of archc run
        self.flops = kw.get("flops")  # forward: floating-point operations per run (GFLOP/s)
        self.epochs_x = kw.get("epochs_x", 1)  # train: --epochs and --warmup are multiplied by this

    def epochs(self, args):
        """(timed, warm-up) epochs of one set of this workload."""
        return args.epochs * self.epochs_x, args.warmup * self.epochs_x


N_MM = 1024
WORKLOADS = [
    Workload("matmul", "forward", "scripts/bench/matmul.arch", f"f32 matmul {N_MM}x{N_MM}x{N_MM}", 0.9,
             model="matmul", dims={"M": N_MM, "K": N_MM, "N": N_MM}, flops=2 * N_MM ** 3),
    Workload("digits", "train", "examples/train_digits.arch", "digits MLP 64-128-10 epoch", 5.0,
             train_args=(64, 128, 10), model="mlp", data=("csv", "digits.csv.gz", 16.0, 0.8), epochs_x=10),
    Workload("mnist_5k", "train", "examples/bench_mnist5k.arch", "mnist_5k MLP 784-256-10 epoch", 2.5,
             train_args=(784, 256, 10), model="mlp", data=("csv", "mnist_5k.csv.gz", 255.0, 0.8), epochs_x=2),
    Workload("mnist1d_cnn", "train", "examples/train_mnist1d_cnn.arch", "MNIST-1D CNN 3xConv1d(25) epoch", 5.0,
             train_args=(25, 10), model="cnn1d", data=("npz", "mnist1d.npz"), epochs_x=2),
    Workload("fno1d", "forward", "examples/fno1d.arch", "FNO-1d forward B=32 N=1024 width 64 modes 16 depth 4", 3.0,
             model="fno1d", params={"width": 64, "modes": 16, "depth": 4}, dims={"B": 32, "N": 1024}),
]
NAMES = [w.name for w in WORKLOADS]


BACKENDS = ("mlir-cpu", "cranelift", "auto", "interp")


def parse_args():
    workloads = "\n".join(f"  {w.name:<12} {w.kind:<8} {w.desc} ({w.arch}); goal: archc >= {w.goal:g}x "
                          "PyTorch's best speed" for w in WORKLOADS)
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0] + "\n\nPrints one table: per workload, archc's median time, "
        "PyTorch eager and torch.compile\n(fastest thread count first), and archc's speed-up over the "
        "fastest PyTorch variant.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"workloads (--only):\n{workloads}\n\n"
        "full run:    make bench PYTHON=/tmp/torchenv/bin/python\n"
        "smoke test:  /tmp/torchenv/bin/python scripts/bench.py --only digits --rounds 1 --epochs 1 --repeat 2\n"
        "Training workloads time epochs (--epochs, --warmup); forward workloads time runs (--repeat).\n"
        "Details (what is timed, how PyTorch is set up): the docstring of scripts/bench.py.")
    p.add_argument("--archc", default=os.path.join(ROOT, "target", "release", "archc"),
                   help="the archc binary (default target/release/archc)")
    p.add_argument("--backends", default="mlir-cpu",
                   help="comma-separated archc backends, one table row each: " + ", ".join(BACKENDS)
                   + " (default mlir-cpu)")
    p.add_argument("--only", help="comma-separated workloads (default all): " + ", ".join(NAMES))
    p.add_argument("--rounds", type=int, default=2, help="archc/PyTorch alternations (default 2)")
    p.add_argument("--epochs", type=int, default=4, help="training: timed epochs per set, times the workload's epochs_x (default 4)")
    p.add_argument("--warmup", type=int, default=1,
                   help="training: epochs dropped per set; forward: PyTorch calls before timing (default 1; "
                   "torch.compile sets always get at least 1)")
    p.add_argument("--repeat", type=int, default=10, help="forward: timed runs per set (default 10)")
    p.add_argument("--sgd", action="store_true",
                   help="also train each training workload with its optimizer replaced by " + SGD)
    p.add_argument("--no-sgd", action="store_true", help=argparse.SUPPRESS)  # the old default, kept
    p.add_argument("--no-torch", action="store_true", help="archc only, even if torch imports")
    p.add_argument("--no-compile", action="store_true", help="PyTorch eager only (skip torch.compile)")
    p.add_argument("--torch-threads", default="2,1", help="PyTorch thread counts (default 2,1)")
    p.add_argument("--blas-kernels", choices=["native", "avx2", "off"], default="native",
                   help="archc's CPU matrix products: OpenBLAS with the kernels it picks for this CPU "
                        "(native: OPENBLAS_CORETYPE unset), its AVX2 kernels (avx2: OPENBLAS_CORETYPE=Haswell), "
                        "or the gemm crate (off: ARCHC_BLAS=off); default native")
    args = p.parse_args()
    args.backends = [b for b in args.backends.split(",") if b]
    for b in args.backends:
        if b not in BACKENDS:
            p.error(f"unknown backend {b!r} ({', '.join(BACKENDS)})")
    only = set(args.only.split(",")) if args.only else set(NAMES)
    if only - set(NAMES):
        p.error(f"unknown workload(s) {', '.join(sorted(only - set(NAMES)))} (known: {', '.join(NAMES)})")
    args.workloads = [w for w in WORKLOADS if w.name in only]
    if min(args.rounds, args.epochs, args.repeat) < 1 or args.warmup < 0:
        p.error("--rounds, --epochs and --repeat must be >= 1, --warmup >= 0")
    return args


def data_dir():
    return os.environ.get("ARCHC_DATA") or os.path.join(ROOT, "data")


# ---------------------------------------------------------------- .arch files

def read_arch(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


OPT_RE = re.compile(r"^(\s*optimizer:\s*)(.+?)\s*$", re.M)


def optimizer_entry(text, path):
    """The `optimizer:` value of a train block, e.g. `adamw(lr = 3e-3, weight_decay = 1e-4)`."""
    m = OPT_RE.search(text)
    if not m:
        sys.exit(f"bench: no `optimizer:` entry in {path}")
    return m.group(2)


def parse_call(entry):
    """`adam(lr = 1e-3)` -> ("adam", {"lr": 0.001})."""
    m = re.fullmatch(r"(\w+)\s*(?:\((.*)\))?", entry.strip())
    if not m:
        sys.exit(f"bench: cannot read optimizer {entry!r}")
    kwargs = {}
    for part in filter(None, (s.strip() for s in (m.group(2) or "").split(","))):
        k, _, v = part.partition("=")
        v = v.strip()
        kwargs[k.strip()] = v == "true" if v in ("true", "false") else float(v)
    return m.group(1), kwargs


def batch_size(text):
    m = re.search(r"^\s*batch:\s*(\d+)", text, re.M)
    return int(m.group(1)) if m else 32


def check_model(w, text):
    """The `.arch` file builds the model the PyTorch side builds."""
    if w.kind == "train":
        m = re.search(r"^train\s+\w+\(([^)]*)\)", text, re.M)
        try:
            got = tuple(int(s) for s in m.group(1).split(",")) if m else None
        except ValueError:
            got = m.group(1)
        if got != w.train_args:
            sys.exit(f"bench: {w.arch} trains {got}, expected {w.train_args}: update WORKLOADS")
    elif w.model == "fno1d":
        for pat in (r"operator Fno1d\(width: int = \d+, modes: int = \d+, depth: int = \d+\)",
                    r"repeat depth \{ v => gelu\(SpectralConv1d\(width, width, modes\)\(v\) \+ "
                    r"Conv1d\(width, width, 1\)\(v\)\) \}",
                    r"Linear\(width, 64\) \|> gelu \|> Linear\(64, 1\)"):
            if not re.search(pat, text):
                sys.exit(f"bench: {w.arch} no longer matches the PyTorch FNO-1d (/{pat}/): update Torch.fno1d")


# ---------------------------------------------------------------- archc

def archc_cmd_fail(cmd, r):
    sys.exit(f"bench: {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")


def run_archc_train(archc, backend, arch_path, epochs, workdir):
    """Trains `epochs` epochs in one process; returns (train samples, [(steps_s, wall_s)])."""
    out = os.path.join(workdir, "run")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [archc, "train", arch_path, "--backend", backend, "--out", out, "--quiet", "--epochs", str(epochs)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        archc_cmd_fail(cmd, r)
    m = re.search(r"\((\d+) train", r.stdout + r.stderr)
    if not m:
        sys.exit(f"bench: cannot find the train-set size in archc's output:\n{r.stdout}{r.stderr}")
    n_train = int(m.group(1))
    with open(os.path.join(out, "metrics.jsonl")) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    return n_train, [(n_train / rec["samples_per_s"], rec["seconds"]) for rec in recs]


TIME_RE = re.compile(r"time: median ([\d.]+) ms, min ([\d.]+) ms over (\d+) runs \(first run ([\d.]+) ms\)")


def run_archc_forward(archc, backend, w, repeat):
    """One `archc run --repeat`; returns (median s, first run s)."""
    cmd = [archc, "run", os.path.join(ROOT, w.arch), "--backend", backend, "--repeat", str(repeat)]
    if w.params:
        cmd += ["--args", ",".join(f"{k}={v}" for k, v in w.params.items())]
    if w.dims:
        cmd += ["--dim", ",".join(f"{k}={v}" for k, v in w.dims.items())]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        archc_cmd_fail(cmd, r)
    m = TIME_RE.search(r.stderr)
    if not m:
        sys.exit(f"bench: no `time:` line in the output of {' '.join(cmd)}:\n{r.stdout}{r.stderr}")
    return float(m.group(1)) / 1e3, float(m.group(4)) / 1e3


# ---------------------------------------------------------------- PyTorch

def first_line(e):
    text = f"{type(e).__name__}: {e}".strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


class Torch:
    """PyTorch eager and torch.compile versions of the same workloads."""

    def __init__(self, torch):
        self.torch = torch
        self.data = {}
        self.compile_failed = {}  # workload name -> reason

    # ---- data

    def read_npz(self, path):
        """{name: tensor} of an uncompressed or deflated .npz, without numpy."""
        torch = self.torch
        dtypes = {"<f4": torch.float32, "<f8": torch.float64, "<i8": torch.int64, "<i4": torch.int32}
        out = {}
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                raw = z.read(name)
                if raw[:6] != b"\x93NUMPY":
                    sys.exit(f"bench: {path}: {name} is not an .npy array")
                hlen = int.from_bytes(raw[8:10], "little") if raw[6] == 1 else int.from_bytes(raw[8:12], "little")
                start = (10 if raw[6] == 1 else 12) + hlen
                header = ast.literal_eval(raw[start - hlen:start].decode("latin1"))
                if header["fortran_order"] or header["descr"] not in dtypes:
                    sys.exit(f"bench: {path}: {name} has an unsupported layout {header}")
                t = torch.frombuffer(bytearray(raw[start:]), dtype=dtypes[header["descr"]])
                out[name[:-4] if name.endswith(".npy") else name] = t.reshape(header["shape"])
        return out

    def batches(self, w, batch, seed=0):
        """The workload's training split in batches, as the model takes them."""
        torch = self.torch
        key = (w.name, batch)
        if key not in self.data:
            if w.data[0] == "csv":
                _, file, scale, frac = w.data
                with gzip.open(os.path.join(data_dir(), file), "rt") as f:
                    rows = [[float(v) for v in line.split(",")] for line in f if line.strip()]
                t = torch.tensor(rows, dtype=torch.float32)
                x, y = t[:, :-1] / scale, t[:, -1].long()
                g = torch.Generator().manual_seed(seed)
                perm = torch.randperm(len(x), generator=g)[: int(frac * len(x))]
                x, y = x[perm], y[perm]
            else:  # mnist1d: the npz's own train split, rows of 40 as [N, 1, 40]
                arrays = self.read_npz(os.path.join(data_dir(), w.data[1]))
                x = arrays["x_train"].float().reshape(-1, 1, arrays["x_train"].shape[-1])
                y = arrays["y_train"].long()
            self.data[key] = [(x[i:i + batch].contiguous(), y[i:i + batch].contiguous())
                              for i in range(0, len(x), batch)]
        return self.data[key]

    # ---- models

    def train_model(self, w):
        nn = self.torch.nn
        if w.model == "mlp":
            d_in, hidden, classes = w.train_args
            return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, classes))
        if w.model == "cnn1d":  # as examples/train_mnist1d_cnn.arch: 40 -> 19 -> 10 -> 5
            ch, classes = w.train_args
            return nn.Sequential(
                nn.Conv1d(1, ch, 5, stride=2, padding=1), nn.ReLU(),
                nn.Conv1d(ch, ch, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv1d(ch, ch, 3, stride=2, padding=1), nn.ReLU(),
                nn.Flatten(1), nn.Linear(ch * 5, classes))
        raise ValueError(w.model)

    def fno1d(self, width, modes, depth):
        """examples/fno1d.arch with stdlib spectral.SpectralConv1d, op for op."""
        torch, nn = self.torch, self.torch.nn
        F = nn.functional

        class SpectralConv1d(nn.Module):
            def __init__(self, c_in, c_out, modes):
                super().__init__()
                scale = 1.0 / (c_in * c_out)
                self.c_out, self.modes = c_out, modes
                self.w_re = nn.Parameter(torch.rand(c_in, c_out, modes) * scale)
                self.w_im = nn.Parameter(torch.rand(c_in, c_out, modes) * scale)

            def forward(self, x):
                n = x.shape[-1]
                z = torch.fft.rfft(x, dim=-1)[..., :self.modes]
                zr, zi = z.real, z.imag
                yr = torch.einsum("bim,iom->bom", zr, self.w_re) - torch.einsum("bim,iom->bom", zi, self.w_im)
                yi = torch.einsum("bim,iom->bom", zr, self.w_im) + torch.einsum("bim,iom->bom", zi, self.w_re)
                rest = torch.zeros(x.shape[0], self.c_out, n // 2 + 1 - self.modes)
                return torch.fft.irfft(torch.complex(torch.cat([yr, rest], -1), torch.cat([yi, rest], -1)), n, dim=-1)

        class Fno1d(nn.Module):
            def __init__(self):
                super().__init__()
                self.lift = nn.Linear(2, width)
                self.spec = nn.ModuleList(SpectralConv1d(width, width, modes) for _ in range(depth))
                self.conv = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(depth))
                self.proj1, self.proj2 = nn.Linear(width, 64), nn.Linear(64, 1)

            def forward(self, a):  # a: [B, N, 2] -> [B, N, 1]
                v = self.lift(a).transpose(1, 2)
                for s, c in zip(self.spec, self.conv):
                    v = F.gelu(s(v) + c(v))
                return self.proj2(F.gelu(self.proj1(v.transpose(1, 2))))

        return Fno1d()

    def optimizer(self, entry, params):
        optim = self.torch.optim
        name, kw = parse_call(entry)
        lr = kw.get("lr", 1e-3)
        if name == "sgd":
            return optim.SGD(params, lr=lr, momentum=kw.get("momentum", 0.0),
                             nesterov=kw.get("nesterov", False), weight_decay=kw.get("weight_decay", 0.0))
        if name in ("adam", "adamw"):
            cls = optim.Adam if name == "adam" else optim.AdamW
            return cls(params, lr=lr, betas=(kw.get("beta1", 0.9), kw.get("beta2", 0.999)),
                       eps=kw.get("eps", 1e-8),
                       weight_decay=kw.get("weight_decay", 0.01 if name == "adamw" else 0.0))
        if name == "rmsprop":
            return optim.RMSprop(params, lr=lr, alpha=kw.get("alpha", 0.99), eps=kw.get("eps", 1e-8),
                                 weight_decay=kw.get("weight_decay", 0.0))
        sys.exit(f"bench: no PyTorch optimizer for {entry!r}")

    # ---- timing

    def setup(self, threads, mode):
        torch = self.torch
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        if mode == "compile":
            torch._dynamo.reset()  # kernels are specialised on the thread count

    def compile(self, fn):
        return self.torch.compile(fn, dynamic=False)

    def train(self, w, batches, entry, epochs, warmup, threads, mode):
        """Times (s) of the kept epochs of `warmup + epochs` epochs of a fresh model."""
        torch, F = self.torch, self.torch.nn.functional
        self.setup(threads, mode)
        model = self.train_model(w)
        opt = self.optimizer(entry, model.parameters())

        def forward(xb, yb):
            logits = model(xb)
            return logits, F.cross_entropy(logits, yb)

        def step():
            opt.step()

        if mode == "compile":
            forward, step = self.compile(forward), self.compile(step)
        times = []
        for _ in range(warmup + epochs):
            t0 = time.perf_counter()
            loss_sum = torch.zeros(())
            correct = torch.zeros((), dtype=torch.long)
            for xb, yb in batches:
                opt.zero_grad(set_to_none=True)
                logits, loss = forward(xb, yb)
                loss.backward()
                step()
                loss_sum += loss.detach() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
            _ = (float(loss_sum), int(correct))
            times.append(time.perf_counter() - t0)
        return times[warmup:]

    def forward(self, w, repeat, warmup, threads, mode):
        """Times (s) of `repeat` forward runs after `warmup` untimed ones."""
        torch = self.torch
        self.setup(threads, mode)
        if w.model == "matmul":
            d = w.dims
            inputs = (torch.randn(d["M"], d["K"]), torch.randn(d["K"], d["N"]))
            fn = torch.mm
        else:
            model = self.fno1d(**w.params).eval()
            inputs = (torch.randn(w.dims["B"], w.dims["N"], 2),)
            fn = model
        if mode == "compile":
            fn = self.compile(fn)
        times = []
        with torch.no_grad():
            for i in range(warmup + repeat):
                t0 = time.perf_counter()
                fn(*inputs)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
        return times


def import_torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


# ---------------------------------------------------------------- report

def ms(s):
    return f"{s * 1e3:.1f}"


def speedup_text(a, t):
    """archc time a against PyTorch time t."""
    r = t / a
    return f"archc {r:.2f}x faster" if r >= 1 else f"PyTorch {1 / r:.2f}x faster"


def load_avg():
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


class Case:
    """A measured workload variant: a workload, with its optimizer (training) or not."""

    def __init__(self, w, label, path=None, entry=None):
        self.w, self.label, self.path, self.entry = w, label, path, entry
        self.n = None  # train samples
        self.archc = {}  # backend -> {"t": [s], "wall": [s], "first": [s]}
        self.torch = {}  # (mode, threads) -> [s]


def make_cases(args, tmpdir):
    cases = []
    for w in args.workloads:
        text = read_arch(w.arch)
        check_model(w, text)
        if w.kind == "forward":
            cases.append(Case(w, w.name))
            continue
        entry = optimizer_entry(text, w.arch)
        opt = parse_call(entry)[0]
        cases.append(Case(w, f"{w.name} {opt}", w.arch, entry))
        if args.sgd and not args.no_sgd and opt != "sgd":
            sgd_path = os.path.join(tmpdir, f"{w.name}_sgd.arch")
            with open(sgd_path, "w") as f:
                f.write(OPT_RE.sub(lambda m: m.group(1) + SGD, text, count=1))
            cases.append(Case(w, f"{w.name} sgd", sgd_path, SGD))
    return cases


def measure_torch(args, tb, case, threads, modes):
    """One PyTorch set per thread count and mode; returns the round line's text."""
    w = case.w
    parts = []
    for t in threads:
        for mode in modes:
            if mode == "compile" and w.name in tb.compile_failed:
                continue
            epochs, warmup = w.epochs(args)
            warmup = max(warmup, 1) if mode == "compile" else warmup
            try:
                if w.kind == "train":
                    batches = tb.batches(w, batch_size(read_arch(w.arch)))
                    n = sum(len(y) for _, y in batches)
                    if case.n is not None and n != case.n:
                        print(f"warning: PyTorch trains on {n} samples, archc on {case.n}")
                    times = tb.train(w, batches, case.entry, epochs, warmup, t, mode)
                    case.torch.setdefault((mode, t), []).extend(times)
                else:
                    times = tb.forward(w, args.repeat, max(warmup, 1), t, mode)
                    case.torch.setdefault((mode, t), []).append(statistics.median(times))
            except Exception as e:  # noqa: BLE001 - torch.compile fails in many ways
                if mode != "compile":
                    raise
                tb.compile_failed[w.name] = first_line(e)
                print(f"torch.compile failed for {w.name} ({t}t), going on eager only: "
                      f"{tb.compile_failed[w.name]}", flush=True)
                continue
            parts.append(f"{'eager' if mode == 'eager' else 'compiled'} {t}t {ms(statistics.median(times))}")
    return parts


# Seconds between a PyTorch measurement and the next archc run (see `measure`).
SETTLE_S = 1.0


def measure(args, cases, tb, threads, modes, tmpdir):
    for rnd in range(args.rounds):
        for case in cases:
            w = case.w
            parts = []
            for backend in args.backends:
                r = case.archc.setdefault(backend, {"t": [], "wall": [], "first": []})
                if tb:
                    # PyTorch's OpenMP threads spin for a while after its last run; let
                    # them go to sleep so they do not take archc's cores.
                    time.sleep(SETTLE_S)
                if w.kind == "train":
                    work = os.path.join(tmpdir, case.label.replace(" ", "_") + "_" + backend)
                    os.makedirs(work, exist_ok=True)
                    timed, warm = w.epochs(args)
                    case.n, epochs = run_archc_train(args.archc, backend, case.path, warm + timed, work)
                    kept = epochs[warm:]
                    r["t"] += [s for s, _ in kept]
                    r["wall"] += [wall for _, wall in kept]
                    r["first"].append(epochs[0][1])
                    parts.append(f"archc {backend} {ms(statistics.median(s for s, _ in kept))}")
                else:
                    med, first = run_archc_forward(args.archc, backend, w, args.repeat)
                    r["t"].append(med)
                    r["first"].append(first)
                    parts.append(f"archc {backend} {ms(med)} (first run {ms(first)})")
            if tb:
                parts += measure_torch(args, tb, case, threads, modes)
            print(f"round {rnd + 1} {case.label:<20} " + ", ".join(parts) + " (ms)", flush=True)


def table(args, cases, tb, threads, modes):
    head = ["workload", "archc backend", "archc ms"]
    if tb:
        head += ["PyTorch eager ms", "torch.compile ms", "vs best PyTorch", "goal"]
    rows, notes = [], []
    for case in cases:
        w = case.w
        desc = w.desc + (f", {case.n} samples, {parse_call(case.entry)[0]}" if w.kind == "train" else "")
        gflops = (lambda s: f" ({w.flops / s / 1e9:.1f} GFLOP/s)") if w.flops else (lambda s: "")
        med = {k: statistics.median(v) for k, v in case.torch.items() if v}

        def cell(mode):
            if mode not in modes:
                return "skipped"
            if mode == "compile" and w.name in tb.compile_failed:
                return "failed (reason printed above)"
            keys = [k for k in med if k[0] == mode]
            if not keys:
                return "-"
            best = min(keys, key=lambda k: med[k])
            others = ", ".join(f"{k[1]}t {ms(med[k])}" for k in keys if k != best)
            return f"{ms(med[best])} ({best[1]}t){gflops(med[best])}" + (f"; {others}" if others else "")

        for backend in args.backends:
            r = case.archc[backend]
            a = statistics.median(r["t"])
            row = [desc, backend, ms(a) + gflops(a)]
            if tb:
                row += [cell("eager"), cell("compile")]
                if med:
                    best = min(med, key=lambda k: med[k])
                    mode = "eager" if best[0] == "eager" else "compiled"
                    row.append(f"{speedup_text(a, med[best])} (vs {mode} {best[1]}t)")
                    reached = med[best] / a
                    row.append(f">= {w.goal:g}x: {'met' if reached >= w.goal else 'missed'}")
                else:
                    row += ["-", f">= {w.goal:g}x"]
            rows.append(row)
            jit = " (with JIT compilation)" if backend != "interp" else ""
            first = ms(statistics.median(r["first"]))
            if w.kind == "train":
                notes.append(f"{case.label} on {backend}: wall {ms(statistics.median(r['wall']))} ms per epoch "
                             f"(with test evaluation and checkpoint), first epoch{jit} {first} ms")
            else:
                notes.append(f"{case.label} on {backend}: first run{jit} {first} ms")
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(c.ljust(wd) for c, wd in zip(cells, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (wd + 2) for wd in widths) + "|")
    for row in rows:
        print(line(row))
    print(f"\ntraining: medians of {args.rounds * args.epochs} epochs times the workload's epochs_x (train-step time); forward: medians of "
          f"{args.rounds} per-set medians of {args.repeat} runs."
          + (" PyTorch cells: the fastest thread count first. Goal: archc's speed-up over the fastest "
             "PyTorch variant." if tb else ""))
    for n in notes:
        print("  " + n)
    ratios(args, cases)


def ratios(args, cases):
    """Each other backend's speed as a ratio to mlir-cpu's (higher is faster)."""
    others = [b for b in args.backends if b != "mlir-cpu"]
    if "mlir-cpu" not in args.backends or not others:
        return
    print("\nrun speed as a ratio to mlir-cpu (mlir-cpu time / backend time; higher is faster):")
    for case in cases:
        base = statistics.median(case.archc["mlir-cpu"]["t"])
        cells = [f"{b} {base / statistics.median(case.archc[b]['t']):.2f}x" for b in others]
        print(f"  {case.label:<20} " + ", ".join(cells))


def main():
    args = parse_args()
    args.archc = os.path.abspath(args.archc)
    if not os.access(args.archc, os.X_OK):
        sys.exit(f"bench: {args.archc} not found: run `make build` (or `make bench`)")
    torch = None if args.no_torch else import_torch()
    tb = Torch(torch) if torch else None
    threads = [int(t) for t in args.torch_threads.split(",")] if tb else []
    modes = ("eager",) if args.no_compile else MODES
    set_blas_kernels(args.blas_kernels)
    print(f"archc: {args.archc}, backends {', '.join(args.backends)}")
    print(f"cpu: {cpu_model()}; {cpu_vector_flags()}")
    for line in archc_devices(args.archc):
        print(f"archc devices: {line}")
    if tb:
        what = "eager" if args.no_compile else "eager and torch.compile"
        print(f"PyTorch {torch.__version__} {what}, threads {threads} ({sys.executable})")
    elif args.no_torch:
        print("PyTorch skipped (--no-torch): archc only.")
    else:
        print(f"PyTorch not found ({sys.executable} cannot import torch): archc only. "
              "For the comparison: make bench PYTHON=/tmp/torchenv/bin/python")
    print(f"{args.rounds} rounds; training: {args.epochs} timed epochs (+{args.warmup} warm-up) per set, times each workload's epochs_x; "
          f"forward: {args.repeat} timed runs per set; archc and PyTorch interleaved; "
          f"{os.cpu_count()} CPUs, {load_avg()}\n")
    with tempfile.TemporaryDirectory(prefix="archc-bench-") as tmpdir:
        cases = make_cases(args, tmpdir)
        measure(args, cases, tb, threads, modes, tmpdir)
    print(f"\n{load_avg()}\n")
    table(args, cases, tb, threads, modes)
    return 0


def set_blas_kernels(kind):
    """The environment archc's runs inherit for `--blas-kernels`."""
    os.environ.pop("OPENBLAS_CORETYPE", None)
    os.environ.pop("ARCHC_BLAS", None)
    if kind == "avx2":
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    elif kind == "off":
        os.environ["ARCHC_BLAS"] = "off"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cpu_vector_flags():
    """The x86 vector extensions the CPU reports (what the kernels can use)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return "flags unknown"
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"]
    have = [f for f in wanted if f in flags]
    return "flags: " + (" ".join(have) if have else "no AVX2")


def archc_devices(archc):
    """`archc devices`' CPU and BLAS lines."""
    r = subprocess.run([archc, "devices"], capture_output=True, text=True)
    return [l for l in r.stdout.splitlines() if l.startswith(("cpu:", "blas:"))]


if __name__ == "__main__":
    sys.exit(main())
