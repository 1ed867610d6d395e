"""Teach the frozen eye a folder of designs: ``sortcore train``.

A data directory holds one folder per design (folder name = label) with photos in it, and
optionally a ``Blank`` folder of the empty scene. Nothing is trained: every photo's views
(:func:`sortcore.training.views.enrol_views`) are embedded by the base model's net and become the
gallery; the metric they are compared in is fitted on frames with no sock, the views' own spread
and photos of synthetic designs (:mod:`sortcore.training.whiten`); the rule is calibrated by
leave-one-photo-out and leave-one-design-out (:mod:`sortcore.training.calibrate`) on 20 held-out
views per photo, with synthetic blanks and crops of the photos' backgrounds as blank probes
(another draw of them than the metric's). The new model folder holds the base's net files (copied,
never changed), the gallery, the calibration and a card.
"""

import collections
import datetime
import os
import time

import numpy as np

from . import augment, calibrate, views as teaching, whiten
from ..classifier import openset
from ..classifier.model import read_image
from ..classifier.backends import load_embedder
from ..classifier.staged import Staged  # noqa: F401 - enroll and train write through it
from ..core.errors import ModelError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
NET_SUFFIXES = (".onnx", "-symbol.json", ".params", "SHA256SUMS")
BLANK_PROBES = 200
BLANK_SEED = 4242
#: The metric's frames with no sock: another draw than the floor's probes.
METRIC_SEED = 6161

Photo = collections.namedtuple("Photo", ["path", "label", "image"])
Taught = collections.namedtuple("Taught", ["label", "views", "held"])


def load_photos(data_dir):
    """Photos of a folder-per-label directory, in path order."""
    data_dir = str(data_dir)
    if not os.path.isdir(data_dir):
        raise ModelError("data directory %s does not exist" % data_dir)
    photos = []
    for label in sorted(os.listdir(data_dir)):
        folder = os.path.join(data_dir, label)
        if not os.path.isdir(folder) or label.startswith("."):
            continue
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                path = os.path.join(folder, name)
                photos.append(Photo(path, label, read_image(path)))
    if not {p.label for p in photos} - {openset.BLANK}:
        raise ModelError("data directory %s has no photos in design folders" % data_dir)
    if openset.UNKNOWN in {p.label for p in photos}:
        raise ModelError("%r cannot be a design name" % openset.UNKNOWN)
    return photos


def net_files(model_dir):
    """The base model's network files (copied as they are into a new model folder)."""
    names = sorted(f for f in os.listdir(str(model_dir)) if f.endswith(NET_SUFFIXES))
    if not names:
        raise ModelError("model %s holds no network file (.onnx)" % model_dir)
    return names


def blank_probes(photos, count=BLANK_PROBES, seed=BLANK_SEED):
    """Frames with no sock: synthetic walls, wood, tables, stripes, noise; crops of the
    photos' backgrounds (where the GrabCut mask finds no sock); the data's Blank photos."""
    from .mask import sock_mask
    rng = np.random.RandomState(seed)
    out = [augment.blank(rng, 448) for _ in range(count)]
    sources = [(p.image, sock_mask(p.image)) for p in photos if p.label != openset.BLANK]
    sources = [(image, mask) for image, mask in sources if not mask.all()]
    for _ in range(count * 50 if sources else 0):
        if len(out) >= 2 * count:
            break
        image, mask = sources[rng.randint(len(sources))]
        side = rng.randint(min(40, min(image.shape[:2]) // 2), min(image.shape[:2]) // 2 + 1)
        y, x = rng.randint(0, image.shape[0] - side + 1), rng.randint(0, image.shape[1] - side + 1)
        if not mask[y:y + side, x:x + side].any():
            out.append(augment.colour_jitter(image[y:y + side, x:x + side].copy(), rng))
    return out + [p.image for p in photos if p.label == openset.BLANK]


def teach(classifier, photos, held=calibrate.HELD_VIEWS):
    """[Taught(label, enrolment view embeddings, held-out view embeddings)], photo order."""
    out = []
    for photo in photos:
        views = teaching.enrol_views([photo.image])
        rng = np.random.RandomState(calibrate.HELD_SEED)
        held_views = [augment.augment(photo.image, rng, 448) for _ in range(held)]
        embeddings = openset.normalise(classifier.embed(views + held_views))
        out.append(Taught(photo.label, embeddings[:len(views)], embeddings[len(views):]))
    return out


def spread_embeddings(classifier):
    """The metric's photos of other designs (:func:`synth.spread_renders`), embedded: one
    (renders, D) array a design."""
    from .synth import spread_renders
    renders = spread_renders()
    flat = openset.normalise(classifier.embed([r for group in renders for r in group]))
    return np.split(flat, np.cumsum([len(g) for g in renders])[:-1])


def metric_fitter(nuisance, designs, others=()):
    """``excluded photo indices -> whiten.fit`` without those of ``designs`` (memoised);
    ``others``: the photos of synthetic designs (:func:`spread_embeddings`)."""
    fitted = {}

    def metric_for(excluded=()):
        if excluded not in fitted:
            fitted[excluded] = whiten.fit(nuisance, [t.views for i, t in enumerate(designs)
                                                     if i not in excluded], others)
        return fitted[excluded]
    return metric_for


def cross_validate(photos, classifier):
    """(labels, gallery views, owners, :func:`calibrate.summarise` figures, metric) of ``photos``."""
    labels = sorted({p.label for p in photos})
    taught = teach(classifier, photos)
    views = np.concatenate([t.views for t in taught])
    owners = np.concatenate([np.full(len(t.views), labels.index(t.label)) for t in taught])
    designs = [t for t in taught if t.label != openset.BLANK]
    nuisance = classifier.embed(blank_probes(photos, seed=METRIC_SEED))
    metric_for = metric_fitter(openset.normalise(nuisance), designs,
                               spread_embeddings(classifier))
    metric = metric_for()
    probes = metric.apply(classifier.embed(blank_probes(photos)))
    design_ids = [i for i, label in enumerate(labels) if label != openset.BLANK]
    blank_scores = openset.label_scores(probes, metric.apply(views), owners, len(labels),
                                        calibrate.K)
    summary = calibrate.summarise(designs, blank_scores[:, design_ids], metric_for=metric_for)
    return labels, views, owners, summary, metric


def build_model(data_dir, out_dir, base_dir):
    """Teach ``base_dir``'s net the designs of ``data_dir`` into ``out_dir``, calibrated.

    Returns the figures written to the card (a dict).
    """
    started = time.time()
    photos = load_photos(data_dir)
    classifier = load_embedder(base_dir)
    labels, views, owners, summary, metric = cross_validate(photos, classifier)
    calibration = {key: summary[key] for key in ("k", "tau", "margin", "floor")}
    calibration.update(size=classifier.size, embedding_dim=int(views.shape[1]),
                       calibrated_by="sortcore train --data %s (%s)" % (
                           data_dir, datetime.date.today().isoformat()), lopo=summary)
    figures = {"labels": labels, "photos": len(photos), "summary": summary,
               "seconds": round(time.time() - started, 1), "data_dir": str(data_dir)}
    with Staged(base_dir, out_dir) as staged:
        staged.copy(net_files(base_dir))
        openset.save_head(staged.path, labels, views, owners, calibration, metric)
        from .modelcard import write_card
        write_card(staged.path, figures)
    return figures
