#!/usr/bin/env bash
# Install sortcore as a systemd service on Debian, Ubuntu or Raspberry Pi OS (64-bit).
#
#   sudo deploy/linux/install.sh                 # this checkout, as sortcore[onnx]
#   sudo deploy/linux/install.sh ./dist/sortcore-0.1.0-py3-none-any.whl   # a wheel you built
#
# sortcore is not on PyPI: it installs from a checkout or a wheel (pip wheel --no-deps -w dist .),
# with the extra [onnx] (ONNX Runtime; name other extras as PATH'[onnx,...]'). Either way the
# package carries the model (model/, with its .onnx): nothing to export on the machine.
# Makes: the system user `sortcore` (group video), a virtualenv in /opt/sortcore/venv
# with the package, /etc/sortcore/sortcore.env (kept if it exists), the unit
# /etc/systemd/system/sortcore.service; then enables and starts it (NO_START=1: don't).
# Run again to upgrade: the venv is upgraded in place, the env file is left alone.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SOURCE=${1:-$(cd "$HERE/../.." && pwd)}
case "$SOURCE" in
    *\]) SPEC=$SOURCE ;;
    *) SPEC="${SOURCE}[onnx]" ;;
esac
PACKAGE=${SPEC%%\[*}
PREFIX=/opt/sortcore
VENV=$PREFIX/venv
ETC=/etc/sortcore
UNIT=/etc/systemd/system/sortcore.service
PYTHON=${PYTHON:-python3}

die() { echo "install.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
[ -f "$PACKAGE" ] && [ "${PACKAGE%.whl}" != "$PACKAGE" ] || [ -f "$PACKAGE/setup.py" ] \
    || die "$PACKAGE is neither a sortcore checkout nor a .whl (sortcore is not on PyPI)"
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
# The same version rebuilt (a newer checkout) counts as installed: replace sortcore itself.
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$PACKAGE"
"$VENV/bin/sortcore" --help >/dev/null || die "$VENV/bin/sortcore does not run"
"$VENV/bin/python" -c 'import os, sys, sortcore.classifier.folders as f
sys.exit(not os.path.isfile(os.path.join(f.shipped_model(), "labels.txt")))' \
    || die "the installed sortcore finds no model (sortcore/model/labels.txt)"

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
