"""Reference feature statistics of the Fashion-MNIST TEST set under the exported classifier.

  /usr/bin/python3 models/compute_stats.py

Runs models/fashion-classifier.onnx (onnxruntime: python if installed, else node) on
all 10,000 test images, and writes models/fashion-test-stats.json: mean vector and
covariance (float64, D x D, row-major flat, unbiased N-1) of the `features` output for
all 10,000 images, for images 0..4999 and 5000..9999 (the halves give the FD-classifier "floor"),
plus the classifier's test accuracy. Also cross-checks against PyTorch features.
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
from export_onnx import load, run_ort  # noqa: E402


def stats(f):
    f = f.astype(np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def sqrtm_psd(a):
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(m1, c1, m2, c2):
    s1 = sqrtm_psd(c1)
    covmean = sqrtm_psd(s1 @ c2 @ s1)  # tr sqrt(C1 C2) = tr sqrt(C1^1/2 C2 C1^1/2)
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean))


def main():
    onnx_path = os.path.join(HERE, "fashion-classifier.onnx")
    card = json.load(open(os.path.join(HERE, "fashion-classifier.json")))
    x, y = data.load("test")
    outs, how = run_ort(onnx_path, {"images": x.numpy()}, ["logits", "features"])
    if outs is None:
        raise SystemExit("onnxruntime (python or node) is needed")
    d = card["feature_dim"]
    logits = np.asarray(outs[0]).reshape(-1, 10)
    feats = np.asarray(outs[1]).reshape(-1, d)
    acc = float((logits.argmax(1) == y.numpy()).mean())
    model, _ = load(os.path.join(HERE, "checkpoints", "classifier", "model.pt"))
    with torch.no_grad():
        tf = torch.cat([model(x[i:i + 1000])[1] for i in range(0, 10000, 1000)]).numpy()
    diff = float(np.abs(tf - feats).max())
    print(f"{how}: accuracy {acc:.4f}, max |torch - onnx| feature diff {diff:.2e}")

    def entry(f):
        m, c = stats(f)
        return {"count": int(f.shape[0]), "mean": [float(f"{v:.9g}") for v in m],
                "covariance": [float(f"{v:.9g}") for v in c.reshape(-1)]}, m, c

    all_e, _, _ = entry(feats)
    a_e, ma, ca = entry(feats[:5000])
    b_e, mb, cb = entry(feats[5000:])
    floor = frechet_distance(ma, ca, mb, cb)
    print(f"FD-classifier(first 5000, second 5000) = {floor:.4f}")
    out = {
        "description": "Fashion-MNIST test-set statistics of the `features` output of fashion-classifier.onnx "
                       "(inputs scaled to [-1,1]); cov is float64 row-major D x D, unbiased (N-1)",
        "classifier": "fashion-classifier.onnx",
        "runtime": how,
        "feature_dim": d,
        "test_accuracy": acc,
        # The full test set at top level (the layout src/metrics/reference-stats.ts reads), the
        # two halves for the FD-classifier floor.
        "dim": d,
        **all_e,
        "halves": {"first": a_e, "second": b_e},
        "fd_classifier_first_vs_second_half": floor,
        "made_by": "/usr/bin/python3 models/compute_stats.py",
    }
    path = os.path.join(HERE, "fashion-test-stats.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
