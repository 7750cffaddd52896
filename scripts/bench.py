#!/usr/bin/env python3
"""Epoch-time benchmark: archc against PyTorch eager on the same MLP workloads.

Usage: `make bench` (builds archc and fetches the data first), or directly, from the
repository root, after `make build data`:

    python3 scripts/bench.py                      # archc only, unless python3 has torch
    /tmp/torchenv/bin/python scripts/bench.py     # archc and PyTorch, interleaved
    make bench PYTHON=/tmp/torchenv/bin/python BENCH_ARGS="--rounds 3"

Not part of CI. Needs only the standard library; PyTorch is optional (without it the
script prints archc's numbers and says PyTorch was not found, and still exits 0).

Workloads (each with the optimizer of its `.arch` file, and with SGD unless `--no-sgd`):

- digits: `examples/train_digits.arch`, MLP 64-128-10, batch 64, 1437 train samples;
- mnist_5k: `examples/bench_mnist5k.arch`, MLP 784-256-10, batch 64, 4000 train samples.

archc runs with the fastest backend it has (today: the reference interpreter, one
thread); its SGD variant is the `.arch` file with the `optimizer:` entry replaced, in a
temporary directory. PyTorch runs eager with the optimizer read from the same `.arch`
entry and pre-batched tensors (data loading, splitting and batching happen outside the
timed region; batch order is fixed, archc reshuffles), once per `--torch-threads` value
(default 2 and 1: on a loaded 2-core machine two OpenMP threads can be many times slower
than one, so the ratio is taken against the faster of the two).

Measurement: the machines are noisy, so archc and PyTorch alternate in one run: for each
round, for each workload and optimizer, one archc process trains `warmup + epochs`
epochs, then PyTorch trains the same number; the first `warmup` epochs of each set are
dropped. Reported numbers are medians over every kept epoch of every round. The load
average is printed before and after: numbers taken above a load of 2 are not comparable
with the reference timings in the notes.

archc's epoch time is read from `metrics.jsonl`: "steps" is the time spent in train
steps (train samples / `samples_per_s`: feeding the batch, the train-step function,
finiteness checks), comparable with PyTorch's timed loop (zero_grad, forward, loss,
backward, optimizer step, loss and accuracy sums); "wall" is the record's `seconds`,
which adds the per-epoch evaluation on the test split, the batch gathers, metrics,
curves and the checkpoint.
"""

import argparse
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, .arch file, data file, pixel scale, (d_in, hidden, classes), train fraction
WORKLOADS = [
    ("digits", "examples/train_digits.arch", "digits.csv.gz", 16.0, (64, 128, 10), 0.8),
    ("mnist_5k", "examples/bench_mnist5k.arch", "mnist_5k.csv.gz", 255.0, (784, 256, 10), 0.8),
]
SGD = "sgd(lr = 0.1)"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archc", default=os.path.join(ROOT, "target", "release", "archc"))
    p.add_argument("--epochs", type=int, default=4, help="timed epochs per set (default 4)")
    p.add_argument("--warmup", type=int, default=1, help="epochs dropped per set (default 1)")
    p.add_argument("--rounds", type=int, default=2, help="archc/PyTorch alternations (default 2)")
    p.add_argument("--no-sgd", action="store_true", help="only the optimizer of each .arch file")
    p.add_argument("--no-torch", action="store_true", help="archc only, even if torch imports")
    p.add_argument("--only", help="comma-separated workload names (digits, mnist_5k)")
    p.add_argument("--torch-threads", default="2,1", help="PyTorch thread counts (default 2,1)")
    return p.parse_args()


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


def check_model(text, dims, path):
    """The train block trains the model the PyTorch side builds."""
    m = re.search(r"^train\s+\w+\(([^)]*)\)", text, re.M)
    try:
        got = tuple(int(s) for s in m.group(1).split(",")) if m else None
    except ValueError:
        got = m.group(1)
    if got != dims:
        sys.exit(f"bench: {path} trains {got}, expected the MLP {dims}: update WORKLOADS")


# ---------------------------------------------------------------- archc

def run_archc(archc, arch_path, epochs, workdir):
    """Trains `epochs` epochs in one process; returns (train samples, [(steps_s, wall_s)])."""
    out = os.path.join(workdir, "run")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [archc, "train", arch_path, "--out", out, "--quiet", "--epochs", str(epochs)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    m = re.search(r"\((\d+) train", r.stdout + r.stderr)
    if not m:
        sys.exit(f"bench: cannot find the train-set size in archc's output:\n{r.stdout}{r.stderr}")
    n_train = int(m.group(1))
    with open(os.path.join(out, "metrics.jsonl")) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    return n_train, [(n_train / rec["samples_per_s"], rec["seconds"]) for rec in recs]


# ---------------------------------------------------------------- PyTorch

class Torch:
    """PyTorch eager training of the same MLPs, data pre-batched outside the timed loop."""

    def __init__(self, torch):
        self.torch = torch
        self.data = {}

    def load(self, file, scale, frac, batch, seed=0):
        torch = self.torch
        key = (file, batch)
        if key not in self.data:
            with gzip.open(os.path.join(data_dir(), file), "rt") as f:
                rows = [[float(v) for v in line.split(",")] for line in f if line.strip()]
            t = torch.tensor(rows, dtype=torch.float32)
            x, y = t[:, :-1] / scale, t[:, -1].long()
            g = torch.Generator().manual_seed(seed)
            perm = torch.randperm(len(x), generator=g)[: int(frac * len(x))]
            x, y = x[perm], y[perm]
            self.data[key] = [(x[i:i + batch].contiguous(), y[i:i + batch].contiguous())
                              for i in range(0, len(x), batch)]
        return self.data[key]

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

    def train(self, batches, dims, entry, epochs, threads):
        """Epoch times (s) of `epochs` epochs of a fresh model on `threads` threads."""
        torch, nn, F = self.torch, self.torch.nn, self.torch.nn.functional
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        d_in, hidden, classes = dims
        model = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, classes))
        opt = self.optimizer(entry, model.parameters())
        times = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            loss_sum = torch.zeros(())
            correct = torch.zeros((), dtype=torch.long)
            for xb, yb in batches:
                opt.zero_grad(set_to_none=True)
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                loss.backward()
                opt.step()
                loss_sum += loss.detach() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
            _ = (float(loss_sum), int(correct))
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


def verdict(a, t):
    r = a / t
    return f"{r:.2f} (PyTorch {r:.1f}x faster)" if r >= 1 else f"{r:.2f} (archc {1 / r:.1f}x faster)"


def load_avg():
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def make_cases(args, tmpdir):
    """(label, workload, .arch path to run, optimizer entry) for every measured case."""
    only = set(args.only.split(",")) if args.only else None
    cases = []
    for w in WORKLOADS:
        name, path, _, _, dims, _ = w
        if only and name not in only:
            continue
        text = read_arch(path)
        check_model(text, dims, path)
        entry = optimizer_entry(text, path)
        cases.append((f"{name} {parse_call(entry)[0]}", w, path, entry))
        if not args.no_sgd and parse_call(entry)[0] != "sgd":
            sgd_path = os.path.join(tmpdir, f"{name}_sgd.arch")
            with open(sgd_path, "w") as f:
                f.write(OPT_RE.sub(lambda m: m.group(1) + SGD, text, count=1))
            cases.append((f"{name} sgd", w, sgd_path, SGD))
    return cases


def measure(args, cases, tb, threads, tmpdir):
    """Interleaved rounds; returns {label: {"steps": [s], "wall": [s], "n": int, threads: [s]}}."""
    total = args.warmup + args.epochs
    res = {c[0]: {"steps": [], "wall": [], "n": None, **{t: [] for t in threads}} for c in cases}
    for rnd in range(args.rounds):
        for label, w, path, entry in cases:
            _, arch, file, scale, dims, frac = w
            r = res[label]
            work = os.path.join(tmpdir, label.replace(" ", "_"))
            os.makedirs(work, exist_ok=True)
            r["n"], epochs = run_archc(args.archc, path, total, work)
            kept = epochs[args.warmup:]
            r["steps"] += [s for s, _ in kept]
            r["wall"] += [wall for _, wall in kept]
            line = f"round {rnd + 1} {label:<15} archc {ms(statistics.median(s for s, _ in kept))} ms"
            if tb:
                batches = tb.load(file, scale, frac, batch_size(read_arch(arch)))
                if sum(len(y) for _, y in batches) != r["n"]:
                    print(f"warning: PyTorch trains on {sum(len(y) for _, y in batches)} samples, archc on {r['n']}")
                for t in threads:
                    times = tb.train(batches, dims, entry, total, t)[args.warmup:]
                    r[t] += times
                    line += f", PyTorch {t}t {ms(statistics.median(times))} ms"
            print(line, flush=True)
    return res


def table(args, cases, res, threads):
    head = ["workload", "optimizer", "archc ms (steps)", "archc ms (wall)"]
    head += [f"PyTorch {t}t ms" for t in threads]
    if threads:
        head.append("archc / fastest PyTorch")
    rows = []
    for label, w, _, entry in cases:
        r = res[label]
        a = statistics.median(r["steps"])
        row = [f"{w[0]} MLP {'-'.join(map(str, w[4]))}, {r['n']} samples", entry, ms(a),
               ms(statistics.median(r["wall"]))]
        med = {t: statistics.median(r[t]) for t in threads}
        row += [ms(med[t]) for t in threads]
        if threads:
            best = min(threads, key=lambda t: med[t])
            row.append(f"{verdict(a, med[best])}, vs {best}t")
        rows.append(row)
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(c.ljust(wd) for c, wd in zip(cells, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (wd + 2) for wd in widths) + "|")
    for row in rows:
        print(line(row))
    print(f"\nmedians of {args.rounds * args.epochs} epochs each; 'steps' = archc's time in train steps "
          "(compare with PyTorch), 'wall' adds its per-epoch test evaluation, batch gathers and checkpoint.")


def main():
    args = parse_args()
    args.archc = os.path.abspath(args.archc)
    if not os.access(args.archc, os.X_OK):
        sys.exit(f"bench: {args.archc} not found: run `make build` (or `make bench`)")
    torch = None if args.no_torch else import_torch()
    tb = Torch(torch) if torch else None
    threads = [int(t) for t in args.torch_threads.split(",")] if tb else []
    print(f"archc: {args.archc} (reference interpreter, 1 thread)")
    if tb:
        print(f"PyTorch {torch.__version__} eager, threads {threads} ({sys.executable})")
    elif args.no_torch:
        print("PyTorch skipped (--no-torch): archc only.")
    else:
        print(f"PyTorch not found ({sys.executable} cannot import torch): archc only. "
              "For the comparison: make bench PYTHON=/tmp/torchenv/bin/python")
    print(f"{args.rounds} rounds x {args.epochs} timed epochs (+{args.warmup} warm-up) per set, "
          f"archc and PyTorch interleaved; {os.cpu_count()} CPUs, {load_avg()}\n")
    with tempfile.TemporaryDirectory(prefix="archc-bench-") as tmpdir:
        cases = make_cases(args, tmpdir)
        res = measure(args, cases, tb, threads, tmpdir)
    print(f"\n{load_avg()}\n")
    table(args, cases, res, threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
