"""The DeepLens path's network: the Gluon Lite0 built from the fp32 weights, as MXNet files.

Parity with the fp32 ONNX export (the same network and weights) is checked on the shared photos
and generated frames through the runtime's own loader (``SymbolBlock.imports`` of the exported
``lite0-symbol.json`` / ``lite0-0000.params``). The build env and the export are made once if
build/eye/ does not hold them (tests/eye.py).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mxnet")
pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

from sortcore.classifier import onnx_net  # noqa: E402
from sortcore.classifier.model import SIZE, preprocess, read_image  # noqa: E402
from sortcore.classifier.backends import load_classifier  # noqa: E402
from sortcore.devtools import lite0_mxnet  # noqa: E402
from sortcore.core.errors import ModelError  # noqa: E402
from sortcore.training import augment, synth  # noqa: E402
from tests.eye import export_outputs  # noqa: E402
from tests.shared import PHOTOS, ROOT  # noqa: E402

MODEL = ROOT / "model"
SHARED_PHOTOS = sorted(PHOTOS.glob("*/*.jpg"))
#: The operators the DeepLens model optimizer meets: BatchNorm is folded, "same" padding is a Pad.
OPS = {"null", "Pad", "Convolution", "clip", "elemwise_add", "Pooling", "Flatten"}


@pytest.fixture(scope="module")
def eye():
    return export_outputs()


@pytest.fixture(scope="module")
def mxnet_model(eye, tmp_path_factory):
    out = tmp_path_factory.mktemp("mx") / "model"
    lite0_mxnet.write_model(str(MODEL), str(out), str(eye / lite0_mxnet.WEIGHTS))
    return out


def generated_frames():
    """Synthetic socks and blanks at 224 and 448 px, noise and flat 640x480 frames."""
    rng = np.random.RandomState(23)
    frames = [synth.unknown_sock(rng, size=SIZE * 2, view_size=SIZE) for _ in range(6)]
    frames += [augment.blank(rng, SIZE * 2) for _ in range(4)]
    frames += [rng.randint(0, 256, (480, 640, 3)).astype(np.uint8) for _ in range(2)]
    return frames + [np.zeros((480, 640, 3), np.uint8), np.full((SIZE, SIZE, 3), 255, np.uint8)]


def test_mxnet_files_match_the_fp32_onnx_export(eye, mxnet_model, tmp_path):
    (tmp_path / "lite0-fp32.onnx").write_bytes((eye / "lite0-fp32.onnx").read_bytes())
    onnx32 = onnx_net.OnnxNet(tmp_path)
    mx = load_classifier(mxnet_model, "mxnet")  # the runtime's loader: SymbolBlock.imports
    sets = {"generated": generated_frames()}
    if SHARED_PHOTOS:
        sets["photos"] = [read_image(p) for p in SHARED_PHOTOS]
    for name, frames in sets.items():
        batch = preprocess(frames, SIZE)
        want, got = onnx32.forward(batch), mx.forward(batch)
        assert got.shape == want.shape == (len(frames), 1280)
        diff = float(np.abs(got - want).max())
        print("%s: %d frames, max |MXNet - fp32 ONNX| = %.2e (embeddings up to %.1f)"
              % (name, len(frames), diff, float(np.abs(want).max())))
        assert diff <= 1e-4, name
        assert float(np.abs(want).max()) > 1.0  # a real embedding, not zeros


def test_the_graph_is_what_the_model_optimizer_reads(mxnet_model):
    graph = json.loads((mxnet_model / "lite0-symbol.json").read_text())
    ops = [node["op"] for node in graph["nodes"]]
    assert set(ops) <= OPS, set(ops) - OPS
    assert ops.count("Pad") == 5  # the stem and the 4 stride-2 depthwise convs: uneven "same"
    assert ops.count("Convolution") == 1 + 16 * 2 + 15 + 1  # stem, dw+project, expand, head
    assert graph["nodes"][graph["heads"][0][0]]["op"] == "Flatten"
    assert [n["name"] for n in graph["nodes"]][0] == "data"  # mo.optimize's input name
    assert lite0_mxnet.same_padding(224, 3, 2) == (0, 1, 112)  # as TensorFlow and the torch code
    assert lite0_mxnet.same_padding(56, 5, 2) == (1, 2, 28)
    assert lite0_mxnet.same_padding(14, 5, 1) == (2, 2, 14)


def test_mxnet_labels_the_photos_like_onnx(mxnet_model):
    if not SHARED_PHOTOS:
        pytest.skip("shared photos not found")
    frames = [read_image(p) for p in SHARED_PHOTOS]
    mx = [p.label for p in load_classifier(mxnet_model, "mxnet").classify_many(frames)]
    int8 = [p.label for p in load_classifier(MODEL, "onnx").classify_many(frames)]
    assert mx == int8 == [p.parent.name for p in SHARED_PHOTOS]


def test_the_export_is_byte_for_byte_reproducible(eye, mxnet_model, tmp_path):
    again = tmp_path / "again"
    lite0_mxnet.write_model(str(MODEL), str(again), str(eye / lite0_mxnet.WEIGHTS))
    for name in ("lite0-symbol.json", "lite0-0000.params"):
        assert (again / name).read_bytes() == (mxnet_model / name).read_bytes(), name


def test_weights_that_do_not_fit_are_refused(eye, tmp_path):
    weights = dict(np.load(str(eye / lite0_mxnet.WEIGHTS)))
    with pytest.raises(ModelError, match="does not use: extra"):
        lite0_mxnet.build(dict(weights, extra=np.zeros(3, np.float32)))
    del weights["_blocks.3._bn1.running_var"]
    with pytest.raises(ModelError, match="_blocks.3._bn1.running_var"):
        lite0_mxnet.build(weights)


def sortcore(*args):
    return subprocess.run([sys.executable, "-m", "sortcore"] + list(args), cwd=str(ROOT),
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


def test_export_mxnet_command_then_classify_on_mxnet(eye, tmp_path):
    out = tmp_path / "mx"
    done = sortcore("export-mxnet", "--out", str(out), "--weights", str(eye / lite0_mxnet.WEIGHTS))
    assert done.returncode == 0, done.stderr
    assert "lite0-0000.params" in done.stdout and "lite0-symbol.json" in done.stdout
    photo = SHARED_PHOTOS[0] if SHARED_PHOTOS else None
    if photo is not None:
        done = sortcore("classify", "--runtime", "mxnet", "--model", str(out), "--json", str(photo))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)[0]["image"] == photo.parent.name
    again = sortcore("export-mxnet", "--out", str(out))
    assert again.returncode == 1 and "is not empty" in again.stderr
    missing = sortcore("export-mxnet", "--out", str(tmp_path / "x"), "--weights", str(tmp_path / "no.npz"))
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "scripts/eye-env.sh" in missing.stderr and "scripts/export_lite0.py" in missing.stderr
    other = tmp_path / "other.npz"
    np.savez(str(other), w=np.zeros(3))
    wrong = sortcore("export-mxnet", "--out", str(tmp_path / "y"), "--weights", str(other))
    assert wrong.returncode == 1 and "is not the network" in wrong.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
