"""The open-set head: raw net outputs -> a label, ``Unknown`` when not sure.

The net (MXNet symbol, the DeepLens optimised model or ONNX Runtime) only has to offer
``forward(nchw_float32) -> np.ndarray`` of shape (N, M * (D + S)): for each of M ensemble
members (``members`` in calibration.json, default 1) a D-dimensional embedding followed by
S softmax probabilities. Everything after that is numpy and lives in files of the model
folder, so every backend shares it:

``prototypes.npy``  (C, M * D) class prototypes in ``labels.txt`` order, each member's block
                     of D L2-normalised (a member's prototype is built from its embeddings).
``calibration.json`` ``tau``, ``margin`` (cosine rule), ``blank_min`` (softmax Blank rule),
                     ``embedding_dim``, ``members``, ``softmax_labels``, ``size``, ``rule`` and
                     how it was calibrated (coverage and risk from leave-one-photo-out).

An ensemble's cosine is the mean over members of each member's cosine against its own
prototype, and its P(Blank) the mean of the members' softmax.

Rule: a frame is ``Blank`` when the softmax gives Blank >= ``blank_min`` (unless the cosine
rule below confidently picks an enrolled design, which the softmax never learnt); otherwise the
label of the nearest prototype (cosine similarity ``top1``) when ``top1 >= tau`` and
``top1 - top2 >= margin``; otherwise ``Unknown``. Python 3.7 compatible (runs on the camera).
"""

import json
import os

import numpy as np

from ..errors import ModelError

UNKNOWN = "Unknown"
BLANK = "Blank"
#: Class index meaning "rejected" in score-matrix helpers.
REJECT = -1
PROTOTYPES = "prototypes.npy"
CALIBRATION = "calibration.json"
RULE = ("Blank if softmax P(Blank) >= blank_min; else nearest prototype if cosine top1 >= tau"
        " and top1 - top2 >= margin; else Unknown")


def decide(scores, tau, margin):
    """Class index per row of an (N, C) score matrix, :data:`REJECT` where the rule rejects."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.sort(scores, axis=1)
    top1 = order[:, -1]
    top2 = order[:, -2] if scores.shape[1] > 1 else np.full(len(scores), -np.inf)
    return np.where((top1 >= tau) & (top1 - top2 >= margin), scores.argmax(axis=1), REJECT)


def decide_with_blank(cosines, blank_prob, blank_index, tau, margin, blank_min, enrolled=()):
    """:func:`decide` plus the softmax Blank rule (``blank_prob``: (N,) P(Blank)).

    ``enrolled``: class indices the softmax never learnt (added by enrolment); a confident
    cosine decision for one of them is kept even when the softmax says Blank.
    """
    pred = decide(cosines, tau, margin)
    blank = np.asarray(blank_prob) >= blank_min
    if len(enrolled):
        blank &= ~np.isin(pred, list(enrolled))
    return np.where(blank, blank_index, pred)


def rates(pred, truth):
    """(right, rejected, wrong) shares of views."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    right = float(np.mean(pred == truth))
    rejected = float(np.mean(pred == REJECT))
    return right, rejected, max(0.0, 1.0 - right - rejected)


def _grid(scores):
    order = np.sort(scores, axis=1)
    taus = np.unique(np.concatenate([[-np.inf], np.quantile(order[:, -1], np.linspace(0, 1, 81))]))
    gaps = order[:, -1] - order[:, -2]
    margins = np.unique(np.concatenate([[0.0], np.quantile(gaps, np.linspace(0, 0.6, 31))]))
    return taus, margins


def calibrate(scores, truth, max_risk=0.01):
    """(tau, margin) with the most views right subject to a wrong share <= ``max_risk``.

    Ties go to the lower threshold. Grid search over quantiles of top1 and top1 - top2.
    """
    best = (-1.0, -np.inf, np.inf, 0.0)
    taus, margins = _grid(np.asarray(scores, dtype=np.float64))
    for tau in taus:
        for margin in margins:
            right, _, wrong = rates(decide(scores, tau, margin), truth)
            if wrong <= max_risk and (right, -tau - margin) > best[:2]:
                best = (right, -tau - margin, tau, margin)
    return float(best[2]), float(best[3])


def calibrate_blank(cosines, blank_prob, truth, blank_index, tau, margin, max_risk=0.01,
                    candidates=(0.99, 0.95, 0.9, 0.8, 0.7)):
    """The lowest softmax Blank threshold that adds no wrong answers beyond ``max_risk``."""
    chosen = 1.01  # off
    base_wrong = rates(decide(cosines, tau, margin), truth)[2]
    for blank_min in candidates:
        pred = decide_with_blank(cosines, blank_prob, blank_index, tau, margin, blank_min)
        if rates(pred, truth)[2] <= max(max_risk, base_wrong):
            chosen = blank_min
    return float(chosen)


def nested(scores, truth, groups, max_risk=0.01):
    """Honest estimate: each photo's views judged with a threshold fitted on the other photos."""
    scores, truth, groups = np.asarray(scores), np.asarray(truth), np.asarray(groups)
    pred = np.empty(len(truth), int)
    for group in np.unique(groups):
        inside = groups == group
        tau, margin = calibrate(scores[~inside], truth[~inside], max_risk)
        pred[inside] = decide(scores[inside], tau, margin)
    return pred


def normalise_blocks(vectors, members=1):
    """(N, M * D) rows with each member's block of D L2-normalised."""
    vectors = np.asarray(vectors, dtype=np.float32)
    blocks = vectors.reshape(len(vectors), members, -1)
    blocks = blocks / (np.linalg.norm(blocks, axis=2, keepdims=True) + 1e-8)
    return blocks.reshape(len(vectors), -1)


def cosines(embeddings, prototypes, members=1):
    """(N, C): for block-normalised rows and prototypes (N, M * D), (C, M * D), the mean over
    members of each member's cosine against its own prototype block."""
    return (embeddings @ prototypes.T) / members


def split_members(raw, dim, members=1):
    """(block-normalised embeddings (N, M * D), mean softmax (N, S)) of raw (N, M * (D + S))."""
    raw = np.asarray(raw, dtype=np.float32)
    per = raw.reshape(len(raw), members, -1)
    emb = normalise_blocks(per[:, :, :dim].reshape(len(raw), -1), members)
    return emb, per[:, :, dim:].mean(axis=1)


class Head(object):
    """Prototypes + calibrated rule; :meth:`predict` maps raw net outputs to labels."""

    def __init__(self, labels, prototypes, calibration):
        self.labels = list(labels)
        self.prototypes = np.asarray(prototypes, dtype=np.float32)
        self.calibration = dict(calibration)
        self.tau = float(calibration["tau"])
        self.margin = float(calibration.get("margin", 0.0))
        self.blank_min = float(calibration.get("blank_min", 1.01))
        self.members = int(calibration.get("members", 1))
        self.dim = int(calibration.get("embedding_dim", self.prototypes.shape[1] // self.members))
        self.softmax_labels = list(calibration.get("softmax_labels", []))
        if self.prototypes.shape != (len(self.labels), self.members * self.dim):
            raise ModelError("prototypes have shape %s, expected (%d, %d) for labels.txt" % (
                self.prototypes.shape, len(self.labels), self.members * self.dim))

    @property
    def outputs(self):
        """Raw values per frame the net must give: members x (embedding + softmax)."""
        return self.members * (self.dim + len(self.softmax_labels))

    def with_threshold(self, min_probability):
        """A copy whose cosine threshold is ``min_probability`` percent (None: unchanged)."""
        if min_probability is None:
            return self
        calibration = dict(self.calibration, tau=float(min_probability) / 100.0)
        return Head(self.labels, self.prototypes, calibration)

    def split(self, raw):
        """(block-normalised embeddings (N, M * D), mean P(Blank) (N,)) from raw outputs."""
        raw = np.asarray(raw, dtype=np.float32).reshape(len(raw), -1)
        if raw.shape[1] != self.outputs:
            raise ModelError("model output has %d values per frame, expected %d" % (
                raw.shape[1], self.outputs))
        emb, soft = split_members(raw, self.dim, self.members)
        blank = np.zeros(len(raw), np.float32)
        if BLANK in self.softmax_labels:
            blank = soft[:, self.softmax_labels.index(BLANK)]
        return emb, blank

    def scores(self, raw):
        """(mean over members of the cosines (N, C) to the prototypes, P(Blank) (N,))."""
        emb, blank = self.split(raw)
        return cosines(emb, self.prototypes, self.members), blank

    def predict(self, raw):
        """One (label, probability percent) per row; label ``Unknown`` when not sure."""
        cosines, blank = self.scores(raw)
        blank_index = self.labels.index(BLANK) if BLANK in self.labels else -2
        enrolled = [i for i, label in enumerate(self.labels) if label not in self.softmax_labels]
        pred = decide_with_blank(cosines, blank, blank_index, self.tau, self.margin,
                                 self.blank_min, enrolled)
        out = []
        for row, index in enumerate(pred):
            if index == blank_index and blank[row] >= self.blank_min:
                out.append((BLANK, round(float(blank[row]) * 100.0, 2)))
                continue
            best = float(cosines[row].max())
            label = UNKNOWN if index == REJECT else self.labels[index]
            out.append((label, round(min(100.0, max(0.0, best * 100.0)), 2)))
        return out


def has_head(dirpath):
    """Whether a model folder carries the open-set head files."""
    return all(os.path.isfile(os.path.join(str(dirpath), f)) for f in (PROTOTYPES, CALIBRATION))


def load_head(dirpath, labels):
    """The :class:`Head` stored in a model folder."""
    try:
        prototypes = np.load(os.path.join(str(dirpath), PROTOTYPES))
        with open(os.path.join(str(dirpath), CALIBRATION), encoding="utf-8") as fh:
            calibration = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelError("cannot read the open-set head in %s: %s" % (dirpath, exc))
    if "tau" not in calibration:
        raise ModelError("%s has no 'tau'" % os.path.join(str(dirpath), CALIBRATION))
    return Head(labels, prototypes, calibration)


def save_head(dirpath, labels, prototypes, calibration):
    """Write ``prototypes.npy``, ``calibration.json`` and ``labels.txt`` into ``dirpath``."""
    dirpath = str(dirpath)
    np.save(os.path.join(dirpath, PROTOTYPES), np.asarray(prototypes, dtype=np.float32))
    data = dict(calibration, rule=RULE)
    with open(os.path.join(dirpath, CALIBRATION), "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    with open(os.path.join(dirpath, "labels.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(labels) + "\n")
