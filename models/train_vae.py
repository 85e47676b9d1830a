"""Train the KL-regularised VAE of the latent models on Fashion-MNIST, then cache the train-set latents.

  /usr/bin/python3 models/train_vae.py --max-seconds 720            # train (resumable: --resume)
  /usr/bin/python3 models/train_vae.py --eval-only                   # re-run the evaluation + latent cache

Loss (Rombach et al. 2022, appendix G, without the perceptual and adversarial terms):
  L = mean|x - D(z)| + mean (x - D(z))^2 + kl_weight * KL(q(z|x) || N(0, I)),
with z ~ q(z|x) = N(mean, exp(logvar)) (reparameterised), the reconstruction terms averaged per pixel and the KL
summed over the 4x7x7 latent and averaged over the batch. After training: test-set MSE and PSNR of the
reconstructions D(mean), scaling_factor = 1 / std of the posterior samples over the train set (SD's rule), and
<out>/latents.npy = float16 [60000, 8, 7, 7] (mean ++ logvar, what train_latent.py samples from) plus
<out>/vae.pt (weights, config, metrics).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import data  # noqa: E402
import latent_nets  # noqa: E402


@torch.no_grad()
def evaluate(vae, X, batch=500):
    vae.eval()
    se, n = 0.0, 0
    for i in range(0, X.shape[0], batch):
        x = X[i:i + batch]
        mean, _ = vae.encode(x)
        rec = vae.decoder(mean).clamp(-1, 1)
        se += F.mse_loss(rec, x, reduction="sum").item()
        n += x.numel()
    mse = se / n  # on the [-1, 1] scale
    psnr = 10 * math.log10(4.0 / mse)  # peak-to-peak range 2 -> PSNR of the [0, 1] image
    return mse, psnr


@torch.no_grad()
def encode_all(vae, X, batch=500):
    vae.eval()
    out = []
    for i in range(0, X.shape[0], batch):
        mean, logvar = vae.encode(X[i:i + batch])
        out.append(torch.cat([mean, logvar], 1))
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints", "vae"))
    ap.add_argument("--data", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kl-weight", type=float, default=1e-5)
    ap.add_argument("--chans", default="16,32,64")
    ap.add_argument("--max-steps", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=float, default=720)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--eval-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    common.seed_all(args.seed)

    X, _ = data.load("train", args.data)
    Xt, _ = data.load("test", args.data)
    vae = latent_nets.VAE(chans=tuple(int(c) for c in args.chans.split(",")))
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    step, elapsed0, last = 0, 0.0, float("nan")
    ckpt = common.latest_checkpoint(args.out) if (args.resume or args.eval_only) else None
    if ckpt:
        st = common.torch_load(ckpt)
        vae.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, elapsed0, last = st["step"], st["seconds"], st["loss"]
        common.set_rng_state(st["rng"])
        print(f"resumed from {ckpt} at step {step} ({elapsed0:.0f}s)", flush=True)
    print(f"vae: {latent_nets.count_params(vae)} params, batch {args.batch}, lr {args.lr}, kl {args.kl_weight}", flush=True)
    log = common.CSVLog(os.path.join(args.out, "loss.csv"), ["step", "loss", "rec_l1", "kl", "seconds"], resume=bool(ckpt))
    timer = common.Timer(elapsed0)

    def save():
        common.atomic_save(dict(model=vae.state_dict(), opt=opt.state_dict(), step=step, seconds=round(timer(), 1),
                                loss=last, rng=common.rng_state(), config=vae.config, args=vars(args)),
                           os.path.join(args.out, "ckpt-latest.pt"))
        print(f"checkpoint step {step} loss {last:.4f} t={timer():.0f}s", flush=True)

    if not args.eval_only:
        vae.train()
        acc = torch.zeros(3)
        n = 0
        while step < args.max_steps and timer() < args.max_seconds:
            x = X[torch.randint(0, X.shape[0], (args.batch,))]
            rec, mean, logvar = vae(x)
            l1 = (rec - x).abs().mean()
            l2 = ((rec - x) ** 2).mean()
            kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(dim=(1, 2, 3)).mean()
            loss = l1 + l2 + args.kl_weight * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            step += 1
            acc += torch.tensor([loss.item(), l1.item(), kl.item()])
            n += 1
            if step % args.log_every == 0:
                a = acc / n
                last = a[0].item()
                log.row(step, f"{a[0]:.6f}", f"{a[1]:.6f}", f"{a[2]:.2f}", f"{timer():.1f}")
                print(f"step {step} loss {a[0]:.4f} l1 {a[1]:.4f} kl {a[2]:.1f} t={timer():.0f}s", flush=True)
                acc.zero_()
                n = 0
            if step % args.ckpt_every == 0:
                save()
        save()

    mse, psnr = evaluate(vae, Xt)
    params = encode_all(vae, X)
    mean, logvar = params[:, :4], params[:, 4:]
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    std = z.std().item()
    metrics = dict(step=step, seconds=round(timer(), 1), final_loss=last, test_mse=mse, test_psnr_db=psnr,
                   latent_std=std, latent_mean=z.mean().item(), scaling_factor=1.0 / std,
                   posterior_std_mean=torch.exp(0.5 * logvar).mean().item(), params=latent_nets.count_params(vae))
    print(json.dumps(metrics, indent=1), flush=True)
    np.save(os.path.join(args.out, "latents.npy"), params.numpy().astype(np.float16))
    common.atomic_save(dict(state_dict=vae.state_dict(), config=vae.config, metrics=metrics, args=vars(args)),
                       os.path.join(args.out, "vae.pt"))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)


if __name__ == "__main__":
    main()
