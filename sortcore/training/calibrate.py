"""Calibrate the open-set rule on embeddings: leave-one-photo-out and leave-one-design-out.

For each photo of a design with another photo, its held-out views (20 augmented views,
``RandomState(777)``) are scored against a gallery of every *other* photo's views: right,
Unknown or wrong (LOPO). The same views are also scored against a gallery without their whole
design (leave-one-design-out, LODO): a real sock of a design the model was never taught, so
every acceptance is wrong. The rule's ``tau`` and ``margin`` give the most LOPO views right
with at most :data:`MAX_RISK` of them wrong and at most :data:`MAX_UNTAUGHT` of the LODO views
accepted; ``floor`` (Blank) lies a quarter of the way from the blank probes' best scores to
the sock views' worst. The nested estimate refits the rule without each photo in turn.

With a metric (:mod:`sortcore.training.whiten`), each fold compares in a metric fitted without
the photo held out (LOPO) or without the whole design left out (LODO): what it learnt from the
taught views never includes the ones being judged.
"""

import numpy as np

from ..classifier.openset import BLANK_INDEX, decide, label_scores

MAX_RISK = 0.01
MAX_UNTAUGHT = 0.05
K = 3
HELD_VIEWS = 20
HELD_SEED = 777
#: Where the Blank floor lies between frames with no sock and taught sock views: nearer the
#: blanks, because a sock never taught scores below the taught ones and should be Unknown (a
#: new design, issue 24), not Blank; above every frame with no sock measured (model/README.md).
FLOOR_AT = 0.25


def _gallery(photos, keep):
    """(views (M, D), owners (M,), labels) of the photos for which ``keep(i, photo)``."""
    chosen = [(p.label, p.views) for i, p in enumerate(photos) if keep(i, p)]
    labels = sorted({label for label, _ in chosen})
    views = np.concatenate([v for _, v in chosen])
    owners = np.concatenate([np.full(len(v), labels.index(l)) for l, v in chosen])
    return views, owners, labels


def _scores(held, views, owners, classes, k, metric):
    if metric is not None:
        held, views = metric.apply(held), metric.apply(views)
    return label_scores(held, views, owners, classes, k)


def held_out_scores(photos, k=K, metric_for=None):
    """LOPO and LODO scores of every photo's held views (``photos``: .label, .views, .held).

    ``metric_for(excluded)``: the metric fitted without the photos of those indices (None:
    plain cosine). Returns (lopo (N, C), truth (N,), lodo (N, C - 1), groups (N,)): only photos
    whose design has another photo; their rows in photo order.
    """
    lopo, truth, lodo, groups = [], [], [], []
    fit = metric_for or (lambda excluded: None)
    for i, photo in enumerate(photos):
        if sum(p.label == photo.label for p in photos) < 2:
            continue
        views, owners, labels = _gallery(photos, lambda j, p: j != i)
        lopo.append(_scores(photo.held, views, owners, len(labels), k, fit((i,))))
        truth.append(np.full(len(photo.held), labels.index(photo.label)))
        views, owners, labels = _gallery(photos, lambda j, p: p.label != photo.label)
        design = tuple(j for j, p in enumerate(photos) if p.label == photo.label)
        lodo.append(_scores(photo.held, views, owners, len(labels), k, fit(design)))
        groups.append(np.full(len(photo.held), i))
    if not lopo:
        raise ValueError("leave-one-photo-out needs a design with at least two photos")
    return tuple(np.concatenate(x) for x in (lopo, truth, lodo, groups))


def rates(pred, truth):
    """(right, Unknown or Blank, wrong) shares of views."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    right = float(np.mean(pred == truth))
    rejected = float(np.mean(pred < 0))
    return right, rejected, max(0.0, 1.0 - right - rejected)


def fit(lopo, truth, lodo, floor, max_risk=MAX_RISK, max_untaught=MAX_UNTAUGHT):
    """(tau, margin): the most LOPO views right with wrong <= ``max_risk`` and LODO views
    accepted <= ``max_untaught``. Ties go to the lower thresholds. Grid over quantiles."""
    top = np.sort(lopo, axis=1)
    taus = np.unique(np.concatenate([np.quantile(top[:, -1], np.linspace(0, 1, 61)),
                                     np.quantile(lodo.max(axis=1), np.linspace(0.5, 1, 41))]))
    gaps = top[:, -1] - top[:, -2]
    margins = np.unique(np.concatenate([[0.0], np.quantile(gaps, np.linspace(0, 0.6, 31))]))
    best = (-1.0, 1.0, 1.0)
    for tau in taus:
        for margin in margins:
            if np.mean(decide(lodo, tau, margin, floor) >= 0) > max_untaught:
                continue
            right, _, wrong = rates(decide(lopo, tau, margin, floor), truth)
            if wrong <= max_risk and right > best[0] + 1e-12:
                best = (right, float(tau), float(margin))
    return best[1], best[2]


def fit_floor(held_top, blank_top, at=FLOOR_AT):
    """Blank below this: ``at`` of the way from the blank probes' 99.5th percentile to the
    taught sock views' 0.5th percentile of best design scores."""
    blank = np.quantile(blank_top, 0.995)
    return float(blank + at * (np.quantile(held_top, 0.005) - blank))


def summarise(photos, blank_scores, k=K, max_risk=MAX_RISK, max_untaught=MAX_UNTAUGHT,
              metric_for=None):
    """The calibrated rule and its figures (shares 0-1) as a dict.

    ``blank_scores``: (B, C) design scores of frames with no sock, against the full gallery
    (in its metric); ``metric_for``: as :func:`held_out_scores`.
    """
    lopo, truth, lodo, groups = held_out_scores(photos, k, metric_for)
    floor = fit_floor(lopo.max(axis=1), blank_scores.max(axis=1))
    tau, margin = fit(lopo, truth, lodo, floor, max_risk, max_untaught)
    nested, nested_lodo = np.empty(len(truth), int), np.empty(len(truth), int)
    for group in np.unique(groups):
        inside = groups == group
        t, m = fit(lopo[~inside], truth[~inside], lodo[~inside], floor, max_risk, max_untaught)
        nested[inside] = decide(lopo[inside], t, m, floor)
        nested_lodo[inside] = decide(lodo[inside], t, m, floor)
    blanks = decide(blank_scores, tau, margin, floor)
    return {
        "k": k, "tau": tau, "margin": margin, "floor": floor,
        "max_risk": max_risk, "max_untaught": max_untaught,
        "folds": int(len(np.unique(groups))), "views": int(len(truth) // len(np.unique(groups))),
        "argmax_right": float(np.mean(lopo.argmax(axis=1) == truth)),
        "calibrated": dict(zip(("right", "unknown", "wrong"),
                               rates(decide(lopo, tau, margin, floor), truth))),
        "nested": dict(zip(("right", "unknown", "wrong"), rates(nested, truth))),
        "untaught_known": float(np.mean(decide(lodo, tau, margin, floor) >= 0)),
        "nested_untaught_known": float(np.mean(nested_lodo >= 0)),
        "blanks_to_blank": float(np.mean(blanks == BLANK_INDEX)),
        "blank_probes": int(len(blank_scores)),
    }


def three(shares):
    """'right/Unknown/wrong' in percent."""
    return "/".join("%.1f" % (100 * shares[k]) for k in ("right", "unknown", "wrong"))
