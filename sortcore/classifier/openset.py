"""The open-set head: frame embeddings -> a design, ``Blank`` or ``Unknown``. numpy only.

The net (ONNX Runtime here; the same network on MXNet on the DeepLens) only has to give
``forward(nchw_float32) -> (N, D)``: the frozen EfficientNet-Lite0 embedding (model/README.md).
Everything after it lives in two files of the model folder, so every backend shares it:

``gallery.npz``      ``embeddings`` (M, D) float16: L2-normalised embeddings of the views each
                     label was taught from (:func:`sortcore.training.views.enrol_views`),
                     ``owners`` (M,): the index in ``labels.txt`` of the label of each row, and
                     optionally the :class:`Metric` both are compared in (``center``, ``basis``,
                     ``scale``; without them, plain cosine).
``calibration.json`` ``k``, ``tau``, ``margin``, ``floor`` and how they were calibrated.

Frames and views are compared after the :class:`Metric` (:mod:`sortcore.training.whiten` fits
it when a model is taught): centred on frames with no sock and whitened against what varies
without the design changing (the background, the framing), so that the sock counts more than
the wall. A label's score for a frame is then the mean cosine similarity of its ``k`` nearest
views (not a mean prototype: a design photographed two ways keeps both). Rule (:data:`RULE`):
**Blank** when the best design scores below ``floor`` (nothing sock-like is near) or a ``Blank`` label
(photos of the empty scene, when taught) scores best; else the best design when its score is
at least ``tau`` and beats the second best by at least ``margin``; else **Unknown**. The
probability reported is the best design score in percent (for Blank, 100 minus it).

Python 3.7 compatible (runs on the camera).
"""

import json
import os

import numpy as np

from ..core.errors import ModelError
from ..core.events import BLANK, UNKNOWN  # noqa: F401 - openset.BLANK/UNKNOWN for training

#: Indices :func:`decide` gives besides a label index.
REJECT, BLANK_INDEX = -1, -2
GALLERY = "gallery.npz"
CALIBRATION = "calibration.json"
RULE = ("Blank if the best design's score < floor or a Blank label scores best; else the best"
        " design if its score >= tau and beats the second by >= margin; else Unknown (a label's"
        " score: mean cosine of its k nearest taught views, both after the gallery's metric)")
METRIC_KEYS = ("center", "basis", "scale")


def normalise(vectors):
    """Rows scaled to unit length (float32)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / (np.linalg.norm(vectors, axis=-1, keepdims=True) + 1e-12)


def label_scores(embeddings, views, owners, classes, k):
    """(N, classes): per label, the mean cosine of the ``k`` nearest of its views.

    ``embeddings`` (N, D) and ``views`` (M, D) unit rows; ``owners`` (M,) label indices.
    A label with fewer than ``k`` views averages all of them; one with none scores -1.
    """
    sims = np.asarray(embeddings, np.float32) @ np.asarray(views, np.float32).T
    out = np.full((len(sims), classes), -1.0, np.float32)
    for c in range(classes):
        own = sims[:, owners == c]
        if own.shape[1] == 0:
            continue
        kk = min(k, own.shape[1])
        out[:, c] = np.partition(own, own.shape[1] - kk, axis=1)[:, -kk:].mean(axis=1)
    return out


def decide(scores, tau, margin, floor, blank=None):
    """Label index per row of (N, C) design scores; :data:`REJECT` for Unknown,
    :data:`BLANK_INDEX` for Blank. ``blank`` (N,): a taught Blank label's scores, if any."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.sort(scores, axis=1)
    top1 = order[:, -1]
    top2 = order[:, -2] if scores.shape[1] > 1 else np.full(len(scores), -1.0)
    pred = np.where((top1 >= tau) & (top1 - top2 >= margin), scores.argmax(axis=1), REJECT)
    is_blank = top1 < floor
    if blank is not None:
        is_blank |= np.asarray(blank) > top1
    return np.where(is_blank, BLANK_INDEX, pred)


class Metric(object):
    """Where frames and views are compared: the unit embedding minus ``center``, each of the
    ``basis`` rows' components (orthonormal, (R, D)) multiplied by ``1 + scale`` (R,), the rest
    kept; then L2-normalised. Cosine after it is cosine in a whitened space."""

    def __init__(self, center, basis, scale):
        self.center = np.asarray(center, np.float32).ravel()
        self.basis = np.asarray(basis, np.float32).reshape(-1, len(self.center))
        self.scale = np.asarray(scale, np.float32).ravel()
        if self.scale.shape != (len(self.basis),):
            raise ModelError("metric has %d directions and %d scales" % (len(self.basis),
                                                                         len(self.scale)))

    def apply(self, embeddings):
        """(N, D) embeddings (L2-normalised first) -> (N, D) unit rows in the metric's space."""
        x = normalise(embeddings) - self.center
        return normalise(x + ((x @ self.basis.T) * self.scale) @ self.basis)

    def arrays(self):
        """The arrays ``gallery.npz`` stores (:data:`METRIC_KEYS`)."""
        return {"center": self.center, "basis": self.basis.astype(np.float16),
                "scale": self.scale}


class _Plain(object):
    """No metric: plain cosine."""

    @staticmethod
    def apply(embeddings):
        return normalise(embeddings)


_PLAIN = _Plain()


class Head(object):
    """The taught views + the calibrated rule; :meth:`predict` maps embeddings to labels.

    ``views`` are kept as taught (enrolment adds to them); ``metric`` (a :class:`Metric` or
    None for plain cosine) is applied to them and to every frame before scoring."""

    def __init__(self, labels, views, owners, calibration, metric=None):
        self.labels = list(labels)
        self.views = normalise(views)
        self.metric = metric
        self.owners = np.asarray(owners, dtype=np.int64)
        self.calibration = dict(calibration)
        for key in ("k", "tau", "margin", "floor"):
            if key not in self.calibration:
                raise ModelError("calibration has no %r" % key)
        self.k = int(self.calibration["k"])
        self.tau = float(self.calibration["tau"])
        self.margin = float(self.calibration["margin"])
        self.floor = float(self.calibration["floor"])
        if self.views.ndim != 2 or self.owners.shape != (len(self.views),):
            raise ModelError("gallery has %s embeddings for %s owners" % (
                self.views.shape, self.owners.shape))
        if len(self.owners) and (self.owners.min() < 0 or self.owners.max() >= len(self.labels)):
            raise ModelError("gallery owners are not indices into labels.txt (%d labels)" %
                             len(self.labels))
        if metric is not None and len(metric.center) != self.views.shape[1]:
            raise ModelError("gallery metric is for %d values, the views have %d" % (
                len(metric.center), self.views.shape[1]))
        self.keys = (metric or _PLAIN).apply(self.views)
        self.designs = [i for i, label in enumerate(self.labels) if label != BLANK]

    @property
    def dim(self):
        """The embedding size the net must give."""
        return self.views.shape[1]

    def with_threshold(self, min_probability):
        """A copy whose ``tau`` is ``min_probability`` percent (None: unchanged)."""
        if min_probability is None:
            return self
        return Head(self.labels, self.views, self.owners,
                    dict(self.calibration, tau=float(min_probability) / 100.0), self.metric)

    def scores(self, embeddings):
        """(design scores (N, designs), Blank label scores (N,) or None) of raw embeddings."""
        embeddings = np.asarray(embeddings, dtype=np.float32).reshape(len(embeddings), -1)
        if embeddings.shape[1] != self.dim:
            raise ModelError("model output has %d values per frame, expected %d" % (
                embeddings.shape[1], self.dim))
        frames = (self.metric or _PLAIN).apply(embeddings)
        every = label_scores(frames, self.keys, self.owners, len(self.labels), self.k)
        blank = every[:, self.labels.index(BLANK)] if BLANK in self.labels else None
        return every[:, self.designs], blank

    def predict(self, embeddings):
        """One (label, probability percent) per row; ``Unknown`` when not sure."""
        return self.predict_scores(*self.scores(embeddings))

    def predict_scores(self, scores, blank=None):
        """:meth:`predict` of what :meth:`scores` gave (for a caller that needs both)."""
        if not self.designs:
            raise ModelError("the model knows no design")
        pred = decide(scores, self.tau, self.margin, self.floor, blank)
        best = scores.max(axis=1)
        out = []
        for index, top in zip(pred, best):
            percent = round(min(100.0, max(0.0, float(top) * 100.0)), 2)
            if index == BLANK_INDEX:
                out.append((BLANK, round(100.0 - percent, 2)))
            elif index == REJECT:
                out.append((UNKNOWN, percent))
            else:
                out.append((self.labels[self.designs[index]], percent))
        return out


def has_head(dirpath):
    """Whether a model folder carries the head files."""
    return all(os.path.isfile(os.path.join(str(dirpath), f)) for f in (GALLERY, CALIBRATION))


def read_calibration(dirpath):
    path = os.path.join(str(dirpath), CALIBRATION)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelError("cannot read %s: %s" % (path, exc))


def _read_gallery(dirpath):
    """(views, owners, :class:`Metric` or None) of a model folder's gallery."""
    path = os.path.join(str(dirpath), GALLERY)
    try:
        with np.load(path, allow_pickle=False) as data:
            metric = (Metric(*[data[key] for key in METRIC_KEYS])
                      if all(key in data for key in METRIC_KEYS) else None)
            return data["embeddings"], data["owners"], metric
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError("cannot read the gallery %s: %s" % (path, exc))


def load_head(dirpath, labels):
    """The :class:`Head` stored in a model folder."""
    views, owners, metric = _read_gallery(dirpath)
    return Head(labels, views, owners, read_calibration(dirpath), metric)


#: :func:`save_head`'s default metric: the one of the gallery already in the folder, if any
#: (a model's metric is its base's: adding designs never changes it).
KEEP = "keep"


def save_head(dirpath, labels, views, owners, calibration, metric=KEEP):
    """Write ``gallery.npz`` (with ``metric``'s arrays; None: plain cosine; :data:`KEEP`: the
    metric of the gallery ``dirpath`` holds, if any), ``calibration.json`` and ``labels.txt``
    into ``dirpath``."""
    dirpath = str(dirpath)
    if metric is KEEP:
        metric = (_read_gallery(dirpath)[2]
                  if os.path.isfile(os.path.join(dirpath, GALLERY)) else None)
    arrays = metric.arrays() if metric is not None else {}
    with open(os.path.join(dirpath, GALLERY), "wb") as fh:
        np.savez(fh, embeddings=normalise(views).astype(np.float16),
                 owners=np.asarray(owners, dtype=np.int16), **arrays)
    with open(os.path.join(dirpath, CALIBRATION), "w", encoding="utf-8") as fh:
        json.dump(dict(calibration, rule=RULE), fh, indent=2, sort_keys=True)
        fh.write("\n")
    with open(os.path.join(dirpath, "labels.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(labels) + "\n")
