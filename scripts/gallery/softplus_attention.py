#!/usr/bin/env python3
"""The PyTorch twin of examples/train_softplus_attention.arch: a small pre-norm
Transformer on MNIST-1D whose attention weights are LSSAR's (Gao et al. 2025) instead of
softmax: softplus(log(T) * q.k / sqrt(dh)), l1-normalised over the keys, then raised to
the power P and normalised again.

It mirrors the .arch file: the same layers in the same order, PyTorch's default
initialisation (which is the stdlib's: Linear and Conv1d uniform(+-1/sqrt(fan_in)),
LayerNorm ones and zeros; the positions normal(std 0.02)), Adam(lr 3e-3) with archc's
`cosine()` schedule (per step, over the whole run), batch 100, 40 epochs, the 4000
training rows in archc's batch order for the seed (`common.Batches`), and the accuracy on
the 1000 test rows.

Usage: softplus_attention.py [--seeds 0,1,2] [--json tests/fixtures/gallery/softplus_attention.json]
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from common import Batches, mnist1d  # noqa: E402

D, HEADS, FF, LAYERS, P, TOKENS = 32, 4, 64, 2, 2.0, 10
LR, BATCH, EPOCHS = 3e-3, 100, 40


def lssar(scores, p):
    a = F.softplus(math.log(scores.shape[-1]) * scores)
    a = a / a.sum(-1, keepdim=True)
    r = a**p
    return r / r.sum(-1, keepdim=True)


class SoftplusAttention(nn.Module):
    def __init__(self, d, heads, p):
        super().__init__()
        self.heads, self.p = heads, p
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        split = lambda z: z.view(b, t, self.heads, -1).transpose(1, 2)
        scores = split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) / math.sqrt(d // self.heads)
        return self.o((lssar(scores, self.p) @ split(self.v(x))).transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    def __init__(self, d, heads, ff, p):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d), SoftplusAttention(d, heads, p)
        self.norm2, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x):
        h = x + self.attn(self.norm1(x))
        return h + self.fc2(F.gelu(self.fc1(self.norm2(h))))


class SoftplusTransformer(nn.Module):
    def __init__(self, d=D, heads=HEADS, ff=FF, layers=LAYERS, p=P, classes=10):
        super().__init__()
        self.embed = nn.Conv1d(1, d, 8, stride=4, padding=2)  # 40 samples -> 10 tokens
        self.pos = nn.Parameter(torch.randn(TOKENS, d) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ff, p) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, classes)

    def forward(self, x):
        h = self.embed(x.view(-1, 1, 40)).transpose(1, 2) + self.pos
        for layer in self.layers:
            h = layer(h)
        return self.head(self.norm(h.mean(1)))


def train(seed):
    (x, y), (xt, yt) = mnist1d()
    x, y, xt, yt = map(torch.from_numpy, (x, y, xt, yt))
    torch.manual_seed(seed)
    net = SoftplusTransformer()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    batches = Batches(len(x), BATCH, seed)
    total, step = EPOCHS * math.ceil(len(x) / BATCH), 0
    for epoch in range(EPOCHS):
        for rows in batches(epoch):
            for g in opt.param_groups:  # archc's cosine(): per step, over the whole run
                g["lr"] = LR * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
            rows = torch.from_numpy(rows)
            loss = F.cross_entropy(net(x[rows]), y[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    net.eval()
    with torch.no_grad():
        return (net(xt).argmax(-1) == yt).float().mean().item()


def main(example):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in a.seeds.split(",")]
    values = []
    for s in seeds:
        values.append(round(train(s), 4))
        print(f"seed {s}: test accuracy {values[-1]:.4f}", flush=True)
    mean = round(sum(values) / len(values), 4)
    print(f"mean: {mean:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"example": example, "metric": "accuracy", "seeds": seeds, "values": values, "mean": mean}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main("train_softplus_attention.arch")
