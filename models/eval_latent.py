"""Quality of the latent text-to-image models: FD-classifier and class accuracy of decoded samples.

  /usr/bin/python3 models/eval_latent.py --floor                          # VAE reconstructions of the 10,000 test images
  /usr/bin/python3 models/eval_latent.py --arch unet --guidance 2 4 --n 1000 --steps 20   # DPM-Solver++(2M), trailing
  /usr/bin/python3 models/eval_latent.py --arch dit  --guidance 2 4 --n 1000 --steps 50   # Euler on the flow ODE

Prompts: "a photo of (a) <name>" with the first name of each class (t-shirt, trousers ... ankle boot), n/10
per class, seeds fixed. Classifier-free guidance eps~ = eps_u + w (eps_c - eps_u) (Ho & Salimans 2022,
eq. 6) with the empty prompt as the unconditional branch. U-Net: DPM-Solver++(2M) (Lu et al. 2022b, alg. 2)
in data prediction on the scaled_linear schedule, diffusers' "trailing" timesteps round(arange(1000, 0,
-1000/S)) - 1, the last step to sigma = 0 first order (lower_order_final); DDIM (eta 0) with --solver ddim.
DiT: FlowMatchEulerDiscreteScheduler's grid (timesteps linspace(1000, 1, S), sigma = t/1000, shift 1, then
0) and x <- x + (sigma_next - sigma) v. The decoded images (clamped to [-1, 1]) go through
models/fashion-classifier.onnx (onnxruntime-node): accuracy = argmax(logits) == the prompt's class;
FD-classifier = Frechet distance of the `features` against the full test set in fashion-test-stats.json
(not FID: the features are this classifier's, not Inception's). Writes models/checkpoints/eval/<name>.json
and a preview PNG (row = class, 8 per class).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
import data  # noqa: E402
import latent_nets  # noqa: E402
from compute_stats import frechet_distance  # noqa: E402
from export_onnx import run_ort  # noqa: E402
from train_latent import TextToLatent, scaled_linear_alphas_cumprod  # noqa: E402


def load_vae(path):
    st = common.torch_load(path)
    vae = latent_nets.VAE(**{k: (tuple(v) if k == "chans" else v) for k, v in st["config"].items()})
    vae.load_state_dict(st["state_dict"])
    return vae.eval(), st


def classify(images):
    """images float32 [N,1,28,28] in [-1,1] -> (logits [N,10], features [N,128]) by fashion-classifier.onnx."""
    outs, how = run_ort(os.path.join(HERE, "fashion-classifier.onnx"), {"images": images.astype(np.float32)}, ["logits", "features"])
    if outs is None:
        raise SystemExit("onnxruntime-node is needed to run fashion-classifier.onnx")
    return np.asarray(outs[0]).reshape(-1, 10), np.asarray(outs[1]).reshape(-1, 128)


def score(images, labels):
    logits, feats = classify(images)
    ref = json.load(open(os.path.join(HERE, "fashion-test-stats.json")))
    d = ref["dim"]
    m2, c2 = np.array(ref["mean"]), np.array(ref["covariance"]).reshape(d, d)
    f = feats.astype(np.float64)
    fd = frechet_distance(f.mean(0), np.cov(f, rowvar=False), m2, c2)
    pred = logits.argmax(1)
    per_class = [float((pred[labels == k] == k).mean()) for k in range(10)]
    return dict(fd_classifier=fd, accuracy=float((pred == labels).mean()), per_class=per_class, n=int(len(labels)))


def save_png(images, path, per_class=8):
    from PIL import Image
    rows = []
    for k in range(10):
        sel = images[k * per_class:(k + 1) * per_class]
        rows.append(np.concatenate([im[0] for im in sel], axis=1))
    grid = ((np.concatenate(rows, axis=0) + 1) * 127.5).clip(0, 255).round().astype(np.uint8)
    Image.fromarray(grid, mode="L").save(path)


@torch.no_grad()
def sample_unet(model, hc, hu, n, steps, w, gen, solver="dpmpp"):
    ab = scaled_linear_alphas_cumprod().float()
    ts = (np.round(np.arange(1000, 0, -1000 / steps)) - 1).astype(np.int64)
    x = torch.randn(n, 4, 7, 7, generator=gen)

    def coefs(t):
        if t < 0:
            return torch.tensor(1.0), torch.tensor(0.0)
        return ab[t].sqrt(), (1 - ab[t]).sqrt()

    def eps(x, t):
        tt = torch.tensor(float(t))
        if w == 1:
            return model.net(x, tt, hc)
        e = model.net(torch.cat([x, x]), tt, torch.cat([hu, hc]))
        eu, ec = e.chunk(2)
        return eu + w * (ec - eu)

    prev_x0, prev_h = None, None
    for i, t in enumerate(ts):
        tn = ts[i + 1] if i + 1 < len(ts) else -1
        a, s = coefs(t)
        an, sn = coefs(tn)
        x0 = (x - s * eps(x, t)) / a
        if solver == "ddim" or tn < 0:
            x = x0 if tn < 0 else an * x0 + sn * (x - a * x0) / s
            continue
        lam, lamn = torch.log(a / s), torch.log(an / sn)
        h = lamn - lam
        if prev_x0 is None:
            D = x0
        else:
            r = prev_h / h
            D = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
        x = (sn / s) * x - an * torch.expm1(-h) * D
        prev_x0, prev_h = x0, h
    return x


@torch.no_grad()
def sample_dit(model, hc, pc, hu, pu, n, steps, w, gen, shift=1.0):
    t = np.linspace(1000, 1, steps) / 1000.0
    sig = shift * t / (1 + (shift - 1) * t)
    sig = np.append(sig, 0.0)
    x = torch.randn(n, 4, 7, 7, generator=gen)
    for i in range(steps):
        tt = torch.full((n,), float(sig[i] * 1000))
        if w == 1:
            v = model.net(x, hc, pc, tt)
        else:
            vv = model.net(torch.cat([x, x]), torch.cat([hu, hc]), torch.cat([pu, pc]), torch.cat([tt, tt]))
            vu, vc = vv.chunk(2)
            v = vu + w * (vc - vu)
        x = x + float(sig[i + 1] - sig[i]) * v
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["unet", "dit"])
    ap.add_argument("--floor", action="store_true")
    ap.add_argument("--vae", default=os.path.join(HERE, "checkpoints", "vae", "vae.pt"))
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--guidance", type=float, nargs="+", default=[2.0, 4.0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--solver", default=None, help="unet: dpmpp (default) | ddim; dit: euler")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "checkpoints", "eval"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    vae, vst = load_vae(args.vae)
    if args.floor:
        x, y = data.load("test")
        with torch.no_grad():
            rec = torch.cat([vae.decoder(vae.encode(x[i:i + 500])[0]).clamp(-1, 1) for i in range(0, len(x), 500)])
        res = dict(what="VAE reconstructions D(mean) of the 10,000 test images", **score(rec.numpy(), y.numpy()),
                   test_images=score(x.numpy(), y.numpy()))
        print(json.dumps(res, indent=1))
        json.dump(res, open(os.path.join(args.out, "floor.json"), "w"), indent=1)
        return
    st = common.torch_load(args.ckpt or os.path.join(HERE, "checkpoints", f"latent-{args.arch}", "ema.pt"))
    model = TextToLatent(args.arch, st["config"]["text"], st["config"]["net"])
    model.load_state_dict(st["state_dict"])
    model.eval()
    sf = float(st["scaling_factor"])
    steps = args.steps or (20 if args.arch == "unet" else 50)
    solver = args.solver or ("dpmpp" if args.arch == "unet" else "euler")
    cap = json.load(open(os.path.join(HERE, "latent-captions.json")))
    prompts = []
    for k in range(10):
        c = next(c for c in cap["captions"] if c["label"] == k and c["text"].startswith("a photo of "))
        prompts.append(c)
    per = args.n // 10
    labels = np.repeat(np.arange(10), per)
    ids = torch.tensor([prompts[k]["ids"] for k in labels.tolist()])
    with torch.no_grad():
        hs_all, pooled_all = model.text(ids)
        hu1, pu1 = model.text(torch.tensor([cap["empty"]]))
    for w in args.guidance:
        gen = torch.Generator().manual_seed(1234)
        t0 = time.time()
        imgs = []
        for i in range(0, len(labels), args.batch):
            hc, pc = hs_all[i:i + args.batch], pooled_all[i:i + args.batch]
            b = hc.shape[0]
            hu, pu = hu1.expand(b, -1, -1), pu1.expand(b, -1)
            if args.arch == "unet":
                z = sample_unet(model, hc, hu, b, steps, w, gen, solver)
            else:
                z = sample_dit(model, hc, pc, hu, pu, b, steps, w, gen)
            with torch.no_grad():
                imgs.append(vae.decoder(z / sf).clamp(-1, 1))
            print(f"  {i + b}/{len(labels)} t={time.time() - t0:.0f}s", flush=True)
        imgs = torch.cat(imgs).numpy()
        secs = time.time() - t0
        res = dict(arch=args.arch, solver=solver, steps=steps, guidance=w, seconds=round(secs, 1),
                   prompts=[p["text"] for p in prompts], train_step=st["step"], **score(imgs, labels))
        name = f"{args.arch}-{solver}{steps}-w{w:g}-n{args.n}"
        print(name, json.dumps({k: v for k, v in res.items() if k != "prompts"}), flush=True)
        json.dump(res, open(os.path.join(args.out, name + ".json"), "w"), indent=1)
        pick = np.concatenate([np.where(labels == k)[0][:8] for k in range(10)])
        if per >= 8:
            save_png(imgs[pick], os.path.join(args.out, name + ".png"))


if __name__ == "__main__":
    main()
