#!/usr/bin/env python3
"""Benchmark: training-free architecture search throughput, archc against PyTorch eager.

Usage: `make bench-search PYTHON=/tmp/torchenv/bin/python` (builds archc and fetches the
data first), or directly, from the repository root, after `make build data`:

    /tmp/torchenv/bin/python scripts/bench_search.py                # 1000 candidates
    /tmp/torchenv/bin/python scripts/bench_search.py --n 200 --rounds 1 --threads 2,1

Not part of CI. Needs the standard library and PyTorch; get it with
`python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy`. Without
PyTorch the script prints archc's numbers, says PyTorch was not found, and exits 0.

The space is `examples/search_mnist1d.arch` (`--space`): MNIST-1D inputs [B, 1, 40], a
stem Conv1d(1, W, 5, stride=2, padding=2) + relu, then `depth` residual cells
`x + relu(BN(op(src)))` (op: Conv1d k3 p1, Conv1d k5 p2, Conv1d k3 p2 dilation 2,
depthwise Conv1d k5 p2, or identity; src: the previous cell's output or the stem's),
then Conv1d(W, W, 3, stride=2, padding=1) + relu, the mean over the length and
Linear(W, 10); depth in 1..4, W in {16, 24, 32, 48}.

archc: `archc search SPACE --strategy random --budget N --objective synflow --seed S`
(`--n`, `--seed`) evaluates N candidates, each built from the space and scored by
synflow, and writes them to trials.jsonl. Two times are taken: the whole process (wall
clock around the command: start-up, parsing and checking the space, loading the train
block's data set, the strategy, building and scoring every candidate, writing the log,
which archc syncs to disk after every trial), and the search alone: the sum of the
trials' `seconds` fields, archc's own time for building and scoring each candidate.
archc runs with `--threads` (and RAYON_NUM_THREADS) set to the largest of `--threads`.

PyTorch: the SAME candidates, read from the `choices` of the first run's trials.jsonl
(every later run must list the same ones), each built fresh as an `nn.Module` (default
PyTorch initialisation) and scored as zero-cost-nas defines synflow: the model in double
precision and eval mode, every entry of its state_dict replaced by its absolute value,
one input of ones with batch 1, R = sum(output), R.backward(), and the sum over the
Conv1d and Linear weights of |theta * dR/dtheta|. BatchNorm stays in, in inference mode
with fresh statistics, as archc scores it (zero-cost-nas's `synflow` removes it; a fresh
one is nearly the identity here). The timed region per candidate is construction plus
scoring, ending with the value as a Python float; reading the labels of trials.jsonl
into layer specifications happens before. PyTorch makes one pass per thread count of
`--threads` (a comma list, default 2) with torch.set_num_threads set to it; the ratio is
printed against each. The models are tiny (one sample, at most 48 channels of length
20), so intra-op threads buy little, and on a loaded 2-core machine two OpenMP threads
can be many times slower than one (`--threads 2,1` shows both). A few candidates are
scored untimed first (`--warmup`, per thread count), so that PyTorch's one-time start-up
costs are not counted; archc's are (in the whole-process number).

Only throughput is compared: the two sides start from different random weights, so
their synflow values differ and are not compared.

Measurement: archc and PyTorch alternate, one archc process then one PyTorch pass over
the candidates per round (`--rounds`, default 3); the reported times are medians over
the rounds, and rates are candidates per minute (N * 60 / median time). The load
average is printed before and after: numbers taken above a load of 2 (on 2 cores) are
not comparable with quiet runs.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CELL_KEY = re.compile(r"^repeat_0\.(\d+)\.cell_0\.(op|src)$")


def cpu_info():
    """The CPU model, the logical core count and whether avx2/avx512f are present."""
    model, flags = None, None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and flags is None:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or "unknown"
    return model, os.cpu_count(), {f: f in (flags or ()) for f in ("avx2", "avx512f")}


def load_average():
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def run_archc(args, out):
    """One `archc search` process: (wall seconds, trials of trials.jsonl)."""
    cmd = [
        args.archc, "search", args.space,
        "--strategy", "random", "--budget", str(args.n), "--objective", "synflow",
        "--seed", str(args.seed), "--out", out, "--overwrite", "--quiet",
        "--threads", str(max(args.threads)),
    ]
    env = dict(os.environ, RAYON_NUM_THREADS=str(max(args.threads)))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"archc search failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    with open(os.path.join(out, "trials.jsonl")) as f:
        trials = [json.loads(line) for line in f if line.strip()]
    if len(trials) != args.n:
        sys.exit(f"archc search wrote {len(trials)} trials, not {args.n}")
    return wall, trials


def parse_op(label, width):
    """`Conv1d(c, c, k, padding = p, ...)` -> (positional args, keyword args); skip -> None."""
    label = label.strip()
    if label == "skip":
        return None
    m = re.fullmatch(r"Conv1d\((.*)\)", label)
    if not m:
        sys.exit(f"unknown op label {label!r}")
    pos, kw = [], {}
    for part in m.group(1).split(","):
        name, eq, value = part.partition("=")
        if eq:
            kw[name.strip()] = int(value)
        else:
            pos.append(int(name))
    if pos[:2] != [width, width]:
        sys.exit(f"op {label!r} does not map width {width} to itself")
    return tuple(pos), kw


def candidate_spec(choices):
    """A candidate's choices -> (width, [(op spec, src is stem)] per cell)."""
    depth, width = int(choices["depth"]), int(choices["width"])
    cells = {}
    for key, label in choices.items():
        m = CELL_KEY.match(key)
        if m:
            cells.setdefault(int(m.group(1)), {})[m.group(2)] = label
    if sorted(cells) != list(range(depth)):
        sys.exit(f"choices {choices} do not list cells 0..{depth - 1}")
    spec = []
    for i in range(depth):
        src = cells[i]["src"]
        if src not in ("x", "stem"):
            sys.exit(f"unknown src label {src!r}")
        spec.append((parse_op(cells[i]["op"], width), src == "stem"))
    return width, spec


def torch_bench(torch):
    """The PyTorch side: a model class and the timed build-and-score of one candidate."""
    nn, F = torch.nn, torch.nn.functional

    class Cell(nn.Module):
        def __init__(self, c, op, from_stem):
            super().__init__()
            self.op = nn.Identity() if op is None else nn.Conv1d(*op[0], **op[1])
            self.norm = nn.BatchNorm1d(c)
            self.from_stem = from_stem

        def forward(self, x, s):
            return x + F.relu(self.norm(self.op(s if self.from_stem else x)))

    class Net(nn.Module):
        def __init__(self, width, cells, classes=10):
            super().__init__()
            self.stem = nn.Conv1d(1, width, 5, stride=2, padding=2)
            self.cells = nn.ModuleList(Cell(width, op, from_stem) for op, from_stem in cells)
            self.head = nn.Conv1d(width, width, 3, stride=2, padding=1)
            self.fc = nn.Linear(width, classes)

        def forward(self, x):
            s = F.relu(self.stem(x))
            h = s
            for cell in self.cells:
                h = cell(h, s)
            return self.fc(F.relu(self.head(h)).mean(dim=-1))

    def synflow(net):
        net = net.double().eval()
        with torch.no_grad():
            for t in net.state_dict().values():
                t.abs_()
        net.zero_grad()
        x = torch.ones(1, 1, 40, dtype=torch.float64)
        torch.sum(net(x)).backward()
        total = 0.0
        for m in net.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                total += (m.weight * m.weight.grad).abs().sum().item()
        return total

    def score(spec):
        width, cells = spec
        return synflow(Net(width, cells))

    return score


def torch_pass(score, specs):
    """Scores every candidate, each timed: (total seconds, per-candidate seconds)."""
    times = []
    for spec in specs:
        start = time.perf_counter()
        score(spec)
        times.append(time.perf_counter() - start)
    return sum(times), times


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archc", default=os.path.join(ROOT, "target/release/archc"), help="archc binary")
    p.add_argument("--space", default="examples/search_mnist1d.arch", help="search space (.arch)")
    p.add_argument("--n", type=int, default=1000, help="candidates (archc's --budget)")
    p.add_argument("--rounds", type=int, default=3, help="archc runs and PyTorch passes (medians)")
    p.add_argument("--threads", default="2",
                   help="comma list: torch.set_num_threads per PyTorch pass (archc's RAYON_NUM_THREADS: the largest)")
    p.add_argument("--seed", type=int, default=0, help="archc's --seed (which candidates)")
    p.add_argument("--warmup", type=int, default=5, help="candidates PyTorch scores untimed first")
    args = p.parse_args()
    try:
        args.threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        p.error(f"--threads {args.threads!r}: not a comma list of integers")
    if args.n < 1 or args.rounds < 1 or min(args.threads) < 1:
        p.error("--n, --rounds and every --threads value must be at least 1")

    try:
        import torch
    except ImportError:
        torch = None

    model, cores, flags = cpu_info()
    flag_text = ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in flags.items())
    print(f"CPU: {model}, {cores} logical cores; {flag_text}")
    print(f"archc: {args.archc} (RAYON_NUM_THREADS={max(args.threads)})")
    if torch is not None:
        threads = ", ".join(map(str, args.threads))
        print(f"PyTorch {torch.__version__} eager, threads {threads} ({sys.executable})")
    else:
        print(f"PyTorch not found in {sys.executable} (python3 -m venv /tmp/torchenv && "
              "/tmp/torchenv/bin/pip install torch numpy); archc only")
    print(f"space {args.space}: {args.n} candidates (random, seed {args.seed}, synflow), "
          f"{args.rounds} round(s); {load_average()}")

    score = torch_bench(torch) if torch is not None else None
    walls, searches = [], []
    torch_totals = {t: [] for t in args.threads}
    torch_times = {t: [] for t in args.threads}
    specs, first_choices, failed = None, None, 0
    with tempfile.TemporaryDirectory(prefix="bench_search.") as tmp:
        for r in range(args.rounds):
            wall, trials = run_archc(args, os.path.join(tmp, f"round{r}"))
            search = sum(t["seconds"] for t in trials)
            choices = [t["choices"] for t in trials]
            if first_choices is None:
                first_choices = choices
                failed = sum(t.get("status") != "ok" for t in trials)
                specs = [candidate_spec(c) for c in choices]
                if score is not None:
                    torch.manual_seed(args.seed)
                    for threads in args.threads:
                        torch.set_num_threads(threads)
                        for spec in specs[: args.warmup]:
                            score(spec)
            elif choices != first_choices:
                sys.exit(f"round {r + 1}: archc searched other candidates than round 1")
            walls.append(wall)
            searches.append(search)
            line = f"round {r + 1}: archc {wall:.3f} s (search {search:.3f} s)"
            if score is not None:
                for threads in args.threads:
                    torch.set_num_threads(threads)
                    total, times = torch_pass(score, specs)
                    torch_totals[threads].append(total)
                    torch_times[threads].extend(times)
                    line += f", PyTorch {threads} thread(s) {total:.3f} s"
            print(line, flush=True)

    n = args.n
    wall, search = statistics.median(walls), statistics.median(searches)
    rate_wall, rate_search = n * 60 / wall, n * 60 / search
    if failed:
        print(f"note: {failed} of archc's {n} trials failed (their time is counted)")
    print(f"{'archc, whole process':<26}: {rate_wall:8.0f} candidates/min (median wall {wall:.3f} s)")
    print(f"{'archc, search alone':<26}: {rate_search:8.0f} candidates/min (median {search:.3f} s, "
          f"{search / n * 1e3:.3f} ms per candidate)")
    if torch is not None:
        rates = {}
        for threads in args.threads:
            total = statistics.median(torch_totals[threads])
            rates[threads] = n * 60 / total
            label = f"PyTorch eager, {threads} thread(s)"
            print(f"{label:<26}: {rates[threads]:8.0f} candidates/min (median {total:.3f} s, "
                  f"median {statistics.median(torch_times[threads]) * 1e3:.3f} ms per candidate)")
        for threads in args.threads:
            print(f"ratio archc/PyTorch ({threads} thread(s)): {rate_wall / rates[threads]:.2f}x (whole process), "
                  f"{rate_search / rates[threads]:.2f}x (search alone)")
    print(load_average())


if __name__ == "__main__":
    main()
