"""The Greengrass lambda zip: built once per session from the shipped model, imported by a bare
Python 3.7, and run under MXNet.

The first build downloads pure-Python wheels from PyPI into build/lambda-cache
(gitignored) and builds the MXNet pair from build/eye/lite0-fp32.npz (made by
tests/eye.py if missing); later builds reuse both and take about a second.
"""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sortcore.cli.device import package_lambda
from sortcore.devtools.package import FORBIDDEN, HANDLER, build_lambda_zip, lambda_modules
from tests.eye import export_outputs
from tests.shared import PHOTOS

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "lambda-cache"
MODEL = ROOT / "model"


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
def weights():
    """The fp32 weights the lambda's MXNet pair is built from (build/eye/, exported if missing)."""
    return str(export_outputs() / "lite0-fp32.npz")


@pytest.fixture(scope="session")
def lambda_zip(tmp_path_factory, weights):
    out = tmp_path_factory.mktemp("dist") / "sock-lambda.zip"
    return build_lambda_zip(str(out), model_dir=str(MODEL), cache_dir=str(CACHE), weights=weights)


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
    # the network as MXNet files, built from the fp32 weights; the head as shipped; no .onnx
    assert sorted(f for f in files if f.startswith("model/")) == [
        "model/calibration.json", "model/gallery.npz", "model/labels.txt",
        "model/lite0-0000.params", "model/lite0-symbol.json"]
    for name in ("calibration.json", "gallery.npz", "labels.txt"):
        with zipfile.ZipFile(lambda_zip.path) as archive:
            assert archive.read("model/" + name) == (MODEL / name).read_bytes()
    tops = {f.split("/")[0] for f in files}
    assert tops - {"sortcore", "model", "sock_lambda.py", "sortcore-lambda.json"} == {"paho", "greengrasssdk", "cbor2", "typing_extensions.py"} | {
        t for t in tops if t.endswith(".dist-info")}  # only what the lambda imports
    assert not tops & set(FORBIDDEN)  # the camera has numpy, MXNet and OpenCV
    assert not any(f.endswith((".so", ".pyd", ".pyc")) or "__pycache__" in f for f in files)
    with zipfile.ZipFile(lambda_zip.path) as archive:
        manifest = json.loads(archive.read("sortcore-lambda.json"))
    assert manifest["handler"] == HANDLER == "sock_lambda.function_handler"
    assert manifest["vendored"]["paho_mqtt"] == "2.1.0"
    assert set(manifest["vendored"]) == {"paho_mqtt", "greengrasssdk", "cbor2", "typing_extensions"}
    sums = dict(line.split()[::-1] for line in (MODEL / "SHA256SUMS").read_text().splitlines())
    assert manifest["mxnet_built_from"] == {"lite0-fp32.npz": sums["lite0-fp32.npz"]}
    assert lambda_zip.size < 20 * 1000 * 1000  # 13.4 MB of fp32 parameters, 1 MB of the rest


def test_second_build_is_cached_and_identical(lambda_zip, weights, tmp_path):
    again = build_lambda_zip(str(tmp_path / "again.zip"), model_dir=str(MODEL), cache_dir=str(CACHE),
                             weights=weights)
    assert again.cached

    def digest(path):
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    assert digest(again.path) == digest(lambda_zip.path)  # reproducible: sorted, fixed dates


CHECK_37 = r"""
import json, os, sys, tempfile
sys.path.insert(0, sys.argv[1])
import sock_lambda
from sortcore.core.engine import EngineConfig
from sortcore.core.frames import Frame
from sortcore.adapters.greengrass import GreengrassPublisher
from sortcore.core.errors import GreengrassUnavailable
from sortcore.store.pipeline import Pipeline
from sortcore.store.database import Store
import sortcore.runtime.device, sortcore.adapters.mqtt, sortcore.store.outbox, sortcore.camera.sources
import paho.mqtt.client, pkgutil, importlib, sortcore
# every module of the zip imports from the zip, the standard library and what the camera has
missing = []
for module in pkgutil.walk_packages(sortcore.__path__, "sortcore."):
    try:
        importlib.import_module(module.name)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("numpy", "mxnet", "cv2", "awscam", "mo"):
            missing.append([module.name, exc.name])
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
    "from_zip": paho.mqtt.client.__file__.startswith(sys.argv[1]),
    "missing": missing,
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
    assert report["from_zip"] is True
    assert report["missing"] == []
    assert report["pairs"] == [{"image": "Github", "number_socks_seen": 1, "pair_seen": "Un-matched", "pairs": 0}]
    assert report["outbox"] == ["sockpairs"]
    assert "Greengrass" in report["off_device"]


RUN_MXNET = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
import sock_lambda
env = {"SORTCORE_SOURCE": "folder:" + sys.argv[2], "SORTCORE_DB": os.path.join(sys.argv[3], "s.db"),
       "SORTCORE_GREENGRASS": "0", "SORTCORE_HEARTBEAT": "0", "SORTCORE_FPS": "0"}
loop = sock_lambda.build_loop(sock_lambda.config_from_env(env), links=[])
labels = []
loop.on_frame = lambda image, label, probability: labels.append(label)
for _ in range(int(sys.argv[4])):
    loop.step()
loop.close()
import sortcore
print(json.dumps({"labels": labels, "sortcore": sortcore.__file__,
                  "mxnet": "mxnet" in sys.modules, "onnxruntime": "onnxruntime" in sys.modules}))
"""


@pytest.mark.model
def test_the_unzipped_lambda_classifies_photos_on_mxnet(lambda_zip, tmp_path):
    """The lambda's own wiring (env -> loop -> its model/ folder) on the zip's files alone, with
    the numpy, OpenCV and MXNet the camera has (this venv's): MXNet runs, ONNX Runtime never loads."""
    pytest.importorskip("mxnet")
    photos = sorted(PHOTOS.glob("*/*.jpg"))
    if not photos:
        pytest.skip("shared photos not found")
    unzipped = tmp_path / "lambda"
    with zipfile.ZipFile(lambda_zip.path) as archive:
        archive.extractall(str(unzipped))
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-E", "-c", RUN_MXNET, str(unzipped), str(PHOTOS),
                             str(tmp_path), str(len(photos))], env=env, cwd=str(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sortcore"].startswith(str(unzipped))
    assert report["mxnet"] and not report["onnxruntime"]
    assert report["labels"] == [p.parent.name for p in photos]


def test_package_lambda_command(weights, tmp_path):
    out = tmp_path / "dist" / "sock-lambda.zip"
    result = CliRunner().invoke(package_lambda, ["--out", str(out), "--weights", weights, "--cache", str(CACHE)])
    assert result.exit_code == 0, result.output
    assert "handler sock_lambda.function_handler" in result.output and out.is_file()
    assert "lite0-0000.params" in result.output
    result = CliRunner().invoke(package_lambda, ["--out", str(out), "--model", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = CliRunner().invoke(package_lambda, ["--out", str(out), "--weights", str(tmp_path / "no.npz"),
                                                 "--cache", str(CACHE)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "scripts/eye-env.sh" in result.output and "scripts/export_lite0.py" in result.output


@pytest.mark.model
def test_a_model_folder_with_its_mxnet_files_ships_them(weights, tmp_path):
    pytest.importorskip("mxnet")
    from sortcore.devtools.lite0_mxnet import write_model

    folder = tmp_path / "mx"
    write_model(str(MODEL), str(folder), weights)
    report = build_lambda_zip(str(tmp_path / "z.zip"), model_dir=str(folder), cache_dir=str(CACHE),
                              weights=str(tmp_path / "not-needed.npz"))
    assert report.model_files == ["calibration.json", "gallery.npz", "labels.txt", "lite0-0000.params",
                                  "lite0-symbol.json"]
    with zipfile.ZipFile(report.path) as archive:
        assert archive.read("model/lite0-0000.params") == (folder / "lite0-0000.params").read_bytes()


def test_package_lambda_is_a_sortcore_command():
    from sortcore.cli import main

    assert "package-lambda" in main.commands
    result = CliRunner().invoke(main, ["package-lambda", "--help"])
    assert result.exit_code == 0 and "Greengrass" in result.output
