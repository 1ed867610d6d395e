"""The metric the head compares frames and views in (:class:`sortcore.classifier.openset.Metric`).

A frame's embedding mixes the sock with what surrounds it: the wall, the table, how the sock is
framed. Plain cosine lets a new design's photo match another design photographed on a similar
wall (most wrong answers between two designs enrolled from 3 photos were that) and lets an empty
wall match a design taught on it. So the head whitens against what varies *without* the design
changing, fitted once when a model is taught, from two things it already has:

- frames with no sock (:func:`sortcore.training.teach.blank_probes`: synthetic walls, wood,
  tables and crops of the photos' own backgrounds): their mean is the centre, their covariance
  what a background does;
- the taught views around their own photo's mean (turns, crops, colour, blur of one photo):
  ``within`` times that covariance, what the framing and the light do.

Directions of large nuisance variance are shrunk towards the rest, ``shrink`` (times the mean
variance) keeping it from amplifying noise; only the top ``rank`` directions are kept (the
rest are within a few per cent of the shrinkage alone), so applying it costs two small products
a frame. Nothing is trained on the designs themselves: a design enrolled later is compared in the
same metric. Chosen on research/eye_recall.py (model/README.md).
"""

import numpy as np

from ..classifier.openset import Metric

SHRINK = 1.0
WITHIN = 0.3
RANK = 128


def fit(nuisance, photo_views, shrink=SHRINK, within=WITHIN, rank=RANK):
    """The :class:`Metric` of frames with no sock ``nuisance`` (N, D) and the taught views of
    each photo (a list of (V, D) arrays; their spread around their own mean)."""
    nuisance = np.asarray(nuisance, np.float64)
    centre = nuisance.mean(axis=0)
    deviations = np.concatenate([np.asarray(v, np.float64) - np.mean(v, axis=0)
                                 for v in photo_views]) if len(photo_views) else nuisance[:0]
    rows = [(nuisance - centre) / np.sqrt(max(1, len(nuisance) - 1))]
    if len(deviations) > 1:
        rows.append(np.sqrt(within) * deviations / np.sqrt(len(deviations) - 1))
    stacked = np.concatenate(rows)
    _, singular, directions = np.linalg.svd(stacked, full_matrices=False)
    variances = singular[:rank] ** 2
    level = shrink * float(np.sum(singular ** 2)) / stacked.shape[1]
    scale = np.sqrt(level / (variances + level)) - 1.0
    return Metric(centre, directions[:rank], scale)
