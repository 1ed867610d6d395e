"""``sortcore enroll``: two new designs from three generated photos each are recognised in new
photos, the others hold, the base is unchanged, a failure leaves nothing, and no MXNet."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from sortcore.classifier.backends import load_classifier  # noqa: E402
from sortcore.core.errors import ModelError  # noqa: E402
from sortcore.training import enroll, synth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "model"
PHOTOS = ROOT.parent / "shared" / "sock-photos"
NEW = (501, 502)  # the designs research/eye_sets.py measures; not a shared photo's

# Runs the CLI with MXNet made unimportable: enrolment must not need it.
NO_MXNET = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'mxnet' or name.startswith('mxnet.'):\n"
            "            raise ImportError('mxnet blocked by the test')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from sortcore.cli import main\n"
            "sys.argv[0] = 'sortcore'\n"
            "main()\n")


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", NO_MXNET] + list(args), env=env, cwd=str(ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)


def photos_of(seed, folder, first, count):
    """Photos ``first`` to ``first + count`` of synthetic design ``seed``, written as PNGs."""
    pattern, rng = synth.design(seed), np.random.RandomState(seed * 7 + 1)
    shots = [synth.render(pattern, rng) for _ in range(first + count)][first:]
    folder.mkdir(parents=True)
    for i, shot in enumerate(shots):
        cv2.imwrite(str(folder / ("%02d.png" % i)), shot)
    return folder


def test_two_new_designs_from_three_photos_then_new_photos(tmp_path):
    before = {p.name: p.read_bytes() for p in MODEL.iterdir()}
    base = str(MODEL)
    for n, seed in enumerate(NEW):
        out = tmp_path / ("m%d" % n)
        started = time.perf_counter()
        result = run("enroll", "--design", "New%d" % seed, "--source",
                     "folder:%s" % photos_of(seed, tmp_path / ("enrol%d" % seed), 0, 3),
                     "--model", base, "--out", str(out))
        assert result.returncode == 0, result.stderr.decode()
        assert time.perf_counter() - started <= 15  # issue 23: one design from 3 photos
        base = str(out)
    assert {p.name: p.read_bytes() for p in MODEL.iterdir()} == before  # base unchanged
    assert (Path(base) / "labels.txt").read_text().split()[-2:] == ["New501", "New502"]
    enrolled = json.loads((Path(base) / "calibration.json").read_text())["enrolled"]
    assert [e["design"] for e in enrolled] == ["New501", "New502"]
    assert all(e["images"] == 3 and e["views"] == 120 for e in enrolled)
    right = wrong = 0
    for seed in NEW:
        new = photos_of(seed, tmp_path / ("new%d" % seed), 3, 10)
        result = run("classify", str(new), "--model", base, "--json")
        assert result.returncode == 0, result.stderr.decode()
        labels = [row["image"] for row in json.loads(result.stdout)]
        right += labels.count("New%d" % seed)
        wrong += sum(label not in ("New%d" % seed, "Unknown", "Blank") for label in labels)
    assert right >= 17 and wrong <= 1, (right, wrong)  # model/README.md: 18 of 20, 0 wrong


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="shared photos not found")
def test_enrolling_does_not_change_other_designs(tmp_path):
    """The shared photos keep their labels (or become Unknown, never wrong)."""
    seed = NEW[0]
    pattern, rng = synth.design(seed), np.random.RandomState(seed * 7 + 1)
    enroll.enroll(MODEL, tmp_path / "m", "Dotty", [synth.render(pattern, rng) for _ in range(3)])
    photos = sorted(PHOTOS.glob("*/*.jpg"))
    base, new = load_classifier(MODEL), load_classifier(tmp_path / "m")
    images = [cv2.imread(str(p)) for p in photos]
    for path, a, b in zip(photos, base.classify_many(images), new.classify_many(images)):
        assert b.label in (a.label, "Unknown"), (path, a, b)


def test_a_failed_enrolment_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ModelError("views failed")
    monkeypatch.setattr(enroll, "enrol_views", broken)
    with pytest.raises(ModelError, match="views failed"):
        enroll.enroll(MODEL, tmp_path / "out", "Dotty", [np.zeros((64, 64, 3), np.uint8)])
    assert list(tmp_path.iterdir()) == []


def test_remove_and_bad_requests(tmp_path):
    labels = enroll.remove(MODEL, tmp_path / "less", "Mongo")
    assert "Mongo" not in labels and load_classifier(tmp_path / "less").labels == labels
    head = load_classifier(tmp_path / "less").head
    assert len(head.views) == len(load_classifier(MODEL).head.views) - 80  # Mongo's 2 x 40 views
    with pytest.raises(ModelError, match="never changed"):
        enroll.remove(MODEL, MODEL, "Mongo")
    with pytest.raises(ModelError, match="not a design"):
        enroll.remove(MODEL, tmp_path / "x", "Nope")
    with pytest.raises(ModelError, match="Blank"):
        enroll.remove(MODEL, tmp_path / "y", "Blank")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ModelError, match="not empty"):
        enroll.remove(MODEL, tmp_path / "full", "Mongo")
    with pytest.raises(ModelError, match="cannot be a design name"):
        enroll.enroll(MODEL, tmp_path / "z", "Unknown", [np.zeros((8, 8, 3), np.uint8)])
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()


def test_a_failed_enroll_leaves_no_model_behind(tmp_path):
    """A base whose net cannot load, through the real CLI: one line, and --out is not there at
    all (before, it held an unmodified copy of the base that answered as before), nor any
    temporary folder."""
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in MODEL.iterdir():
        if path.is_file():
            broken.joinpath(path.name).write_bytes(path.read_bytes())
    net = next(broken.glob("*.onnx"))
    net.write_bytes(net.read_bytes()[:1000])
    clip = photos_of(5, tmp_path / "clip", 0, 3)
    result = run("enroll", "--design", "Dotty", "--source", "folder:%s" % clip, "--model", str(broken),
                 "--out", str(tmp_path / "mine"))
    assert result.returncode == 1, result.stderr.decode()
    lines = result.stderr.decode().strip().splitlines()
    assert lines[-1].startswith("Error: ") and "Traceback" not in result.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "clip"]


def test_new_designs_over_five_pairs_are_rarely_wrong_and_blanks_stay_blank():
    """Five more pairs of new designs (601-610), each enrolled from 3 photos into the shipped
    head, 10 new photos of each: one pair is one draw (model/README.md, "New designs from 3
    photos": 82 right and 3 wrong of these 100; 84 and 10 with plain cosine; the target's 95
    right is not met). An empty wall never becomes a new design (with plain cosine, up to 21 of
    a pair's 100 did): 498 of these 500 stay Blank, 2 are Unknown."""
    from sortcore.classifier import openset
    from sortcore.training import augment
    from sortcore.training.views import enrol_views
    clf = load_classifier(MODEL)
    head = clf.head
    rng = np.random.RandomState(7171)
    blanks = clf.embed([augment.blank(rng, 448) for _ in range(100)])
    right = wrong = 0
    walls = []
    for first in range(601, 611, 2):
        labels, views, owners, tests = list(head.labels), [head.views], [head.owners], []
        for seed in (first, first + 1):
            pattern, rng = synth.design(seed), np.random.RandomState(seed * 7 + 1)
            shots = [synth.render(pattern, rng) for _ in range(13)]
            views.append(openset.normalise(clf.embed(enrol_views(shots[:3]))))
            owners.append(np.full(len(views[-1]), len(labels)))
            labels.append("New%d" % seed)
            tests.append((labels[-1], clf.embed(shots[3:])))
        grown = openset.Head(labels, np.vstack(views), np.concatenate(owners), head.calibration,
                             head.metric)
        for name, emb in tests:
            got = [label for label, _ in grown.predict(emb)]
            right += got.count(name)
            wrong += sum(label not in (name, "Unknown", "Blank") for label in got)
        walls += [label for label, _ in grown.predict(blanks)]
    assert walls.count("Blank") >= 495 and not set(walls) - {"Blank", "Unknown"}, walls
    assert wrong <= 6 and right >= 75, (right, wrong, walls.count("Blank"))
