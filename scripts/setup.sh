#!/usr/bin/env bash
# Install everything sortcore needs on a fresh Debian machine (run as root):
# mosquitto from apt, a virtualenv in .venv with sortcore and all extras.
# Idempotent: a second run only does what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ] \
   || ! command -v mosquitto_sub >/dev/null 2>&1; then
    echo "setup: installing mosquitto and mosquitto-clients" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq mosquitto mosquitto-clients shellcheck sqlite3 >/dev/null
    # The Debian package starts a broker on :1883; sortcore starts its own.
    (service mosquitto stop || true) >/dev/null 2>&1
fi

# The status page's browser tests drive Debian's chromium (Playwright never downloads one).
if [ ! -x /usr/bin/chromium ]; then
    echo "setup: installing chromium for the status page's browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.stamp-setup
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ setup.py -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing sortcore into .venv" >&2
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[all]'
    touch "$stamp"
fi
