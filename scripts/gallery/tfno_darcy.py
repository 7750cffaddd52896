#!/usr/bin/env python3
"""The PyTorch twin of examples/train_tfno_darcy.arch: a Tucker-factorised FNO (TFNO,
Kossaifi et al. 2023) on Darcy flow at 16x16, evaluated at 16x16 and zero-shot at 32x32.

Mirrors the .arch file: the same layers (coordinates appended, Linear lift, 4 Fourier
layers gelu(spectral + 1x1 conv), Linear-gelu-Linear projection) with the stdlib's init
(uniform +-1/sqrt(fan_in), as torch.nn.Linear and Conv2d), the spectral weights of all
layers as one Tucker tensor [2 (re, im), layer, in, out, 2 * modes, modes] (core normal
with std CORE_STD, factors uniform +-sqrt(3 / rank)) reconstructed by einsum, rows
0..m-1 of the third-to-last axis for the positive frequencies along H and rows m..2m-1
for the negative ones; Adam 2e-3 with weight decay 1e-4 (L2, as archc's adam), a
per-step cosine to 0, batch 20, 30 epochs, the loss and metric relative L2 (mean over
samples), archc's batch order (common.py; `archc train --seed N` shuffles with seed N).
`--dense` trains the dense FNO of examples/train_darcy_fno.arch instead (complex weights
uniform(0, 1 / width^2) per part, as stdlib/spectral.arch).

Usage: tfno_darcy.py [--seeds 0,1,2] [--json PATH] [--dense]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

WIDTH, MODES, DEPTH = 32, 6, 4
RANKS = (4, 12, 12, 12, 6)  # layer, in, out, 2 * modes (H), modes (W)
CORE_STD = 1e-3
LR, WD, BATCH, EPOCHS = 2e-3, 1e-4, 20, 30


def uniform(shape, bound, low=None):
    low = -bound if low is None else low
    return torch.nn.Parameter(torch.empty(*shape).uniform_(low, bound))


class Tucker(torch.nn.Module):
    """W[z, l, i, o, k, m] = sum G[z, a, b, c, d, e] L[l, a] I[i, b] O[o, c] X[k, d] Y[m, e]."""

    def __init__(self, shape, ranks):
        super().__init__()
        self.core = torch.nn.Parameter(torch.randn(2, *ranks) * CORE_STD)
        self.factors = torch.nn.ParameterList(uniform([n, r], math.sqrt(3.0 / r)) for n, r in zip(shape, ranks))

    def forward(self):
        return torch.einsum("zabcde,la,ib,oc,kd,me->zliokm", self.core, *self.factors)


def spectral_conv(x, w_re, w_im):
    """stdlib/spectral.arch's SpectralConv2d with given weights [c_in, c_out, 2 m1, m2]."""
    m1, m2 = w_re.shape[2] // 2, w_re.shape[3]
    h, w = x.shape[-2:]
    z = torch.fft.rfft2(x)
    kept = torch.cat([z[:, :, :m1, :m2], z[:, :, -m1:, :m2]], dim=2)
    mixed = torch.einsum("bikm,iokm->bokm", kept, torch.complex(w_re, w_im))
    out = torch.zeros(x.shape[0], w_re.shape[1], h, w // 2 + 1, dtype=z.dtype)
    out[:, :, :m1, :m2] = mixed[:, :, :m1]
    out[:, :, -m1:, :m2] = mixed[:, :, m1:]
    return torch.fft.irfft2(out, s=(h, w))


class Fno(torch.nn.Module):
    def __init__(self, dense=False, width=WIDTH, modes=MODES, depth=DEPTH):
        super().__init__()
        self.lift = torch.nn.Linear(3, width)
        shape = (width, width, 2 * modes, modes)
        if dense:
            s = 1.0 / (width * width)
            self.w = torch.nn.ParameterList(uniform([2, *shape], s, low=0.0) for _ in range(depth))
        else:
            self.tucker = Tucker((depth, *shape), RANKS)
        self.dense = dense
        self.pointwise = torch.nn.ModuleList(torch.nn.Conv2d(width, width, 1) for _ in range(depth))
        self.proj1, self.proj2 = torch.nn.Linear(width, 128), torch.nn.Linear(128, 1)

    def forward(self, a):  # a: [B, H, W, 1]
        b, h, w, _ = a.shape
        gx = torch.linspace(0, 1, h).reshape(1, h, 1, 1).expand(b, h, w, 1)
        gy = torch.linspace(0, 1, w).reshape(1, 1, w, 1).expand(b, h, w, 1)
        v = self.lift(torch.cat([a, gx, gy], dim=-1)).permute(0, 3, 1, 2)
        weights = list(self.w) if self.dense else self.tucker().unbind(1)  # per layer [2, ...]
        for wl, conv in zip(weights, self.pointwise):
            v = F.gelu(spectral_conv(v, wl[0], wl[1]) + conv(v))
        return self.proj2(F.gelu(self.proj1(v.permute(0, 2, 3, 1))))


def rel_l2(pred, y):
    d, t = (pred - y).flatten(1), y.flatten(1)
    return ((d * d).sum(1) / (t * t).sum(1)).sqrt()


def cosine(step, total):
    """archc's cosine() (runtime/src/train/schedule.rs), as a factor of LR."""
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, total))))


def run(seed, dense):
    x, y = map(torch.tensor, common.darcy("train_16"))
    tests = {p: tuple(map(torch.tensor, common.darcy(p))) for p in ("test_16", "test_32")}
    torch.manual_seed(seed)
    model = Fno(dense)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WD)
    batches = common.Batches(len(x), BATCH, seed)
    total = EPOCHS * math.ceil(len(x) / BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine(s, total))
    for epoch in range(EPOCHS):
        for rows in batches(epoch):
            loss = rel_l2(model(x[rows]), y[rows]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        return params, {p: rel_l2(model(tx), ty).mean().item() for p, (tx, ty) in tests.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json")
    ap.add_argument("--dense", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in a.seeds.split(",")]
    values, zero_shot = [], []
    for s in seeds:
        params, r = run(s, a.dense)
        values.append(r["test_16"])
        zero_shot.append(r["test_32"])
        print(f"seed {s}: {params} parameters, relative L2 {r['test_16']:.4f} at 16x16, "
              f"{r['test_32']:.4f} at 32x32", flush=True)
    mean = float(np.mean(values))
    print(f"mean over seeds {seeds}: {mean:.4f} at 16x16, {np.mean(zero_shot):.4f} at 32x32")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"example": "train_tfno_darcy.arch", "metric": "rel_l2", "seeds": seeds,
                       "values": [round(v, 4) for v in values], "mean": round(mean, 4)}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
