"""The other heads and enrolment views tried against research/eye_recall.py's pairs of new designs
(model/README.md, "New designs"). Each is recalibrated as ``sortcore train`` does (LOPO and LODO,
nested) and measured on the same 30 pairs and figures.

    PYTHONPATH=. .venv/bin/python research/eye_recall_heads.py knn10 frac0.25 proto knn3+nap20 \
        knn3+imp0.99 knn3+beta1 whiten:1,0.3,128 whiten:1,0,128 views:zoom views:more owntau

- ``knnK`` plain cosine, mean of the K nearest views (K = 3: the head before the metric);
  ``fracF`` the nearest F of a label's views (k relative to the views a design has);
  ``proto`` cosine to the mean view (the issue's first method);
- ``+napR`` the top R directions of frames with no sock projected out;
- ``+impQ`` each label's score minus the Q quantile of its impostors' (frames with no sock,
  synthetic untaught socks of seed 9001, other labels' views): a threshold per design from
  what it attracts;
- ``+betaB`` accept when top1 + B (top1 - top2) >= tau (a trade of score against gap);
- ``whiten:S,W,R`` the shipped metric (sortcore.training.whiten) with shrink S, within W, rank R;
- ``views:NAME`` other enrolment views of the new designs (shipped metric): ``zoom`` (16 of 32
  augmented views zoomed out 50-95 % on a reflected border), ``more`` (80 views a photo),
  ``mild`` (crops of 70-100 % only), ``noturn`` (no fixed 90-degree turns);
- ``owntau`` the shipped metric with a tau per enrolled design: min(tau, the 10th percentile of
  its own leave-one-photo-out scores over its 3 photos), at least 0.45 (its own spread).
"""

import functools
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eye_recall  # noqa: E402
import eye_sets  # noqa: E402
from sortcore.classifier import openset  # noqa: E402
from sortcore.training import augment, calibrate, teach, views as teaching, whiten  # noqa: E402

SHIPPED_SCORES = openset.label_scores
PATCHED = [(openset, "label_scores"), (calibrate, "label_scores"), (openset, "decide"),
           (calibrate, "decide"), (calibrate, "fit"), (teach.whiten, "fit"),
           (eye_recall, "grown_head")]
ORIGINAL = [getattr(module, name) for module, name in PATCHED]


def unpatch():
    """Every variant starts from the shipped code."""
    for (module, name), value in zip(PATCHED, ORIGINAL):
        setattr(module, name, value)


def knn(k):
    return lambda emb, views, owners, classes, _k: SHIPPED_SCORES(emb, views, owners, classes, k)


def fraction(frac):
    def f(emb, views, owners, classes, _k):
        sims = np.asarray(emb, np.float32) @ np.asarray(views, np.float32).T
        out = np.full((len(sims), classes), -1.0, np.float32)
        for c in range(classes):
            own = sims[:, owners == c]
            if own.shape[1]:
                kk = max(1, int(round(frac * own.shape[1])))
                out[:, c] = np.partition(own, own.shape[1] - kk, axis=1)[:, -kk:].mean(axis=1)
        return out
    return f


def proto(emb, views, owners, classes, _k):
    out = np.full((len(emb), classes), -1.0, np.float32)
    for c in range(classes):
        if np.any(owners == c):
            out[:, c] = emb @ openset.normalise(views[owners == c].mean(0))
    return out


def projected(base, nuisance, rank):
    u = np.linalg.svd(nuisance, full_matrices=False)[2][:rank].T

    def away(x):
        x = np.asarray(x, np.float32)
        return openset.normalise(x - (x @ u) @ u.T)
    return lambda emb, views, owners, classes, k: base(away(emb), away(views), owners, classes, k)


def impostor_shifted(base, impostors, q):
    def f(emb, views, owners, classes, k):
        own, imp = base(emb, views, owners, classes, k), base(impostors, views, owners, classes, k)
        gal = base(views, views, owners, classes, k)
        return own - np.array([np.quantile(np.concatenate([imp[:, c], gal[owners != c, c]]), q)
                               for c in range(classes)], np.float32)
    return f


def beta_rule(beta):
    """decide and calibrate.fit for the acceptance score top1 + beta (top1 - top2): the shipped
    rule on scores shifted by beta times the gap (argmax and gap unchanged), Blank on the raw
    top1 (the shipped fit sees the shifted one; sock views are far above the floor)."""
    shipped_decide, shipped_fit = calibrate.decide, calibrate.fit

    def shifted(scores):
        order = np.sort(np.asarray(scores, np.float64), axis=1)
        return scores + beta * (order[:, -1:] - order[:, -2:-1])

    def decide(scores, tau, margin, floor, blank=None):
        pred = shipped_decide(shifted(scores), tau, margin, -np.inf)
        return np.where(np.max(scores, axis=1) < floor, -2, pred)

    def fit(lopo, truth, lodo, floor, *args):
        calibrate.decide = shipped_decide
        try:
            return shipped_fit(shifted(lopo), truth, shifted(lodo), floor, *args)
        finally:
            calibrate.decide = decide
    return decide, fit


def plain_variant(spec, embedder, sets):
    """Patch the scoring (and rule) for a plain-cosine ``spec``; returns the recalibrated base."""
    spec, _, beta = spec.partition("+beta")
    spec, _, imp = spec.partition("+imp")
    spec, _, nap = spec.partition("+nap")
    f = knn(int(spec[3:])) if spec.startswith("knn") else proto if spec == "proto" else \
        fraction(float(spec[4:]))
    nuisance = openset.normalise(eye_recall.probes(embedder, teach.METRIC_SEED))
    if nap:
        f = projected(f, nuisance, int(nap))
    if imp:
        f = impostor_shifted(f, np.vstack([nuisance, sets["untaught-cal"]]), float(imp))
    openset.label_scores = calibrate.label_scores = f
    if beta:
        openset.decide, calibrate.fit = beta_rule(float(beta))
        calibrate.decide = openset.decide
    return eye_recall.taught_base(embedder, sets, with_metric=False)


def zoomout(image, rng):
    h, w = image.shape[:2]
    f = rng.uniform(0.5, 0.95)
    small = cv2.resize(image, (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA)
    top, left = rng.randint(0, h - small.shape[0] + 1), rng.randint(0, w - small.shape[1] + 1)
    return cv2.copyMakeBorder(small, top, h - small.shape[0] - top, left,
                              w - small.shape[1] - left, cv2.BORDER_REFLECT_101)


def views_zoom(images, per_image=40, seed=5):
    rng, out = np.random.RandomState(seed), []
    for image in images:
        out += teaching.turns(image)
        out += [augment.augment(zoomout(image, rng) if i < 16 else image, rng, 448)
                for i in range(per_image - 8)]
    return out


def views_mild(images, per_image=40, seed=5):
    rng, out = np.random.RandomState(seed), []
    for image in images:
        out += teaching.turns(image)
        for _ in range(per_image - 8):
            v = cv2.resize(augment.random_resized_crop(image, rng, scale=(0.7, 1.0)), (448, 448),
                           interpolation=cv2.INTER_AREA)
            v = augment.rotate(v, rng.uniform(0, 360))
            v = v[:, ::-1] if rng.rand() < 0.5 else v
            out.append(augment.blur_and_noise(augment.colour_jitter(np.ascontiguousarray(v), rng), rng))
    return out


def views_noturn(images, per_image=40, seed=5):
    rng, out = np.random.RandomState(seed), []
    for image in images:
        out += [image] + [augment.augment(image, rng, 448) for _ in range(per_image - 1)]
    return out


teaching.enrol_views_zoom, teaching.enrol_views_mild = views_zoom, views_mild
teaching.enrol_views_noturn = views_noturn
teaching.enrol_views_more = functools.partial(teaching.enrol_views, per_image=80)


def own_taus(base, head, pair, pairsets, embedder, q=0.1, low=0.45):
    """Per enrolled design: min(tau, the q quantile of its photos' held views (20 each) scored
    against the gallery without that photo's views), at least ``low``."""
    taus = np.full(len(head.designs), head.tau)
    for j, seed in enumerate(pair):
        enrol, _ = eye_sets.new_design(seed)
        held = embedder.cached("recall-heldnew-%d" % seed, lambda: [
            augment.augment(im, rng, 448) for im in enrol
            for rng in [np.random.RandomState(777)] for _ in range(20)])
        design, own = head.designs.index(len(base.labels) + j), []
        for p in range(3):
            keep = np.ones(len(head.views), bool)
            first = len(base.views) + j * 120 + p * 40
            keep[first:first + 40] = False
            less = openset.Head(head.labels, head.views[keep], head.owners[keep], head.calibration,
                                head.metric)
            own.append(less.scores(held[p * 20:(p + 1) * 20])[0][:, design])
        taus[design] = max(low, min(head.tau, np.quantile(np.concatenate(own), q)))
    return taus


def owntau_rule(base, embedder):
    """Grown heads decide with a tau per design (:func:`own_taus`)."""
    grown = eye_recall.grown_head

    def grown_head(base_, pair, pairsets):
        head = grown(base_, pair, pairsets)
        taus = own_taus(base, head, pair, pairsets, embedder)

        def decide(scores):
            order, best = np.sort(scores, axis=1), np.argmax(scores, axis=1)
            ok = (order[:, -1] >= taus[best]) & (order[:, -1] - order[:, -2] >= head.margin)
            return np.where(order[:, -1] < head.floor, -2, np.where(ok, best, -1))
        head.decide = decide
        return head
    eye_recall.grown_head = grown_head


def main(specs):
    embedder = eye_sets.Embedder(os.path.join(eye_recall.MODEL, "lite0-int8.onnx"))
    sets = eye_sets.all_sets(embedder)
    for spec in specs:
        unpatch()
        print("== %s" % spec)
        views = "shipped"
        if spec.startswith("whiten:"):
            shrink, within, rank = spec[7:].split(",")
            teach.whiten.fit = functools.partial(whiten.fit, shrink=float(shrink),
                                                 within=float(within), rank=int(rank))
            base = eye_recall.taught_base(embedder, sets)
        elif spec.startswith("views:") or spec == "owntau":
            views = spec[6:] if spec.startswith("views:") else views
            base = eye_recall.taught_base(embedder, sets)
            if spec == "owntau":
                owntau_rule(base, embedder)
        else:
            base = plain_variant(spec, embedder, sets)
        eye_recall.run(base, embedder, sets, [501, 601, 701], views)


if __name__ == "__main__":
    main(sys.argv[1:])
