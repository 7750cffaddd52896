#!/usr/bin/env python3
"""The PyTorch twin of examples/train_diabetes.arch: the same network, loss, optimizer,
batch size and epochs on the same files (`make data`), trained with PyTorch.

Prints the test MSE and MAE per seed and their mean, to compare with
`archc train examples/train_diabetes.arch` (README: "Your own data and loss"); with
`--json PATH` also writes them (tests/fixtures/diabetes_torch.json, which
tests/user_data.rs compares archc's runs with).

Usage: diabetes_torch.py [DATA_DIR] [--seeds N] [--json PATH]
"""
import argparse
import json
import os

import numpy as np
import torch


def run(data, seed, epochs=200, batch=32, lr=1e-3, l2=1e-3, hidden=32):
    tr = np.load(os.path.join(data, "diabetes_train.npz"))
    te = np.load(os.path.join(data, "diabetes_test.npz"))
    x, y = torch.tensor(tr["x"]), torch.tensor(tr["y"])
    xt, yt = torch.tensor(te["x"]), torch.tensor(te["y"])
    torch.manual_seed(seed)
    fc1, fc2 = torch.nn.Linear(10, hidden), torch.nn.Linear(hidden, 1)
    params = list(fc1.parameters()) + list(fc2.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    model = lambda v: fc2(torch.relu(fc1(v)))
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(batch):
            pred = model(x[idx])
            loss = ((pred - y[idx]) ** 2).mean() + l2 * ((fc1.weight**2).sum() + (fc2.weight**2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        p = model(xt)
        return ((p - yt) ** 2).mean().item(), (p - yt).abs().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    results = [run(a.data, s) for s in range(a.seeds)]
    for s, (mse, mae) in enumerate(results):
        print(f"seed {s}: test mse {mse:.4f} mae {mae:.4f}")
    mse, mae = float(np.mean([r[0] for r in results])), float(np.mean([r[1] for r in results]))
    print(f"mean over {a.seeds} seeds: test mse {mse:.4f} mae {mae:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            record = {"torch": torch.__version__, "epochs": 200, "batch": 32, "lr": 1e-3, "l2": 1e-3,
                      "test_mse": [round(r[0], 6) for r in results], "test_mae": [round(r[1], 6) for r in results],
                      "test_mse_mean": round(mse, 6), "test_mae_mean": round(mae, 6)}
            json.dump(record, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
