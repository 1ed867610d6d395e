"""``sortcore enroll``: a new design from generated frames is recognised; the base is unchanged."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("mxnet")

from sortcore.classifier.model import load_model  # noqa: E402
from sortcore.errors import ModelError  # noqa: E402
from sortcore.training import augment, enroll, synth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "model"


def new_design(seed):
    """Frames of one synthetic design (same pattern, different views), as a folder would hold."""
    rng = np.random.RandomState(seed)
    sock = synth.unknown_sock(rng, view_size=224)
    return sock, [augment.augment(sock, np.random.RandomState(seed + i), 192) for i in range(12)]


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "sortcore"] + list(args), env=env, cwd=str(ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)


def test_enroll_from_frames_then_classify_recognises_it(tmp_path):
    sock, frames = new_design(11)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames[:8]):
        cv2.imwrite(str(folder / ("%02d.png" % i)), frame)
    before = {p.name: p.read_bytes() for p in MODEL.iterdir()}
    out = tmp_path / "mine"
    result = run("enroll", "--design", "Stripy", "--source", "folder:%s" % folder,
                 "--out", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert {p.name: p.read_bytes() for p in MODEL.iterdir()} == before  # base unchanged
    assert (out / "labels.txt").read_text().split()[-1] == "Stripy"
    assert json.loads((out / "calibration.json").read_text())["enrolled"][0]["design"] == "Stripy"
    clf = load_model(out)
    labels = [p.label for p in clf.classify_many(frames[8:])]  # views not enrolled
    assert labels.count("Stripy") >= len(labels) // 2, labels
    assert set(labels) <= {"Stripy", "Unknown"}, labels


def test_enrolling_does_not_change_other_designs_much(tmp_path):
    """Other designs keep their prototypes; their frames may only move to Unknown, never wrong."""
    _, frames = new_design(23)
    enroll.enroll(MODEL, tmp_path / "m", "Dotty", frames)
    photos = sorted((ROOT.parent / "shared" / "sock-photos").glob("*/*.jpg"))
    if not photos:
        pytest.skip("no shared photos")
    base, new = load_model(MODEL), load_model(tmp_path / "m")
    images = [cv2.imread(str(p)) for p in photos]
    for path, a, b in zip(photos, base.classify_many(images), new.classify_many(images)):
        assert b.label in (a.label, "Unknown"), (path, a, b)


def test_remove_and_bad_requests(tmp_path):
    labels = enroll.remove(MODEL, tmp_path / "less", "Mongo")
    assert "Mongo" not in labels and load_model(tmp_path / "less").labels == labels
    with pytest.raises(ModelError, match="never changed"):
        enroll.remove(MODEL, MODEL, "Mongo")
    with pytest.raises(ModelError, match="not a design"):
        enroll.remove(MODEL, tmp_path / "x", "Nope")
    with pytest.raises(ModelError, match="Blank"):
        enroll.remove(MODEL, tmp_path / "y", "Blank")
