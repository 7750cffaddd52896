#!/usr/bin/env python3
"""Writes the sorting task of examples/train_pointer_sort.arch (a pointer network that
learns to sort, Vinyals, Fortunato & Jaitly 2015): standard library only, seeded.

Each row is N numbers drawn uniformly from [0, 1); its label is their argsort (the
input positions in increasing order of value; ties have probability zero). One file,
DATA_DIR/sorting.npz, holds both parts:

  x       f32[20000, N]   label       i64[20000, N]   (train)
  x_test  f32[2000, N]    label_test  i64[2000, N]    (test)

The .npy members are written by hand (`struct`), the archive by `zipfile` (stored, with
a fixed timestamp, so every run writes the same bytes); numpy reads it as `np.load`. The numbers are rounded to float32 before sorting, so the label is the
argsort of exactly the stored values.

Usage: make_sorting.py [DATA_DIR] [--n 8] [--train 20000] [--test 2000] [--seed 0]
"""
import argparse
import os
import random
import struct
import zipfile


def npy_bytes(rows, code):
    """A C-order .npy image of equal-length rows: code 'f' (<f4) or 'q' (<i8)."""
    descr = {"f": "<f4", "q": "<i8"}[code]
    shape = (len(rows), len(rows[0]))
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }" % ((descr,) + shape)
    pad = 64 - (10 + len(header) + 1) % 64
    header = (header + " " * pad + "\n").encode("latin1")
    data = struct.pack("<%d%s" % (shape[0] * shape[1], code), *[v for r in rows for v in r])
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def f32(v):
    """v rounded to the nearest float32."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def rows(rng, count, n):
    xs, labels = [], []
    for _ in range(count):
        x = [f32(rng.random()) for _ in range(n)]
        xs.append(x)
        labels.append(sorted(range(n), key=lambda j: x[j]))
    return xs, labels


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("data", nargs="?", default=os.path.join(root, "data"))
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    x, label = rows(rng, a.train, a.n)
    x_test, label_test = rows(rng, a.test, a.n)
    os.makedirs(a.data, exist_ok=True)
    path = os.path.join(a.data, "sorting.npz")
    members = {"x": npy_bytes(x, "f"), "label": npy_bytes(label, "q"),
               "x_test": npy_bytes(x_test, "f"), "label_test": npy_bytes(label_test, "q")}
    with zipfile.ZipFile(path + ".part", "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():  # a fixed timestamp: the same bytes on every run
            z.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), data)
    os.replace(path + ".part", path)
    print(f"{path}: {a.train} train and {a.test} test rows of {a.n} numbers")


if __name__ == "__main__":
    main()
