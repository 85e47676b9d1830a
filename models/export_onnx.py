"""Export the trained models to ONNX (opset 17, classic TorchScript exporter) + model cards.

  /usr/bin/python3 models/export_onnx.py \
      --unet models/checkpoints/unet/ema.pt --dit models/checkpoints/dit/ema.pt \
      --classifier models/checkpoints/classifier/model.pt

Writes models/fashion-{unet,dit,classifier}.onnx and .json, checks each graph with
onnx.checker and compares onnxruntime's output with PyTorch's (Python onnxruntime if
installed, else onnxruntime-node through models/verify_onnx.mjs).
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
import data  # noqa: E402
import nets  # noqa: E402

SCHEDULER = {
    "_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02,
    "beta_schedule": "linear", "prediction_type": "epsilon", "clip_sample": False, "set_alpha_to_one": False,
    "steps_offset": 0, "timestep_spacing": "trailing",  # every grid starts at t = 999 (Lin et al. 2023, §3.3)
}


def load(path):
    st = common.torch_load(path, map_location="cpu")
    model = nets.build(st["arch"], **st["config"])
    model.load_state_dict(st["state_dict"])
    return model.eval(), st


def run_ort(onnx_path, feeds, out_names):
    """Run the model with onnxruntime (python or node); returns list of arrays or None."""
    try:
        import onnxruntime as ort
        sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        return sess.run(out_names, feeds), "onnxruntime (python)"
    except ImportError:
        pass
    node = shutil.which("node")
    script = os.path.join(HERE, "verify_onnx.mjs")
    if not node or not os.path.exists(os.path.join(HERE, "..", "node_modules", "onnxruntime-node")):
        return None, "none"
    with tempfile.TemporaryDirectory() as td:
        spec = {"model": os.path.abspath(onnx_path), "inputs": {}, "outputs": out_names}
        for k, v in feeds.items():
            fn = os.path.join(td, k + ".bin")
            v.tofile(fn)
            spec["inputs"][k] = {"file": fn, "dtype": str(v.dtype), "shape": list(v.shape)}
        spec["outdir"] = td
        with open(os.path.join(td, "spec.json"), "w") as f:
            json.dump(spec, f)
        subprocess.run([node, script, os.path.join(td, "spec.json")], check=True, cwd=os.path.join(HERE, ".."))
        return [np.fromfile(os.path.join(td, n + ".bin"), dtype=np.float32) for n in out_names], "onnxruntime-node"


def export(model, args, path, in_names, out_names, dyn):
    torch.onnx.export(model, args, path, opset_version=17, do_constant_folding=True, input_names=in_names,
                      output_names=out_names, dynamic_axes=dyn, training=torch.onnx.TrainingMode.EVAL)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return ops


def io_spec(path):
    m = onnx.load(path)
    init = {i.name for i in m.graph.initializer}

    def desc(v):
        tt = v.type.tensor_type
        shape = [d.dim_param or d.dim_value for d in tt.shape.dim]
        name = onnx.TensorProto.DataType.Name(tt.elem_type).lower()
        return {"dtype": {"float": "float32", "double": "float64"}.get(name, name), "shape": shape}

    return ({v.name: desc(v) for v in m.graph.input if v.name not in init},
            {v.name: desc(v) for v in m.graph.output})


def read_csv_last(path):
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else None


def compare(name, torch_outs, ort_outs, how):
    if ort_outs is None:
        print(f"  {name}: no onnxruntime available, checked with onnx.checker only")
        return None
    errs = []
    for a, b in zip(torch_outs, ort_outs):
        a = a.detach().numpy().reshape(-1)
        b = np.asarray(b).reshape(-1)
        errs.append(float(np.max(np.abs(a - b))))
    print(f"  {name}: max |torch - ort| = {max(errs):.3e} ({how})")
    return max(errs)


def export_diffusion(ckpt, name, made_by, log_csv):
    model, st = load(ckpt)
    path = os.path.join(HERE, f"fashion-{name}.onnx")
    b = 3
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 1, 28, 28, generator=g)
    t = torch.tensor([999.0, 500.5, 0.25])
    y = torch.tensor([0, 7, 10], dtype=torch.int64)
    ops = export(model, (x, t, y), path, ["sample", "timestep", "class_labels"], ["out_sample"],
                 {"sample": {0: "batch"}, "timestep": {0: "batch"}, "class_labels": {0: "batch"},
                  "out_sample": {0: "batch"}})
    with torch.no_grad():
        ref = model(x, t, y)
    outs, how = run_ort(path, {"sample": x.numpy(), "timestep": t.numpy(), "class_labels": y.numpy()}, ["out_sample"])
    err = compare(path, [ref], outs, how)
    ins, outs_spec = io_spec(path)
    last = read_csv_last(log_csv)
    a = st["args"]
    card = {
        "name": f"fashion-{name}",
        "file": f"fashion-{name}.onnx",
        "architecture": ("DDPM-style class-conditional U-Net (ResBlocks with GroupNorm/SiLU, time+class embedding added "
                         "after the first conv, self-attention at 7x7, stride-2 conv downsampling 28-14-7, "
                         "nearest+conv upsampling, skip concatenation)") if name == "unet" else
                        ("class-conditional DiT (adaLN-Zero blocks, patch 4 on 28x28 = 49 tokens, fixed 2-D sin-cos "
                         "position embedding, explicit MatMul/Softmax attention, epsilon prediction)"),
        "config": st["config"],
        "scheduler_config": SCHEDULER,
        "prediction_type": "epsilon",
        "sample_size": [1, 28, 28],
        "pixel_range": [-1, 1],
        "num_classes": 10,
        "null_label": 10,
        "class_names": data.CLASS_NAMES,
        "inputs": ins,
        "outputs": outs_spec,
        "notes": "timestep is float32 and may be fractional (it feeds a sinusoidal embedding); class_labels 10 = "
                 "unconditional (trained with 10% label dropout, usable for classifier-free guidance).",
        "training": {
            "data": "Fashion-MNIST train (60,000 images), scaled to [-1,1], no flips",
            "objective": "DDPM epsilon MSE, uniform integer t in [0,999]",
            "steps": st["step"], "batch": a["batch"], "lr": a["lr"], "optimizer": "AdamW (wd 0), 500-step warmup, grad clip 1.0",
            "ema": a["ema"], "p_uncond": a["p_uncond"], "seconds": st["seconds"], "device": st["device"],
            "precision": "bf16 autocast" if st["device"].startswith("cuda") and a["bf16"] != "off" else "fp32",
            "torch": st["torch"], "final_loss": round(float(st["loss"]), 5),
            "final_loss_csv_row": last, "seed": a["seed"],
        },
        "parameters": st["params"],
        "opset": 17,
        "onnx_ops": ops,
        "export_check": {"max_abs_diff_vs_torch": err, "runtime": how},
        "made_by": made_by,
    }
    with open(os.path.join(HERE, f"fashion-{name}.json"), "w") as f:
        json.dump(card, f, indent=2)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB), {st['params']} params")


def export_classifier(ckpt, made_by):
    model, st = load(ckpt)
    path = os.path.join(HERE, "fashion-classifier.onnx")
    xt, yt = data.load("test")
    x = xt[:8]
    ops = export(model, (x,), path, ["images"], ["logits", "features"],
                 {"images": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}})
    with torch.no_grad():
        ref = model(x)
        correct = 0
        for i in range(0, 10000, 500):
            correct += (model(xt[i:i + 500])[0].argmax(1) == yt[i:i + 500]).sum().item()
    acc = correct / 10000
    outs, how = run_ort(path, {"images": x.numpy()}, ["logits", "features"])
    err = compare(path, list(ref), outs, how)
    ins, outs_spec = io_spec(path)
    a = st["args"]
    card = {
        "name": "fashion-classifier",
        "file": "fashion-classifier.onnx",
        "architecture": "CNN: 2x[conv3x3-BN-ReLU]x2 + maxpool (64, 128 ch), conv3x3-BN-ReLU 256 ch, global avg pool, "
                        "dropout, Linear 256->128 + BN + ReLU (= features), dropout, Linear 128->10 (= logits)",
        "config": st["config"],
        "inputs": ins, "outputs": outs_spec,
        "input_range": [-1, 1],
        "input_note": "images float32 [B,1,28,28], pixel/127.5 - 1 (same scaling as the diffusion models)",
        "feature_dim": st["config"]["feat_dim"],
        "feature_note": "features = penultimate activations (after ReLU), used for Fréchet-distance statistics (FD-classifier)",
        "num_classes": 10, "class_names": data.CLASS_NAMES,
        "test_accuracy": acc,
        "training": {"data": "Fashion-MNIST train, random 2-px shifts + horizontal flips", "epochs": a["epochs"],
                     "steps": st["step"], "batch": a["batch"], "lr": a["lr"], "optimizer": "AdamW, cosine schedule",
                     "weight_decay": a["weight_decay"], "label_smoothing": a["label_smoothing"],
                     "seconds": st["seconds"], "device": st["device"], "torch": st["torch"], "seed": a["seed"]},
        "parameters": st["params"], "opset": 17, "onnx_ops": ops,
        "export_check": {"max_abs_diff_vs_torch": err, "runtime": how},
        "made_by": made_by,
    }
    with open(os.path.join(HERE, "fashion-classifier.json"), "w") as f:
        json.dump(card, f, indent=2)
    print(f"wrote {path}, test accuracy {acc:.4f}")


def main():
    ap = argparse.ArgumentParser()
    ck = os.path.join(HERE, "checkpoints")
    ap.add_argument("--unet", default=os.path.join(ck, "unet", "ema.pt"))
    ap.add_argument("--dit", default=os.path.join(ck, "dit", "ema.pt"))
    ap.add_argument("--classifier", default=os.path.join(ck, "classifier", "model.pt"))
    ap.add_argument("--logs", default=os.path.join(HERE, "logs"))
    ap.add_argument("--only", choices=["unet", "dit", "classifier"], default=None)
    ap.add_argument("--made-by-train", default="bash models/gpu_train.sh 440",
                    help="training command recorded in the model cards")
    args = ap.parse_args()
    export_cmd = "/usr/bin/python3 models/export_onnx.py"
    train = {
        "unet": "python3 models/train_diffusion.py --arch unet --max-seconds 440 (batch 512, lr 3e-4; via " + args.made_by_train + ")",
        "dit": "python3 models/train_diffusion.py --arch dit --max-seconds 440 (batch 512, lr 3e-4; via " + args.made_by_train + ")",
        "classifier": "python3 models/train_classifier.py --epochs 40 (via " + args.made_by_train + ")",
    }
    if args.only in (None, "unet"):
        export_diffusion(args.unet, "unet", {"train": train["unet"], "export": export_cmd},
                         os.path.join(args.logs, "unet-loss.csv"))
    if args.only in (None, "dit"):
        export_diffusion(args.dit, "dit", {"train": train["dit"], "export": export_cmd},
                         os.path.join(args.logs, "dit-loss.csv"))
    if args.only in (None, "classifier"):
        export_classifier(args.classifier, {"train": train["classifier"], "export": export_cmd})


if __name__ == "__main__":
    main()
