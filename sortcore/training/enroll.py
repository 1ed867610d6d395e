"""Teach a model your socks: add (or extend, or remove) a design, no retraining.

The embedding net stays frozen: a new design is more rows in the gallery, the embeddings of
views (:func:`sortcore.training.views.enrol_views`: each photo or frame turned, mirrored and
augmented) of a few photos or frames of it. The result is a new model folder, written in a
temporary folder and renamed into place (a failure leaves nothing; the base is never
changed): its labels, gallery, calibration (with an ``enrolled`` log) and card updated. The
calibrated thresholds and the metric the views are compared in are kept; ``sortcore train``
recalibrates once a design has photos of its own.
"""

import datetime
import json
import os

import numpy as np

from .teach import Staged
from .views import enrol_views
from ..classifier import openset
from ..core.frames import read_labels
from ..classifier.backends import load_classifier
from ..core.errors import ModelError

#: At most this many frames of a clip or folder, sampled evenly.
MAX_FRAMES = 15
#: Views of a design per enrolment (each frame gives at least its 8 turns).
VIEWS = 120


def frames_of(spec, limit=MAX_FRAMES):
    """Up to ``limit`` BGR frames of a source spec (a clip is sampled evenly)."""
    from ..camera.sources import open_source
    with open_source(spec) as source:
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) >= limit * 10:
                break
    if not frames:
        raise ModelError("no frames in %s" % spec)
    step = max(1, len(frames) // limit)
    return frames[::step][:limit]


def _write(staged, head, labels, views, owners, entry):
    calibration = dict(head.calibration)
    calibration.pop("rule", None)
    calibration["enrolled"] = list(calibration.get("enrolled", [])) + [entry]
    openset.save_head(staged.path, labels, views, owners, calibration, head.metric)
    card = os.path.join(staged.path, "README.md")
    if os.path.isfile(card):
        with open(card, "a", encoding="utf-8") as fh:
            fh.write("\n## Enrolled\n\n%s\n" % json.dumps(entry))


def enroll(base, out, name, images):
    """A copy of ``base`` in ``out`` that also knows ``name`` from BGR ``images``."""
    if not images:
        raise ModelError("no images of %s to enrol" % name)
    if name in (openset.UNKNOWN, ""):
        raise ModelError("%r cannot be a design name" % name)
    with Staged(base, out) as staged:
        staged.copy()
        clf = load_classifier(staged.path, "auto")
        head = clf.head
        views = enrol_views(images, per_image=max(8, VIEWS // len(images)))
        new = openset.normalise(clf.embed(views))
        labels = list(head.labels)
        if name not in labels:
            labels.append(name)
        owners = np.concatenate([head.owners, np.full(len(new), labels.index(name))])
        entry = {"design": name, "images": len(images), "views": len(views),
                 "date": datetime.date.today().isoformat(), "base": os.path.abspath(str(base))}
        _write(staged, head, labels, np.vstack([head.views, new]), owners, entry)
    return labels


def remove(base, out, name):
    """A copy of ``base`` in ``out`` without the design ``name``."""
    labels = read_labels(os.path.join(str(base), "labels.txt"), ModelError)
    if name not in labels:
        raise ModelError("%s is not a design of %s (%s)" % (name, base, ", ".join(labels)))
    if name == openset.BLANK:
        raise ModelError("Blank cannot be removed")
    if len([label for label in labels if label != openset.BLANK]) < 2:
        raise ModelError("%s is the last design of %s" % (name, base))
    with Staged(base, out) as staged:
        staged.copy()
        head = openset.load_head(staged.path, labels)
        drop = labels.index(name)
        keep = head.owners != drop
        owners = head.owners[keep]
        owners = owners - (owners > drop)
        kept = [label for label in labels if label != name]
        entry = {"removed": name, "date": datetime.date.today().isoformat(),
                 "base": os.path.abspath(str(base))}
        _write(staged, head, kept, head.views[keep], owners, entry)
    return kept
