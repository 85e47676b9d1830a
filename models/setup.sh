#!/bin/sh
# Installs what the Python recipe needs (Debian/Ubuntu): PyTorch, onnx, numpy and the
# Fashion-MNIST idx files (/usr/share/datasets/fashion-mnist). Idempotent.
set -e
PKGS="python3-torch python3-onnx dataset-fashion-mnist python3-numpy"
MISSING=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || MISSING="$MISSING $p"
done
if [ -n "$MISSING" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends $MISSING
fi
/usr/bin/python3 -c "import torch, onnx, numpy; print('torch', torch.__version__, 'onnx', onnx.__version__)"
ls /usr/share/datasets/fashion-mnist/
