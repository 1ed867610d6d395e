"""A model folder written whole or not at all (enrolment, ``train``, the user model).

Python 3.7 compatible: the camera writes the user model through it (naming a new design).
"""

import os
import shutil

from ..core.errors import ModelError
from .folders import atomic_folder


class Staged(object):
    """A new model folder written in a temporary folder beside ``out`` and renamed into place
    on success; a failure leaves nothing. ``out`` must not exist or be empty."""

    def __init__(self, base, out):
        if os.path.realpath(str(base)) == os.path.realpath(str(out)):
            raise ModelError("--out must be a new folder: the base model %s is never changed" % base)
        if os.path.exists(str(out)) and (not os.path.isdir(str(out)) or os.listdir(str(out))):
            raise ModelError("output folder %s is not empty" % out)
        self.base, self.out = str(base), str(out)
        parent = os.path.dirname(os.path.abspath(self.out))
        if not os.path.isdir(parent):
            raise ModelError("cannot write %s: %s does not exist" % (out, parent))
        self.path = None

    def __enter__(self):
        self._folder = atomic_folder(self.out)
        self.path = self._folder.__enter__()
        return self

    def copy(self, names=None):
        """Copy ``names`` (default: every file) of the base folder into the staged one."""
        if names is None:
            names = sorted(f for f in os.listdir(self.base) if not f.startswith(".")
                           and os.path.isfile(os.path.join(self.base, f)))
        for name in names:
            shutil.copy2(os.path.join(self.base, name), os.path.join(self.path, name))

    def __exit__(self, kind, value, tb):
        if kind is None:
            os.chmod(self.path, 0o755)
        return self._folder.__exit__(kind, value, tb)
