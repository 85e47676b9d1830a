#!/bin/bash
# Train U-Net, DiT and classifier concurrently on one GPU (what was run on the H100).
# Usage: bash models/gpu_train.sh [SECONDS] [OUTDIR]   (dataset: /usr/share/datasets/fashion-mnist or ./.data)
set -u
SECS=${1:-430}
DST=${2:-models/checkpoints}
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
mkdir -p "$DST"
$PY models/train_diffusion.py --arch unet --out "$DST/unet" --max-seconds "$SECS" --data .data > "$DST/unet.log" 2>&1 &
$PY models/train_diffusion.py --arch dit --out "$DST/dit" --max-seconds "$SECS" --data .data > "$DST/dit.log" 2>&1 &
$PY models/train_classifier.py --out "$DST/classifier" --epochs 40 --max-seconds "$SECS" --data .data > "$DST/classifier.log" 2>&1 &
wait
tail -n 3 "$DST"/*.log
