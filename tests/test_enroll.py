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
from sortcore.devtools import sockvideo  # noqa: E402
from sortcore.training import enroll, synth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "model"
PHOTOS = ROOT.parent / "shared" / "sock-photos"


def new_design(seed):
    """A clip of one synthetic sock of a design the model never saw."""
    sock = synth.unknown_sock(np.random.RandomState(seed), view_size=224)
    return sock, sockvideo.moving(sock, 12, seed)


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "sortcore"] + list(args), env=env, cwd=str(ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="shared photos not found")
def test_enroll_from_frames_then_classify_recognises_it(tmp_path):
    """Take Github out, enrol it again as 'MyGithub' from a clip of one photo; the other
    photo's frames are then recognised. (The frozen net saw Github in training: this checks
    the enrolment path, not how well the net separates a design it never saw.)"""
    first, second = sorted((PHOTOS / "Github").glob("*.jpg"))
    clip = tmp_path / "clip"
    clip.mkdir()
    for i, frame in enumerate(sockvideo.moving(cv2.imread(str(first)), 12, 1)):
        cv2.imwrite(str(clip / ("%02d.png" % i)), frame)
    before = {p.name: p.read_bytes() for p in MODEL.iterdir()}
    assert run("enroll", "--remove", "Github", "--out", str(tmp_path / "less")).returncode == 0
    result = run("enroll", "--design", "MyGithub", "--source", "folder:%s" % clip,
                 "--model", str(tmp_path / "less"), "--out", str(tmp_path / "mine"))
    assert result.returncode == 0, result.stderr.decode()
    assert {p.name: p.read_bytes() for p in MODEL.iterdir()} == before  # base unchanged
    out = tmp_path / "mine"
    assert (out / "labels.txt").read_text().split()[-1] == "MyGithub"
    head = load_model(out).head  # an ensemble: the new design has a block for every member
    assert head.prototypes.shape == (len(head.labels), head.members * head.dim)
    assert [e.get("design") for e in
            json.loads((out / "calibration.json").read_text())["enrolled"]] == [None, "MyGithub"]
    later = tmp_path / "later"
    later.mkdir()
    for i, frame in enumerate(sockvideo.moving(cv2.imread(str(second)), 8, 2)):
        cv2.imwrite(str(later / ("%02d.png" % i)), frame)
    result = run("classify", str(later), "--model", str(out), "--json")
    labels = [row["image"] for row in json.loads(result.stdout)]
    assert set(labels) <= {"MyGithub", "Unknown"} and labels.count("MyGithub") >= 6, labels


def test_enrolling_does_not_change_other_designs_much(tmp_path):
    """Other designs keep their prototypes; their frames may only move to Unknown, never wrong."""
    _, frames = new_design(23)
    enroll.enroll(MODEL, tmp_path / "m", "Dotty", frames)
    photos = sorted(PHOTOS.glob("*/*.jpg"))
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


def test_a_failed_enroll_leaves_no_model_behind(tmp_path):
    """A base whose net cannot load: one line, and --out is not there at all (before, it held
    an unmodified copy of the base that answered as before), nor any temporary folder."""
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in MODEL.iterdir():
        broken.joinpath(path.name).write_bytes(path.read_bytes())
    params = next(broken.glob("*-0000.params"))
    params.write_bytes(params.read_bytes()[:1000])
    _, frames = new_design(3)
    clip = tmp_path / "clip"
    clip.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(clip / ("%02d.png" % i)), frame)
    result = run("enroll", "--design", "Dotty", "--source", "folder:%s" % clip, "--model", str(broken),
                 "--out", str(tmp_path / "mine"))
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines()[-1].startswith("Error: cannot load model %s" % broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "clip"]
