#!/usr/bin/env python3
"""Writes the diabetes regression data set as a user would prepare it for archc.

Source: scikit-learn's diabetes data (Efron et al. 2004, "Least Angle Regression"),
shipped in the scikit-learn wheel as diabetes_data_raw.csv.gz (442 rows of 10 raw
features: age, sex, bmi, bp, s1..s6) and diabetes_target.csv.gz (disease progression
one year later). `make data` extracts both into the data folder; this script (standard
library only) then writes, into the same folder:

  diabetes_train.npz / diabetes_test.npz   x: f32[N, 10], y: f32[N, 1]
  diabetes_train.csv / diabetes_test.csv   columns age, sex, bmi, bp, s1..s6, y

Rows are split 80/20 by a fixed shuffle (random.Random(0)): 353 train, 89 test.
Features and target are standardised with the training rows' mean and standard
deviation, so a test MSE of 1 is what predicting the mean gives.

Usage: make_diabetes.py DATA_DIR
"""
import csv
import gzip
import io
import math
import os
import random
import struct
import sys
import zipfile

NAMES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def read_rows(path):
    with gzip.open(path, "rt") as f:
        return [[float(v) for v in line.split()] for line in f if line.strip()]


def npy_bytes(rows):
    """A C-order float32 .npy image of a list of equal-length rows."""
    shape = (len(rows), len(rows[0]))
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % shape
    pad = 64 - (10 + len(header) + 1) % 64
    header = (header + " " * pad + "\n").encode("latin1")
    data = struct.pack("<%df" % (shape[0] * shape[1]), *[v for r in rows for v in r])
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def write_npz(path, arrays):
    tmp = path + ".part"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for name, rows in arrays.items():
            z.writestr(name + ".npy", npy_bytes(rows))
    os.replace(tmp, path)


def write_csv(path, x, y):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(NAMES + ["y"])
    for xr, yr in zip(x, y):
        w.writerow(["%.7g" % v for v in xr + yr])
    tmp = path + ".part"
    with open(tmp, "w") as f:
        f.write(buf.getvalue())
    os.replace(tmp, path)


def standardise(train, rows):
    cols = len(train[0])
    mean = [sum(r[c] for r in train) / len(train) for c in range(cols)]
    std = [math.sqrt(sum((r[c] - mean[c]) ** 2 for r in train) / len(train)) for c in range(cols)]
    return [[(r[c] - mean[c]) / std[c] for c in range(cols)] for r in rows]


def main(data):
    x = read_rows(os.path.join(data, "diabetes_data_raw.csv.gz"))
    y = read_rows(os.path.join(data, "diabetes_target.csv.gz"))
    assert len(x) == len(y) == 442 and all(len(r) == 10 for r in x), "unexpected diabetes files"
    order = list(range(len(x)))
    random.Random(0).shuffle(order)
    cut = int(0.8 * len(order))
    parts = {"train": order[:cut], "test": order[cut:]}
    train_x = [x[i] for i in parts["train"]]
    train_y = [y[i] for i in parts["train"]]
    for part, idx in parts.items():
        px = standardise(train_x, [x[i] for i in idx])
        py = standardise(train_y, [y[i] for i in idx])
        write_npz(os.path.join(data, "diabetes_%s.npz" % part), {"x": px, "y": py})
        write_csv(os.path.join(data, "diabetes_%s.csv" % part), px, py)
    print("make_diabetes: wrote diabetes_{train,test}.{npz,csv} (%d / %d rows)" % (cut, len(x) - cut))


if __name__ == "__main__":
    main(sys.argv[1])
