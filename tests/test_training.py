"""``sortcore train``: a folder of designs taught and calibrated into a new model folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from sortcore.core.errors import ModelError  # noqa: E402
from sortcore.training import augment, teach, views  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "sock-photos"


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="shared photos not found")
def test_train_cli_teaches_a_folder_with_its_own_blank_photos(tmp_path):
    data = tmp_path / "data"
    for design in ("Github", "Google", "Mongo"):
        (data / design).mkdir(parents=True)
        for photo in (PHOTOS / design).glob("*.jpg"):
            (data / design / photo.name).write_bytes(photo.read_bytes())
    (data / "Blank").mkdir()
    cv2.imwrite(str(data / "Blank" / "wall.png"), np.full((240, 320, 3), (180, 190, 200), np.uint8))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "sortcore", "train", "--data", str(data), "--out",
                           str(tmp_path / "m")], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "leave-one-photo-out nested right" in done.stdout
    out = tmp_path / "m"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "SHA256SUMS", "calibration.json",
                                                     "gallery.npz", "labels.txt", "lite0-int8.onnx"]
    assert (out / "labels.txt").read_text().split() == ["Blank", "Github", "Google", "Mongo"]
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["lopo"]["folds"] == 6 and calibration["lopo"]["nested"]["wrong"] <= 0.01
    assert "tau = %.3f" % calibration["tau"] in (out / "README.md").read_text()
    done = subprocess.run([sys.executable, "-m", "sortcore", "classify", "--json", "--model",
                           str(out), str(data / "Blank"), str(data / "Mongo")], env=env,
                          stdout=subprocess.PIPE, universal_newlines=True, timeout=120)
    labels = [row["image"] for row in json.loads(done.stdout)]
    assert labels == ["Blank", "Mongo", "Mongo"], labels


def test_bad_data(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        teach.load_photos(tmp_path / "nope")
    with pytest.raises(ModelError, match="no photos"):
        teach.load_photos(tmp_path)
    (tmp_path / "Blank").mkdir()
    cv2.imwrite(str(tmp_path / "Blank" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ModelError, match="no photos in design folders"):
        teach.load_photos(tmp_path)
    with pytest.raises(ModelError, match="never changed"):
        teach.Staged(tmp_path, tmp_path)


def test_views_start_with_the_eight_turns_and_are_seeded():
    image = np.random.RandomState(0).randint(0, 256, (60, 80, 3)).astype(np.uint8)
    a, b = views.enrol_views([image], per_image=12), views.enrol_views([image], per_image=12)
    assert len(a) == 12 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.array_equal(a[0], image) and np.array_equal(a[2], np.rot90(image))
    assert np.array_equal(a[1], image[:, ::-1]) and a[8].shape == (448, 448, 3)


def test_augmentation_and_blanks_are_seeded_uint8_images():
    image = np.random.RandomState(0).randint(0, 256, (224, 224, 3)).astype(np.uint8)
    a = augment.augment(image, np.random.RandomState(3), 64)
    b = augment.augment(image, np.random.RandomState(3), 64)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    blanks = [augment.blank(np.random.RandomState(s), 48) for s in range(20)]
    assert all(x.shape == (48, 48, 3) and x.dtype == np.uint8 for x in blanks)
    assert len({x.tobytes() for x in blanks}) == 20
