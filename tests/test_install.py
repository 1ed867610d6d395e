"""A model in every install: the built wheel, in a fresh venv with only ``[onnx]``, classifies,
counts and runs from a folder outside the checkout, with no MXNet and nothing exported by hand.

Runs on Python 3.12+ (no MXNet wheel exists there): scripts/test.sh runs it in its portable
step, in .venv-onnx (scripts/onnx-env.sh). The wheel is built from a copy of the project
files (a stale build/ in the checkout cannot leak into it) and installed into one new venv
for the module; pip's own cache keeps the second install off the network.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.shared import PHOTOS, ROOT

pytestmark = [
    pytest.mark.portable,
    pytest.mark.skipif(sys.version_info < (3, 12), reason="a Python 3.12+ install (no MXNet there): "
                       "scripts/test.sh runs it in .venv-onnx"),
    pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/sock-photos is not beside the repository"),
]

PROJECT = ("pyproject.toml", "setup.py", "setup.cfg", "README.md", "sortcore", "model")
# Github twice (a pair), Mongo once (odd).
SOCKS = ("Github/file_90.jpg", "Mongo/file_95.jpg", "Github/file_96.jpg")


def _clean_env():
    """The environment without this checkout on the path: only the venv's sortcore counts."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SORTCORE_")}


def _run(args, cwd, timeout=300):
    return subprocess.run([str(a) for a in args], cwd=str(cwd), env=_clean_env(), timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's bin folder, an empty working folder outside the checkout)."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in PROJECT:
        if (ROOT / name).is_dir():
            shutil.copytree(str(ROOT / name), str(source / name),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(str(ROOT / name), str(source / name))
    built = _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                  base / "dist", source], base)
    assert built.returncode == 0, built.stderr
    (wheel,) = (base / "dist").glob("sortcore-*.whl")
    with zipfile.ZipFile(str(wheel)) as archive:
        shipped = {"sortcore/model/" + p.name for p in (ROOT / "model").iterdir()}
        assert shipped <= set(archive.namelist())
    made = _run([sys.executable, "-m", "venv", base / "venv"], base)
    assert made.returncode == 0, made.stderr
    bin_dir = base / "venv" / "bin"
    done = _run([bin_dir / "python", "-m", "pip", "install", "--quiet", "%s[onnx]" % wheel], base, 900)
    assert done.returncode == 0, done.stderr
    work = base / "work"
    work.mkdir()
    return bin_dir, work


def test_the_install_is_the_wheel_and_has_no_mxnet(installed):
    bin_dir, work = installed
    code = ("import importlib.util, sortcore, sortcore.classifier.folders as f; "
            "print(sortcore.__file__); print(f.shipped_model()); "
            "print(importlib.util.find_spec('mxnet') is None)")
    done = _run([bin_dir / "python", "-c", code], work)
    assert done.returncode == 0, done.stderr
    module, model, no_mxnet = done.stdout.split()
    venv = str(bin_dir.parent)
    assert module.startswith(venv) and model.startswith(venv) and model.endswith("sortcore/model")
    assert no_mxnet == "True"


def test_classify_a_photo_with_the_shipped_model(installed):
    bin_dir, work = installed
    photos = sorted(PHOTOS.glob("*/*.jpg"))
    done = _run([bin_dir / "sortcore", "classify", "--json"] + photos, work)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == len(photos)
    right = sum(row["image"] == photo.parent.name for row, photo in zip(rows, photos))
    assert all(row["image"] in (photo.parent.name, "Unknown") for row, photo in zip(rows, photos)), rows
    assert right >= len(photos) // 2, rows


@pytest.fixture(scope="module")
def video(installed):
    """A generated video of three socks (a Github pair, an odd Mongo) in the working folder."""
    import cv2
    from sortcore.devtools import sockvideo

    path = installed[1] / "socks.mp4"
    sockvideo.write_video(path, [cv2.imread(str(PHOTOS / sock)) for sock in SOCKS], 5.0, (320, 240),
                          per_sock=8, wall=10)
    return path


def _socks(table):
    return {row["image"]: row["number_socks_seen"] for row in table["socks"]}


def test_count_and_run_a_video_with_the_shipped_model(installed, video):
    bin_dir, work = installed
    counted = _run([bin_dir / "sortcore", "count", "video:%s" % video.name, "--json", "--db", "count.db"],
                   work)
    assert counted.returncode == 0, counted.stderr
    result = json.loads(counted.stdout)
    assert _socks(result) == {"Github": 2, "Mongo": 1} and result["odd"] == ["Mongo"]
    ran = _run([bin_dir / "sortcore", "run", "--source", "video:%s" % video.name, "--db", "run.db"], work)
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    pairs = _run([bin_dir / "sortcore", "pairs", "--json", "--db", "run.db"], work)
    assert pairs.returncode == 0, pairs.stderr
    assert _socks(json.loads(pairs.stdout)) == _socks(result)


def test_enroll_a_design_from_three_photos_then_classify_with_it(installed):
    """enroll embeds through the same ONNX net: an [onnx] install, no MXNet, teaches a design
    from three photos into --out (the shipped model untouched), and that model knows it."""
    import cv2
    import numpy as np
    from sortcore.training import synth

    bin_dir, work = installed
    pattern, rng = synth.design(501), np.random.RandomState(501 * 7 + 1)  # as tests/test_enroll.py
    shots = [synth.render(pattern, rng) for _ in range(7)]
    for folder, chosen in (("dotty", shots[:3]), ("new", shots[3:])):
        (work / folder).mkdir()
        for i, shot in enumerate(chosen):
            cv2.imwrite(str(work / folder / ("%d.png" % i)), shot)
    done = _run([bin_dir / "sortcore", "enroll", "--design", "Dotty", "--source", "folder:dotty",
                 "--out", "mine"], work)
    assert done.returncode == 0, done.stderr
    assert (work / "mine" / "labels.txt").read_text().split()[-1] == "Dotty"
    assert [p.name for p in work.iterdir() if p.name.startswith(".mine")] == []
    mine = _run([bin_dir / "sortcore", "classify", "--json", "--model", "mine", "new"], work)
    shipped = _run([bin_dir / "sortcore", "classify", "--json", "new"], work)
    assert [row["image"] for row in json.loads(mine.stdout)].count("Dotty") >= 3, mine.stdout
    assert "Dotty" not in shipped.stdout
