#!/usr/bin/env python3
"""The PyTorch twin of examples/train_maestro.arch: Maestro (Horváth et al. 2024), an
MLP whose linear layers are products of two factors, trained with ordered dropout over
the rank and a hierarchical group lasso on the rank-1 components, on mnist_5k.

Mirrors the .arch file: the same split and mini-batch order (common.py; `archc train
--seed N` shuffles with seed N), the same init (U, V uniform +-sqrt(3 / fan_in), b
uniform +-1/sqrt(d_in)), ordered dropout on one layer per step, drawn uniformly, at a
random rank prefix (k uniform in 1..r), the penalty LAMBDA * sum_b ||U[:, b:]|| +
||V[b:, :]|| per layer, Adam 2e-3 with 100 warm-up steps and a per-step cosine, batch
64, 40 epochs. The test rows are evaluated at full rank and at the learned ranks (the
components whose ||u_i|| ||v_i|| exceeds EPS). The draws of ordered dropout are
PyTorch's own (archc's `rand_like` is another generator).

Usage: maestro.py [--seeds 0,1,2] [--json PATH] [--checkpoint archc.safetensors]
(--checkpoint: the learned ranks and accuracies of archc's trained weights instead.)
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

HIDDEN, LR, WARMUP, BATCH, EPOCHS, LAMBDA, EPS = 256, 2e-3, 100, 64, 40, 2e-4, 1e-3


def uniform(shape, bound):
    return torch.nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class MaestroLinear(torch.nn.Module):
    """x -> ((x U) * keep) V + b; U: [d_in, r], V: [r, d_out]."""

    def __init__(self, d_in, d_out, rank):
        super().__init__()
        self.rank = rank
        self.u = uniform([d_in, rank], math.sqrt(3.0 / d_in))
        self.v = uniform([rank, d_out], math.sqrt(3.0 / rank))
        self.b = uniform([d_out], 1.0 / math.sqrt(d_in))

    def forward(self, x, keep):
        return ((x @ self.u) * keep) @ self.v + self.b

    def ordered_dropout(self):
        k = torch.randint(1, self.rank + 1, ())
        return (torch.arange(self.rank) < k).float()

    def component_norms(self):
        return self.u.norm(dim=0) * self.v.norm(dim=1)

    def learned(self):
        return (self.component_norms() > EPS).float()

    def penalty(self):
        tail_u = (self.u * self.u).sum(0).flip(0).cumsum(0)  # ||U[:, b:]||^2, b from the end
        tail_v = (self.v * self.v).sum(1).flip(0).cumsum(0)
        return torch.sqrt(tail_u + 1e-12).sum() + torch.sqrt(tail_v + 1e-12).sum()


class Maestro(torch.nn.Module):
    def __init__(self, d_in=784, hidden=HIDDEN, classes=10):
        super().__init__()
        self.fc1 = MaestroLinear(d_in, hidden, min(d_in, hidden))
        self.fc2 = MaestroLinear(hidden, classes, min(hidden, classes))
        self.layers = [self.fc1, self.fc2]

    def keeps(self):
        """Ordered dropout on one layer, drawn uniformly; the others at full rank."""
        pick = torch.randint(len(self.layers), ())
        return [l.ordered_dropout() if i == pick else torch.ones(l.rank) for i, l in enumerate(self.layers)]

    def forward(self, x, keeps):
        return self.fc2(torch.relu(self.fc1(x, keeps[0])), keeps[1])


def lr_at(step, total):
    """archc's cosine(warmup = WARMUP) (runtime/src/train/schedule.rs), as a factor of LR."""
    if step < WARMUP:
        return step / WARMUP
    p = min(1.0, (step - WARMUP) / max(1, total - WARMUP))
    return 0.5 * (1.0 + math.cos(math.pi * p))


def evaluate(model, x, y):
    with torch.no_grad():
        full = [torch.ones(l.rank) for l in model.layers]
        learned = [l.learned() for l in model.layers]
        acc = lambda keeps: (model(x, keeps).argmax(-1) == y).float().mean().item()
        return acc(full), acc(learned), [int(k.sum()) for k in learned]


def run(seed, data):
    (x, y), (xt, yt) = data
    torch.manual_seed(seed)
    model = Maestro()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    batches = common.Batches(len(x), BATCH, seed)
    total = EPOCHS * math.ceil(len(x) / BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, total))
    x, y, xt, yt = map(torch.tensor, (x, y, xt, yt))
    for epoch in range(EPOCHS):
        for rows in batches(epoch):
            keeps = model.keeps()
            logits = model(x[rows], keeps)
            loss = torch.nn.functional.cross_entropy(logits, y[rows])
            loss = loss + LAMBDA * sum(l.penalty() for l in model.layers)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return evaluate(model, xt, yt)


def from_checkpoint(path, data):
    """Loads archc's trained weights (`fc1.u.w`, ...) and evaluates them here."""
    from safetensors.numpy import load_file

    w = load_file(path)
    model = Maestro()
    for name, l in [("fc1", model.fc1), ("fc2", model.fc2)]:
        for p in ("u", "v", "b"):
            getattr(l, p).data = torch.tensor(w[f"param/{name}.{p}"])
    (_, _), (xt, yt) = data
    return evaluate(model, torch.tensor(xt), torch.tensor(yt))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json")
    ap.add_argument("--checkpoint")
    a = ap.parse_args()
    torch.set_num_threads(1)
    x, y = common.mnist_5k()
    data = common.split(x, y, (0.8, 0.2), seed=0)
    if a.checkpoint:
        full, learned, ranks = from_checkpoint(a.checkpoint, data)
        print(f"archc weights: accuracy {full:.4f} at full rank, {learned:.4f} at learned ranks {ranks}")
        return
    seeds = [int(s) for s in a.seeds.split(",")]
    values = []
    for s in seeds:
        full, learned, ranks = run(s, data)
        values.append(full)
        print(f"seed {s}: accuracy {full:.4f} at full rank, {learned:.4f} at learned ranks {ranks}", flush=True)
    mean = float(np.mean(values))
    print(f"mean over seeds {seeds}: {mean:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"example": "train_maestro.arch", "metric": "accuracy", "seeds": seeds,
                       "values": [round(v, 4) for v in values], "mean": round(mean, 4)}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
