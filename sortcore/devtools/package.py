"""Build the Greengrass lambda zip: handler, engine-path sortcore, model files, vendored deps.

Layout of the zip (the function's handler is ``sock_lambda.function_handler``)::

    sock_lambda.py              greengrass_lambda/sock_lambda.py
    sortcore/...                the runtime folders of the package (LAMBDA_FOLDERS)
    model/                      <name>-symbol.json, <name>-0000.params, labels.txt
    paho/ sqlite_utils/ ...     pure-Python wheels for Python 3.7 (VENDORED)
    sortcore-lambda.json        what went in: versions, model files, Python target

The camera already has MXNet, numpy and OpenCV (the DeepLens image); they are
never vendored, and a dependency that pulls one of them in is an error
(:data:`FORBIDDEN`). Dependencies come from ``pip install --target`` with
``--python-version 3.7 --only-binary=:all: --platform any``: only pure-Python
wheels that declare Python 3.7 support. pip evaluates environment markers
against the interpreter running it, not the target, so the backports Python 3.7
needs (``importlib-metadata`` for pluggy) are listed explicitly.

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
from ..errors import ConfigError, PackageError

#: Requirements vendored into the zip (pure Python, Python 3.7).
VENDORED = (
    "greengrasssdk==1.6.1",
    "paho-mqtt==2.1.0",
    "sqlite-utils==3.36",
    "click<8.2",
    # Python 3.7 backports that pip skips when it runs on a newer Python:
    "importlib-metadata<7",
    "typing-extensions<4.8",
    "zipp<3.16",
)
PYTHON_VERSION = "3.7"

#: The sortcore folders that ship in the zip: the package's own modules and the runtime
#: subpackages. Not cli/, devtools/ or training/ (developer tooling that needs more than
#: the camera has).
LAMBDA_FOLDERS = ("", "adapters", "runtime", "camera", "classifier")
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
    """The model files of ``model_dir`` (net, labels, and the open-set head when present);
    :class:`ConfigError` if one is missing."""
    if not os.path.isdir(model_dir):
        raise ConfigError("model directory %s does not exist" % model_dir)
    names = sorted(f for f in os.listdir(model_dir) if f.endswith("-symbol.json"))
    if len(names) != 1:
        raise ConfigError("model directory %s must hold exactly one *-symbol.json, found %d"
                          % (model_dir, len(names)))
    stem = names[0][: -len("-symbol.json")]
    files = [names[0], stem + "-0000.params", "labels.txt"]
    for name in files:
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise ConfigError("model file %s is missing" % os.path.join(model_dir, name))
    head = ["calibration.json", "gallery.npz"]  # sortcore.classifier.openset
    return files + [n for n in head if os.path.isfile(os.path.join(model_dir, n))]


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
    modules = []
    for folder in LAMBDA_FOLDERS:
        path = os.path.join(package, folder)
        if not os.path.isfile(os.path.join(path, "__init__.py")):
            raise PackageError("sortcore folder %s is missing" % (folder or "sortcore"))
        modules += sorted(os.path.join(folder, name).lstrip("/").replace(os.sep, "/")
                          for name in os.listdir(path) if name.endswith(".py"))
    return modules


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def build_lambda_zip(out: str, model_dir: Optional[str] = None, cache_dir: Optional[str] = None,
                     root: Optional[str] = None, requirements: Iterable[str] = VENDORED) -> PackageReport:
    """Write the deployable zip to ``out``; see the module docstring for its layout."""
    root = root or repo_root()
    model_dir = model_dir or os.path.join(root, "model")
    cache_dir = cache_dir or os.path.join(root, "build", "lambda-cache")
    handler = os.path.join(root, "greengrass_lambda", "sock_lambda.py")
    if not os.path.isfile(handler):
        raise PackageError("the handler %s is missing" % handler)
    models = model_files(model_dir)
    package = os.path.join(root, "sortcore")
    modules = lambda_modules(package)
    site, cached = vendor(cache_dir, requirements)
    vendored = installed_versions(site)
    manifest = {
        "handler": HANDLER, "python": PYTHON_VERSION, "sortcore": __version__,
        "vendored": vendored, "model": models, "modules": modules,
        "provided_by_camera": list(FORBIDDEN[:3]),
    }
    entries = {"sock_lambda.py": _read(handler),
               "sortcore-lambda.json": (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()}
    for module in modules:
        entries["sortcore/" + module] = _read(os.path.join(package, module))
    for name in models:
        entries["model/" + name] = _read(os.path.join(model_dir, name))
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
