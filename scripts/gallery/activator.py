#!/usr/bin/env python3
"""The PyTorch twin of examples/train_activator.arch: Activator (Abdullah & Aydin 2024)
on MNIST-1D, a Transformer whose attention is a GLU MLP across the tokens: per channel,
Linear(10 -> 2 * 20) over the token axis, GEGLU (first half times gelu of the second),
Linear(20 -> 10); the channel MLP is a GEGLU MLP too (Linear(32 -> 2 * 64), GEGLU,
Linear(64 -> 32)). Pre-norm residual blocks, no positions (the token mixer's weights are
per position), mean over tokens, LayerNorm, linear classifier.

It mirrors the .arch file: the same layers in the same order, PyTorch's default
initialisation (which is the stdlib's: Linear and Conv1d uniform(+-1/sqrt(fan_in)),
LayerNorm ones and zeros), Adam(lr 3e-3) with archc's `cosine()` schedule (per step, over
the whole run), batch 100, 40 epochs, the 4000 training rows in archc's batch order for
the seed (`common.Batches`), and the accuracy on the 1000 test rows.

Usage: activator.py [--seeds 0,1,2] [--json tests/fixtures/gallery/activator.json]
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

D, HIDDEN, LAYERS, TOKENS, TOKEN_HIDDEN = 32, 64, 2, 10, 20
LR, BATCH, EPOCHS = 3e-3, 100, 40


def geglu(z):
    a, g = z.chunk(2, -1)
    return a * F.gelu(g)


class TokenGlu(nn.Module):
    """A GEGLU MLP along the token axis, one for every channel (the attention's place)."""

    def __init__(self, tokens, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(tokens, 2 * hidden), nn.Linear(hidden, tokens)

    def forward(self, x):  # [B, T, d]
        return self.fc2(geglu(self.fc1(x.transpose(1, 2)))).transpose(1, 2)


class ChannelGlu(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, 2 * hidden), nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(geglu(self.fc1(x)))


class ActivatorLayer(nn.Module):
    def __init__(self, d, tokens, token_hidden, hidden):
        super().__init__()
        self.norm1, self.mix = nn.LayerNorm(d), TokenGlu(tokens, token_hidden)
        self.norm2, self.mlp = nn.LayerNorm(d), ChannelGlu(d, hidden)

    def forward(self, x):
        h = x + self.mix(self.norm1(x))
        return h + self.mlp(self.norm2(h))


class Activator(nn.Module):
    def __init__(self, d=D, hidden=HIDDEN, layers=LAYERS, classes=10):
        super().__init__()
        self.embed = nn.Conv1d(1, d, 8, stride=4, padding=2)  # 40 samples -> 10 tokens
        self.layers = nn.ModuleList(ActivatorLayer(d, TOKENS, TOKEN_HIDDEN, hidden) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, classes)

    def forward(self, x):
        h = self.embed(x.view(-1, 1, 40)).transpose(1, 2)
        for layer in self.layers:
            h = layer(h)
        return self.head(self.norm(h.mean(1)))


def train(seed):
    (x, y), (xt, yt) = mnist1d()
    x, y, xt, yt = map(torch.from_numpy, (x, y, xt, yt))
    torch.manual_seed(seed)
    net = Activator()
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
    main("train_activator.arch")
