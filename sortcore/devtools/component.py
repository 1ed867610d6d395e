"""Build the Greengrass v2 component artifact: ``sortcore-component.zip``.

The recipe (``deploy/greengrass-v2/recipe.yaml``) says ``Unarchive: ZIP``: the nucleus
extracts the zip into a folder named after it, ``{artifacts:decompressedPath}/sortcore-component/``
(AWS's component recipe reference), so the zip has no top folder of its own. Its Install step
``pip install``s that folder, so the zip is a buildable source tree of sortcore plus the model
(which the wheel built from it carries too, see setup.py)::

    pyproject.toml setup.py setup.cfg README.md   the project files pip builds from
    sortcore/...                         every module of the package (the CLI too:
                                         the component runs ``sortcore run``)
    model/...                            every file of the model folder (with its .onnx)
    sortcore-component.json              what went in: version, files, sha256s

Dependencies are not bundled: the device installs them from PyPI into the
component's venv (``sortcore[onnx,greengrass-v2]``). The zip is reproducible:
sorted entries, fixed timestamps and modes, caches skipped, so the same tree
gives the same bytes (and the same artifact digest in the published recipe).
"""

import hashlib
import json
import os
import zipfile
from typing import List, NamedTuple, Optional

from .. import __version__
from .package import PackageError, _add, _read, _walk, repo_root

ARTIFACT = "sortcore-component.zip"
#: The folder ``Unarchive: ZIP`` extracts the artifact into, under ``{artifacts:decompressedPath}``.
UNPACKED = ARTIFACT[: -len(".zip")]
PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "README.md")


class ComponentReport(NamedTuple):
    """What :func:`build_component` wrote."""

    path: str
    size: int
    files: int
    sha256: str
    model_files: List[str]


def _entries(root: str, model_dir: str) -> dict:
    """``{name inside the zip: bytes}`` for the project files, the package and the model."""
    entries = {}
    for name in PROJECT_FILES:
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            raise PackageError("%s is missing: --root must be the sortcore checkout" % path)
        entries[name] = _read(path)
    package = os.path.join(root, "sortcore")
    if not os.path.isfile(os.path.join(package, "__init__.py")):
        raise PackageError("%s is not the sortcore package" % package)
    for path, rel in _walk(package):
        if rel.endswith(".py"):
            entries["sortcore/" + rel] = _read(path)
    if not os.path.isdir(model_dir):
        raise PackageError("model directory %s does not exist" % model_dir)
    for path, rel in _walk(model_dir):
        entries["model/" + rel] = _read(path)
    return entries


def build_component(out_dir: str, root: Optional[str] = None, model_dir: Optional[str] = None) -> ComponentReport:
    """Write ``out_dir/sortcore-component.zip``; see the module docstring for its layout."""
    root = os.path.abspath(root or repo_root())
    model_dir = model_dir or os.path.join(root, "model")
    entries = _entries(root, model_dir)
    models = sorted(name[len("model/"):] for name in entries if name.startswith("model/"))
    if not any(name.endswith(".onnx") for name in models):
        raise PackageError("model directory %s has no .onnx file, and the component runs ONNX "
                           "Runtime only (sortcore export-onnx --model %s)" % (model_dir, model_dir))
    manifest = {"sortcore": __version__, "model": models,
                "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(entries.items())}}
    entries["sortcore-component.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, ARTIFACT)
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w") as archive:
        for name in sorted(entries):
            _add(archive, name, entries[name])
    os.replace(tmp, out)
    with open(out, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    return ComponentReport(out, os.path.getsize(out), len(entries), digest, models)
