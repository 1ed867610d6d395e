"""Teach a model your socks: add (or extend, or remove) a design's prototype, no retraining.

The embedding net stays frozen: a new design is one more prototype, the normalised mean
embedding of augmented views of a few photos or frames of it. The result is a new model
folder (the base is never changed): labels, prototypes, calibration (with an ``enrolled``
log) and the model card updated. The calibrated threshold is kept; re-run
leave-one-photo-out (``sortcore train``) once the design has photos of its own.
"""

import contextlib
import datetime
import json
import os

import numpy as np

from .prototypes import VIEWS, embed, mean_direction, views_of
from ..classifier import openset
from ..classifier.model import load_model, read_labels
from ..errors import ModelError
from ..folders import atomic_folder, copy_into

MAX_FRAMES = 40
MIN_FRAMES = 8  # fewer images (a few photos): add augmented views


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


@contextlib.contextmanager
def _new_model(base, out):
    """A copy of ``base`` in a temporary folder beside ``out``; it becomes ``out`` when the
    block ends, and a failure leaves no ``out`` behind (no copy that answers like the base)."""
    if os.path.realpath(str(base)) == os.path.realpath(str(out)):
        raise ModelError("--out must be a new folder: the base model %s is never changed" % base)
    if os.path.exists(str(out)) and os.listdir(str(out)):
        raise ModelError("output folder %s is not empty" % out)
    if not openset.has_head(base):
        raise ModelError("model %s has no prototypes.npy/calibration.json to enrol into" % base)
    with atomic_folder(out) as tmp:
        copy_into(base, tmp)
        yield tmp


def _write(out, labels, prototypes, calibration, entry):
    calibration = dict(calibration)
    calibration["enrolled"] = list(calibration.get("enrolled", [])) + [entry]
    openset.save_head(out, labels, prototypes, calibration)
    card = os.path.join(str(out), "README.md")
    if os.path.isfile(card):
        with open(card, "a", encoding="utf-8") as fh:
            fh.write("\n## Enrolled\n\n%s\n" % json.dumps(entry))


def enroll(base, out, name, images, views=VIEWS, seed=5):
    """A copy of ``base`` in ``out`` that also knows ``name`` from BGR ``images``."""
    if not images:
        raise ModelError("no images of %s to enrol" % name)
    if name in (openset.UNKNOWN, ""):
        raise ModelError("%r cannot be a design name" % name)
    with _new_model(base, out) as tmp:
        return _enroll(base, tmp, name, images, views, seed)


def _enroll(base, out, name, images, views, seed):
    clf = load_model(base)  # = the copy in out; errors then name the folder the user gave
    head = clf.head
    # Frames as seen (and mirrored) carry the camera's conditions; a few photos get
    # augmented views on top so one shot does not make a narrow prototype.
    shots = list(images) + [image[:, ::-1].copy() for image in images]
    if len(images) < MIN_FRAMES:
        shots += views_of(images, views, clf.size, np.random.RandomState(seed))
    members = head.members  # an ensemble: the new prototype has a block for every member
    new = mean_direction(embed(clf.forward, shots, clf.size, head.dim, members=members)[0],
                         members)
    labels, protos = list(head.labels), head.prototypes.copy()
    if name in labels:  # more examples of a known design: move its prototype towards them
        i = labels.index(name)
        protos[i] = mean_direction([protos[i], new], members)
    else:
        labels.append(name)
        protos = np.vstack([protos, new[None, :]])
    entry = {"design": name, "images": len(images), "views": len(shots),
             "date": datetime.date.today().isoformat(), "base": os.path.abspath(str(base))}
    _write(out, labels, protos, head.calibration, entry)
    return labels


def remove(base, out, name):
    """A copy of ``base`` in ``out`` without the design ``name``."""
    labels = read_labels(os.path.join(str(base), "labels.txt"))
    if name not in labels:
        raise ModelError("%s is not a design of %s (%s)" % (name, base, ", ".join(labels)))
    if name == openset.BLANK:
        raise ModelError("Blank cannot be removed")
    with _new_model(base, out) as tmp:
        return _remove(base, tmp, name, labels)


def _remove(base, out, name, labels):
    head = openset.load_head(base, labels)
    keep = [i for i, label in enumerate(labels) if label != name]
    entry = {"removed": name, "date": datetime.date.today().isoformat(),
             "base": os.path.abspath(str(base))}
    _write(out, [labels[i] for i in keep], head.prototypes[keep], head.calibration, entry)
    return [labels[i] for i in keep]
