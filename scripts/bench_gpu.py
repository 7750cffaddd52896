#!/usr/bin/env python3
"""GPU benchmark: archc's mlir-gpu train steps against PyTorch on the same GPU.

Usage, on a machine with an NVIDIA GPU (PyTorch with CUDA for the comparison):

    python3 scripts/bench_gpu.py [--archc target/release/archc] [--steps 50]

Workloads (the issue's three train steps, f32, TF32 off on both sides):
  mlp          MLP 784-256-256-10, cross-entropy, Adam, batch 256     (scripts/bench/gpu_mlp.arch)
  fno1d        FNO-1d width 64, 16 modes, 4 layers, MSE, Adam, batch 32, N=1024
                                                                      (scripts/bench/gpu_fno1d.arch)
  transformer  encoder layer d=256, 4 heads, ff 1024, seq 256, MSE, Adam, batch 32
                                                                      (scripts/bench/gpu_transformer.arch)

archc: `archc train FILE --backend mlir-gpu --time-steps N` (random batches; the median
step after a first, compiling one), once per run-time mode (`--archc-modes`): `managed`
(`ARCHC_GPU_MEMORY=managed`: managed memory, a wait after each launch), `async` (the same
with `ARCHC_GPU_ASYNC=1`), `device` (`ARCHC_GPU_GRAPH=0`: device memory, one wait per step)
and `graph` (device memory, the step replayed as a CUDA graph: the default). PyTorch: the
same model and step on random batches,
timed with CUDA events (median of N steps after 10 warm-up steps) in three modes: eager,
`torch.compile(step)` and `torch.compile(step, mode="reduce-overhead")` (CUDA graphs).
The anchor is the fastest PyTorch mode; the table gives the fastest archc mode's speed-up
over it (> 1: archc is faster) and the goal.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKLOADS = [
    # name, arch file, --dim, goal (archc step time in ms)
    ("mlp", "scripts/bench/gpu_mlp.arch", None, 0.1),
    ("fno1d", "scripts/bench/gpu_fno1d.arch", "N=1024", 0.5),
    ("transformer", "scripts/bench/gpu_transformer.arch", "T=256", 1.0),
]

STEP_RE = re.compile(r"train step: median ([\d.]+) ms, min ([\d.]+) ms over (\d+) steps \(first step ([\d.]+) ms\)")


ARCHC_MODES = {
    "managed": {"ARCHC_GPU_MEMORY": "managed"},
    "async": {"ARCHC_GPU_MEMORY": "managed", "ARCHC_GPU_ASYNC": "1"},
    "device": {"ARCHC_GPU_MEMORY": "device", "ARCHC_GPU_GRAPH": "0"},
    "graph": {"ARCHC_GPU_MEMORY": "device", "ARCHC_GPU_GRAPH": "1"},
}


def archc_step(archc, arch, dim, steps, backend, mode="managed"):
    """archc's median train-step time in ms (and the first step's), or an error text."""
    cmd = [archc, "train", os.path.join(ROOT, arch), "--backend", backend, "--time-steps", str(steps)]
    if dim:
        cmd += ["--dim", dim]
    env = dict(os.environ, **ARCHC_MODES[mode])
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    m = STEP_RE.search(r.stdout + r.stderr)
    if r.returncode != 0 or not m:
        return None, None, (r.stdout + r.stderr).strip().splitlines()[-1:] or ["failed"]
    return float(m.group(1)), float(m.group(4)), None


# ---------------------------------------------------------------- PyTorch models


def torch_workload(torch, name, device):
    """(model, batch of inputs, loss function of (model, batch)) for a workload."""
    nn = torch.nn
    f = torch.nn.functional
    if name == "mlp":
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
        batch = (torch.randn(256, 784, device=device), torch.randint(0, 10, (256,), device=device))
        return model.to(device), batch, lambda m, b: f.cross_entropy(m(b[0]), b[1])
    if name == "fno1d":
        model = Fno1d(torch, 64, 16, 4)
        x = torch.randn(32, 1024, 1, device=device)
        return model.to(device), (x,), lambda m, b: f.mse_loss(m(b[0]), b[0])
    if name == "transformer":
        model = nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, batch_first=True)
        x = torch.randn(32, 256, 256, device=device)
        return model.to(device), (x,), lambda m, b: f.mse_loss(m(b[0]), b[0])
    raise ValueError(name)


def Fno1d(torch, width, modes, depth):
    """FNO-1d as scripts/bench/gpu_fno1d.arch: lift, depth x (spectral + 1x1 conv, gelu),
    project."""
    nn = torch.nn

    class Spectral(nn.Module):
        def __init__(self):
            super().__init__()
            scale = 1.0 / (width * width)
            self.w = nn.Parameter(scale * torch.rand(width, width, modes, dtype=torch.cfloat))

        def forward(self, v):
            z = torch.fft.rfft(v, dim=-1)[..., :modes]
            out = torch.zeros(v.shape[0], width, v.shape[-1] // 2 + 1, dtype=torch.cfloat, device=v.device)
            out[..., :modes] = torch.einsum("bim,iom->bom", z, self.w)
            return torch.fft.irfft(out, n=v.shape[-1], dim=-1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lift = nn.Linear(1, width)
            self.spectral = nn.ModuleList(Spectral() for _ in range(depth))
            self.pointwise = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(depth))
            self.proj = nn.Sequential(nn.Linear(width, 128), nn.GELU(), nn.Linear(128, 1))

        def forward(self, x):
            v = self.lift(x).transpose(1, 2)
            for s, p in zip(self.spectral, self.pointwise):
                v = torch.nn.functional.gelu(s(v) + p(v))
            return self.proj(v.transpose(1, 2))

    return Net()


def torch_step_ms(torch, name, mode, steps, device):
    """Median step time (ms) of one PyTorch mode: eager, compile, reduce-overhead."""
    torch.manual_seed(0)
    model, batch, loss_fn = torch_workload(torch, name, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, batch)
        loss.backward()
        opt.step()
        return loss

    run = step
    if mode == "compile":
        run = torch.compile(step)
    elif mode == "reduce-overhead":
        run = torch.compile(step, mode="reduce-overhead")
    for _ in range(10):
        run()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archc", default=os.path.join(ROOT, "target", "release", "archc"))
    p.add_argument("--backend", default="mlir-gpu", help="archc backend (default mlir-gpu)")
    p.add_argument("--steps", type=int, default=50, help="timed steps per measurement (default 50)")
    p.add_argument("--only", help="comma-separated workloads (default all)")
    p.add_argument("--no-torch", action="store_true", help="archc only")
    p.add_argument(
        "--torch-modes", default="eager,compile,reduce-overhead", help="PyTorch modes: eager,compile,reduce-overhead"
    )
    p.add_argument("--archc-modes", default="managed,graph", help="archc run-time modes: " + ",".join(ARCHC_MODES))
    args = p.parse_args()
    archc_modes = args.archc_modes.split(",")
    for m in archc_modes:
        if m not in ARCHC_MODES:
            p.error(f"unknown archc mode {m} (expected {', '.join(ARCHC_MODES)})")
    only = set(args.only.split(",")) if args.only else None

    torch = None
    if not args.no_torch:
        try:
            import torch as t

            if t.cuda.is_available():
                torch = t
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = False
                print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}")
            else:
                print("PyTorch has no CUDA device: archc only")
        except ImportError:
            print("PyTorch not found: archc only")

    modes = args.torch_modes.split(",")
    for m in modes:
        if m not in ("eager", "compile", "reduce-overhead"):
            p.error(f"unknown PyTorch mode {m}")
    header = (
        f"{'workload':<12} "
        + " ".join(f"{'archc ' + m:>14}" for m in archc_modes)
        + " "
        + " ".join(f"{m:>16}" for m in modes)
        + f" {'speed-up':>9} {'goal':>8}"
    )
    rows = []
    for name, arch, dim, goal in WORKLOADS:
        if only and name not in only:
            continue
        ours = {}
        for m in archc_modes:
            ms, first, err = archc_step(args.archc, arch, dim, args.steps, args.backend, m)
            if err:
                print(f"{name}: archc {m}: {err[0]}", file=sys.stderr)
            else:
                ours[m] = ms
                print(f"{name}: archc {m}: first step (compiles) {first:.0f} ms", file=sys.stderr)
        theirs = {}
        if torch is not None:
            for m in modes:
                try:
                    theirs[m] = torch_step_ms(torch, name, m, args.steps, "cuda")
                except Exception as e:  # a mode that fails is reported, not fatal
                    print(f"{name} {m}: {type(e).__name__}: {str(e).splitlines()[0][:120]}", file=sys.stderr)
        best = min(theirs.values()) if theirs else None
        ms = min(ours.values()) if ours else None
        arch_cols = " ".join(f"{ours[m]:>11.3f} ms" if m in ours else f"{'failed':>14}" for m in archc_modes)
        cols = " ".join(f"{theirs[m]:>13.3f} ms" if m in theirs else f"{'-':>16}" for m in modes)
        ratio = f"{best / ms:>8.2f}x" if best and ms else f"{'-':>9}"
        met = "met" if ms is not None and ms <= goal else "missed"
        rows.append(f"{name:<12} {arch_cols} {cols} {ratio} {f'<={goal:g} ms':>8} {met}")
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
