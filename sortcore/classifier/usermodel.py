"""The user model: the shipped model plus the designs a person named on the page (setting
``user_model``, by default a folder beside the store).

Naming a design found in the session teaches it: its session views (the embeddings of the
frames that made it) join the gallery under the name, as ``sortcore enroll`` adds a design's
views, so ``run`` knows it from the next session on. The folder holds versions ``v1``, ``v2``,
... each a whole model folder written through :class:`~sortcore.classifier.staged.Staged`
(whole or not at all), and ``current``, a symbolic link to the newest, replaced atomically
(``os.replace``): a crash leaves the previous version in use, never half of one. Older versions
are deleted. The thresholds are the base model's. Python 3.7 compatible (runs on the camera).
"""

import datetime
import os
import re
import shutil

import numpy as np

from . import openset
from ..core.frames import read_labels
from .staged import Staged
from ..core.errors import ModelError

CURRENT = "current"
VERSION = re.compile(r"^v([0-9]+)$")


def current(user_model):
    """The user model's current folder, or None when it has none yet."""
    if not user_model:
        return None
    path = os.path.join(str(user_model), CURRENT)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "labels.txt")):
        return path
    return None


def model_for(user_model, base):
    """The model folder ``run`` loads: the user model when it has one, else ``base``."""
    return current(user_model) or base


def _versions(user_model):
    return sorted((int(VERSION.match(name).group(1)), name) for name in os.listdir(user_model)
                  if VERSION.match(name))


def teach(user_model, base, name, views):
    """Add ``views`` ((N, D) embeddings) of design ``name`` to the user model (made from
    ``base`` the first time); returns the new current folder."""
    if name in (openset.UNKNOWN, openset.BLANK) or not name:
        raise ModelError("%r cannot be a design name" % name)
    user_model = str(user_model)
    if not os.path.isdir(user_model):
        os.makedirs(user_model)
    source = current(user_model) or str(base)
    versions = _versions(user_model)
    version = "v%d" % ((versions[-1][0] if versions else 0) + 1)
    with Staged(source, os.path.join(user_model, version)) as staged:
        staged.copy()
        labels = read_labels(os.path.join(staged.path, "labels.txt"), ModelError)
        head = openset.load_head(staged.path, labels)
        if name not in labels:
            labels.append(name)
        views = openset.normalise(views)
        if views.ndim != 2 or views.shape[1] != head.dim:
            raise ModelError("views of %s have shape %s, the gallery %d-d" % (name, views.shape, head.dim))
        owners = np.concatenate([head.owners, np.full(len(views), labels.index(name))])
        calibration = dict(head.calibration)
        calibration.pop("rule", None)
        calibration["enrolled"] = list(calibration.get("enrolled", [])) + [
            {"design": name, "views": len(views), "from": "named on the page",
             "date": datetime.date.today().isoformat()}]
        openset.save_head(staged.path, labels, np.vstack([head.views, views]), owners, calibration)
    link = os.path.join(user_model, ".%s.tmp" % CURRENT)
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(version, link)
    os.replace(link, os.path.join(user_model, CURRENT))
    for _, old in _versions(user_model):
        if old != version:
            shutil.rmtree(os.path.join(user_model, old), ignore_errors=True)
    return os.path.join(user_model, CURRENT)
