"""The build env and its outputs for tests: .venv-eye (scripts/eye-env.sh) and build/eye/.

Building .venv-eye takes about 40 s (torch 2.13.0's CPU wheel from local disk) and the export
about 15 s on this machine; both happen once, then later runs reuse them.
"""

import contextlib
import fcntl
import hashlib
import os
import subprocess

import pytest

from tests.shared import ROOT

BUILD = ROOT / "build" / "eye"
SUMS = ROOT / "model" / "SHA256SUMS"


@contextlib.contextmanager
def _one_builder():
    """One test process at a time builds .venv-eye or build/eye/ (pytest-xdist workers)."""
    lock = ROOT / "build" / ".eye.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(str(lock), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def eye_python():
    """.venv-eye's python; built with scripts/eye-env.sh if missing, else skip saying why."""
    with _one_builder():
        return _eye_python()


def _eye_python():
    python = ROOT / ".venv-eye" / "bin" / "python"
    if not (ROOT / ".venv-eye" / ".stamp-eye").exists():  # missing, or left half-built
        done = subprocess.run(["bash", str(ROOT / "scripts" / "eye-env.sh")], cwd=str(ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=900)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            pytest.skip("the build env (scripts/eye-env.sh) cannot be built: %s" % lines[-1:])
    return str(python)


def _recorded(name):
    return dict(line.split()[::-1] for line in SUMS.read_text().splitlines() if line.strip())[name]


def _current(path):
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == _recorded(path.name)


def export_outputs():
    """build/eye/ with the fp32 ONNX graph and weights model/SHA256SUMS records: reused when
    they match, else exported by scripts/export_lite0.py in .venv-eye (built if missing)."""
    wanted = [BUILD / "lite0-fp32.onnx", BUILD / "lite0-fp32.npz"]
    python = eye_python()
    with _one_builder():
        if not all(_current(path) for path in wanted):
            _export(python)
        assert all(_current(path) for path in wanted), "the export does not match model/SHA256SUMS"
    return BUILD


def _export(python):
    done = subprocess.run([python, str(ROOT / "scripts" / "export_lite0.py")],
                          cwd=str(ROOT), env=dict(os.environ, OMP_NUM_THREADS="1"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
