#!/bin/bash
# Second GPU session (what was run): warm-start U-Net and DiT from the run-1 EMA weights
# (models/checkpoints/{unet,dit}/ema.pt) for another ~440 s each, concurrently on one GPU,
# then 50-step DDIM previews scored by the classifier on the GPU.
# Usage: bash models/gpu_train2.sh [TOTAL_SECONDS] [OUTDIR]
set -u
SECS=${1:-880}
DST=${2:-models/checkpoints/run2}
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
mkdir -p "$DST"
for a in unet dit; do
  $PY models/train_diffusion.py --arch $a --init models/checkpoints/$a/ema.pt --out "$DST/$a" \
      --max-seconds "$SECS" --data .data > "$DST/$a.log" 2>&1 &
done
wait
tail -n 2 "$DST"/*.log
for a in unet dit; do
  $PY models/sample_preview.py --arch $a --ckpt "$DST/$a/ema.pt" --device cuda --per-class 100 \
      --out "$DST/preview-$a.png" 2>&1 | tail -n 1
done
