"""The metric the head compares frames and views in (:class:`sortcore.classifier.openset.Metric`).

A frame's embedding mixes the sock with what surrounds it: the wall, the table, how the sock is
framed. Plain cosine lets a new design's photo match another design photographed on a similar
wall (most wrong answers between two designs enrolled from 3 photos were that) and lets an empty
wall match a design taught on it. So the head whitens against what varies *without* the design
changing, fitted once when a model is taught, from three things it already has:

- frames with no sock (:func:`sortcore.training.teach.blank_probes`: synthetic walls, wood,
  tables and crops of the photos' own backgrounds): their mean is the centre, their covariance
  what a background does;
- the taught views around their own photo's mean (turns, crops, colour, blur of one photo):
  ``within`` times that covariance, what the framing and the light do;
- photos of synthetic designs (:func:`sortcore.training.synth.spread_renders`: 100 designs no
  measurement uses, 6 renders each: another cut of the cloth, pose, scale, wall and light)
  around their own design's mean: ``spread`` times that covariance, what changes between two
  photos of one design, which views of a single photo cannot show.

Directions of large nuisance variance are shrunk towards the rest, ``shrink`` (times the mean
variance) keeping it from amplifying noise; only the top ``rank`` directions are kept (the
rest are within a few per cent of the shrinkage alone), so applying it costs two small products
a frame. Nothing is trained on the taught designs themselves: a design enrolled later is compared
in the same metric. Chosen on research/eye_recall.py and research/eye_recall_within.py
(model/README.md).
"""

import numpy as np

from ..classifier.openset import Metric

SHRINK = 1.0
WITHIN = 0.3
SPREAD = 1.0
RANK = 128


def _spread(groups, weight):
    """Rows whose Gram matrix is ``weight`` times the covariance of each group around its mean."""
    if not len(groups):
        return []
    deviations = np.concatenate([np.asarray(g, np.float64) - np.mean(g, axis=0) for g in groups])
    if len(deviations) < 2:
        return []
    return [np.sqrt(weight) * deviations / np.sqrt(len(deviations) - 1)]


def fit(nuisance, photo_views, designs=(), shrink=SHRINK, within=WITHIN, spread=SPREAD,
        rank=RANK):
    """The :class:`Metric` of frames with no sock ``nuisance`` (N, D), the taught views of
    each photo (a list of (V, D) arrays; their spread around their own mean) and the photos of
    other ``designs`` (a list of (P, D) arrays, one a design; their spread around its mean)."""
    nuisance = np.asarray(nuisance, np.float64)
    centre = nuisance.mean(axis=0)
    rows = [(nuisance - centre) / np.sqrt(max(1, len(nuisance) - 1))]
    rows += _spread(photo_views, within) + _spread(designs, spread)
    stacked = np.concatenate(rows)
    _, singular, directions = np.linalg.svd(stacked, full_matrices=False)
    variances = singular[:rank] ** 2
    level = shrink * float(np.sum(singular ** 2)) / stacked.shape[1]
    scale = np.sqrt(level / (variances + level)) - 1.0
    return Metric(centre, directions[:rank], scale)
