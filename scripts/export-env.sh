#!/usr/bin/env bash
# Build .venv-export: the one env that turns the MXNet model into ONNX.
# MXNet 1.9.1's exporter (mxnet.onnx.export_model) needs onnx<1.15 and
# protobuf<4, and MXNet needs numpy<1.24 (no wheels past Python 3.11), so this
# env uses Python 3.11 and never holds onnxruntime (it needs a newer protobuf).
# Run the export with: .venv-export/bin/python -m sortcore export-onnx --model DIR
set -euo pipefail
cd "$(dirname "$0")/.."
py=""
for candidate in "$(pyenv root 2>/dev/null || echo ~/.pyenv)"/versions/3.11*/bin/python3.11 python3.11 python3; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] > (3, 11))' >/dev/null 2>&1; then
        py=$candidate; break
    fi
done
[ -n "$py" ] || { echo "export-env: needs Python <= 3.11 (MXNet 1.9.1)" >&2; exit 1; }
if [ ! -x .venv-export/bin/python ]; then
    "$py" -m venv .venv-export
fi
stamp=.venv-export/.stamp-export
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
    echo "export-env: $("$py" --version) with mxnet 1.9.1, onnx<1.15, protobuf<4" >&2
    .venv-export/bin/pip install -q -e '.[export]'
    touch "$stamp"
fi
