"""The classifier on ONNX Runtime: the shipped lite0-int8.onnx, no MXNet, and its export.

The ``portable`` tests also run in .venv-onnx (scripts/onnx-env.sh: the newest Python, only
sortcore[onnx]). The export check rebuilds the model in .venv-eye (scripts/eye-env.sh: torch
2.13.0's CPU wheel from local disk) and compares checksums with model/SHA256SUMS.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from sortcore.classifier import onnx_net  # noqa: E402
from sortcore.classifier.model import SIZE, preprocess, read_image  # noqa: E402
from sortcore.classifier.backends import choose_net, load_classifier  # noqa: E402
from sortcore.core.errors import ModelError  # noqa: E402
from tests.eye import eye_python  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "model"
PHOTOS = sorted((ROOT.parent / "shared" / "sock-photos").glob("*/*.jpg"))


@pytest.mark.portable
def test_onnx_path_never_imports_mxnet():
    code = ("import sys; from sortcore.classifier.backends import load_classifier; "
            "import numpy as np; c = load_classifier(%r, 'auto'); "
            "print(c.classify(np.zeros((480, 640, 3), np.uint8)).label, 'mxnet' in sys.modules)"
            % str(MODEL))
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         stdout=subprocess.PIPE, universal_newlines=True, timeout=120, check=True)
    assert out.stdout.split() == ["Blank", "False"]


@pytest.mark.portable
def test_shared_photos_are_right_or_unknown_and_batches_match_single_frames():
    if not PHOTOS:
        pytest.skip("shared photos not found")
    net = onnx_net.OnnxNet(MODEL)
    assert net.size == SIZE or net.size is None
    batch = preprocess([read_image(p) for p in PHOTOS], SIZE)
    together = net.forward(batch)
    assert together.shape == (len(PHOTOS), 1280)
    single = np.concatenate([net.forward(batch[i:i + 1]) for i in range(len(batch))])
    assert np.abs(together - single).max() < 1e-4
    labels = [p.label for p in load_classifier(MODEL, "onnx").classify_many(
        [read_image(p) for p in PHOTOS])]
    assert all(label in (p.parent.name, "Unknown") for label, p in zip(labels, PHOTOS)), labels


@pytest.mark.portable
def test_the_shipped_model_is_found_and_runs_on_onnx():
    """The one shipped-model path (a wheel's sortcore/model, else the checkout's model/)."""
    from sortcore.classifier.folders import shipped_model
    assert onnx_net.available(shipped_model())


@pytest.mark.portable
def test_auto_takes_onnx_and_mxnet_needs_its_files(tmp_path):
    assert choose_net(MODEL, "auto") is not None and choose_net(MODEL, "onnx") is not None
    with pytest.raises(ModelError, match="runtime must be one of"):
        choose_net(MODEL, "tensorflow")
    for name in ("labels.txt", "gallery.npz", "calibration.json"):
        (tmp_path / name).write_bytes((MODEL / name).read_bytes())
    assert not onnx_net.available(tmp_path)
    with pytest.raises(ModelError, match="no .onnx file"):
        load_classifier(tmp_path, "onnx")
    with pytest.raises(ModelError, match="no MXNet model|MXNet is not installed"):
        load_classifier(tmp_path, "auto")  # falls back to MXNet, which has no files here


@pytest.mark.portable
def test_wrong_input_is_a_model_error():
    net = onnx_net.OnnxNet(MODEL)
    with pytest.raises(ModelError, match="expects"):
        net.forward(np.zeros((1, 3, 96, 96), np.float32))


@pytest.mark.slow
def test_the_export_reproduces_the_shipped_checksums():
    """scripts/export_lite0.py --check: fp32, int8 and the weights' .npz, byte for byte."""
    done = subprocess.run([eye_python(), str(ROOT / "scripts" / "export_lite0.py"), "--check"],
                          cwd=str(ROOT), env=dict(os.environ, OMP_NUM_THREADS="1"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert done.stdout.split().count("ok") == 3
