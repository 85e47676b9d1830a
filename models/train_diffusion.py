"""DDPM training of the class-conditional Fashion-MNIST diffusion models.

  /usr/bin/python3 models/train_diffusion.py --arch unet --out models/checkpoints/unet
  /usr/bin/python3 models/train_diffusion.py --arch dit  --out models/checkpoints/dit

1000-step linear beta schedule 1e-4 -> 0.02, epsilon-prediction MSE, class labels
dropped to the null label 10 with probability --p-uncond (classifier-free guidance),
AdamW + linear warmup, EMA with warmup, fixed seeds. Stops at --max-steps or
--max-seconds (wall clock, counted across resumes), checkpoints atomically every
--ckpt-every steps and at exit; --resume continues from <out>/ckpt-latest.pt with
optimizer, EMA, step and RNG state. Writes <out>/ema.pt (EMA weights + config, what
export_onnx.py reads) and <out>/loss.csv (step, loss, seconds).
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import data  # noqa: E402
import nets  # noqa: E402

DEFAULTS = {
    "unet": dict(lr=3e-4, batch=512),
    "dit": dict(lr=3e-4, batch=512),
}


def linear_alphas_cumprod(T=1000, beta_start=1e-4, beta_end=0.02):
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def model_kwargs(args):
    if args.arch == "unet":
        return dict(base=args.base, mults=tuple(int(m) for m in args.mults.split(",")), num_res=args.num_res,
                    heads=args.heads, dropout=args.dropout)
    return dict(patch=args.patch, dim=args.dim, depth=args.depth, heads=args.heads)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["unet", "dit"], required=True)
    ap.add_argument("--out", default=None, help="checkpoint dir (default models/checkpoints/<arch>)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--p-uncond", type=float, default=0.1)
    ap.add_argument("--hflip", action="store_true", help="random horizontal flips (off: keeps shoes facing left)")
    ap.add_argument("--max-steps", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=float, default=float("inf"))
    ap.add_argument("--ckpt-every", type=int, default=2000)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default=None,
                    help="warm start: load model and EMA from an ema.pt (fresh optimizer; step and seconds continue)")
    ap.add_argument("--bf16", choices=["auto", "on", "off"], default="auto", help="bf16 autocast (auto: on for cuda)")
    # architecture
    ap.add_argument("--base", type=int, default=32)
    ap.add_argument("--mults", default="1,2,2")
    ap.add_argument("--num-res", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    args = ap.parse_args()
    for k, v in DEFAULTS[args.arch].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints", args.arch)
    os.makedirs(out, exist_ok=True)

    dev = common.pick_device(args.device)
    common.seed_all(args.seed)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    use_bf16 = args.bf16 == "on" or (args.bf16 == "auto" and dev.type == "cuda")

    X, Y = data.load("train", args.data)
    X, Y = X.to(dev), Y.to(dev)
    N = X.shape[0]
    ab = linear_alphas_cumprod().to(dev)
    sqrt_ab, sqrt_1mab = ab.sqrt().float(), (1 - ab).sqrt().float()

    kw = model_kwargs(args)
    model = nets.build(args.arch, **kw).to(dev)
    ema = common.EMA(model, args.ema)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    step, elapsed0, last_loss = 0, 0.0, float("nan")

    init_info = None
    if args.init:
        st = common.torch_load(args.init, map_location=dev)
        model.load_state_dict(st["state_dict"])
        ema.model.load_state_dict(st["state_dict"])
        step, elapsed0, last_loss = st["step"], st["seconds"], st.get("loss", float("nan"))
        ema.updates = step
        init_info = dict(path=args.init, step=step, seconds=st["seconds"], loss=last_loss, init=st.get("init"))
        print(f"warm start from {args.init} at step {step} ({elapsed0:.0f}s)", flush=True)
    ckpt = common.latest_checkpoint(out) if args.resume else None
    if ckpt:
        st = common.torch_load(ckpt, map_location=dev)
        model.load_state_dict(st["model"])
        ema.model.load_state_dict(st["ema"])
        ema.updates = st["ema_updates"]
        opt.load_state_dict(st["opt"])
        step, elapsed0, last_loss = st["step"], st["seconds"], st.get("loss", float("nan"))
        init_info = st.get("init")
        common.set_rng_state(st["rng"])
        print(f"resumed from {ckpt} at step {step} ({elapsed0:.0f}s)", flush=True)
    nparams = nets.count_params(model)
    print(f"{args.arch}: {nparams} params, device {dev}, bf16 {use_bf16}, batch {args.batch}, lr {args.lr}", flush=True)

    log = common.CSVLog(os.path.join(out, "loss.csv"), ["step", "loss", "seconds"], resume=bool(ckpt))
    timer = common.Timer(elapsed0)

    def save():
        meta = dict(arch=args.arch, config=model.config, step=step, seconds=round(timer(), 1), loss=last_loss,
                    params=nparams, device=str(dev), args=vars(args), torch=str(torch.__version__), init=init_info)
        common.atomic_save(dict(meta, model=model.state_dict(), ema=ema.model.state_dict(), ema_updates=ema.updates,
                                opt=opt.state_dict(), rng=common.rng_state()), os.path.join(out, "ckpt-latest.pt"))
        common.atomic_save(dict(meta, state_dict=ema.model.state_dict()), os.path.join(out, "ema.pt"))
        print(f"checkpoint step {step} loss {last_loss:.4f} t={timer():.0f}s", flush=True)

    start_step = init_info["step"] if init_info else 0
    model.train()
    acc = torch.zeros((), device=dev)
    acc_n = 0
    while step < args.max_steps and timer() < args.max_seconds:
        idx = torch.randint(0, N, (args.batch,), device=dev)
        x0, y = X[idx], Y[idx].clone()
        if args.hflip:
            flip = torch.rand(args.batch, device=dev) < 0.5
            x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        y[torch.rand(args.batch, device=dev) < args.p_uncond] = nets.NULL_LABEL
        t = torch.randint(0, 1000, (args.batch,), device=dev)
        noise = torch.randn_like(x0)
        xt = sqrt_ab[t][:, None, None, None] * x0 + sqrt_1mab[t][:, None, None, None] * noise
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step - start_step + 1) / max(1, args.warmup))
        if use_bf16:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                pred = model(xt, t.float(), y)
        else:
            pred = model(xt, t.float(), y)
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        ema.update(model)
        step += 1
        acc += loss.detach()
        acc_n += 1
        if step % args.log_every == 0:
            last_loss = (acc / acc_n).item()
            acc.zero_()
            acc_n = 0
            log.row(step, f"{last_loss:.6f}", f"{timer():.1f}")
            if step % (args.log_every * 10) == 0:
                print(f"step {step} loss {last_loss:.4f} t={timer():.0f}s", flush=True)
        if step % args.ckpt_every == 0:
            save()
    if acc_n:
        last_loss = (acc / acc_n).item()
        log.row(step, f"{last_loss:.6f}", f"{timer():.1f}")
    save()
    print(f"done: step {step} loss {last_loss:.4f} seconds {timer():.0f}", flush=True)


if __name__ == "__main__":
    main()
