#!/usr/bin/env python3
"""The PyTorch twin of examples/train_batchformer.arch: BatchFormer (Hou, Xu, Yu & Tao
2022) on MNIST-1D, as the paper's code writes it: while training, the
features of the mini-batch go through a transformer encoder layer along the batch axis
(`encoder(f.unsqueeze(1))`: the B samples are the sequence), and the shared classifier
sees both the features and the encoder's output (the [2B] rows' cross-entropy against
the labels twice); at test time the encoder is skipped.

It mirrors the .arch file: the backbone is the MNIST-1D CNN (three strided Conv1d of 25
channels, flattened to d = 125 features), the classifier nn.Linear (PyTorch's init, as
the stdlib's), the encoder nn.TransformerEncoderLayer(d, 5, d, dropout = 0.5) (post-norm,
relu; stdlib attention.TransformerEncoderLayer keeps its init). Adam, cosine schedule
per step, the same batches (common.py), the test part of MNIST-1D.
`--no-batchformer` trains the same network without it (both sides: the .arch file's
`batchformer = false`). Six seeds by default: this CNN's test accuracy varies by about
1.5 points from seed to seed, so three seeds' means of two equal trainings can differ
by 2 points.

Usage: batchformer.py [--seeds 0,1,2,3,4,5] [--json PATH] [--no-batchformer]
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

C, HEADS, DROPOUT = 25, 5, 0.5
EPOCHS, BATCH, LR = 60, 100, 1e-2


class Net(nn.Module):
    def __init__(self, batchformer=True):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv1d(1, C, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(C, C, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(C, C, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        self.classifier = nn.Linear(C * 5, 10)
        self.encoder = nn.TransformerEncoderLayer(C * 5, HEADS, C * 5, DROPOUT) if batchformer else None

    def forward(self, x, y):
        f = self.backbone(x.unsqueeze(1))  # [B, 125]
        if self.training and self.encoder is not None:
            f = torch.cat([f, self.encoder(f.unsqueeze(1)).squeeze(1)], 0)
            y = torch.cat([y, y], 0)
        return self.classifier(f), y


def run(seed, data, batchformer):
    (x, y), (xt, yt) = data
    torch.manual_seed(seed)
    model = Net(batchformer)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    batches = common.Batches(len(x), BATCH, seed)
    total, t = EPOCHS * math.ceil(len(x) / BATCH), 0
    for epoch in range(EPOCHS):
        model.train()
        for rows in batches(epoch):
            for g in opt.param_groups:
                g["lr"] = LR * 0.5 * (1 + math.cos(math.pi * t / total))
            logits, target = model(x[rows], y[rows])
            loss = F.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            t += 1
    model.eval()
    with torch.no_grad():
        return (model(xt, yt)[0].argmax(-1) == yt).float().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--json")
    ap.add_argument("--no-batchformer", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    (x, y), (xt, yt) = common.mnist1d()
    data = ((torch.tensor(x), torch.tensor(y)), (torch.tensor(xt), torch.tensor(yt)))
    seeds = [int(s) for s in a.seeds.split(",")]
    values = []
    for s in seeds:
        values.append(run(s, data, not a.no_batchformer))
        print(f"seed {s}: test accuracy {values[-1]:.4f}", flush=True)
    mean = float(np.mean(values))
    print(f"mean: {mean:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"example": "train_batchformer.arch", "metric": "accuracy", "seeds": seeds,
                       "values": [round(v, 4) for v in values], "mean": round(mean, 4)}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
