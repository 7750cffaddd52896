#!/usr/bin/env python3
"""The PyTorch twin of examples/train_pointer_sort.arch: a pointer network (Vinyals,
Fortunato & Jaitly 2015) that learns to sort N numbers in [0, 1).

It mirrors the .arch file: an LSTM encoder reads the numbers one per step (nn.LSTMCell,
PyTorch's init, as stdlib rnn.LstmCell); an LSTM decoder starts from the encoder's last
state with a learned start input (uniform(-1, 1)); at each step the pointer scores
v . tanh(W_enc e_j + W_dec d) over the encoder states e_j (Linear layers with PyTorch's
init, v uniform(+-1/sqrt(h))) are the logits, and the next input is the encoder state
of the pointed position: the label's while training (teacher forcing), the argmax's
when evaluating (greedy decoding). Per-token cross-entropy, Adam, cosine schedule per
step, the same batches (common.py) of data/sorting.npz (scripts/gallery/make_sorting.py).
Test metric: whole-sequence exact match under greedy decoding; per-token accuracy too.

Usage: pointer_sort.py [--seeds 0,1,2] [--json PATH]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

H, EPOCHS, BATCH, LR = 64, 20, 100, 3e-3


class PointerSort(nn.Module):
    def __init__(self, h=H):
        super().__init__()
        self.encoder = nn.LSTMCell(1, h)
        self.start = nn.Parameter(torch.empty(h).uniform_(-1.0, 1.0))
        self.decoder = nn.LSTMCell(h, h)
        self.w_enc = nn.Linear(h, h, bias=False)
        self.w_dec = nn.Linear(h, h)
        self.v = nn.Parameter(torch.empty(h).uniform_(-1 / math.sqrt(h), 1 / math.sqrt(h)))

    def forward(self, x, label=None):
        b, n = x.shape
        state = (x.new_zeros(b, self.start.numel()), x.new_zeros(b, self.start.numel()))
        enc = []
        for t in range(n):
            state = self.encoder(x[:, t : t + 1], state)
            enc.append(state[0])
        enc = torch.stack(enc, 1)  # [B, n, h]
        keys = self.w_enc(enc)
        inp, logits = self.start.expand(b, -1), []
        for s in range(n):
            state = self.decoder(inp, state)
            u = (torch.tanh(keys + self.w_dec(state[0]).unsqueeze(1)) * self.v).sum(-1)
            logits.append(u)
            pick = label[:, s] if label is not None else u.argmax(-1)
            inp = enc[torch.arange(b), pick]
        return torch.stack(logits, 1)  # [B, n (steps), n (positions)]


def run(seed, data):
    (x, y), (xt, yt) = data
    torch.manual_seed(seed)
    model = PointerSort()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    batches = common.Batches(len(x), BATCH, seed)
    total, t = EPOCHS * math.ceil(len(x) / BATCH), 0
    for epoch in range(EPOCHS):
        for rows in batches(epoch):
            for g in opt.param_groups:
                g["lr"] = LR * 0.5 * (1 + math.cos(math.pi * t / total))
            logits = model(x[rows], y[rows])
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y[rows].flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
            t += 1
    with torch.no_grad():
        hit = model(xt).argmax(-1) == yt
    return hit.all(1).float().mean().item(), hit.float().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    z = np.load(os.path.join(common.data_dir(), "sorting.npz"))
    data = ((torch.tensor(z["x"]), torch.tensor(z["label"])), (torch.tensor(z["x_test"]), torch.tensor(z["label_test"])))
    seeds = [int(s) for s in a.seeds.split(",")]
    exact, token = [], []
    for s in seeds:
        e, tok = run(s, data)
        exact.append(e)
        token.append(tok)
        print(f"seed {s}: test exact match {e:.4f}, per-token accuracy {tok:.4f}", flush=True)
    mean = float(np.mean(exact))
    print(f"mean: exact match {mean:.4f}, per-token accuracy {np.mean(token):.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"example": "train_pointer_sort.arch", "metric": "exact", "seeds": seeds,
                       "values": [round(v, 4) for v in exact], "mean": round(mean, 4),
                       "per_token_accuracy": [round(v, 4) for v in token]}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
