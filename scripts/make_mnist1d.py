"""Generates MNIST-1D with the mnist1d package's default arguments and saves it as .npz.

Usage: python scripts/make_mnist1d.py OUT.npz   (run by scripts/fetch_data.sh in data/.venv)

Needs mnist1d==0.0.2.post1 (its wheel ships no data, only the generator) with numpy,
scipy and matplotlib. `make_dataset()` with `get_dataset_args()` (seed 42, 5000 samples,
train split 0.8, 40 points) is deterministic: the same package versions give the same
arrays. Writes x_train f32[4000, 40], y_train i64[4000], x_test f32[1000, 40],
y_test i64[1000], and prints the versions and a SHA-256 of the arrays so that two
machines can compare what they generated.
"""

import hashlib
import os
import sys

import numpy as np
import scipy
from mnist1d.data import get_dataset_args, make_dataset


def main(out):
    data = make_dataset(get_dataset_args())
    arrays = {
        "x_train": np.ascontiguousarray(data["x"], dtype=np.float32),
        "y_train": np.ascontiguousarray(data["y"], dtype=np.int64),
        "x_test": np.ascontiguousarray(data["x_test"], dtype=np.float32),
        "y_test": np.ascontiguousarray(data["y_test"], dtype=np.int64),
    }
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(arrays[name].tobytes())
    part = out + ".part.npz"
    np.savez(part, **arrays)
    os.replace(part, out)
    shapes = ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in arrays.items())
    print(f"make_mnist1d: wrote {out}: {shapes}")
    print(f"make_mnist1d: numpy {np.__version__}, scipy {scipy.__version__}, sha256 {digest.hexdigest()}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_mnist1d.py OUT.npz")
    main(sys.argv[1])
