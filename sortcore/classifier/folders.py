"""Folders on disk: where the shipped model is, and writing a new folder all at once.

The shipped model is the repository's ``model/``. A wheel carries it as the package data
``sortcore/model/`` (setup.py maps it there); a source checkout, or an editable install of
one, has it beside the package. Must stay Python 3.7 compatible.
"""

import contextlib
import os
import shutil
import uuid


def shipped_model():
    """The default model folder: ``sortcore/model`` of an installed wheel, else ``model/`` of
    the checkout this package was imported from."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # sortcore/
    installed = os.path.join(package, "model")
    checkout = os.path.dirname(package)
    if os.path.isdir(installed) or not os.path.isfile(os.path.join(checkout, "setup.cfg")):
        return installed
    return os.path.join(checkout, "model")


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a new empty folder beside ``path`` to fill; when the block ends it is renamed to
    ``path`` (which must not exist, or be empty), and when the block raises it is removed, so
    ``path`` either appears complete or not at all."""
    path = os.path.abspath(str(path))
    parent, name = os.path.split(path)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    tmp = os.path.join(parent, ".%s.%s.tmp" % (name, uuid.uuid4().hex[:12]))
    os.mkdir(tmp)
    try:
        yield tmp
        os.rename(tmp, path)  # POSIX: replaces an empty folder, fails on a full one
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

