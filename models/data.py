"""Fashion-MNIST loader: reads the idx .gz files, returns tensors scaled to [-1, 1].

Looks in --data DIR (if given), then /usr/share/datasets/fashion-mnist (Debian package
dataset-fashion-mnist), then ./.data.
"""
import gzip
import os
import struct

import numpy as np
import torch

SEARCH = ["/usr/share/datasets/fashion-mnist", os.path.join(os.path.dirname(__file__), "..", ".data"), ".data"]
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def find_dir(data_dir=None):
    for d in ([data_dir] if data_dir else []) + SEARCH:
        if d and os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
            return d
    raise FileNotFoundError("Fashion-MNIST idx .gz files not found (install dataset-fashion-mnist or pass --data)")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_uint8(split="train", data_dir=None):
    """(images uint8 [N,28,28], labels int64 [N]) as torch tensors."""
    d = find_dir(data_dir)
    pre = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(d, f"{pre}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(d, f"{pre}-labels-idx1-ubyte.gz"))
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def to_float(x_uint8):
    """uint8 [N,28,28] -> float32 [N,1,28,28] in [-1, 1]."""
    return x_uint8.to(torch.float32).div(127.5).sub(1.0).unsqueeze(1)


def load(split="train", data_dir=None):
    """(images float32 [N,1,28,28] in [-1,1], labels int64 [N])."""
    x, y = load_uint8(split, data_dir)
    return to_float(x), y
