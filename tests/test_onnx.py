"""ONNX Runtime as the classifier's runtime: export, parity with MXNet, the runtime choice.

The shipped model/ (which holds its committed .onnx) is copied into tmp_path and
exported there again through the export env (.venv-export, scripts/export-env.sh;
built here if missing), so a retrained model/ is what gets tested. Tests marked
``portable`` need no MXNet in this Python: scripts/onnx-env.sh runs them on the
newest Python with only ``sortcore[onnx]`` installed.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed (pip install 'sortcore[onnx]')")
pytest.importorskip("cv2", reason="OpenCV is not installed")

from sortcore.classifier import onnx_net  # noqa: E402
from sortcore.classifier.model import preprocess  # noqa: E402
from sortcore.classifier.runtime import choose_net  # noqa: E402
from sortcore.errors import ModelError  # noqa: E402
from sortcore.training import export_onnx as exporter  # noqa: E402
from tests import onnx_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))


@pytest.fixture(scope="module")
def export_env():
    """The export env's python; built with scripts/export-env.sh if missing, else skip saying why."""
    if exporter.exporter_missing() is None:
        return sys.executable
    if not os.path.isfile(exporter.EXPORT_PYTHON):
        done = subprocess.run(["bash", str(ROOT / "scripts" / "export-env.sh")], cwd=str(ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=900)
        if done.returncode != 0 or not os.path.isfile(exporter.EXPORT_PYTHON):
            lines = done.stdout.strip().splitlines() or ["exit %d" % done.returncode]
            pytest.skip("the export env (scripts/export-env.sh) cannot be built: %s" % lines[-1])
    return exporter.EXPORT_PYTHON


@pytest.fixture(scope="module")
def exported(tmp_path_factory, export_env):
    """A copy of the shipped model/ with its sockclf.onnx exported beside the MXNet files."""
    folder = tmp_path_factory.mktemp("model")
    for name in os.listdir(str(ROOT / "model")):
        shutil.copy(str(ROOT / "model" / name), str(folder / name))
    path = exporter.export_onnx(str(folder))
    assert path == str(folder / "sockclf.onnx") and os.path.getsize(path) > 0
    return folder


@pytest.fixture(scope="module")
def reference(exported, export_env, tmp_path_factory):
    """The preprocessed frames and MXNet's raw output for them, computed in the export env."""
    out = tmp_path_factory.mktemp("ref") / "ref.npz"
    subprocess.run([export_env, str(ROOT / "tests" / "onnx_reference.py"), str(exported), str(out)],
                   env=_env(), check=True, timeout=300)
    return np.load(str(out))


@pytest.mark.portable
def test_onnx_matches_mxnet_on_shared_photos_and_random_frames(exported, reference):
    assert len(reference["batch"]) >= 12 + len(onnx_reference.RANDOM_SHAPES), "shared photos missing"
    net = onnx_net.OnnxNet(str(exported))
    batch = preprocess(onnx_reference.frames(), net.size)
    # The same preprocessing here (maybe another OpenCV) as in the export env.
    assert np.abs(batch - reference["batch"]).max() <= 1e-6
    out = net.forward(batch)
    assert out.shape == reference["out"].shape and out.dtype == np.float32
    assert np.abs(out - reference["out"]).max() <= TOLERANCE
    assert (out.argmax(axis=1) == reference["out"].argmax(axis=1)).all()


@pytest.mark.portable
def test_the_shipped_model_has_a_current_onnx():
    """model/ ships its .onnx (a retrain without a re-export would make it stale: refused)."""
    from sortcore.folders import shipped_model
    assert onnx_net.available(shipped_model())


@pytest.mark.portable
def test_onnx_path_never_imports_mxnet(exported):
    code = ("import sys; from sortcore.classifier.runtime import choose_net; "
            "net = choose_net(sys.argv[1], 'auto', mxnet_net=None); "
            "print(type(net).__name__, 'mxnet' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(exported)], env=_env(),
                          stdout=subprocess.PIPE, universal_newlines=True, check=True, timeout=60)
    assert done.stdout.split() == ["OnnxNet", "False"]


def test_batches_of_any_size_match_single_frames(exported):
    net = onnx_net.OnnxNet(str(exported))
    batch = preprocess(onnx_reference.frames()[:5], net.size)
    one_by_one = np.concatenate([net.forward(batch[i:i + 1]) for i in range(len(batch))])
    assert np.abs(net.forward(batch) - one_by_one).max() <= TOLERANCE
    with pytest.raises(ModelError, match="expects"):
        net.forward(np.zeros((1, 3, net.size + 1, net.size), dtype=np.float32))


def test_a_folder_with_only_the_onnx_and_labels_runs(exported, tmp_path):
    for name in ("sockclf.onnx", "labels.txt"):
        shutil.copy(str(exported / name), str(tmp_path / name))
    net = choose_net(str(tmp_path), "auto", mxnet_net=None)
    assert isinstance(net, onnx_net.OnnxNet) and net.size == 96
    assert net.forward(np.zeros((2, 3, 96, 96), dtype=np.float32)).shape[0] == 2


def test_auto_takes_onnx_when_there_else_mxnet(exported, tmp_path):
    built = []

    def mxnet_net(model_dir):
        built.append(model_dir)
        return "the mxnet net"

    assert isinstance(choose_net(str(exported), "auto", mxnet_net), onnx_net.OnnxNet)
    assert choose_net(str(exported), "mxnet", mxnet_net) == "the mxnet net"
    no_onnx = tmp_path / "no-onnx"
    no_onnx.mkdir()
    for name in ("sockclf-symbol.json", "sockclf-0000.params", "labels.txt"):
        shutil.copy(str(exported / name), str(no_onnx / name))
    assert choose_net(str(no_onnx), "auto", mxnet_net) == "the mxnet net"
    assert built == [str(exported), str(no_onnx)]
    with pytest.raises(ModelError, match="export-onnx"):
        choose_net(str(tmp_path), "onnx", mxnet_net)
    with pytest.raises(ModelError, match="runtime must be one of"):
        choose_net(str(exported), "tensorflow", mxnet_net)


def test_a_stale_onnx_is_refused_and_auto_falls_back(exported, tmp_path):
    for name in os.listdir(str(exported)):
        shutil.copy(str(exported / name), str(tmp_path / name))
    with open(str(tmp_path / "sockclf-0000.params"), "ab") as fh:
        fh.write(b"retrained")
    with pytest.raises(ModelError, match="stale"):
        onnx_net.OnnxNet(str(tmp_path))
    assert not onnx_net.available(str(tmp_path))
    assert choose_net(str(tmp_path), "auto", lambda d: "the mxnet net") == "the mxnet net"


def test_export_onnx_command(exported, tmp_path):
    for name in ("sockclf-symbol.json", "sockclf-0000.params", "labels.txt"):
        shutil.copy(str(exported / name), str(tmp_path / name))
    done = subprocess.run([sys.executable, "-m", "sortcore", "export-onnx", "--model", str(tmp_path)],
                          env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wrote %s" % (tmp_path / "sockclf.onnx")
    assert onnx_net.available(str(tmp_path))
    missing = subprocess.run([sys.executable, "-m", "sortcore", "export-onnx", "--model",
                              str(tmp_path / "nope")], env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == ["Error: model directory %s does not exist"
                                                   % (tmp_path / "nope")]


def test_without_an_exporter_the_error_says_which_env(tmp_path, monkeypatch):
    for name in ("sockclf-symbol.json", "sockclf-0000.params", "labels.txt"):
        shutil.copy(str(ROOT / "model" / name), str(tmp_path / name))
    monkeypatch.setattr(exporter, "exporter_missing", lambda: "No module named 'onnx'")
    monkeypatch.setattr(exporter, "EXPORT_PYTHON", str(tmp_path / "no-venv" / "python"))
    with pytest.raises(ModelError, match="scripts/export-env.sh"):
        exporter.export_onnx(str(tmp_path))
    assert not (tmp_path / "sockclf.onnx").exists()
