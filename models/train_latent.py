"""Train a text-conditioned latent denoiser (and its text encoder, jointly) on the cached VAE latents.

  /usr/bin/python3 models/train_latent.py --arch unet --max-seconds 1500     # SD-style U-Net, epsilon, scaled_linear
  /usr/bin/python3 models/train_latent.py --arch dit  --max-seconds 1500     # SD3-style MMDiT, rectified flow
  ... --resume                                                               # continue from <out>/ckpt-latest.pt

Data: <vae>/latents.npy (mean ++ logvar of q(z|x) for the 60,000 training images, train_vae.py); each step
draws z ~ q(z|x) and scales it by the VAE's scaling_factor (SD's z * 0.18215 convention). Text: a random
caption of the image's class from models/latent-captions.json (CLIP ids, made by latent_captions.mjs),
replaced by the empty prompt "" with probability --p-uncond (classifier-free guidance, Ho & Salimans 2022).
The text encoder runs once per step on the 105 distinct token rows and is indexed per sample.

unet: DDPM (Ho et al. 2020) epsilon-prediction MSE, t ~ U{0..999}, SD's scaled_linear betas
      beta_t = (linspace(sqrt(0.00085), sqrt(0.012), 1000))^2, x_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps.
dit:  rectified flow (Liu et al. 2022; Esser et al. 2024 eq. 1-3): x_s = (1 - s) z + s eps,
      target v = eps - z, s ~ logit-normal(0, 1) (SD3's sampling density, Esser et al. sec. 3.1),
      timestep input = 1000 s.
AdamW (weight decay 0), linear warmup, gradient clipping 1.0, EMA of the denoiser and text encoder with
decay min(--ema, (1+n)/(10+n)), fixed seed. Checkpoints atomically every --ckpt-every steps and at exit;
--max-seconds counts wall clock across resumes. Writes <out>/ema.pt (what export_latent.py reads) and loss.csv.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import data  # noqa: E402
import latent_nets  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def scaled_linear_alphas_cumprod(T=1000, beta_start=0.00085, beta_end=0.012):
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, T, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


class TextToLatent(nn.Module):
    """The trained pair: text encoder + denoiser (one module so EMA and checkpoints cover both)."""

    def __init__(self, arch, te_kw, net_kw):
        super().__init__()
        self.arch = arch
        self.text = latent_nets.TextEncoder(**te_kw)
        self.net = latent_nets.CondUNet(**net_kw) if arch == "unet" else latent_nets.FlowDiT(**net_kw)
        self.config = dict(arch=arch, text=self.text.config, net=self.net.config)

    def forward(self, x, t, ids_all, which):
        hs, pooled = self.text(ids_all)
        hs, pooled = hs[which], pooled[which]
        if self.arch == "unet":
            return self.net(x, t, hs)
        return self.net(x, hs, pooled, t)


def load_captions(path):
    with open(path) as f:
        cap = json.load(f)
    rows = [c["ids"] for c in cap["captions"]] + [cap["empty"]]
    by_class = [[i for i, c in enumerate(cap["captions"]) if c["label"] == k] for k in range(10)]
    return cap, torch.tensor(rows, dtype=torch.long), by_class, len(rows) - 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["unet", "dit"], required=True)
    ap.add_argument("--out", default=None, help="default models/checkpoints/latent-<arch>")
    ap.add_argument("--vae", default=os.path.join(HERE, "checkpoints", "vae"))
    ap.add_argument("--captions", default=os.path.join(HERE, "latent-captions.json"))
    ap.add_argument("--data", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--p-uncond", type=float, default=0.1)
    ap.add_argument("--max-steps", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=float, default=1500)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--resume", action="store_true")
    # architecture
    ap.add_argument("--ch", type=int, default=32, help="unet: channels at 7x7 (2x at 4x4)")
    ap.add_argument("--attn7", action="store_true", help="unet: Transformer blocks at 7x7 too")
    ap.add_argument("--dim", type=int, default=64, help="dit: width")
    ap.add_argument("--depth", type=int, default=4, help="dit: joint blocks")
    ap.add_argument("--mlp-ratio", type=int, default=2, help="dit: MLP width / dim")
    ap.add_argument("--heads", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or os.path.join(HERE, "checkpoints", f"latent-{args.arch}")
    os.makedirs(out, exist_ok=True)
    common.seed_all(args.seed)

    with open(os.path.join(args.vae, "metrics.json")) as f:
        sf = json.load(f)["scaling_factor"]
    lat = torch.from_numpy(np.load(os.path.join(args.vae, "latents.npy")).astype(np.float32))
    _, Y = data.load_uint8("train", args.data)
    assert lat.shape[0] == Y.shape[0], "latents.npy does not match the train set: re-run train_vae.py --eval-only"
    cap, ids_all, by_class, empty_row = load_captions(args.captions)
    cls_rows = [torch.tensor(r) for r in by_class]
    N = lat.shape[0]
    ab = scaled_linear_alphas_cumprod()
    sqrt_ab, sqrt_1mab = ab.sqrt().float(), (1 - ab).sqrt().float()

    te_kw = dict(used_ids=cap["usedIds"], max_len=cap["maxLength"], dim=64, layers=2, heads=4, mlp=256)
    if args.arch == "unet":
        net_kw = dict(ch=args.ch, ctx=64, heads=args.heads, attn7=args.attn7)
    else:
        net_kw = dict(dim=args.dim, depth=args.depth, heads=args.heads, mlp_ratio=args.mlp_ratio, ctx=64, pooled=64)
    model = TextToLatent(args.arch, te_kw, net_kw)
    ema = common.EMA(model, args.ema)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    step, elapsed0, last_loss = 0, 0.0, float("nan")
    ckpt = common.latest_checkpoint(out) if args.resume else None
    if ckpt:
        st = common.torch_load(ckpt)
        model.load_state_dict(st["model"])
        ema.model.load_state_dict(st["ema"])
        ema.updates = st["ema_updates"]
        opt.load_state_dict(st["opt"])
        step, elapsed0, last_loss = st["step"], st["seconds"], st["loss"]
        common.set_rng_state(st["rng"])
        print(f"resumed from {ckpt} at step {step} ({elapsed0:.0f}s)", flush=True)
    nparams = dict(text_encoder=latent_nets.count_params(model.text), denoiser=latent_nets.count_params(model.net))
    print(f"{args.arch}: {nparams}, batch {args.batch}, lr {args.lr}, scaling_factor {sf:.4f}", flush=True)
    log = common.CSVLog(os.path.join(out, "loss.csv"), ["step", "loss", "seconds"], resume=bool(ckpt))
    timer = common.Timer(elapsed0)

    def save():
        meta = dict(arch=args.arch, config=model.config, step=step, seconds=round(timer(), 1), loss=last_loss,
                    params=nparams, scaling_factor=sf, args=vars(args), torch=str(torch.__version__))
        common.atomic_save(dict(meta, model=model.state_dict(), ema=ema.model.state_dict(), ema_updates=ema.updates,
                                opt=opt.state_dict(), rng=common.rng_state()), os.path.join(out, "ckpt-latest.pt"))
        common.atomic_save(dict(meta, state_dict=ema.model.state_dict()), os.path.join(out, "ema.pt"))
        print(f"checkpoint step {step} loss {last_loss:.4f} t={timer():.0f}s", flush=True)

    model.train()
    acc, acc_n = 0.0, 0
    while step < args.max_steps and timer() < args.max_seconds:
        idx = torch.randint(0, N, (args.batch,))
        p = lat[idx]
        z = (p[:, :4] + torch.exp(0.5 * p[:, 4:]) * torch.randn(args.batch, 4, 7, 7)) * sf
        y = Y[idx]
        which = torch.stack([cls_rows[k][torch.randint(0, len(cls_rows[k]), (1,))][0] for k in y.tolist()])
        which[torch.rand(args.batch) < args.p_uncond] = empty_row
        noise = torch.randn_like(z)
        if args.arch == "unet":
            t = torch.randint(0, 1000, (args.batch,))
            xt = sqrt_ab[t][:, None, None, None] * z + sqrt_1mab[t][:, None, None, None] * noise
            target, tin = noise, t.float()
        else:
            s = torch.sigmoid(torch.randn(args.batch))
            xt = (1 - s)[:, None, None, None] * z + s[:, None, None, None] * noise
            target, tin = noise - z, s * 1000.0
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step + 1) / max(1, args.warmup))
        loss = F.mse_loss(model(xt, tin, ids_all, which), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
        step += 1
        acc += loss.item()
        acc_n += 1
        if step % args.log_every == 0:
            last_loss = acc / acc_n
            acc, acc_n = 0.0, 0
            log.row(step, f"{last_loss:.6f}", f"{timer():.1f}")
            print(f"step {step} loss {last_loss:.4f} t={timer():.0f}s", flush=True)
        if step % args.ckpt_every == 0:
            save()
    if acc_n:
        last_loss = acc / acc_n
        log.row(step, f"{last_loss:.6f}", f"{timer():.1f}")
    save()
    print(f"done: step {step} loss {last_loss:.4f} seconds {timer():.0f}", flush=True)


if __name__ == "__main__":
    main()
