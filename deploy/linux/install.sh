#!/usr/bin/env bash
# Install sortcore as a systemd service on Debian, Ubuntu or Raspberry Pi OS (64-bit).
#
#   sudo deploy/linux/install.sh                 # sortcore[onnx] from PyPI
#   sudo deploy/linux/install.sh ./dist/sortcore-0.1.0-py3-none-any.whl'[onnx]'
#
# Makes: the system user `sortcore` (group video), a virtualenv in /opt/sortcore/venv
# with the package, /etc/sortcore/sortcore.env (kept if it exists), the unit
# /etc/systemd/system/sortcore.service; then enables and starts it (NO_START=1: don't).
# Run again to upgrade: the venv is upgraded in place, the env file is left alone.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SPEC=${1:-sortcore[onnx]}
PREFIX=/opt/sortcore
VENV=$PREFIX/venv
ETC=/etc/sortcore
UNIT=/etc/systemd/system/sortcore.service
PYTHON=${PYTHON:-python3}

die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found: apt install python3"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || die "no venv module: apt install python3-venv"
command -v systemctl >/dev/null || die "systemd is needed (systemctl not found)"

if ! id -u sortcore >/dev/null 2>&1; then
    echo "== user sortcore" >&2
    useradd --system --user-group --home-dir /var/lib/sortcore --no-create-home \
        --shell /usr/sbin/nologin --comment "sortcore camera service" sortcore
fi
getent group video >/dev/null || groupadd --system video
usermod --append --groups video sortcore

echo "== $VENV: $SPEC" >&2
install -d -m 0755 "$PREFIX"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet --upgrade "$SPEC"
"$VENV/bin/sortcore" --help >/dev/null || die "$VENV/bin/sortcore does not run"

echo "== $ETC" >&2
install -d -m 0750 -o root -g sortcore "$ETC"
if [ -e "$ETC/sortcore.env" ]; then
    echo "   keeping the existing $ETC/sortcore.env" >&2
else
    install -m 0640 -o root -g sortcore "$HERE/sortcore.env" "$ETC/sortcore.env"
fi

echo "== $UNIT" >&2
install -m 0644 "$HERE/sortcore.service" "$UNIT"
systemctl daemon-reload
if [ "${NO_START:-0}" = 1 ]; then
    systemctl enable sortcore.service
    echo "enabled, not started (NO_START=1): systemctl start sortcore" >&2
else
    systemctl enable sortcore.service
    systemctl restart sortcore.service
    echo "started: systemctl status sortcore; journalctl -u sortcore -f" >&2
fi
