#!/usr/bin/env bash
# Build .venv-compat: the oldest stack sortcore supports, as vendored into the
# DeepLens lambda zip. Uses a Python 3.7 interpreter when the machine has one
# (pyenv or PATH); otherwise the default python3 with the old library pins.
set -euo pipefail
cd "$(dirname "$0")/.."
py37=""
for candidate in "$(pyenv root 2>/dev/null)"/versions/3.7*/bin/python3.7 python3.7; do
    if "$candidate" --version >/dev/null 2>&1; then py37=$candidate; break; fi  # a pyenv shim may not run
done
PY=${py37:-python3}
if [ ! -x .venv-compat/bin/python ]; then
    "$PY" -m venv .venv-compat
fi
stamp=.venv-compat/.stamp-compat
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ setup.py -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
    echo "compat: $("$PY" --version) with sqlite-utils 3.36, paho-mqtt 2.1.0" >&2
    .venv-compat/bin/pip install -q 'sqlite-utils==3.36' 'paho-mqtt==2.1.0' \
        'click<8.2' tqdm 'pytest<8' 'pytest-xdist<3.4' 'hypothesis<7'
    .venv-compat/bin/pip install -q --no-deps -e .
    touch "$stamp"
fi
