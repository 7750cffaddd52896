#!/usr/bin/env python3
"""PyTorch state dicts for `archc import` (tests/import.rs), in tests/fixtures/import/.

Usage, from the repository root, with a Python that has torch, numpy and safetensors:

    /tmp/torchenv/bin/python scripts/gen_import_fixtures.py

(`make fixtures PYTHON=/tmp/torchenv/bin/python` runs it too). The tests need neither
Python nor torch: they read the committed files.

For every case NAME this defines a PyTorch module written the way a PyTorch user would
(nn.Linear, nn.Conv1d, nn.BatchNorm1d, nn.LSTM, nn.GRU, nn.TransformerEncoder, an FNO spectral
layer), equivalent to the archc model the case names (an example, or a small variant
under tests/fixtures/import/ with the same stdlib layers), and writes:

- `NAME.pt`: its `state_dict()` by `torch.save` (PyTorch's key order, PyTorch's layouts:
  Linear weights [out, in], LSTM gates fused per weight, attention q/k/v packed in
  `in_proj_weight`, spectral weights as real pairs [in, out, modes, 2]);
- `NAME.safetensors` too for the cases in SAFETENSORS (keys sorted: no order);
- `fno1d_complex.safetensors`: fno1d's state dict with the spectral weights as complex64
  tensors [in, out, modes] (as the FNO reference code keeps them; `.pt` files with
  complex storages are not read), for the same input and output;
- `NAME.x.npy`: a small input, f32;
- `NAME.y.npy`: PyTorch's output on it, f32.

Determinism: every value is drawn from `numpy.random.default_rng(seed)` (nothing from
torch's initialisation or RNG) and rounded to f32; the reference output is computed in
float64 on those f32 values (a double copy of the module), so it is exact up to one f32
rounding and the error the test measures is archc's f32 interpreter's.
"""

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "import")


# ---------------------------------------------------------------- modules

class Mlp(nn.Module):
    """examples/mlp.arch: Linear(64, 128) |> relu |> Linear(128, 10)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class CnnMnist1d(nn.Module):
    """examples/cnn_mnist1d.arch: three strided Conv1d (25 channels), then Linear."""

    def __init__(self, c=25, classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, c, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(c, c, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(c, c, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.fc = nn.Linear(c * 5, classes)

    def forward(self, x):
        return self.fc(self.net(x).flatten(1))


class CnnBn(nn.Module):
    """tests/fixtures/import/cnn_bn.arch: Conv1d, BatchNorm1d (eval), relu, Linear."""

    def __init__(self, c=8, classes=4):
        super().__init__()
        self.conv = nn.Conv1d(1, c, 3, padding=1)
        self.bn = nn.BatchNorm1d(c)
        self.head = nn.Linear(c * 16, classes)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).flatten(1))


class LstmClassifier(nn.Module):
    """examples/lstm_classifier.arch: nn.LSTM(1, 32), the last step's h, Linear."""

    def __init__(self, hidden=32, classes=10):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        h, _ = self.lstm(x)
        return self.fc(h[:, -1])


class GruClassifier(nn.Module):
    """examples/gru_classifier.arch: nn.GRU(1, 32), the last step's h, Linear."""

    def __init__(self, hidden=32, classes=10):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        h, _ = self.gru(x)
        return self.fc(h[:, -1])


class Lstm2(nn.Module):
    """tests/fixtures/import/lstm2.arch: one nn.LSTM with two layers, then Linear."""

    def __init__(self, hidden=16, classes=5):
        super().__init__()
        self.rnn = nn.LSTM(3, hidden, num_layers=2, batch_first=True)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.out(h[:, -1])


def sinusoidal_positions(t, d, dtype):
    """stdlib/attention.arch's: sin on even, cos on odd features, 10000^(-2i/d)."""
    pos = torch.arange(t, dtype=dtype).unsqueeze(1)
    freq = torch.exp(torch.arange(d // 2, dtype=dtype) * (-2.0 * math.log(10000.0) / d))
    angle = (pos * freq).unsqueeze(-1)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(t, d)


class Transformer(nn.Module):
    """examples/transformer.arch: positions, two post-norm encoder layers, mean, Linear."""

    def __init__(self, d=32, heads=4, ff=64, layers=2, classes=10):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)
        self.d = d

    def forward(self, x):
        h = x + sinusoidal_positions(x.shape[1], self.d, x.dtype)
        return self.head(self.encoder(h).mean(dim=1))


class SpectralConv1d(nn.Module):
    """FNO's 1-d Fourier layer; the complex weights kept as real pairs [in, out, m, 2]."""

    def __init__(self, c_in, c_out, modes):
        super().__init__()
        self.modes = modes
        self.weights = nn.Parameter(torch.zeros(c_in, c_out, modes, 2))

    def forward(self, x):
        n = x.shape[-1]
        z = torch.fft.rfft(x, dim=-1)[..., : self.modes]
        w = torch.view_as_complex(self.weights.contiguous())
        y = torch.zeros(x.shape[0], w.shape[1], n // 2 + 1, dtype=z.dtype)
        y[..., : self.modes] = torch.einsum("bim,iom->bom", z, w)
        return torch.fft.irfft(y, n, dim=-1)


class Fno1d(nn.Module):
    """examples/fno1d.arch: lift, four (spectral + pointwise conv, gelu) blocks, project."""

    def __init__(self, width=16, modes=8, depth=4):
        super().__init__()
        self.lift = nn.Linear(2, width)
        self.spectral = nn.ModuleList(SpectralConv1d(width, width, modes) for _ in range(depth))
        self.pointwise = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(depth))
        self.proj1 = nn.Linear(width, 64)
        self.proj2 = nn.Linear(64, 1)

    def forward(self, a):
        h = self.lift(a).transpose(1, 2)
        for s, p in zip(self.spectral, self.pointwise):
            h = torch.nn.functional.gelu(s(h) + p(h))
        return self.proj2(torch.nn.functional.gelu(self.proj1(h.transpose(1, 2))))


# ---------------------------------------------------------------- cases

# name: (module, input shape, seed)
CASES = {
    "mlp": (Mlp, (3, 64), 1),
    "cnn_mnist1d": (CnnMnist1d, (2, 1, 40), 2),
    "cnn_bn": (CnnBn, (3, 1, 16), 3),
    "lstm_classifier": (LstmClassifier, (2, 40, 1), 4),
    "gru_classifier": (GruClassifier, (2, 40, 1), 7),
    "lstm2": (Lstm2, (2, 12, 3), 8),
    "transformer": (Transformer, (2, 5, 32), 5),
    "fno1d": (Fno1d, (2, 32, 2), 6),
}
# Cases also written as .safetensors (keys sorted; matched without order).
# cnn_mnist1d's two equal convolutions are ambiguous there, which the tests check.
SAFETENSORS = ["mlp", "cnn_mnist1d", "transformer"]


def fill(module, rng):
    """Every parameter and buffer from `rng`, f32, in state-dict order."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
                continue
            shape = tuple(t.shape)
            fan = int(np.prod(shape[1:])) if len(shape) > 1 else 4
            v = rng.uniform(-1.0, 1.0, size=shape) / math.sqrt(fan)
            if name.endswith("running_var") or (len(shape) == 1 and name.endswith("weight")):
                v = 1.0 + 0.5 * np.abs(v)
            t.copy_(torch.from_numpy(v.astype(np.float32)))


def case(name, make, shape, seed):
    rng = np.random.default_rng(seed)
    module = make().eval()
    fill(module, rng)
    x = rng.standard_normal(size=shape).astype(np.float32)
    double = copy.deepcopy(module).double()
    with torch.no_grad():
        y = double(torch.from_numpy(x.astype(np.float64))).numpy().astype(np.float32)
    base = os.path.join(OUT, name)
    state = module.state_dict()
    torch.save(state, base + ".pt")
    if name in SAFETENSORS:
        save_file({k: v.contiguous() for k, v in state.items()}, base + ".safetensors")
        os.chmod(base + ".safetensors", 0o644)
    if name == "fno1d":
        complex_state = {
            k: torch.view_as_complex(v.contiguous()) if k.startswith("spectral.") else v.contiguous()
            for k, v in state.items()
        }
        save_file(complex_state, base + "_complex.safetensors")
        os.chmod(base + "_complex.safetensors", 0o644)
    np.save(base + ".x.npy", x)
    np.save(base + ".y.npy", y)
    sizes = [os.path.getsize(p) for p in (base + ".pt", base + ".x.npy", base + ".y.npy")]
    print(f"{name}: {len(state)} tensors, output {y.shape}, {max(sizes) // 1024} KiB largest file")


def main():
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    for name, (make, shape, seed) in CASES.items():
        case(name, make, shape, seed)


if __name__ == "__main__":
    main()
