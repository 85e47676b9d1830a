"""PyTorch CPU forward time per image of the exported-weights models (batch 1/16/64).

  /usr/bin/python3 models/bench_cpu.py [--threads 2]
"""
import argparse
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export_onnx import load  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--archs", default="unet,dit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for arch in args.archs.split(","):
        m, _ = load(os.path.join(HERE, "checkpoints", arch, "ema.pt"))
        for b in (1, 16, 64):
            x, t, y = torch.randn(b, 1, 28, 28), torch.rand(b) * 999, torch.randint(0, 11, (b,))
            with torch.no_grad():
                m(x, t, y)
                n = max(3, 64 // b)
                t0 = time.perf_counter()
                for _ in range(n):
                    m(x, t, y)
                dt = (time.perf_counter() - t0) / n
            print(f"{arch} batch {b}: {dt * 1e3:.1f} ms/call, {dt * 1e3 / b:.2f} ms/image", flush=True)


if __name__ == "__main__":
    main()
