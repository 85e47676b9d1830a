"""Train the Fashion-MNIST classifier CNN (logits + penultimate features).

  /usr/bin/python3 models/train_classifier.py --out models/checkpoints/classifier

AdamW + cosine schedule over --epochs, augmentation (random shift by up to 2 px via
pad+crop, random horizontal flip), label smoothing 0.1, fixed seeds. Stops at the end
of the schedule or at --max-seconds; checkpoints atomically at every epoch end and at
exit; --resume continues from <out>/ckpt-latest.pt. Writes <out>/model.pt (weights +
config + test accuracy) and <out>/log.csv (step, loss, seconds, epoch, test_acc).
"""
import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import data  # noqa: E402
import nets  # noqa: E402


@torch.no_grad()
def evaluate(model, X, Y, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, X.shape[0], batch):
        logits, _ = model(X[i:i + batch])
        correct += (logits.argmax(1) == Y[i:i + batch]).sum().item()
    model.train()
    return correct / X.shape[0]


def augment(x, pad=2):
    b = x.shape[0]
    flip = torch.rand(b, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    xp = F.pad(x, (pad, pad, pad, pad), value=-1.0)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=x.device)
    dy = torch.randint(0, 2 * pad + 1, (b,), device=x.device)
    ar = torch.arange(28, device=x.device)
    rows = (dy[:, None] + ar[None]).view(b, 1, 28, 1).expand(b, 1, 28, 28 + 2 * pad)
    xp = torch.gather(xp, 2, rows)
    cols = (dx[:, None] + ar[None]).view(b, 1, 1, 28).expand(b, 1, 28, 28)
    return torch.gather(xp, 3, cols)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--feat-dim", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--max-steps", type=int, default=10 ** 9)
    ap.add_argument("--max-seconds", type=float, default=float("inf"))
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints", "classifier")
    os.makedirs(out, exist_ok=True)
    dev = common.pick_device(args.device)
    common.seed_all(args.seed)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True

    X, Y = data.load("train", args.data)
    Xt, Yt = data.load("test", args.data)
    X, Y, Xt, Yt = X.to(dev), Y.to(dev), Xt.to(dev), Yt.to(dev)
    N = X.shape[0]
    steps_per_epoch = math.ceil(N / args.batch)
    total = min(args.max_steps, steps_per_epoch * args.epochs)

    model = nets.Classifier(feat_dim=args.feat_dim, width=args.width).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    step, elapsed0, acc = 0, 0.0, float("nan")
    ckpt = common.latest_checkpoint(out) if args.resume else None
    if ckpt:
        st = common.torch_load(ckpt, map_location=dev)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, elapsed0, acc = st["step"], st["seconds"], st["test_acc"]
        common.set_rng_state(st["rng"])
        print(f"resumed at step {step}", flush=True)
    log = common.CSVLog(os.path.join(out, "log.csv"), ["step", "loss", "seconds", "epoch", "test_acc"], bool(ckpt))
    timer = common.Timer(elapsed0)
    nparams = nets.count_params(model)
    print(f"classifier: {nparams} params, device {dev}, {total} steps", flush=True)

    def save():
        meta = dict(arch="classifier", config=model.config, step=step, seconds=round(timer(), 1), test_acc=acc,
                    params=nparams, device=str(dev), args=vars(args), torch=str(torch.__version__))
        common.atomic_save(dict(meta, model=model.state_dict(), opt=opt.state_dict(), rng=common.rng_state()),
                           os.path.join(out, "ckpt-latest.pt"))
        common.atomic_save(dict(meta, state_dict=model.state_dict()), os.path.join(out, "model.pt"))

    model.train()
    perm, pos = None, N
    loss_acc = torch.zeros((), device=dev)
    n_acc = 0
    while step < total and timer() < args.max_seconds:
        if pos >= N:
            perm, pos = torch.randperm(N, device=dev), 0
        idx = perm[pos:pos + args.batch]
        pos += args.batch
        x = augment(X[idx])
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / total))
        for g in opt.param_groups:
            g["lr"] = lr
        logits, _ = model(x)
        loss = F.cross_entropy(logits, Y[idx], label_smoothing=args.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        loss_acc += loss.detach()
        n_acc += 1
        end_epoch = step % steps_per_epoch == 0 or step == total
        if step % args.log_every == 0 or end_epoch:
            l = (loss_acc / n_acc).item()
            loss_acc.zero_()
            n_acc = 0
            if end_epoch:
                acc = evaluate(model, Xt, Yt)
                print(f"epoch {step / steps_per_epoch:.2f} step {step} loss {l:.4f} test_acc {acc:.4f} t={timer():.0f}s",
                      flush=True)
                save()
            log.row(step, f"{l:.6f}", f"{timer():.1f}", f"{step / steps_per_epoch:.3f}", f"{acc:.4f}" if end_epoch else "")
    if not (step % steps_per_epoch == 0 or step == total):
        acc = evaluate(model, Xt, Yt)
    save()
    print(f"done: step {step} test_acc {acc:.4f} seconds {timer():.0f}", flush=True)


if __name__ == "__main__":
    main()
