"""Leave-one-photo-out (LOPO): held-out scores, the calibrated open-set rule and its figures.

Fixed protocol (same views for every candidate): for each photo, train on the others and
score 20 augmented views of it (``RandomState(777)``, ``2 x size`` pixels), 100 synthetic
unknown-design socks (:mod:`sortcore.training.synth`, seed 9001) and 40 synthetic blanks
(seed 4242). The open-set thresholds are fitted on all held-out scores (most views right
with at most 1 % wrong); the nested estimate refits them without each photo in turn.

An ensemble's scores are the means over members of the members' cosines and P(Blank), so
they can also be made from per-seed score files without training again
(:func:`mean_scores`, ``benchmarks/lopo_colour.py combine``).
"""

import dataclasses
import glob
import os

import numpy as np

from . import augment, synth, train as training
from .prototypes import class_prototypes, embed
from ..classifier import openset

SCORES_SOURCE = "LOPO scores "  # calibrated_by of a model calibrated from saved score files
VIEW_SEED = 777
BLANK_SEED = 4242
MAX_RISK = 0.01


def held_views(image, views, size):
    rng = np.random.RandomState(VIEW_SEED)
    return [augment.augment(image, rng, size * 2) for _ in range(views)]


@dataclasses.dataclass
class Scores:
    """Held-out scores: cosines (F, V, C) and P(Blank) (F, V) per fold, plus open-set probes."""

    labels: list
    truth: np.ndarray  # (F,) class index of each held-out photo
    cos: np.ndarray
    blank: np.ndarray
    unknown_cos: np.ndarray  # (F, U, C) synthetic unknown designs
    unknown_blank: np.ndarray
    blanks_cos: np.ndarray  # (F, B, C) synthetic blanks
    blanks_blank: np.ndarray

    def save(self, path):
        np.savez(path, labels=np.array(self.labels), **{
            k: v for k, v in dataclasses.asdict(self).items() if k != "labels"})


def load_scores(pattern):
    """Scores from ``.npz`` files (ours or the lab's run_net format), folds concatenated."""
    parts = [np.load(f) for f in sorted(glob.glob(pattern))]
    if not parts:
        raise FileNotFoundError(pattern)
    labels = [str(x) for x in parts[0]["labels"]]
    b = labels.index(openset.BLANK)

    def cat(key, lab_key=None, column=False):
        if key in parts[0].files:
            return np.concatenate([p[key] for p in parts])
        value = np.concatenate([p[lab_key] for p in parts])
        return value[..., b] if column else value
    return Scores(labels, cat("truth"), cat("cos"), cat("blank", "prob", True),
                  cat("unknown_cos", "ucos"), cat("unknown_blank", "uprob", True),
                  cat("blanks_cos", "bcos"), cat("blanks_blank", "bprob", True))


def mean_scores(parts):
    """The ensemble :class:`Scores` of members' scores (same folds): every field averaged."""
    first = parts[0]
    for other in parts[1:]:
        if other.labels != first.labels or not np.array_equal(other.truth, first.truth):
            raise ValueError("scores of different labels or folds cannot be combined")
    fields = [f.name for f in dataclasses.fields(Scores)][2:]
    return Scores(first.labels, first.truth,
                  *[np.mean([getattr(p, f) for p in parts], axis=0) for f in fields])


def open_set_probes(size):
    """(100 synthetic unknown-design socks, 40 synthetic blanks) at ``2 x size`` pixels, the
    same for every fold and candidate. (The blanks are one blank 40 times: the RandomState is
    made anew for each. The committed fold files have it so; model/README.md says so.)"""
    return (synth.unknown_views(100),
            [augment.blank(np.random.RandomState(BLANK_SEED), size * 2) for _ in range(40)])


def fold_scores(forward, size, dim, labels, rest, held, views, probes, members=1):
    """Score the held-out views and the probes against prototypes built from ``rest``."""
    protos = class_prototypes(forward, size, dim, labels, rest, members=members)
    out = []
    for images in [held_views(held.image, views, size)] + list(probes):
        emb, soft = embed(forward, images, size, dim, members=members)
        out += [openset.cosines(emb, protos, members), soft[:, labels.index(openset.BLANK)]]
    return out


def cross_validate(data_dir, options=None, views=20, progress=True, only=None, export_to=None):
    """Train once per held-out photo and collect its :class:`Scores`.

    ``only``: indices (in :func:`sortcore.training.train.load_photos` order) of the photos to
    hold out, so that folds can run in separate processes and be saved one file each.
    ``export_to``: also export each fold's net to ``<export_to>/foldNN_model`` (NN: the photo's
    index), for measurements that need the nets, such as ``benchmarks/lopo_tta.py``.
    """
    options = dataclasses.replace(options or training.TrainOptions(), progress=False)
    labels, photos = training.load_photos(data_dir)
    probes = open_set_probes(options.size)
    indices = list(range(len(photos)) if only is None else only)
    held_out = [photos[i] for i in indices]
    rows, items = [], indices
    if progress:
        from tqdm import tqdm
        items = tqdm(indices, desc="leave-one-photo-out", unit="fold")
    dim = options.width * 16
    for index in items:
        held = photos[index]
        rest = [p for p in photos if p.path != held.path]
        nets = training.fit_members(labels, rest, options)
        if export_to is not None:
            folder = os.path.join(str(export_to), "fold%02d_model" % index)
            training.export(nets, labels, folder, options.size)
        forward = training.forward_of(nets)
        rows.append(fold_scores(forward, options.size, dim, labels, rest, held, views, probes,
                                options.members))
    cols = [np.stack(c) for c in zip(*rows)]
    return Scores(labels, np.array([labels.index(p.label) for p in held_out]), *cols)


def summarise(scores, max_risk=MAX_RISK):
    """The calibrated rule and its LOPO figures (shares 0-1) as a dict."""
    folds, views, classes = scores.cos.shape
    flat, blank = scores.cos.reshape(-1, classes), scores.blank.reshape(-1)
    truth = np.repeat(scores.truth, views)
    groups = np.repeat(np.arange(folds), views)
    b = scores.labels.index(openset.BLANK)
    tau, margin = openset.calibrate(flat, truth, max_risk)
    blank_min = openset.calibrate_blank(flat, blank, truth, b, tau, margin, max_risk)

    def rule(cos, pb, t=tau, m=margin):
        return openset.decide_with_blank(cos.reshape(-1, classes), pb.reshape(-1), b, t, m,
                                         blank_min)
    nested = np.empty(len(truth), int)
    for g in range(folds):
        inside = groups == g
        t, m = openset.calibrate(flat[~inside], truth[~inside], max_risk)
        nested[inside] = rule(flat[inside], blank[inside], t, m)
    unknown = rule(scores.unknown_cos, scores.unknown_blank)
    blanks = rule(scores.blanks_cos, scores.blanks_blank)
    return {
        "tau": tau, "margin": margin, "blank_min": blank_min, "max_risk": max_risk,
        "folds": int(folds), "views": int(views),
        "argmax_right": float(np.mean(flat.argmax(1) == truth)),
        "calibrated": dict(zip(("right", "unknown", "wrong"), openset.rates(rule(flat, blank), truth))),
        "nested": dict(zip(("right", "unknown", "wrong"), openset.rates(nested, truth))),
        "unknown_rejected": float(np.mean((unknown == openset.REJECT) | (unknown == b))),
        "blanks_to_blank": float(np.mean(blanks == b)),
    }


def card_cells(summary):
    """A candidates-table row's figures from a :func:`summarise` result, ``|``-separated:
    argmax right, calibrated and nested right/Unknown/wrong, unknown designs rejected,
    blanks -> Blank (all %), then the fitted thresholds."""
    def three(shares):
        return "/".join("%.1f" % (100 * shares[k]) for k in ("right", "unknown", "wrong"))
    return "%.1f | %s | %s | %.1f | %.1f | tau %.3f margin %.3f blank_min %.2f" % (
        100 * summary["argmax_right"], three(summary["calibrated"]), three(summary["nested"]),
        100 * summary["unknown_rejected"], 100 * summary["blanks_to_blank"], summary["tau"],
        summary["margin"], summary["blank_min"])


def scores_pattern(calibration):
    """The glob of saved score files a ``calibration.json`` dict was fitted from, or None."""
    source = calibration.get("calibrated_by", "")
    return source[len(SCORES_SOURCE):] if source.startswith(SCORES_SOURCE) else None


def calibration(summary, size, dim, softmax_labels, source, members=1):
    """The ``calibration.json`` content from a :func:`summarise` result."""
    cal = summary["calibrated"]
    accepted = cal["right"] + cal["wrong"]
    return {
        "tau": summary["tau"], "margin": summary["margin"], "blank_min": summary["blank_min"],
        "size": size, "embedding_dim": dim, "members": members,
        "softmax_labels": list(softmax_labels),
        "coverage": round(accepted, 4), "risk": round(cal["wrong"] / accepted if accepted else 0, 4),
        "calibrated_by": source,
    }
