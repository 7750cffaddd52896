"""What every PyTorch reference script of the gallery shares: archc's data sets, read
as `runtime/src/data/sets.rs` reads them, and archc's seeded splits and batch orders,
drawn as `runtime/src/data/shuffle.rs` documents them (ChaCha8 keystream, Fisher-Yates
from the end with rejection sampling). A reference trained with these sees the same
training rows, test rows and mini-batches, in the same order, as `archc train`.

Needs numpy (and torch for `darcy`). `python3 common.py --check` prints a permutation
that `cargo test -p archc-runtime shuffle_matches_the_python_reference` also computes.
"""
import csv
import gzip
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPLIT_STREAM = 2**64 - 1
MASK = 0xFFFFFFFF


def data_dir():
    return os.environ.get("ARCHC_DATA") or os.path.join(ROOT, "data")


# ------------------------------------------------------------------ ChaCha8


def _rotl(v, c):
    return ((v << c) & MASK) | (v >> (32 - c))


def _quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & MASK
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK
    s[b] = _rotl(s[b] ^ s[c], 7)


class ChaCha8:
    """`rand_chacha::ChaCha8Rng::from_seed(seed as 8 LE bytes + 24 zeros)`, `set_stream(stream)`."""

    def __init__(self, seed, stream):
        key = [seed & MASK, (seed >> 32) & MASK] + [0] * 6
        self.head = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + key
        self.stream = [stream & MASK, (stream >> 32) & MASK]
        self.counter = 0
        self.words = []

    def _block(self):
        c = self.counter
        state = self.head + [c & MASK, (c >> 32) & MASK] + self.stream
        s = list(state)
        for _ in range(4):
            _quarter(s, 0, 4, 8, 12)
            _quarter(s, 1, 5, 9, 13)
            _quarter(s, 2, 6, 10, 14)
            _quarter(s, 3, 7, 11, 15)
            _quarter(s, 0, 5, 10, 15)
            _quarter(s, 1, 6, 11, 12)
            _quarter(s, 2, 7, 8, 13)
            _quarter(s, 3, 4, 9, 14)
        self.counter += 1
        self.words.extend((x + y) & MASK for x, y in zip(s, state))

    def next_u32(self):
        if not self.words:
            self._block()
            self.words.reverse()
        return self.words.pop()

    def next_u64(self):
        lo = self.next_u32()
        return lo | (self.next_u32() << 32)


def permutation(n, seed, stream):
    """`shuffle::permutation(n, seed, stream)`."""
    rng = ChaCha8(seed, stream)
    p = list(range(n))
    for i in range(n - 1, 0, -1):
        bound = i + 1
        zone = (2**64 // bound) * bound
        while True:
            x = rng.next_u64()
            if x < zone:
                break
        j = x % bound
        p[i], p[j] = p[j], p[i]
    return np.array(p, dtype=np.int64)


def split_rows(n, fractions, seed):
    """`data::split_rows`: the row indices of each part of a seeded split."""
    order = permutation(n, seed, SPLIT_STREAM)
    bounds, acc = [], 0.0
    for f in fractions:
        acc += f
        bounds.append(min(int(np.floor(acc * n + 1e-9)), n))
    if abs(sum(fractions) - 1.0) <= 1e-9:
        bounds[-1] = n
    parts, start = [], 0
    for end in bounds:
        parts.append(order[start:end])
        start = end
    return parts


def epoch_batches(n, batch, seed, epoch, drop_last=False):
    """The row indices of each mini-batch of epoch `epoch` (`Dataset::batches`)."""
    order = permutation(n, seed, epoch)
    if drop_last:
        order = order[: n // batch * batch]
    return [order[i : i + batch] for i in range(0, len(order), batch)]


class Batches:
    """Caches epoch orders: `Batches(n, batch, seed)(epoch)` as `epoch_batches`."""

    def __init__(self, n, batch, seed, drop_last=False):
        self.n, self.batch, self.seed, self.drop_last = n, batch, seed, drop_last

    def __call__(self, epoch):
        return epoch_batches(self.n, self.batch, self.seed, epoch, self.drop_last)


# ------------------------------------------------------------------ data sets


def _csv_classes(name, width, scale):
    path = os.path.join(data_dir(), name)
    with gzip.open(path, "rt") as f:
        rows = [r for r in csv.reader(f) if r]
    try:
        float(rows[0][0])
    except ValueError:
        rows = rows[1:]
    a = np.array(rows, dtype=np.float64)
    assert a.shape[1] == width + 1, f"{path}: {a.shape[1]} columns, expected {width + 1}"
    return (a[:, :width] / scale).astype(np.float32), a[:, width].astype(np.int64)


def digits():
    """`digits`: x f32[1797, 64] (pixels / 16), label i64[1797]."""
    return _csv_classes("digits.csv.gz", 64, 16.0)


def mnist_5k():
    """`mnist_5k`: x f32[5000, 784] (pixels / 255), label i64[5000]."""
    return _csv_classes("mnist_5k.csv.gz", 784, 255.0)


def mnist1d():
    """`mnist1d`: (x_train f32[4000, 40], y_train), (x_test f32[1000, 40], y_test)."""
    z = np.load(os.path.join(data_dir(), "mnist1d.npz"))
    return ((z["x_train"].astype(np.float32), z["y_train"].astype(np.int64)),
            (z["x_test"].astype(np.float32), z["y_test"].astype(np.int64)))


def darcy(part):
    """`darcy` part `train_16`, `test_16` or `test_32`: x, y f32[N, H, W, 1] (channels last)."""
    import torch

    t = torch.load(os.path.join(data_dir(), f"darcy_{part}.pt"))
    return (t["x"].float().unsqueeze(-1).numpy(), t["y"].float().unsqueeze(-1).numpy())


def split(x, y, fractions=(0.8, 0.2), seed=0):
    """The train and test parts of a seeded split, as `digits(split = [0.8, 0.2], seed = 0)`."""
    parts = split_rows(len(x), list(fractions), seed)
    return [(x[p], y[p]) for p in parts[:2]]


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        print(" ".join(map(str, permutation(10, 7, 3))))
        print(" ".join(map(str, split_rows(10, [0.8, 0.2], 0)[1])))
    else:
        print(__doc__)
