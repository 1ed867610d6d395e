"""Build the Greengrass lambda zip: handler, engine-path sortcore, model files, vendored deps.

Layout of the zip (the function's handler is ``sock_lambda.function_handler``)::

    sock_lambda.py              greengrass_lambda/sock_lambda.py
    sortcore/...                the runtime folders of the package (LAMBDA_FOLDERS)
    model/                      lite0-symbol.json, lite0-0000.params, labels.txt,
                                gallery.npz, calibration.json
    paho/ greengrasssdk/        pure-Python wheels for Python 3.7 (VENDORED: what the zip imports)
    sortcore-lambda.json        what went in: versions, model files, Python target

The camera runs the network on MXNet (no ONNX Runtime there): the model folder's ``.onnx`` is
not shipped. Its MXNet pair is built here, at packaging time, from the fp32 weights
``scripts/export_lite0.py`` writes (``build/eye/lite0-fp32.npz``, checked against the model's
``SHA256SUMS``) by :mod:`sortcore.devtools.lite0_mxnet`, and cached; a model folder that already
holds a ``*-symbol.json`` pair (``sortcore export-mxnet``) ships its own. The head (gallery and
calibration) is the model folder's: it gives the same answers on the fp32 embeddings
(model/README.md).

The camera already has MXNet, numpy and OpenCV (the DeepLens image); they are
never vendored, and a dependency that pulls one of them in is an error
(:data:`FORBIDDEN`). Dependencies come from ``pip install --target`` with
``--python-version 3.7 --only-binary=:all: --platform any``: only pure-Python
wheels that declare Python 3.7 support. Only what the zip's modules import is
vendored (paho, with the ``typing-extensions`` backport it needs on 3.7, which pip
skips from a newer Python, and greengrasssdk with its cbor2); the store
is plain ``sqlite3``, and the CLI (click) does not ship.

The installed dependencies are cached under ``cache_dir`` by a hash of the
requirement list, so a second build does not touch the network. The zip is
reproducible: sorted entries, fixed timestamps.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from typing import Iterable, List, NamedTuple, Optional

from .. import __version__
from ..core.errors import ConfigError, ModelError, PackageError
from . import lite0_mxnet
from .lite0_mxnet import HEAD_FILES, WEIGHTS

#: Requirements vendored into the zip (pure Python, Python 3.7).
VENDORED = (
    "greengrasssdk==1.6.1",
    "paho-mqtt==2.1.0",
    # paho's backport on Python 3.7, which pip skips when it runs on a newer Python
    "typing-extensions<4.8",
)
PYTHON_VERSION = "3.7"

#: The sortcore folders that ship in the zip: the camera runtime's layers
#: (docs/architecture.md). Not offline/, training/, web/, cli/ or devtools/: the
#: camera never imports them (tests/test_layout.py).
LAMBDA_FOLDERS = ("core", "store", "adapters", "runtime", "camera", "classifier")
#: Top-level packages the camera provides; vendoring one is a mistake.
FORBIDDEN = ("numpy", "mxnet", "cv2", "scipy", "matplotlib", "PIL")
HANDLER = "sock_lambda.function_handler"
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
SKIP_DIRS = ("__pycache__", "bin")


class PackageReport(NamedTuple):
    """What :func:`build_lambda_zip` wrote."""

    path: str
    size: int
    files: int
    vendored: dict  # distribution name -> version
    model_files: List[str]
    cached: bool


def repo_root() -> str:
    """The checkout this sortcore was imported from (holds greengrass_lambda/ and model/)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def model_files(model_dir: str) -> List[str]:
    """The files of ``model_dir`` the lambda's ``model/`` takes as they are: labels, the open-set
    head and, when the folder has them, its MXNet pair (else :func:`mxnet_pair` builds it);
    :class:`ConfigError` if one is missing."""
    if not os.path.isdir(model_dir):
        raise ConfigError("model directory %s does not exist" % model_dir)
    files = list(HEAD_FILES)
    if any(f.endswith("-symbol.json") for f in os.listdir(model_dir)):
        from ..classifier.model import model_files as mxnet_files  # numpy: not on every import
        try:
            files += [os.path.basename(p) for p in mxnet_files(model_dir)[:2]]
        except ModelError as exc:
            raise ConfigError(str(exc))
    for name in files:
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise ConfigError("model file %s is missing" % os.path.join(model_dir, name))
    return sorted(files)


def mxnet_pair(model_dir: str, weights: str, cache_dir: str):
    """({file name: path} of the Lite0 ``-symbol.json``/``.params`` pair built from ``weights``,
    the weights' SHA-256), cached under ``cache_dir`` by the weights' and the builder's checksums.

    The weights must be the ones ``model_dir/SHA256SUMS`` records (its head was embedded by that
    network); building needs MXNet, a cached pair does not."""
    digest = lite0_mxnet.check_weights(weights, model_dir)
    builder = lite0_mxnet.sha256(lite0_mxnet.__file__)
    folder = os.path.join(cache_dir, "mxnet-" + hashlib.sha256(
        (digest + builder).encode()).hexdigest()[:16])
    done = os.path.join(folder, ".sortcore-complete")
    if not os.path.isfile(done):
        shutil.rmtree(folder, ignore_errors=True)
        lite0_mxnet.export(weights, folder)
        open(done, "w").close()
    names = [lite0_mxnet.NAME + "-symbol.json", "%s-%04d.params" % (lite0_mxnet.NAME, lite0_mxnet.EPOCH)]
    return {name: os.path.join(folder, name) for name in names}, digest


def default_weights(root: str) -> str:
    """Where ``scripts/export_lite0.py`` writes the fp32 weights in the checkout ``root``."""
    return os.path.join(root, "build", "eye", WEIGHTS)


def requirements_key(requirements: Iterable[str], python_version: str = PYTHON_VERSION) -> str:
    text = "\n".join(sorted(requirements)) + "\npython=" + python_version
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def vendor(cache_dir: str, requirements: Iterable[str] = VENDORED,
           python_version: str = PYTHON_VERSION, pip: Optional[List[str]] = None):
    """Install ``requirements`` for ``python_version`` into a cached folder; return (path, cached)."""
    requirements = list(requirements)
    site = os.path.join(cache_dir, "site-" + requirements_key(requirements, python_version))
    done = os.path.join(site, ".sortcore-complete")
    if os.path.isfile(done):
        return site, True
    if os.path.isdir(site):
        shutil.rmtree(site)
    command = (pip or [sys.executable, "-m", "pip"]) + [
        "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
        "--target", site, "--cache-dir", os.path.join(cache_dir, "pip"),
        "--python-version", python_version, "--implementation", "py", "--abi", "none",
        "--platform", "any", "--only-binary=:all:",
    ] + requirements
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    if result.returncode != 0:
        raise PackageError("pip could not install %s for Python %s:\n%s"
                           % (", ".join(requirements), python_version, result.stdout[-2000:]))
    bad = [name for name in FORBIDDEN if os.path.exists(os.path.join(site, name))]
    if bad:
        raise PackageError("a vendored dependency pulled in %s, which the camera provides"
                           % ", ".join(bad))
    with open(done, "w") as fh:
        fh.write("\n".join(requirements) + "\n")
    return site, False


def installed_versions(site: str) -> dict:
    """``{distribution: version}`` from the ``*.dist-info`` folders of ``site``."""
    versions = {}
    for entry in sorted(os.listdir(site)):
        if entry.endswith(".dist-info"):
            name, _, version = entry[: -len(".dist-info")].rpartition("-")
            versions[name] = version
    return versions


def _walk(folder: str):
    """(absolute path, relative path) of the files under ``folder``, sorted, caches skipped."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")) or name.startswith(".sortcore-"):
                continue
            path = os.path.join(dirpath, name)
            yield path, os.path.relpath(path, folder).replace(os.sep, "/")


def _add(archive: zipfile.ZipFile, arcname: str, data: bytes):
    info = zipfile.ZipInfo(arcname, ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def lambda_modules(package: str) -> List[str]:
    """The ``.py`` files of :data:`LAMBDA_FOLDERS` under ``package``, as relative paths."""
    modules = ["__init__.py"]
    for folder in LAMBDA_FOLDERS:
        path = os.path.join(package, folder)
        if not os.path.isfile(os.path.join(path, "__init__.py")):
            raise PackageError("sortcore folder %s is missing" % folder)
        modules += sorted(folder + "/" + name
                          for name in os.listdir(path) if name.endswith(".py"))
    return modules


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def build_lambda_zip(out: str, model_dir: Optional[str] = None, cache_dir: Optional[str] = None,
                     root: Optional[str] = None, requirements: Iterable[str] = VENDORED,
                     weights: Optional[str] = None) -> PackageReport:
    """Write the deployable zip to ``out``; see the module docstring for its layout.

    ``weights``: the fp32 Lite0 weights the MXNet pair is built from when ``model_dir`` has
    none (default: ``build/eye/lite0-fp32.npz`` of ``root``).
    """
    root = root or repo_root()
    model_dir = model_dir or os.path.join(root, "model")
    cache_dir = cache_dir or os.path.join(root, "build", "lambda-cache")
    handler = os.path.join(root, "greengrass_lambda", "sock_lambda.py")
    if not os.path.isfile(handler):
        raise PackageError("the handler %s is missing" % handler)
    paths = {name: os.path.join(model_dir, name) for name in model_files(model_dir)}
    built, weights_sha256 = {}, None
    if not any(name.endswith("-symbol.json") for name in paths):
        built, weights_sha256 = mxnet_pair(model_dir, weights or default_weights(root), cache_dir)
    paths.update(built)
    models = sorted(paths)
    package = os.path.join(root, "sortcore")
    modules = lambda_modules(package)
    site, cached = vendor(cache_dir, requirements)
    vendored = installed_versions(site)
    manifest = {
        "handler": HANDLER, "python": PYTHON_VERSION, "sortcore": __version__,
        "vendored": vendored, "model": models, "modules": modules,
        "provided_by_camera": list(FORBIDDEN[:3]),
        "mxnet_built_from": {WEIGHTS: weights_sha256} if built else None,
    }
    entries = {"sock_lambda.py": _read(handler),
               "sortcore-lambda.json": (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()}
    for module in modules:
        entries["sortcore/" + module] = _read(os.path.join(package, module))
    for name in models:
        entries["model/" + name] = _read(paths[name])
    for path, rel in _walk(site):
        if rel.split("/")[0] in ("sortcore", "model", "sock_lambda.py", "sortcore-lambda.json"):
            raise PackageError("vendored file %s clashes with a sortcore file" % rel)
        entries[rel] = _read(path)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w") as archive:
        for arcname in sorted(entries):
            _add(archive, arcname, entries[arcname])
    os.replace(tmp, out)
    return PackageReport(out, os.path.getsize(out), len(entries), vendored, models, cached)
