"""The Greengrass lambda zip: built once per session, imported by a bare Python 3.7.

The first build downloads pure-Python wheels from PyPI into build/lambda-cache
(gitignored); later builds reuse them and take well under a second.
"""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sortcore.cli.device import package_lambda
from sortcore.devtools.package import FORBIDDEN, HANDLER, build_lambda_zip, lambda_modules

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "lambda-cache"


def python37():
    """A Python 3.7 interpreter: pyenv's, or one on PATH (not a pyenv shim, which may refuse)."""
    roots = [os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv")]
    try:
        roots.append(subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE, universal_newlines=True,
                                    timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    for root in filter(None, roots):
        matches = sorted(glob.glob(os.path.join(root, "versions", "3.7*", "bin", "python3.7")))
        if matches:
            return matches[-1]
    found = shutil.which("python3.7")
    return found if found and "shims" not in found else None


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """The shipped model/, or a stand-in with the same file names when it is not there yet."""
    shipped = ROOT / "model"
    if list(shipped.glob("*-symbol.json")):
        return str(shipped)
    stand_in = tmp_path_factory.mktemp("model")
    (stand_in / "sockclf-symbol.json").write_text('{"nodes": []}')
    (stand_in / "sockclf-0000.params").write_bytes(b"\0" * 16)
    (stand_in / "labels.txt").write_text("Blank\nGithub\n")
    return str(stand_in)


@pytest.fixture(scope="session")
def lambda_zip(tmp_path_factory, model_dir):
    out = tmp_path_factory.mktemp("dist") / "sock-lambda.zip"
    report = build_lambda_zip(str(out), model_dir=model_dir, cache_dir=str(CACHE))
    return report


def names(path):
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_zip_holds_handler_engine_model_and_pure_python_deps(lambda_zip):
    files = set(names(lambda_zip.path))
    assert "sock_lambda.py" in files and "sortcore-lambda.json" in files
    assert {"sortcore/" + m for m in lambda_modules(os.path.join(ROOT, "sortcore"))} <= files
    # developer tooling stays out: the CLI, the demo and packager, training
    assert not any(f.startswith(("sortcore/cli/", "sortcore/devtools/", "sortcore/training/")) for f in files)
    assert {"model/" + m for m in lambda_zip.model_files} <= files
    tops = {f.split("/")[0] for f in files}
    assert {"paho", "sqlite_utils", "greengrasssdk", "click", "pluggy", "importlib_metadata"} <= tops
    assert not tops & set(FORBIDDEN)  # the camera has numpy, MXNet and OpenCV
    assert not any(f.endswith((".so", ".pyd", ".pyc")) or "__pycache__" in f for f in files)
    with zipfile.ZipFile(lambda_zip.path) as archive:
        manifest = json.loads(archive.read("sortcore-lambda.json"))
    assert manifest["handler"] == HANDLER == "sock_lambda.function_handler"
    assert manifest["vendored"]["paho_mqtt"] == "2.1.0"
    assert manifest["vendored"]["sqlite_utils"] == "3.36"
    assert manifest["vendored"]["click"].startswith("8.1.")
    assert lambda_zip.size < 5 * 1024 * 1024


def test_second_build_is_cached_and_identical(lambda_zip, model_dir, tmp_path):
    again = build_lambda_zip(str(tmp_path / "again.zip"), model_dir=model_dir, cache_dir=str(CACHE))
    assert again.cached

    def digest(path):
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    assert digest(again.path) == digest(lambda_zip.path)  # reproducible: sorted, fixed dates


CHECK_37 = r"""
import json, os, sys, tempfile
sys.path.insert(0, sys.argv[1])
import sock_lambda
from sortcore.engine import EngineConfig
from sortcore.frames import Frame
from sortcore.adapters.greengrass import GreengrassPublisher
from sortcore.errors import GreengrassUnavailable
from sortcore.pipeline import Pipeline
from sortcore.store import Store
import sortcore.runtime.device, sortcore.adapters.mqtt, sortcore.outbox, sortcore.camera.sources
import sqlite_utils, paho.mqtt.client
device_modules = sorted(m for m in sys.modules if m.split(".")[0] in ("awscam", "mo", "greengrasssdk"))
store = Store(os.path.join(tempfile.mkdtemp(), "socks.db"))
pipeline = Pipeline(store, EngineConfig(), source="camera:check")
for i in range(4):
    pipeline.feed(Frame("Github", 95.0, 100.0 + 0.2 * i, "cam", i))
pipeline.commit()
try:
    GreengrassPublisher().publish("sockpairs", "{}")
    off_device = "published?!"
except GreengrassUnavailable as exc:
    off_device = str(exc)
print(json.dumps({
    "version": list(sys.version_info[:2]),
    "thread": sock_lambda._thread is not None,
    "autostart": sock_lambda.autostart_enabled(),
    "device_modules": device_modules,
    "from_zip": [sqlite_utils.__file__.startswith(sys.argv[1]), paho.mqtt.client.__file__.startswith(sys.argv[1])],
    "pairs": store.pairs(pipeline.session),
    "outbox": [row["topic"] for row in store.pending()],
    "off_device": off_device,
}))
"""


def test_handler_imports_from_the_zip_alone_on_python37(lambda_zip, tmp_path):
    python = python37()
    if python is None:
        pytest.skip("no Python 3.7 interpreter (pyenv install 3.7.16)")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}  # no AWS_IOT_THING_NAME: no autostart
    # -S: no site-packages, -E: no PYTHON* variables; only the zip and the standard library
    result = subprocess.run([python, "-S", "-E", "-c", CHECK_37, lambda_zip.path], env=env, cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["version"] == [3, 7]
    assert report["thread"] is False and report["autostart"] is False
    assert report["device_modules"] == []  # neither awscam nor greengrasssdk touched on import
    assert report["from_zip"] == [True, True]
    assert report["pairs"] == [{"image": "Github", "number_socks_seen": 1, "pair_seen": "Un-matched", "pairs": 0}]
    assert report["outbox"] == ["sockpairs"]
    assert "Greengrass" in report["off_device"]


def test_package_lambda_command(model_dir, tmp_path):
    out = tmp_path / "dist" / "sock-lambda.zip"
    result = CliRunner().invoke(package_lambda, ["--out", str(out), "--model", model_dir, "--cache", str(CACHE)])
    assert result.exit_code == 0, result.output
    assert "handler sock_lambda.function_handler" in result.output and out.is_file()
    result = CliRunner().invoke(package_lambda, ["--out", str(out), "--model", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_package_lambda_is_a_sortcore_command():
    from sortcore.cli import main

    assert "package-lambda" in main.commands
    result = CliRunner().invoke(main, ["package-lambda", "--help"])
    assert result.exit_code == 0 and "Greengrass" in result.output
