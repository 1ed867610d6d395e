"""The shipped sock classifier: labels, arbitrary frames, bad files and the classify command."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

import click  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from sortcore.cli.model import commands  # noqa: E402
from sortcore.core.errors import ModelError  # noqa: E402
from sortcore.classifier.model import Prediction, preprocess, read_image  # noqa: E402
from sortcore.classifier.backends import load_classifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "model"
PHOTOS = ROOT.parent / "shared" / "sock-photos"
SHARED_PHOTOS = sorted(PHOTOS.glob("*/*.jpg"))
needs_photos = pytest.mark.skipif(not SHARED_PHOTOS, reason="shared photos not found at %s" % PHOTOS)


@pytest.fixture(scope="module")
def classifier():
    return load_classifier(MODEL)


def runner():
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()  # click >= 8.2 keeps stderr apart already


def cli():
    group = click.Group("sortcore")
    for command in commands:
        group.add_command(command)
    return group


def test_shipped_model_files_are_small_and_their_checksums_recorded():
    import hashlib
    files = [p for p in MODEL.iterdir() if p.name != "README.md"]
    assert sorted(p.name for p in files) == ["SHA256SUMS", "calibration.json", "gallery.npz",
                                              "labels.txt", "lite0-int8.onnx"]
    assert sum(p.stat().st_size for p in MODEL.iterdir()) <= 15 * 1000 * 1000
    sums = dict(line.split()[::-1] for line in (MODEL / "SHA256SUMS").read_text().splitlines())
    onnx = MODEL / "lite0-int8.onnx"
    assert hashlib.sha256(onnx.read_bytes()).hexdigest() == sums[onnx.name]


def test_shipped_head_is_calibrated_and_stated_in_the_card():
    calibration = json.loads((MODEL / "calibration.json").read_text())
    assert {"k", "tau", "margin", "floor", "rule", "lopo"} <= set(calibration)
    lopo = calibration["lopo"]
    assert lopo["nested"]["wrong"] <= 0.01 and lopo["calibrated"]["wrong"] <= 0.01
    assert lopo["argmax_right"] >= 0.92 and lopo["nested"]["right"] >= 0.80
    card = (MODEL / "README.md").read_text()
    assert "tau = %.3f" % calibration["tau"] in card and "floor = %.3f" % calibration["floor"] in card


@needs_photos
@pytest.mark.parametrize("path", SHARED_PHOTOS, ids=lambda p: "%s/%s" % (p.parent.name, p.name))
def test_shipped_model_labels_every_shared_photo_right_or_unknown(classifier, path):
    """Was "labelled right"; with the open-set head the promise is "never wrong"."""
    prediction = classifier.classify(read_image(path))
    assert prediction.label in (path.parent.name, "Unknown")
    assert 0 <= prediction.probability <= 100


def test_labels_are_the_designs(classifier):
    assert set(classifier.labels) == {p.parent.name for p in SHARED_PHOTOS} or not SHARED_PHOTOS
    assert "Unknown" not in classifier.labels
    assert len(classifier.labels) == len(set(classifier.labels))


def test_classify_any_size_bgr_array(classifier):
    rng = np.random.RandomState(1)
    for shape in [(1, 1, 3), (480, 640, 3), (37, 1001, 3), (224, 224, 4), (50, 60)]:
        prediction = classifier.classify(rng.randint(0, 256, shape).astype(np.uint8))
        assert isinstance(prediction, Prediction)
        assert prediction.label in classifier.labels + ["Unknown", "Blank"]
        assert 0 <= prediction.probability <= 100


def test_batch_and_single_agree(classifier):
    images = [np.full((120, 160, 3), v, np.uint8) for v in (30, 200)]
    assert classifier.classify_many(images) == [classifier.classify(i) for i in images]


@needs_photos
def test_min_probability_overrides_the_calibrated_threshold():
    strict = load_classifier(MODEL, min_probability=100)
    assert strict.head.tau == 1.0
    for path in SHARED_PHOTOS[:4]:
        assert strict.classify(read_image(path)).label in ("Unknown", "Blank")


def test_plain_wall_is_blank(classifier):
    assert classifier.classify(np.full((480, 640, 3), (180, 190, 200), np.uint8)).label == "Blank"


def test_wrong_arrays_raise_model_error(classifier):
    with pytest.raises(ModelError, match="uint8"):
        classifier.classify(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ModelError, match="HxWx3"):
        classifier.classify(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(ModelError, match="numpy image"):
        classifier.classify("photo.jpg")


def test_preprocess_shape_and_normalisation():
    batch = preprocess([np.zeros((10, 20, 3), np.uint8)] * 2, 32)
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == np.float32
    assert np.allclose(batch[0, 0], -127 / 128.0)  # R channel of black: (x - 127) / 128
    white = preprocess(np.full((5, 5, 3), (0, 0, 255), np.uint8), 8)  # pure red, BGR
    assert np.allclose(white[0, 0], 1.0) and np.allclose(white[0, 2], -127 / 128.0)


def test_resize_halves_big_frames_first_and_leaves_views_as_they_were():
    """Training and LOPO views (2x the input size) take one area resize, as when the LOPO
    scores were made; a camera frame is halved first and stays within a level on average."""
    import cv2
    from sortcore.classifier.model import resize
    rng = np.random.RandomState(3)
    view = rng.randint(0, 256, (448, 448, 3), np.uint8)
    assert np.array_equal(resize(view, 224), cv2.resize(view, (224, 224), interpolation=cv2.INTER_AREA))
    frame = cv2.GaussianBlur(rng.randint(0, 256, (960, 1280, 3), np.uint8), (0, 0), 2)
    direct = cv2.resize(frame, (224, 224), interpolation=cv2.INTER_AREA).astype(int)
    assert resize(frame, 224).shape == (224, 224, 3)
    assert np.abs(resize(frame, 224).astype(int) - direct).mean() < 1.0


def test_unreadable_images_raise_model_error_with_path(tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    with pytest.raises(ModelError, match="corrupt.jpg: not an image"):
        read_image(corrupt)
    with pytest.raises(ModelError, match="no such file"):
        read_image(tmp_path / "missing.jpg")


def test_missing_or_mismatched_model_files(tmp_path):
    with pytest.raises(ModelError, match="cannot read model directory .*nope"):
        load_classifier(tmp_path / "nope", "onnx")
    with pytest.raises(ModelError, match="no .onnx file"):
        load_classifier(tmp_path, "onnx")
    (tmp_path / "lite0-int8.onnx").write_bytes((MODEL / "lite0-int8.onnx").read_bytes())
    with pytest.raises(ModelError, match="labels.txt"):
        load_classifier(tmp_path)
    (tmp_path / "labels.txt").write_text("One\nTwo\n")
    with pytest.raises(ModelError, match="open-set head"):
        load_classifier(tmp_path)
    for name in ("gallery.npz", "calibration.json"):
        (tmp_path / name).write_bytes((MODEL / name).read_bytes())
    with pytest.raises(ModelError, match="not indices into labels.txt"):
        load_classifier(tmp_path)
    (tmp_path / "lite0-int8.onnx").write_bytes(b"garbage")
    (tmp_path / "labels.txt").write_bytes((MODEL / "labels.txt").read_bytes())
    with pytest.raises(ModelError, match="cannot load ONNX model"):
        load_classifier(tmp_path)
    with pytest.raises(ModelError, match="no \\*-symbol.json"):
        load_classifier(tmp_path, "mxnet")


@needs_photos
def test_classify_cli_reports_a_bad_file_and_runs_the_others(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    good = [str(p) for p in SHARED_PHOTOS[:2]]
    result = runner().invoke(
        cli(), ["classify", good[0], str(bad), good[1], "--json", "--model", str(MODEL)])
    assert result.exit_code == 1
    assert "notes.jpg" in result.stderr and "not an image" in result.stderr
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == good
    assert all(r["image"] in (Path(p).parent.name, "Unknown") for r, p in zip(rows, good))
    assert all(set(r) == {"path", "image", "probability"} for r in rows)


@needs_photos
def test_classify_cli_folder_plain_output():
    folder = SHARED_PHOTOS[0].parent
    result = CliRunner().invoke(cli(), ["classify", str(folder), "--model", str(MODEL)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == len(list(folder.glob("*.jpg")))
    assert all(line.split("\t")[1] in (folder.name, "Unknown") for line in lines)


@needs_photos
def test_classify_cli_walks_folders_recursively():
    result = CliRunner().invoke(cli(), ["classify", str(PHOTOS), "--json", "--model", str(MODEL)])
    assert result.exit_code == 0, result.output
    assert [r["path"] for r in json.loads(result.output)] == [str(p) for p in SHARED_PHOTOS]


def test_classify_cli_without_images_is_one_clear_error(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("no image")
    result = runner().invoke(cli(), ["classify", str(tmp_path), "--model", str(MODEL)])
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no images in %s" % tmp_path


def test_every_command_has_help():
    for command in commands:
        result = CliRunner().invoke(cli(), [command.name, "--help"])
        assert result.exit_code == 0
        assert command.help and command.help.strip()


def test_every_command_is_documented():
    docs = (ROOT / "docs" / "classifier.md").read_text()
    for command in commands:
        assert "sortcore %s " % command.name in docs
