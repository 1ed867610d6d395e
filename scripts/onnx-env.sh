#!/usr/bin/env bash
# Build .venv-onnx: the portable runtime's proof. The newest Python pyenv has
# (3.13, else 3.12), only sortcore[onnx] (ONNX Runtime, numpy, OpenCV; no
# MXNet) and pytest. scripts/test.sh then runs
#   .venv-onnx/bin/python -m pytest -m portable tests/test_onnx.py tests/test_install.py
# (test_install.py builds the wheel and installs it with [onnx] into a venv of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
py=""
root=$(pyenv root 2>/dev/null || echo ~/.pyenv)
for exe in "$root"/versions/3.13*/bin/python3 "$root"/versions/3.12*/bin/python3 python3.13 python3.12; do
    if "$exe" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 12))' >/dev/null 2>&1; then
        py=$exe; break
    fi
done
[ -n "$py" ] || { echo "onnx-env: needs Python 3.12 or 3.13 (pyenv install 3.13)" >&2; exit 1; }
if [ ! -x .venv-onnx/bin/python ] || ! cmp -s <("$py" --version) <(.venv-onnx/bin/python --version); then
    rm -rf .venv-onnx
    "$py" -m venv .venv-onnx
fi
stamp=.venv-onnx/.stamp-onnx
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
    echo "onnx-env: $("$py" --version) with sortcore[onnx], no MXNet" >&2
    .venv-onnx/bin/pip install -q -e '.[onnx]' 'pytest>=7'
    touch "$stamp"
fi
if .venv-onnx/bin/python -c 'import mxnet' >/dev/null 2>&1; then
    echo "onnx-env: MXNet is in .venv-onnx; the portable runtime must not need it" >&2; exit 1
fi
