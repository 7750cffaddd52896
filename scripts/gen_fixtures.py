#!/usr/bin/env python3
"""PyTorch reference fixtures for `tests/numeric.rs` and `tests/grad_fixtures.rs`.

Usage: `make fixtures` (= `python3 scripts/gen_fixtures.py`), from the repository root,
with a Python that has torch, numpy and safetensors, e.g.

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy safetensors
    /tmp/torchenv/bin/python scripts/gen_fixtures.py

The tests themselves need neither Python nor torch: they read the committed files.

For every case NAME this writes `tests/fixtures/NAME.safetensors`, the data for the
hand-written network `tests/fixtures/NAME.arch` (a tiny network around one stdlib layer,
whose params all have fixed values here). The file holds:

- `input.<arg>`: each input of the network (`input.x`), f32;
- every param and buffer of the network under its TIR name (`archc build NAME.arch
  --emit tir` lists them as `param @fc.w`, `buffer @bn.running_mean`), f32, in OUR
  layout (e.g. Linear's `w` is PyTorch's `weight.T`; LSTM's `w_ih` is `weight_ih_l0.T`);
- `output.y`: the PyTorch forward output, f32.

Determinism: every value is drawn from `numpy.random.default_rng(seed)` with a fixed seed
per case (nothing comes from torch's own initialisation or RNG), rounded to f32, and the
PyTorch reference runs in float64 on those f32 values; only the output is rounded to f32.
So the stored output is the exact answer up to one f32 rounding, and the error the Rust
test measures is our f32 interpreter's error (plus any real disagreement).

If an `archc` binary is built (target/debug or target/release), the script also checks
that the names and shapes it writes are exactly the program's params and buffers.

Adding a case: write `tests/fixtures/NAME.arch`, add a `case_NAME(rng)` function below
returning (inputs, params, output) as dicts of numpy arrays, list it in CASES, run the
script, commit both files. tests/numeric.rs picks up every `tests/fixtures/*.arch`.

Gradient fixtures (`GRAD_CASES`, for tests/grad_fixtures.rs) live in `tests/fixtures/grad/`:
a small whole model `NAME.arch` and `NAME.safetensors` with, besides the above, the loss
weights `r` and PyTorch's gradients of `sum(y * r)`, `grad.param.<name>` and
`grad.input.<arg>`; see "gradient cases" below. Adding one: write the `.arch`, a
`grad_NAME(rng, xs)` function, list it in GRAD_CASES and in `with_grad_fixtures!` of
tests/common/mod.rs.
"""

import os
import re
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

torch.use_deterministic_algorithms(True)


# ---------------------------------------------------------------- helpers

def f32(a):
    """A float32 numpy array (values drawn once and rounded here are used everywhere)."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def t64(a):
    """A float64 torch tensor holding exactly the f32 values of `a`."""
    return torch.from_numpy(f32(a).astype(np.float64))


def uniform(rng, shape, low, high):
    return f32(rng.uniform(low, high, size=shape))


def normal(rng, shape, std=1.0):
    return f32(rng.standard_normal(size=shape) * std)


def set_params(module, values):
    """Overwrites module params/buffers named in `values` (numpy f32) with float64 copies."""
    own = dict(module.named_parameters())
    own.update(dict(module.named_buffers()))
    for name, v in values.items():
        target = own[name]
        assert tuple(target.shape) == v.shape, (name, tuple(target.shape), v.shape)
        with torch.no_grad():
            target.copy_(t64(v))
    missing = set(dict(module.named_parameters())) - set(values)
    assert not missing, f"torch params not set: {sorted(missing)}"


def out(y):
    return f32(y.detach().numpy())


# ---------------------------------------------------------------- cases
#
# Each returns (inputs, params, outputs): dicts name -> numpy f32 array, params under our
# TIR names and layouts.

def case_linear(rng):
    x = normal(rng, (2, 5, 8))
    w = uniform(rng, (6, 8), -0.5, 0.5)   # torch layout [d_out, d_in]
    b = uniform(rng, (6,), -0.5, 0.5)
    m = torch.nn.Linear(8, 6).double()
    set_params(m, {"weight": w, "bias": b})
    y = m(t64(x))
    return {"x": x}, {"fc.w": f32(w.T), "fc.b": b}, {"y": out(y)}


def case_conv1d(rng):
    x = normal(rng, (2, 4, 11))
    w = uniform(rng, (6, 2, 3), -0.5, 0.5)
    b = uniform(rng, (6,), -0.5, 0.5)
    m = torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2).double()
    set_params(m, {"weight": w, "bias": b})
    y = m(t64(x))
    return {"x": x}, {"conv.w": w, "conv.b": b}, {"y": out(y)}


def case_conv2d(rng):
    x = normal(rng, (2, 3, 7, 6))
    w = uniform(rng, (4, 3, 3, 3), -0.3, 0.3)
    b = uniform(rng, (4,), -0.3, 0.3)
    m = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    set_params(m, {"weight": w, "bias": b})
    y = m(t64(x))
    return {"x": x}, {"conv.w": w, "conv.b": b}, {"y": out(y)}


def mha_torch_params(rng, d):
    """Random nn.MultiheadAttention params (nonzero biases), torch names."""
    return {
        "in_proj_weight": uniform(rng, (3 * d, d), -0.5, 0.5),
        "in_proj_bias": uniform(rng, (3 * d,), -0.3, 0.3),
        "out_proj.weight": uniform(rng, (d, d), -0.5, 0.5),
        "out_proj.bias": uniform(rng, (d,), -0.3, 0.3),
    }


def mha_ours(prefix, p, d):
    """nn.MultiheadAttention params -> our MultiheadAttention (x @ w layout)."""
    w, b = p["in_proj_weight"], p["in_proj_bias"]
    return {
        f"{prefix}.wq": f32(w[:d].T), f"{prefix}.wk": f32(w[d:2 * d].T), f"{prefix}.wv": f32(w[2 * d:].T),
        f"{prefix}.bq": b[:d], f"{prefix}.bk": b[d:2 * d], f"{prefix}.bv": b[2 * d:],
        f"{prefix}.wo": f32(p["out_proj.weight"].T), f"{prefix}.bo": p["out_proj.bias"],
    }


def case_mha(rng):
    d, heads = 8, 2
    x = normal(rng, (2, 5, d))
    p = mha_torch_params(rng, d)
    m = torch.nn.MultiheadAttention(d, heads, batch_first=True).double().eval()
    set_params(m, p)
    xt = t64(x)
    y, _ = m(xt, xt, xt, need_weights=False)
    return {"x": x}, mha_ours("attn", p, d), {"y": out(y)}


def rnn_case(rng, cls, prefix, gates):
    d_in, h = 4, 6
    x = normal(rng, (2, 5, d_in))
    bound = 1.0 / np.sqrt(h)
    p = {
        "weight_ih_l0": uniform(rng, (gates * h, d_in), -bound, bound),
        "weight_hh_l0": uniform(rng, (gates * h, h), -bound, bound),
        "bias_ih_l0": uniform(rng, (gates * h,), -bound, bound),
        "bias_hh_l0": uniform(rng, (gates * h,), -bound, bound),
    }
    m = cls(d_in, h, batch_first=True).double()
    set_params(m, p)
    y, _ = m(t64(x))   # zero initial state; y: [B, T, h], every h
    ours = {
        f"{prefix}.w_ih": f32(p["weight_ih_l0"].T), f"{prefix}.w_hh": f32(p["weight_hh_l0"].T),
        f"{prefix}.b_ih": p["bias_ih_l0"], f"{prefix}.b_hh": p["bias_hh_l0"],
    }
    return {"x": x}, ours, {"y": out(y)}


def case_lstm(rng):
    return rnn_case(rng, torch.nn.LSTM, "lstm.cell", 4)   # gates i, f, g, o


def case_gru(rng):
    return rnn_case(rng, torch.nn.GRU, "gru.cell", 3)     # gates r, z, n


def spectral_conv1d(rng, modes, n):
    # FNO's SpectralConv1d, written out: rfft, complex channel mixing on the first
    # `modes` frequencies, zeros above, irfft back to n points.
    c_in, c_out = 3, 4
    x = normal(rng, (2, c_in, n))
    scale = 1.0 / (c_in * c_out)
    w_re = uniform(rng, (c_in, c_out, modes), 0.0, scale)
    w_im = uniform(rng, (c_in, c_out, modes), 0.0, scale)
    w = torch.complex(t64(w_re), t64(w_im))
    xf = torch.fft.rfft(t64(x), dim=-1)
    yf = torch.zeros(2, c_out, n // 2 + 1, dtype=torch.complex128)
    yf[:, :, :modes] = torch.einsum("bix,iox->box", xf[:, :, :modes], w)
    y = torch.fft.irfft(yf, n=n, dim=-1)
    return {"x": x}, {"spec.w_re": w_re, "spec.w_im": w_im}, {"y": out(y)}


def case_spectral_conv1d(rng):
    return spectral_conv1d(rng, modes=4, n=12)


def case_spectral_conv1d_all_modes(rng):
    # modes = n / 2 + 1: nothing is zeroed, and the Nyquist frequency is mixed.
    return spectral_conv1d(rng, modes=6, n=10)


def case_spectral_conv2d(rng):
    # FNO's SpectralConv2d (Li et al. reference code): rfft2, weights1 on the first m1
    # rows, weights2 on the last m1 rows, first m2 columns, irfft2. Our w_re/w_im rows
    # 0..m1-1 are weights1, rows m1.. weights2. W is odd on purpose.
    c_in, c_out, m1, m2, hh, ww = 3, 4, 2, 3, 8, 7
    x = normal(rng, (2, c_in, hh, ww))
    scale = 1.0 / (c_in * c_out)
    w_re = uniform(rng, (c_in, c_out, 2 * m1, m2), 0.0, scale)
    w_im = uniform(rng, (c_in, c_out, 2 * m1, m2), 0.0, scale)
    w = torch.complex(t64(w_re), t64(w_im))
    w1, w2 = w[:, :, :m1], w[:, :, m1:]
    xf = torch.fft.rfft2(t64(x))
    yf = torch.zeros(2, c_out, hh, ww // 2 + 1, dtype=torch.complex128)
    yf[:, :, :m1, :m2] = torch.einsum("bixy,ioxy->boxy", xf[:, :, :m1, :m2], w1)
    yf[:, :, -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", xf[:, :, -m1:, :m2], w2)
    y = torch.fft.irfft2(yf, s=(hh, ww))
    return {"x": x}, {"spec.w_re": w_re, "spec.w_im": w_im}, {"y": out(y)}


def case_layer_norm(rng):
    x = normal(rng, (2, 5, 8)) * 2.0 + 0.5
    weight = uniform(rng, (8,), 0.5, 1.5)
    bias = uniform(rng, (8,), -0.5, 0.5)
    m = torch.nn.LayerNorm(8).double()
    set_params(m, {"weight": weight, "bias": bias})
    y = m(t64(x))
    return {"x": f32(x)}, {"norm.weight": weight, "norm.bias": bias}, {"y": out(y)}


def case_batch_norm2d(rng):
    x = normal(rng, (2, 3, 4, 5))
    p = {
        "weight": uniform(rng, (3,), 0.5, 1.5),
        "bias": uniform(rng, (3,), -0.5, 0.5),
        "running_mean": uniform(rng, (3,), -0.5, 0.5),
        "running_var": uniform(rng, (3,), 0.5, 2.0),
    }
    m = torch.nn.BatchNorm2d(3).double().eval()   # eval: running statistics
    set_params(m, p)
    y = m(t64(x))
    return {"x": x}, {f"bn.{k}": v for k, v in p.items()}, {"y": out(y)}


def case_group_norm(rng):
    x = normal(rng, (2, 6, 5)) + 0.3
    weight = uniform(rng, (6,), 0.5, 1.5)
    bias = uniform(rng, (6,), -0.5, 0.5)
    m = torch.nn.GroupNorm(2, 6).double()
    set_params(m, {"weight": weight, "bias": bias})
    y = m(t64(x))
    return {"x": f32(x)}, {"gn.weight": weight, "gn.bias": bias}, {"y": out(y)}


def case_pool2d(rng):
    x = normal(rng, (2, 3, 7, 6))
    xt = t64(x)
    y_max = F.max_pool2d(xt, 3, stride=2, padding=1)
    y_avg = F.avg_pool2d(xt, 3, stride=2, padding=1, count_include_pad=True)
    y = torch.cat([y_max, y_avg], dim=1)
    return {"x": x}, {}, {"y": out(y)}


def case_transformer_encoder_layer(rng):
    d, heads, ff = 8, 2, 16
    x = normal(rng, (2, 5, d))
    attn = mha_torch_params(rng, d)
    p = {f"self_attn.{k}": v for k, v in attn.items()}
    p.update({
        "linear1.weight": uniform(rng, (ff, d), -0.5, 0.5),
        "linear1.bias": uniform(rng, (ff,), -0.3, 0.3),
        "linear2.weight": uniform(rng, (d, ff), -0.3, 0.3),
        "linear2.bias": uniform(rng, (d,), -0.3, 0.3),
        "norm1.weight": uniform(rng, (d,), 0.5, 1.5),
        "norm1.bias": uniform(rng, (d,), -0.5, 0.5),
        "norm2.weight": uniform(rng, (d,), 0.5, 1.5),
        "norm2.bias": uniform(rng, (d,), -0.5, 0.5),
    })
    m = torch.nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True).double().eval()
    set_params(m, p)
    y = m(t64(x))
    ours = mha_ours("enc.attn", attn, d)
    ours.update({
        "enc.linear1.w": f32(p["linear1.weight"].T), "enc.linear1.b": p["linear1.bias"],
        "enc.linear2.w": f32(p["linear2.weight"].T), "enc.linear2.b": p["linear2.bias"],
        "enc.norm1.weight": p["norm1.weight"], "enc.norm1.bias": p["norm1.bias"],
        "enc.norm2.weight": p["norm2.weight"], "enc.norm2.bias": p["norm2.bias"],
    })
    return {"x": x}, ours, {"y": out(y)}


def grad_stacking(rng, xs):
    x = normal(rng, (2, 3, 4))
    fc = torch.nn.Linear(4, 4).double()
    set_params(fc, {"weight": uniform(rng, (4, 4), -0.5, 0.5), "bias": uniform(rng, (4,), -0.3, 0.3)})
    xt = xs("x", x)
    h = fc(xt)
    a = torch.stack([h, torch.tanh(h), xt], dim=1)
    b = torch.stack([h[:, 0], h[:, 2]], dim=-1)
    y = torch.cat([torch.flatten(a, 1), torch.flatten(b, 1)], dim=1)
    return {"x": x}, module_leaves(fc, linear_map("fc")), y


# name -> (case function, seed)
CASES = {
    "linear": (case_linear, 1),
    "conv1d": (case_conv1d, 2),
    "conv2d": (case_conv2d, 3),
    "mha": (case_mha, 4),
    "lstm": (case_lstm, 5),
    "gru": (case_gru, 6),
    "spectral_conv1d": (case_spectral_conv1d, 7),
    "spectral_conv1d_all_modes": (case_spectral_conv1d_all_modes, 14),
    "spectral_conv2d": (case_spectral_conv2d, 8),
    "layer_norm": (case_layer_norm, 9),
    "batch_norm2d": (case_batch_norm2d, 10),
    "group_norm": (case_group_norm, 11),
    "pool2d": (case_pool2d, 12),
    "transformer_encoder_layer": (case_transformer_encoder_layer, 13),
}


# ---------------------------------------------------------------- gradient cases
#
# Whole-model gradient fixtures for `tests/grad_fixtures.rs`: `tests/fixtures/grad/NAME.arch`
# and `tests/fixtures/grad/NAME.safetensors` (a subdirectory, so that tests/numeric.rs, which
# takes every `tests/fixtures/*.arch` as a forward fixture, does not see them). The loss is
# `sum(y * r)` for the network's output `y` and a fixed random `r` of y's shape; the file
# holds, besides the forward fixture's `input.<arg>`, params under their TIR names (our
# layout) and `output.y`:
#
# - `r`: the loss weights, f32;
# - `grad.param.<name>`: d loss / d param, in OUR layout (the same map as the value: a
#   torch Linear weight's gradient is transposed like the weight);
# - `grad.input.<arg>`: d loss / d input, for every float input.
#
# As above, the reference runs in float64 on the f32-rounded values; gradients are rounded
# to f32 once.
#
# Each case returns (inputs, leaves, y): `inputs` name -> numpy array (f32, or int64 for
# indices); `leaves` our param name -> (torch leaf tensor, to_ours), where `to_ours` maps a
# numpy array in the leaf's layout to ours and is applied to the value and to its gradient
# alike; `y` the float64 output, computed from the leaves and from `t64(inputs[name])`
# leaves that `grad_input` hands out (so their gradients are collected).

class GradInputs:
    """Float64 leaf tensors for a case's float inputs; keeps them to read `.grad` later."""

    def __init__(self):
        self.leaves = {}

    def __call__(self, name, a):
        t = t64(a).requires_grad_(True)
        self.leaves[name] = t
        return t


def same(a):
    return a


def transposed(a):
    return a.T


def module_leaves(module, mapping):
    """`{ours: (torch param name, to_ours)}` -> `{ours: (the module's tensor, to_ours)}`;
    every param of the module must be mapped."""
    own = dict(module.named_parameters())
    unmapped = set(own) - {t for t, _ in mapping.values()}
    assert not unmapped, f"torch params not mapped to ours: {sorted(unmapped)}"
    return {ours: (own[t], fn) for ours, (t, fn) in mapping.items()}


def linear_map(prefix, tprefix=""):
    return {f"{prefix}.w": (f"{tprefix}weight", transposed), f"{prefix}.b": (f"{tprefix}bias", same)}


def mha_map(prefix, tprefix, d):
    """Our MultiheadAttention params as views of nn.MultiheadAttention's packed ones."""
    rows = lambda i: (lambda a: a[i * d:(i + 1) * d])
    w = lambda i: (lambda a: a[i * d:(i + 1) * d].T)
    return {
        f"{prefix}.wq": (f"{tprefix}in_proj_weight", w(0)),
        f"{prefix}.wk": (f"{tprefix}in_proj_weight", w(1)),
        f"{prefix}.wv": (f"{tprefix}in_proj_weight", w(2)),
        f"{prefix}.bq": (f"{tprefix}in_proj_bias", rows(0)),
        f"{prefix}.bk": (f"{tprefix}in_proj_bias", rows(1)),
        f"{prefix}.bv": (f"{tprefix}in_proj_bias", rows(2)),
        f"{prefix}.wo": (f"{tprefix}out_proj.weight", transposed),
        f"{prefix}.bo": (f"{tprefix}out_proj.bias", same),
    }


def grad_mlp(rng, xs):
    x = normal(rng, (3, 6))
    m = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 4)).double()
    set_params(m, {
        "0.weight": uniform(rng, (10, 6), -0.5, 0.5), "0.bias": uniform(rng, (10,), -0.5, 0.5),
        "2.weight": uniform(rng, (4, 10), -0.5, 0.5), "2.bias": uniform(rng, (4,), -0.5, 0.5),
    })
    leaves = module_leaves(m, {**linear_map("fc1", "0."), **linear_map("fc2", "2.")})
    return {"x": x}, leaves, m(xs("x", x))


def grad_cnn(rng, xs):
    x = normal(rng, (2, 3, 12))
    conv = torch.nn.Conv1d(3, 5, 3, stride=2, padding=1).double()
    fc = torch.nn.Linear(15, 4).double()
    set_params(conv, {"weight": uniform(rng, (5, 3, 3), -0.5, 0.5), "bias": uniform(rng, (5,), -0.3, 0.3)})
    set_params(fc, {"weight": uniform(rng, (4, 15), -0.4, 0.4), "bias": uniform(rng, (4,), -0.3, 0.3)})
    h = F.max_pool1d(F.relu(conv(xs("x", x))), 2)   # [2, 5, 3]
    y = fc(torch.flatten(h, 1))
    leaves = module_leaves(conv, {"conv.w": ("weight", same), "conv.b": ("bias", same)})
    leaves.update(module_leaves(fc, linear_map("fc")))
    return {"x": x}, leaves, y


def grad_lstm(rng, xs):
    d_in, h = 3, 5
    x = normal(rng, (2, 4, d_in))
    bound = 1.0 / np.sqrt(h)
    m = torch.nn.LSTM(d_in, h, batch_first=True).double()
    set_params(m, {
        "weight_ih_l0": uniform(rng, (4 * h, d_in), -bound, bound),
        "weight_hh_l0": uniform(rng, (4 * h, h), -bound, bound),
        "bias_ih_l0": uniform(rng, (4 * h,), -bound, bound),
        "bias_hh_l0": uniform(rng, (4 * h,), -bound, bound),
    })
    y, _ = m(xs("x", x))   # zero initial state; every h
    leaves = module_leaves(m, {
        "lstm.cell.w_ih": ("weight_ih_l0", transposed), "lstm.cell.w_hh": ("weight_hh_l0", transposed),
        "lstm.cell.b_ih": ("bias_ih_l0", same), "lstm.cell.b_hh": ("bias_hh_l0", same),
    })
    return {"x": x}, leaves, y


def grad_attention(rng, xs):
    d, heads, ff = 8, 2, 16
    x = normal(rng, (2, 4, d))
    p = {f"self_attn.{k}": v for k, v in mha_torch_params(rng, d).items()}
    p.update({
        "linear1.weight": uniform(rng, (ff, d), -0.5, 0.5),
        "linear1.bias": uniform(rng, (ff,), -0.3, 0.3),
        "linear2.weight": uniform(rng, (d, ff), -0.3, 0.3),
        "linear2.bias": uniform(rng, (d,), -0.3, 0.3),
        "norm1.weight": uniform(rng, (d,), 0.5, 1.5),
        "norm1.bias": uniform(rng, (d,), -0.5, 0.5),
        "norm2.weight": uniform(rng, (d,), 0.5, 1.5),
        "norm2.bias": uniform(rng, (d,), -0.5, 0.5),
    })
    m = torch.nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True).double().eval()
    set_params(m, p)
    # eval() alone would take the fused fast path when no grad is needed; with grads on
    # it runs the reference math, which is what we compare against.
    y = m(xs("x", x))
    mapping = mha_map("enc.attn", "self_attn.", d)
    mapping.update(linear_map("enc.linear1", "linear1."))
    mapping.update(linear_map("enc.linear2", "linear2."))
    for n in ("norm1", "norm2"):
        mapping.update({f"enc.{n}.weight": (f"{n}.weight", same), f"enc.{n}.bias": (f"{n}.bias", same)})
    return {"x": x}, module_leaves(m, mapping), y


def grad_fno(rng, xs):
    # gelu(SpectralConv1d(x) + Conv1d(c, c, 1)(x)), the spectral conv written out as in
    # spectral_conv1d above.
    c, modes, n = 4, 5, 16
    x = normal(rng, (2, c, n))
    scale = 1.0 / (c * c)
    w_re = t64(uniform(rng, (c, c, modes), 0.0, scale)).requires_grad_(True)
    w_im = t64(uniform(rng, (c, c, modes), 0.0, scale)).requires_grad_(True)
    pw = torch.nn.Conv1d(c, c, 1).double()
    set_params(pw, {"weight": uniform(rng, (c, c, 1), -0.5, 0.5), "bias": uniform(rng, (c,), -0.5, 0.5)})
    xt = xs("x", x)
    xf = torch.fft.rfft(xt, dim=-1)
    w = torch.complex(w_re, w_im)
    mixed = torch.einsum("bix,iox->box", xf[:, :, :modes], w)
    zeros = torch.zeros(2, c, n // 2 + 1 - modes, dtype=torch.complex128)
    spec = torch.fft.irfft(torch.cat([mixed, zeros], dim=-1), n=n, dim=-1)
    y = F.gelu(spec + pw(xt))   # exact (erf) gelu
    leaves = {"spec.w_re": (w_re, same), "spec.w_im": (w_im, same)}
    leaves.update(module_leaves(pw, {"pointwise.w": ("weight", same), "pointwise.b": ("bias", same)}))
    return {"x": x}, leaves, y


def grad_hypernet(rng, xs):
    # theta = gen2(tanh(gen1(emb(task)))): [B, P], P = the target MLP's param count, laid
    # out as our `with_params` reads it: fc1.w [5, 6], fc1.b, fc2.w [6, 3], fc2.b, each
    # row-major in OUR layout (so a torch Linear weight is the chunk's transpose). Each
    # sample runs the target with its own theta: torch.func.functional_call under vmap.
    d_in, hidden, d_out, tasks, emb_d, gen_h = 5, 6, 3, 4, 3, 8
    shapes = [("0.weight", (d_in, hidden)), ("0.bias", (hidden,)),
              ("2.weight", (hidden, d_out)), ("2.bias", (d_out,))]
    p_count = sum(int(np.prod(s)) for _, s in shapes)
    x = normal(rng, (4, d_in))
    task = np.array([0, 2, 0, 3], dtype=np.int64)   # task 1 unused: its embedding row gets 0
    emb = torch.nn.Embedding(tasks, emb_d).double()
    gen1 = torch.nn.Linear(emb_d, gen_h).double()
    gen2 = torch.nn.Linear(gen_h, p_count).double()
    set_params(emb, {"weight": normal(rng, (tasks, emb_d))})
    set_params(gen1, {"weight": uniform(rng, (gen_h, emb_d), -0.6, 0.6), "bias": uniform(rng, (gen_h,), -0.5, 0.5)})
    set_params(gen2, {"weight": uniform(rng, (p_count, gen_h), -0.4, 0.4), "bias": uniform(rng, (p_count,), -0.3, 0.3)})
    theta = gen2(torch.tanh(gen1(emb(torch.from_numpy(task)))))
    target = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, d_out)).double()

    def run_one(th, xb):
        params, at = {}, 0
        for name, s in shapes:
            k = int(np.prod(s))
            chunk = th[at:at + k].reshape(s)
            params[name] = chunk.T if name.endswith("weight") else chunk
            at += k
        return torch.func.functional_call(target, params, (xb.unsqueeze(0),)).squeeze(0)

    y = torch.func.vmap(run_one)(theta, xs("x", x))
    leaves = module_leaves(emb, {"emb.weight": ("weight", same)})
    leaves.update(module_leaves(gen1, linear_map("gen1")))
    leaves.update(module_leaves(gen2, linear_map("gen2")))
    return {"x": x, "task": task}, leaves, y


def grad_sorting(rng, xs):
    x = normal(rng, (4, 8))
    fc = torch.nn.Linear(8, 6).double()
    set_params(fc, {"weight": uniform(rng, (6, 8), -0.5, 0.5), "bias": uniform(rng, (6,), -0.3, 0.3)})
    xt = xs("x", x)
    h = fc(xt)
    top = torch.topk(h, 3, dim=1, largest=True, sorted=True).values
    low = torch.topk(h, 2, dim=1, largest=False, sorted=True).values
    down = torch.sort(h, dim=0, descending=True, stable=True).values
    least = torch.gather(h, 1, h.argmin(dim=1, keepdim=True))
    centred = h - h.mean(dim=1, keepdim=True).detach()
    reordered = torch.gather(h, 1, torch.argsort(xt[:, 0:6].detach(), dim=1, stable=True))
    y = torch.cat([top, low, down, least, centred, reordered], dim=1)
    return {"x": x}, module_leaves(fc, linear_map("fc")), y


def grad_resample(rng, xs):
    x = normal(rng, (2, 3, 7))
    z = normal(rng, (2, 2, 5, 4))
    up1 = torch.nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1, output_padding=1).double()
    up2 = torch.nn.ConvTranspose2d(2, 4, (3, 2), stride=(2, 1), padding=(2, 1), dilation=2, groups=2).double()
    set_params(up1, {"weight": uniform(rng, (3, 4, 3), -0.3, 0.3), "bias": uniform(rng, (4,), -0.3, 0.3)})
    set_params(up2, {"weight": uniform(rng, (2, 2, 3, 2), -0.3, 0.3), "bias": uniform(rng, (4,), -0.3, 0.3)})
    rect = torch.nn.Conv2d(2, 3, (1, 3), stride=(1, 2), padding=(0, 1)).double()
    set_params(rect, {"weight": uniform(rng, (3, 2, 1, 3), -0.4, 0.4), "bias": uniform(rng, (3,), -0.3, 0.3)})
    xt, zt = xs("x", x), xs("z", z)
    parts = [
        up1(xt),
        up2(zt),
        F.pad(xt, (2, 3), mode="reflect"),
        F.pad(zt, (3, 1, 1, 2), mode="replicate"),
        F.pad(xt, (4, 7), mode="circular"),
        torch.flip(xt, [1])[:, :, [6, 4, 2]],
        F.interpolate(xt, scale_factor=3, mode="linear", align_corners=False),
        F.interpolate(zt, scale_factor=(2, 3), mode="bilinear", align_corners=False),
        F.interpolate(zt, scale_factor=2, mode="nearest"),
        rect(zt),
    ]
    y = torch.cat([torch.flatten(p, 1) for p in parts], dim=1)
    leaves = module_leaves(up1, {"up1.w": ("weight", same), "up1.b": ("bias", same)})
    leaves.update(module_leaves(up2, {"up2.w": ("weight", same), "up2.b": ("bias", same)}))
    leaves.update(module_leaves(rect, {"rect.w": ("weight", same), "rect.b": ("bias", same)}))
    return {"x": x, "z": z}, leaves, y


def grad_spectral(rng, xs):
    x = normal(rng, (2, 4, 6))
    fc = torch.nn.Linear(6, 6).double()
    set_params(fc, {"weight": uniform(rng, (6, 6), -0.5, 0.5), "bias": uniform(rng, (6,), -0.3, 0.3)})
    h = fc(xs("x", x))
    z = torch.fft.fft(h, dim=1)
    w = torch.fft.ifft(z * torch.complex(h, h * 0.5), dim=2)
    s = torch.fft.rfft2(h)
    back = torch.fft.irfft2(s * s, s=(4, 6))
    f2 = torch.fft.fft2(torch.complex(h, -h))
    i2 = torch.fft.ifft2(f2 * f2)
    parts = [z.real, w.imag, s.real, s.imag, back, f2.real, i2.imag]
    y = torch.cat([torch.flatten(p, 1) for p in parts], dim=1)
    return {"x": x}, module_leaves(fc, linear_map("fc")), y


def grad_pooling(rng, xs):
    x = normal(rng, (2, 2, 7, 6))
    mix = torch.nn.Conv2d(2, 2, 1).double()
    set_params(mix, {"weight": uniform(rng, (2, 2, 1, 1), -0.8, 0.8), "bias": uniform(rng, (2,), -0.3, 0.3)})
    h = mix(xs("x", x))
    parts = [
        F.max_pool2d(h, 3, stride=2, ceil_mode=True),
        F.avg_pool2d(h, 3, stride=2, padding=1, count_include_pad=False),
        F.avg_pool2d(h, (2, 3), stride=2, padding=1, ceil_mode=True),
        F.avg_pool2d(h, 3, stride=2, ceil_mode=True, count_include_pad=False),
        F.max_pool2d(h, (2, 2), stride=(3, 4), padding=1, ceil_mode=True),
        F.max_pool2d(h, (3, 2), stride=(1, 2), padding=1, dilation=(2, 3)),
        F.max_pool2d(h, 2, stride=2, dilation=2, ceil_mode=True),
        # PyTorch's average pools take no dilation: a depthwise convolution with 1/4.
        F.conv2d(h, torch.full((2, 1, 2, 2), 0.25, dtype=h.dtype), stride=1, padding=1, dilation=2, groups=2),
    ]
    y = torch.cat([torch.flatten(p, 1) for p in parts], dim=1)
    return {"x": x}, module_leaves(mix, {"mix.w": ("weight", same), "mix.b": ("bias", same)}), y


def grad_einsum(rng, xs):
    x = normal(rng, (2, 4, 4))
    v = normal(rng, (2, 3, 4))
    fc = torch.nn.Linear(4, 4).double()
    set_params(fc, {"weight": uniform(rng, (4, 4), -0.5, 0.5), "bias": uniform(rng, (4,), -0.3, 0.3)})
    h = fc(xs("x", x))
    vt = xs("v", v)
    diag = torch.einsum("bii->bi", h)
    trace = torch.einsum("bii->b", h)
    three = torch.einsum("bij,bjk,bk->bi", h, h, diag)
    batched = torch.einsum("...ij,...kj->...ik", h, vt)
    implicit = torch.einsum("...ij,...jk", h, h)
    y = torch.cat([diag, trace[:, None], three, torch.flatten(batched, 1), torch.flatten(implicit, 1)], dim=1)
    return {"x": x, "v": v}, module_leaves(fc, linear_map("fc")), y


def grad_elementwise(rng, xs):
    x = normal(rng, (4, 8))
    idx = np.array([0, 3, 3, 5, 1, 0, 3, 4], dtype=np.int64)   # 3 and 0 repeat; 2 gets nothing
    fc = torch.nn.Linear(8, 6).double()
    set_params(fc, {"weight": uniform(rng, (6, 8), -0.5, 0.5), "bias": uniform(rng, (6,), -0.3, 0.3)})
    xt = xs("x", x)
    h = fc(xt)
    k = torch.floor(h)
    parts = [
        torch.log(h.abs() + 0.5),
        torch.log1p(h.abs()),
        torch.sqrt(h * h + 1.0),
        torch.sign(h) * torch.exp(h),
        h.min(dim=1, keepdim=True).values,
        h.index_add(1, torch.from_numpy(idx), torch.tanh(xt)),
        torch.where(k == 0.0, h * h, h),
        torch.where(k != -1.0, 2.0 * h, h * xt[:, 0:6]),
        torch.where(h <= 0.25, h, 3.0 * h),
        torch.where(h > xt[:, 2:8], h * xt[:, 2:8], h),
        torch.where(~(h > -0.5) | (h > 0.5), h * h, -h),
    ]
    y = torch.cat(parts, dim=1)
    return {"x": x, "idx": idx}, module_leaves(fc, linear_map("fc")), y


# name -> (case function, seed)
GRAD_CASES = {
    "mlp": (grad_mlp, 101),
    "cnn": (grad_cnn, 102),
    "lstm": (grad_lstm, 103),
    "attention": (grad_attention, 104),
    "fno": (grad_fno, 105),
    "hypernet": (grad_hypernet, 106),
    "sorting": (grad_sorting, 107),
    "resample": (grad_resample, 108),
    "spectral": (grad_spectral, 109),
    "pooling": (grad_pooling, 110),
    "einsum": (grad_einsum, 111),
    "stacking": (grad_stacking, 112),
    "elementwise": (grad_elementwise, 113),
}

GRAD_FIXTURES = os.path.join(FIXTURES, "grad")


def grad_case(fn, rng):
    """Runs a gradient case: (tensors to store, params in our layout)."""
    xs = GradInputs()
    inputs, leaves, y = fn(rng, xs)
    r = normal(rng, tuple(y.shape))
    loss = (y * t64(r)).sum()
    loss.backward()
    tensors = {}
    for k, v in inputs.items():
        tensors[f"input.{k}"] = v if v.dtype == np.int64 else f32(v)
    params = {}
    for name, (leaf, to_ours) in leaves.items():
        assert leaf.grad is not None, f"param {name} got no gradient in torch"
        params[name] = f32(to_ours(leaf.detach().numpy()))
        tensors[name] = params[name]
        tensors[f"grad.param.{name}"] = f32(to_ours(leaf.grad.numpy()))
    for k, leaf in xs.leaves.items():
        tensors[f"grad.input.{k}"] = f32(leaf.grad.numpy())
    tensors["r"] = r
    tensors["output.y"] = out(y)
    return tensors, params


# ---------------------------------------------------------------- checking names

def find_archc():
    for sub in ("debug", "release"):
        p = os.path.join(ROOT, "target", sub, "archc")
        if os.access(p, os.X_OK):
            return p
    return None


def tir_params(archc, arch_path):
    """name -> shape of every `param`/`buffer` of the program (concrete shapes only)."""
    text = subprocess.run([archc, "build", arch_path, "--emit", "tir"], check=True,
                          capture_output=True, text=True).stdout
    found = {}
    for m in re.finditer(r"^(?:param|buffer) @(\S+) : f32\[([^\]]*)\]", text, re.M):
        dims = [d.strip() for d in m.group(2).split(",") if d.strip()]
        found[m.group(1)] = tuple(int(d) for d in dims)
    return found


def main():
    archc = find_archc()
    if archc is None:
        print("note: no target/*/archc binary; param names are not checked against the TIR")
    for name, (fn, seed) in CASES.items():
        arch = os.path.join(FIXTURES, f"{name}.arch")
        if not os.path.exists(arch):
            sys.exit(f"error: {arch} is missing")
        inputs, params, outputs = fn(np.random.default_rng(seed))
        if archc is not None:
            want = tir_params(archc, arch)
            got = {k: tuple(v.shape) for k, v in params.items()}
            if want != got:
                sys.exit(f"error: {name}: params written {got}\n  but the program declares {want}")
        tensors = {f"input.{k}": f32(v) for k, v in inputs.items()}
        tensors.update({k: f32(v) for k, v in params.items()})
        tensors.update({f"output.{k}": f32(v) for k, v in outputs.items()})
        path = os.path.join(FIXTURES, f"{name}.safetensors")
        # One metadata key only: safetensors writes a map's keys in hash order, so two
        # keys would make the bytes differ from run to run.
        save_file(tensors, path, metadata={"generator": f"scripts/gen_fixtures.py, case {name}"})
        print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")
    for name, (fn, seed) in GRAD_CASES.items():
        arch = os.path.join(GRAD_FIXTURES, f"{name}.arch")
        if not os.path.exists(arch):
            sys.exit(f"error: {arch} is missing")
        tensors, params = grad_case(fn, np.random.default_rng(seed))
        if archc is not None:
            want = tir_params(archc, arch)
            got = {k: tuple(v.shape) for k, v in params.items()}
            if want != got:
                sys.exit(f"error: grad/{name}: params written {got}\n  but the program declares {want}")
        path = os.path.join(GRAD_FIXTURES, f"{name}.safetensors")
        save_file(tensors, path, metadata={"generator": f"scripts/gen_fixtures.py, gradient case {name}"})
        print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
