"""Shared training utilities: seeding, EMA, atomic resumable checkpoints, CSV logging."""
import copy
import csv
import glob
import os
import random
import time

import numpy as np
import torch


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def rng_state():
    s = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s):
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(s["cuda"])
        except Exception:
            pass


class EMA:
    """Exponential moving average of parameters (and buffers copied), with warmup:
    decay_t = min(decay, (1 + t) / (10 + t))."""

    def __init__(self, model, decay=0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def latest_checkpoint(out_dir):
    p = os.path.join(out_dir, "ckpt-latest.pt")
    return p if os.path.exists(p) else None


class CSVLog:
    def __init__(self, path, header, resume):
        new = not (resume and os.path.exists(path))
        self.f = open(path, "w" if new else "a", newline="")
        self.w = csv.writer(self.f)
        if new:
            self.w.writerow(header)
        self.f.flush()

    def row(self, *vals):
        self.w.writerow(vals)
        self.f.flush()


class Timer:
    def __init__(self, offset=0.0):
        self.t0 = time.time() - offset

    def __call__(self):
        return time.time() - self.t0


def torch_load(path, map_location="cpu"):
    """torch.load of our own checkpoints (they hold args/RNG state, so weights_only=False on torch >= 2.6)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except TypeError:
        return torch.load(path, map_location=map_location)
