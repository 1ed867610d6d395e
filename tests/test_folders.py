"""sortcore.classifier.folders: the shipped model's one path, and a folder that appears whole or not at all."""

import os

import pytest

from sortcore.classifier.folders import atomic_folder, shipped_model
from tests.shared import ROOT

pytestmark = pytest.mark.compat


def leftovers(parent):
    return [name for name in os.listdir(str(parent)) if name.endswith(".tmp")]


def test_in_a_checkout_the_shipped_model_is_its_model_folder():
    # (an installed wheel: tests/test_install.py checks sortcore/model in the venv)
    assert shipped_model() == str(ROOT / "model")


def test_the_folder_appears_complete_with_the_usual_mode(tmp_path):
    with atomic_folder(tmp_path / "new" / "out") as tmp:
        assert os.path.isdir(tmp) and not (tmp_path / "new" / "out").exists()
        os.mkdir(os.path.join(tmp, "sub"))
        with open(os.path.join(tmp, "a.txt"), "w") as fh:
            fh.write("a")
        with open(os.path.join(tmp, "sub", "b.txt"), "w") as fh:
            fh.write("b")
    out = tmp_path / "new" / "out"
    assert (out / "a.txt").read_text() == "a" and (out / "sub" / "b.txt").read_text() == "b"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    assert leftovers(tmp_path / "new") == []


def test_a_failure_leaves_nothing_and_is_raised(tmp_path):
    with pytest.raises(ValueError, match="half way"):
        with atomic_folder(tmp_path / "out") as tmp:
            open(os.path.join(tmp, "half.txt"), "w").close()
            raise ValueError("half way")
    assert os.listdir(str(tmp_path)) == []


def test_an_empty_folder_is_replaced_and_a_full_one_kept(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_folder(tmp_path / "empty") as tmp:
        open(os.path.join(tmp, "x"), "w").close()
    assert os.listdir(str(tmp_path / "empty")) == ["x"]
    with pytest.raises(OSError):
        with atomic_folder(tmp_path / "empty") as tmp:
            open(os.path.join(tmp, "y"), "w").close()
    assert os.listdir(str(tmp_path / "empty")) == ["x"] and leftovers(tmp_path) == []
