"""Sanity check: DDIM samples (PyTorch, CPU) from the EMA weights, scored by the classifier.

  /usr/bin/python3 models/sample_preview.py --arch unet --steps 50 --per-class 8 --out models/preview-unet.png

Rows = class 0..9 (label = row). Prints the classifier's accuracy on the samples
(predicted class == conditioning label).
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
import nets  # noqa: E402
from train_diffusion import linear_alphas_cumprod  # noqa: E402


def load(path):
    st = common.torch_load(path, map_location="cpu")
    m = nets.build(st["arch"], **st["config"])
    m.load_state_dict(st["state_dict"])
    return m.eval()


@torch.no_grad()
def ddim(model, labels, steps=50, guidance=1.0, seed=0):
    dev = labels.device
    ab = linear_alphas_cumprod().float().to(dev)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(labels.shape[0], 1, 28, 28, generator=g).to(dev)
    ts = list(range(0, 1000, 1000 // steps))[::-1]  # "leading" spacing, steps_offset 0
    for i, t in enumerate(ts):
        tt = torch.full((x.shape[0],), float(t), device=dev)
        eps = model(x, tt, labels)
        if guidance != 1.0:
            eps_u = model(x, tt, torch.full_like(labels, nets.NULL_LABEL))
            eps = eps_u + guidance * (eps - eps_u)
        a_t = ab[t]
        a_prev = ab[ts[i + 1]] if i + 1 < len(ts) else ab[0]
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


def save_grid(x, rows, path):
    from PIL import Image
    n = x.shape[0]
    cols = n // rows
    img = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()[:, 0]
    grid = np.zeros((rows * 30, cols * 30), np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        grid[r * 30 + 1:r * 30 + 29, c * 30 + 1:c * 30 + 29] = img[k]
    Image.fromarray(grid).resize((cols * 60, rows * 60), Image.NEAREST).save(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="unet")
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--classifier", default=os.path.join(HERE, "checkpoints", "classifier", "model.pt"))
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--per-class", type=int, default=8)
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--grid-per-class", type=int, default=8, help="columns of the saved PNG")
    args = ap.parse_args()
    torch.set_num_threads(2)
    dev = torch.device(args.device)
    model = load(args.ckpt or os.path.join(HERE, "checkpoints", args.arch, "ema.pt")).to(dev)
    labels = torch.arange(10, device=dev).repeat_interleave(args.per_class)
    t0 = time.time()
    x = ddim(model, labels, args.steps, args.guidance)
    dt = time.time() - t0
    clf = load(args.classifier).to(dev)
    with torch.no_grad():
        pred = clf(x.clamp(-1, 1))[0].argmax(1)
    x, labels, pred = x.cpu(), labels.cpu(), pred.cpu()
    acc = (pred == labels).float().mean().item()
    out = args.out or os.path.join(HERE, f"preview-{args.arch}.png")
    k = min(args.grid_per_class, args.per_class)
    save_grid(x.reshape(10, args.per_class, 1, 28, 28)[:, :k].reshape(-1, 1, 28, 28), 10, out)
    print(f"{args.arch}: {args.steps}-step DDIM, guidance {args.guidance}, {len(labels)} samples in {dt:.1f}s; "
          f"classifier agrees with label on {acc * 100:.1f}%; per-class: "
          + " ".join(f"{(pred[labels == c] == c).float().mean().item():.2f}" for c in range(10)) + f" -> {out}")


if __name__ == "__main__":
    main()
