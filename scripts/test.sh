#!/usr/bin/env bash
# The project's whole check: Python 3.7 syntax check (vermin), the test
# suite on the current stack, and the compat suite on the oldest stack the
# DeepLens lambda vendors (Python 3.7 when available, sqlite-utils 3.36,
# paho-mqtt 2.1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH:/usr/sbin"

echo "== vermin: engine path and lambda must run on Python 3.7"
.venv/bin/vermin --no-tips --violations --eval-annotations -t=3.7- \
    sortcore \
    $(ls -d greengrass_lambda 2>/dev/null)

run_pytest() {
    # pytest exits 5 when it collected nothing: that is our failure, not a pass.
    set +e
    "$@"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then echo "test.sh: pytest collected no tests" >&2; exit 1; fi
    [ "$rc" -eq 0 ] || exit "$rc"
}

echo "== the build-only env and its export (torch from local disk; tests reuse build/eye)"
bash scripts/eye-env.sh
.venv-eye/bin/python scripts/export_lite0.py >/dev/null

echo "== pytest (current stack)"
# One worker per core (pytest-xdist); a file's tests stay on one worker (module fixtures).
run_pytest .venv/bin/python -m pytest -n auto --dist loadfile "$@"

echo "== pytest -m compat (oldest stack)"
bash scripts/compat-env.sh
# Only the files with compat tests: the others import numpy/mxnet, which this stack lacks.
run_pytest .venv-compat/bin/python -m pytest -m compat -p no:cacheprovider -q -n auto --dist loadfile \
    $(grep -l "pytest.mark.compat" tests/test_*.py)

echo "== pytest -m portable (ONNX Runtime, newest Python, no MXNet; the wheel in a fresh venv)"
bash scripts/onnx-env.sh
run_pytest .venv-onnx/bin/python -m pytest -m portable -p no:cacheprovider -q tests/test_onnx.py \
    tests/test_install.py
