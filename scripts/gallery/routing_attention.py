#!/usr/bin/env python3
"""The PyTorch twin of examples/train_routing_attention.arch: a small pre-norm Routing
Transformer (Roy, Saffar, Vaswani & Grangier 2021) on MNIST-1D, 20 tokens. Per head, one
shared query/key projection is scaled to unit length; each of 4 centroids (a buffer)
takes the w = 20 / 4 = 5 tokens nearest to it as its keys, and each query attends, by a
softmax over sqrt(dh) * q.k, only to the 5 keys of its nearest centroid (the others are
masked with -inf). While training, each centroid moves to 0.99 * itself + 0.01 * the mean
of the vectors assigned to it, scaled back to unit length.

It mirrors the .arch file: the same layers in the same order, PyTorch's default
initialisation (which is the stdlib's: Linear and Conv1d uniform(+-1/sqrt(fan_in)),
LayerNorm ones and zeros; positions normal(std 0.02), centroids normal(std 1)),
Adam(lr 3e-3) with archc's `cosine()` schedule (per step, over the whole run), batch 100,
40 epochs, the 4000 training rows in archc's batch order for the seed
(`common.Batches`), and the accuracy on the 1000 test rows.

Usage: routing_attention.py [--seeds 0,1,2] [--json tests/fixtures/gallery/routing_attention.json]
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

D, HEADS, FF, LAYERS, CLUSTERS, TOKENS, DECAY = 32, 4, 64, 2, 4, 20, 0.99
LR, BATCH, EPOCHS = 3e-3, 100, 40


def unit(x):
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + 1e-12)


class RoutingAttention(nn.Module):
    def __init__(self, d, heads, clusters, decay=DECAY):
        super().__init__()
        self.heads, self.clusters, self.decay = heads, clusters, decay
        self.qk, self.v, self.o = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.register_buffer("centroids", torch.randn(heads, clusters, d // heads))

    def forward(self, x):
        b, t, d = x.shape
        dh, w = d // self.heads, t // self.clusters
        split = lambda z: z.view(b, t, self.heads, -1).transpose(1, 2)
        s = unit(split(self.qk(x)))  # [B, h, T, dh]: queries and keys
        mu = unit(self.centroids)  # [h, C, dh]
        sim = torch.einsum("bhtd,hcd->bhct", s, mu)
        onehot = F.one_hot(sim.argmax(2), self.clusters).float()  # [B, h, T, C]: each query's centroid
        member = F.one_hot(sim.topk(w, dim=-1).indices, t).sum(-2).float()  # [B, h, C, T]: its w keys
        allowed = onehot @ member  # [B, h, T, T]
        scores = (s @ s.transpose(-1, -2) * math.sqrt(dh)).masked_fill(allowed < 0.5, float("-inf"))
        if self.training:
            with torch.no_grad():
                total = torch.einsum("bhtc,bhtd->hcd", onehot, s)
                count = onehot.sum((0, 2)).unsqueeze(-1)
                moved = unit(self.decay * mu + (1 - self.decay) * total / count.clamp(min=1.0))
                self.centroids.copy_(torch.where(count > 0.5, moved, mu))
        return self.o((scores.softmax(-1) @ split(self.v(x))).transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    def __init__(self, d, heads, ff, clusters):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d), RoutingAttention(d, heads, clusters)
        self.norm2, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x):
        h = x + self.attn(self.norm1(x))
        return h + self.fc2(F.gelu(self.fc1(self.norm2(h))))


class RoutingTransformer(nn.Module):
    def __init__(self, d=D, heads=HEADS, ff=FF, layers=LAYERS, clusters=CLUSTERS, classes=10):
        super().__init__()
        self.embed = nn.Conv1d(1, d, 4, stride=2, padding=1)  # 40 samples -> 20 tokens
        self.pos = nn.Parameter(torch.randn(TOKENS, d) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ff, clusters) for _ in range(layers))
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
    net = RoutingTransformer()
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
    main("train_routing_attention.arch")
