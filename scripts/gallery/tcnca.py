#!/usr/bin/env python3
"""The PyTorch twin of examples/train_tcnca.arch: TCNCA (Terzić et al. 2023), MEGA's
gated attention layer with a dilated temporal convolution network in place of its EMA
and softmax attention within chunks of the sequence, on MNIST-1D.

It mirrors the .arch file layer by layer: the TCN is stdlib blocks.TemporalBlock (two
causal dilated convolutions with relu, plus the input, then relu; dilation 2 ** i), the
Linear, Conv1d and LayerNorm layers keep PyTorch's init (as the stdlib's), gamma is
normal(0, 0.02) and beta zeros (MEGA's). Adam, cosine schedule per step, the same
batches (common.py), the test part of MNIST-1D.

Usage: tcnca.py [--seeds 0,1,2] [--json PATH]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

D, Z, LAYERS, LEVELS, KERNEL, CHUNK = 32, 16, 2, 3, 3, 8
EPOCHS, BATCH, LR = 40, 100, 3e-3


class TemporalBlock(nn.Module):
    def __init__(self, c, k, dilation):
        super().__init__()
        self.pad = (k - 1) * dilation
        self.conv1 = nn.Conv1d(c, c, k, dilation=dilation)
        self.conv2 = nn.Conv1d(c, c, k, dilation=dilation)

    def forward(self, x):  # [B, c, T]
        y = F.relu(self.conv1(F.pad(x, (self.pad, 0))))
        y = F.relu(self.conv2(F.pad(y, (self.pad, 0))))
        return F.relu(y + x)


def chunked_attention(q, k, v, c):
    chunks = lambda t: t.reshape(t.shape[0], t.shape[1] // c, c, t.shape[2])
    p = torch.softmax(chunks(q) @ chunks(k).transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
    return (p @ chunks(v)).reshape(v.shape)


class TcncaLayer(nn.Module):
    def __init__(self, d=D, z=Z, levels=LEVELS, kernel=KERNEL, chunk=CHUNK):
        super().__init__()
        self.chunk = chunk
        self.tcn = nn.Sequential(*[TemporalBlock(d, kernel, 2**i) for i in range(levels)])
        self.to_z, self.to_v = nn.Linear(d, z), nn.Linear(d, d)
        self.to_reset, self.to_update, self.to_h = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.from_o = nn.Linear(d, d, bias=False)
        self.gamma = nn.Parameter(torch.randn(2, z) * 0.02)
        self.beta = nn.Parameter(torch.zeros(2, z))
        self.norm = nn.LayerNorm(d)

    def forward(self, x):  # [B, T, d]
        xc = self.tcn(x.transpose(1, 2)).transpose(1, 2)
        s = F.silu(self.to_z(xc))
        o = chunked_attention(s * self.gamma[0] + self.beta[0], s * self.gamma[1] + self.beta[1],
                              F.silu(self.to_v(x)), self.chunk)
        r, u = F.silu(self.to_reset(xc)), torch.sigmoid(self.to_update(xc))
        h = F.silu(self.to_h(xc) + self.from_o(r * o))
        return self.norm(u * h + (1 - u) * x)


class Tcnca(nn.Module):
    def __init__(self, d=D, layers=LAYERS, classes=10):
        super().__init__()
        self.embed = nn.Linear(1, d)
        self.layers = nn.Sequential(*[TcncaLayer(d) for _ in range(layers)])
        self.head = nn.Linear(d, classes)

    def forward(self, x):  # [B, 40]
        return self.head(self.layers(self.embed(x.unsqueeze(-1))).mean(1))


def run(seed, data):
    (x, y), (xt, yt) = data
    torch.manual_seed(seed)
    model = Tcnca()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    batches = common.Batches(len(x), BATCH, seed)
    total, t = EPOCHS * math.ceil(len(x) / BATCH), 0
    for epoch in range(EPOCHS):
        model.train()
        for rows in batches(epoch):
            for g in opt.param_groups:
                g["lr"] = LR * 0.5 * (1 + math.cos(math.pi * t / total))
            loss = F.cross_entropy(model(x[rows]), y[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            t += 1
    model.eval()
    with torch.no_grad():
        return (model(xt).argmax(-1) == yt).float().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    (x, y), (xt, yt) = common.mnist1d()
    data = ((torch.tensor(x), torch.tensor(y)), (torch.tensor(xt), torch.tensor(yt)))
    seeds = [int(s) for s in a.seeds.split(",")]
    values = []
    for s in seeds:
        values.append(run(s, data))
        print(f"seed {s}: test accuracy {values[-1]:.4f}", flush=True)
    mean = float(np.mean(values))
    print(f"mean: {mean:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"example": "train_tcnca.arch", "metric": "accuracy", "seeds": seeds,
                       "values": [round(v, 4) for v in values], "mean": round(mean, 4)}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
