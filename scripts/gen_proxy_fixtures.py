#!/usr/bin/env python3
"""PyTorch references of the training-free search proxies, for `tests/proxies.rs`.

Usage, from the repository root, with a Python that has torch, numpy and safetensors:

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy safetensors
    /tmp/torchenv/bin/python scripts/gen_proxy_fixtures.py

The tests themselves need neither Python nor torch: they read the committed files.

For every network NAME (a small `.arch` file, `tests/fixtures/proxies/NAME.arch`) this
writes `tests/fixtures/proxies/NAME.safetensors` holding:

- every param and buffer under its TIR name, in OUR layout (Linear's `w` is PyTorch's
  `weight.T`, the GRU's `w_ih` is `weight_ih_l0.T`), f32;
- `input.x`: one minibatch of B = 8 inputs, f32; `label`: its class labels, i64;
- `proxy.P`: PyTorch's value of every proxy P that applies to the network, f64 scalars.
  A proxy that does not apply (naswot without relu, hidden_cov without a recurrent
  layer) is absent, and the Rust side must refuse it.

Determinism: every value is drawn from `numpy.random.default_rng(seed)` with a fixed seed
per network and rounded to f32; PyTorch computes in float64 on exactly those values (so
do the Rust proxies, which widen the program to f64).

The proxies, as `src/search/proxies.rs` defines them (zero-cost-nas's
`foresight/pruners/measures`, Mellor et al. 2021 for NASWOT), with the same decisions:
- the network is in inference mode (`model.eval()`): BatchNorm normalises with the given
  running statistics, for every proxy (zero-cost-nas scores in training mode, and removes
  BatchNorm for synflow);
- per-weight sums run over the weights, the parameters of rank >= 2 (convolution, linear
  and recurrent matrices); the sums are the same in either layout;
- synflow takes the absolute value of every parameter (`parameters()`, not the buffers),
  runs one input of ones (batch 1) and sums the output;
- the loss is the mean cross-entropy over the minibatch;
- jacob_cov and hidden_cov use `np.corrcoef` and the eigenvalues of that symmetric matrix
  (`np.linalg.eigvalsh`); naswot `np.linalg.slogdet` of `K = c c^T + (1 - c)(1 - c)^T`.

If an `archc` binary is built (target/debug or target/release), the script checks that the
names and shapes it writes are exactly the program's params and buffers.
"""

import copy
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import find_archc, tir_params  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "proxies")
BATCH = 8
CLASSES = 10
K = 1e-5

torch.use_deterministic_algorithms(True)


# ---------------------------------------------------------------- helpers

def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def t64(a):
    """A float64 torch tensor holding exactly the f32 values of `a`."""
    return torch.from_numpy(f32(a).astype(np.float64))


def uniform(rng, shape, bound):
    return f32(rng.uniform(-bound, bound, size=shape))


def set_state(module, values):
    """Overwrites every param and buffer of `module` (torch names, numpy f32 values)."""
    own = dict(module.named_parameters())
    own.update(dict(module.named_buffers()))
    own = {k: v for k, v in own.items() if not k.endswith("num_batches_tracked")}
    assert set(own) == set(values), (sorted(own), sorted(values))
    with torch.no_grad():
        for name, v in values.items():
            assert tuple(own[name].shape) == v.shape, (name, tuple(own[name].shape), v.shape)
            own[name].copy_(t64(v))


def weights(module):
    return [p for p in module.parameters() if p.dim() >= 2]


# ---------------------------------------------------------------- networks
#
# Each module's forward returns (logits, relu values, final hidden states).

class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv1d(1, 8, 5, stride=2, padding=1)
        self.bn = torch.nn.BatchNorm1d(8)
        self.c2 = torch.nn.Conv1d(8, 4, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(40, CLASSES)

    def forward(self, x):
        h1 = F.relu(self.bn(self.c1(x)))
        h2 = F.relu(self.c2(h1))
        return self.fc(h2.flatten(1)), [h1, h2], []


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(12, 16)
        self.fc2 = torch.nn.Linear(16, 16)
        self.fc3 = torch.nn.Linear(16, CLASSES)

    def forward(self, x):
        h1 = F.relu(self.fc1(x))
        h2 = F.relu(self.fc2(h1))
        return self.fc3(h2), [h1, h2], []


class Gru(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(3, 12, batch_first=True)
        self.fc = torch.nn.Linear(12, CLASSES)

    def forward(self, x):
        ys, h_n = self.gru(x)   # zero initial state
        return self.fc(ys[:, -1]), [], [h_n[0]]


def linear_state(rng, torch_name, ours, d_in, d_out):
    """Linear(d_in, d_out) values: (torch state, our state)."""
    bound = 1.0 / np.sqrt(d_in)
    w, b = uniform(rng, (d_out, d_in), bound), uniform(rng, (d_out,), bound)
    return {f"{torch_name}.weight": w, f"{torch_name}.bias": b}, {f"{ours}.w": f32(w.T), f"{ours}.b": b}


def conv_state(rng, name, c_in, c_out, k):
    bound = 1.0 / np.sqrt(c_in * k)
    w, b = uniform(rng, (c_out, c_in, k), bound), uniform(rng, (c_out,), bound)
    return {f"{name}.weight": w, f"{name}.bias": b}, {f"{name}.w": w, f"{name}.b": b}


def cnn(rng):
    t1, o1 = conv_state(rng, "c1", 1, 8, 5)
    t2, o2 = conv_state(rng, "c2", 8, 4, 3)
    t3, o3 = linear_state(rng, "fc", "fc", 40, CLASSES)
    bn = {
        "bn.weight": f32(rng.uniform(0.5, 1.5, 8)), "bn.bias": f32(rng.uniform(-0.2, 0.2, 8)),
        "bn.running_mean": f32(rng.normal(0.0, 0.1, 8)), "bn.running_var": f32(rng.uniform(0.5, 1.5, 8)),
    }
    x = f32(rng.standard_normal((BATCH, 1, 40)))
    return Cnn(), {**t1, **t2, **t3, **bn}, {**o1, **o2, **o3, **bn}, x


def mlp(rng):
    states = [linear_state(rng, f"fc{i}", f"fc{i}", a, b) for i, (a, b) in enumerate([(12, 16), (16, 16), (16, CLASSES)], 1)]
    torch_state = {k: v for t, _ in states for k, v in t.items()}
    ours = {k: v for _, o in states for k, v in o.items()}
    return Mlp(), torch_state, ours, f32(rng.standard_normal((BATCH, 12)))


def gru(rng):
    d_in, h = 3, 12
    bound = 1.0 / np.sqrt(h)
    p = {
        "gru.weight_ih_l0": uniform(rng, (3 * h, d_in), bound), "gru.weight_hh_l0": uniform(rng, (3 * h, h), bound),
        "gru.bias_ih_l0": uniform(rng, (3 * h,), bound), "gru.bias_hh_l0": uniform(rng, (3 * h,), bound),
    }
    ours = {
        "gru.cell.w_ih": f32(p["gru.weight_ih_l0"].T), "gru.cell.w_hh": f32(p["gru.weight_hh_l0"].T),
        "gru.cell.b_ih": p["gru.bias_ih_l0"], "gru.cell.b_hh": p["gru.bias_hh_l0"],
    }
    t, o = linear_state(rng, "fc", "fc", h, CLASSES)
    return Gru(), {**p, **t}, {**ours, **o}, f32(rng.standard_normal((BATCH, 6, d_in)))


NETWORKS = {"cnn": (cnn, 11), "mlp": (mlp, 12), "gru": (gru, 13)}


# ---------------------------------------------------------------- proxies

def eigen_score(rows):
    c = np.corrcoef(rows)
    v = np.linalg.eigvalsh(c)
    return float(-np.sum(np.log(v + K) + 1.0 / (v + K)))


def synflow(model, x):
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p in m.parameters():
            p.abs_()
    ones = torch.ones((1,) + tuple(x.shape[1:]), dtype=torch.float64)
    m(ones)[0].sum().backward()
    return sum((w * w.grad).abs().sum().item() for w in weights(m))


def loss_grads(model, x, y):
    m = copy.deepcopy(model)
    F.cross_entropy(m(x)[0], y).backward()
    return weights(m)


def grad_norm(model, x, y):
    return sum(w.grad.norm().item() for w in loss_grads(model, x, y))


def snip(model, x, y):
    return sum((w * w.grad).abs().sum().item() for w in loss_grads(model, x, y))


def jacob_cov(model, x):
    x = x.clone().requires_grad_(True)
    out = model(x)[0]
    out.backward(torch.ones_like(out))
    return eigen_score(x.grad.reshape(x.shape[0], -1).numpy())


def naswot(model, x):
    with torch.no_grad():
        _, acts, _ = model(x)
    c = torch.cat([a.reshape(a.shape[0], -1) for a in acts], dim=1)
    c = (c > 0).double().numpy()
    kernel = c @ c.T + (1.0 - c) @ (1.0 - c).T
    return float(np.linalg.slogdet(kernel)[1])


def hidden_cov(model, x):
    with torch.no_grad():
        _, _, states = model(x)
    return eigen_score(torch.cat([s.reshape(s.shape[0], -1) for s in states], dim=1).numpy())


def proxies(model, x, y):
    """Every proxy that applies to `model`, by name."""
    with torch.no_grad():
        _, acts, states = model(x)
    out = {
        "synflow": synflow(model, x), "grad_norm": grad_norm(model, x, y), "snip": snip(model, x, y),
        "jacob_cov": jacob_cov(model, x),
    }
    if acts:
        out["naswot"] = naswot(model, x)
    if states:
        out["hidden_cov"] = hidden_cov(model, x)
    return out


# ---------------------------------------------------------------- checking names

# `find_archc` and `tir_params` are the PyTorch fixtures' own (scripts/gen_fixtures.py).


def main():
    archc = find_archc()
    if archc is None:
        print("note: no target/*/archc binary; param names are not checked against the TIR")
    for name, (make, seed) in NETWORKS.items():
        arch = os.path.join(FIXTURES, f"{name}.arch")
        if not os.path.exists(arch):
            sys.exit(f"error: {arch} is missing")
        rng = np.random.default_rng(seed)
        model, torch_state, ours, x = make(rng)
        y = rng.integers(0, CLASSES, size=BATCH).astype(np.int64)
        model = model.double()
        set_state(model, torch_state)
        model.eval()
        if archc is not None:
            want = tir_params(archc, arch)
            got = {k: tuple(v.shape) for k, v in ours.items()}
            if want != got:
                sys.exit(f"error: {name}: params written {got}\n  but the program declares {want}")
        scores = proxies(model, t64(x), torch.from_numpy(y))
        tensors = {k: f32(v) for k, v in ours.items()}
        tensors["input.x"] = x
        tensors["label"] = y
        tensors.update({f"proxy.{k}": np.array(v, dtype=np.float64) for k, v in scores.items()})
        path = os.path.join(FIXTURES, f"{name}.safetensors")
        save_file(tensors, path, metadata={"generator": f"scripts/gen_proxy_fixtures.py, network {name}"})
        print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes): "
              + ", ".join(f"{k} = {v:.6g}" for k, v in sorted(scores.items())))


if __name__ == "__main__":
    main()
