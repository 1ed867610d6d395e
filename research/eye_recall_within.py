"""The metric with a third source of "what varies while the design does not": synthetic designs
(seeds 20001-, disjoint from every design research/eye_recall.py measures) rendered several times
each (sortcore.training.synth.render: its own cut, pose, scale, background and light), their
renders' spread around their own design's mean. Measured like research/eye_recall.py (every
variant recalibrated as ``sortcore train`` does).

    PYTHONPATH=. .venv/bin/python research/eye_recall_within.py 100x6:1 100x6:3 ...

A spec ``NxR:W[,rank]``: N designs, R renders each, weight W of their rows (the blank frames
weigh 1, the taught views' spread whiten.WITHIN), the metric's rank (default whiten.RANK).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eye_recall  # noqa: E402
import eye_sets  # noqa: E402
from sortcore.classifier import openset  # noqa: E402
from sortcore.training import teach, whiten  # noqa: E402

SHIPPED_FIT = whiten.fit  # main() replaces teach.whiten.fit (the same module) per spec
FIRST = int(os.environ.get("FIRST", "20001"))
SEEDS = [int(s) for s in os.environ.get("SEEDS", "501 601 701 801 901").split()]


def fit_with(groups, weight, rank):
    """whiten.fit with ``groups`` (one (R, D) array a design) at weight ``weight``, in place of
    the shipped synthetic designs."""
    return lambda nuisance, photo_views, _others=(): SHIPPED_FIT(
        nuisance, photo_views, groups, spread=weight, rank=rank)


def trade(base, embedder, sets, taus):
    """For each tau (the calibrated margin and floor kept): the pairs' mean right / wrong of 20
    and the shared photos' LOPO wrong and LODO accepted (%, folds in their own metric): what
    accepting more of the new designs' photos costs on real socks."""
    from sortcore.training import calibrate
    lopo, truth, lodo, _ = calibrate.held_out_scores(base.taught, base.calibration["k"],
                                                     base.metric_for)
    c = base.calibration
    pairsets, rows = {}, []
    for start in SEEDS:
        seeds = list(range(start, start + 2 * eye_recall.PAIRS))
        pairsets.update(eye_recall.design_sets(embedder, seeds))
        rows += [tuple(seeds[i:i + 2]) for i in range(0, len(seeds), 2)]
    got = []
    for pair in rows:
        head = eye_recall.grown_head(base, pair, pairsets)
        test = np.vstack([pairsets[s][1] for s in pair])
        truth_p = np.concatenate([np.full(len(pairsets[s][1]), head.designs.index(
            len(base.labels) + i)) for i, s in enumerate(pair)])
        got.append((head.scores(test)[0], truth_p))
    untaught = [eye_recall.grown_head(base, pair, pairsets).scores(sets["untaught-test"])[0]
                for pair in rows[::5]]
    print("tau    pairs right wrong | LOPO r/u/w | LODO known | 8 designs: untaught known")
    for tau in taus:
        pred = [(openset.decide(sc, tau, c["margin"], c["floor"]), t) for sc, t in got]
        right = np.mean([np.sum(p == t) for p, t in pred])
        wrong = np.mean([np.sum((p >= 0) & (p != t)) for p, t in pred])
        r = calibrate.rates(openset.decide(lopo, tau, c["margin"], c["floor"]), truth)
        known = np.mean(openset.decide(lodo, tau, c["margin"], c["floor"]) >= 0)
        unk = np.mean([np.mean(openset.decide(u, tau, c["margin"], c["floor"]) >= 0)
                       for u in untaught])
        print("%.3f  %5.1f %5.2f | %.1f/%.1f/%.1f | %5.1f | %5.1f" % (
            tau, right, wrong, *(100 * np.array(r)), 100 * known, 100 * unk))


def main(specs):
    embedder = eye_sets.Embedder(os.path.join(eye_recall.MODEL, "lite0-int8.onnx"))
    sets = eye_sets.all_sets(embedder)
    for spec in specs:
        shape, _, rest = spec.partition(":")
        n, r = [int(x) for x in shape.split("x")]
        weight, _, rank = rest.partition(",")
        groups = eye_recall.others(embedder, FIRST, n, r)
        print("== %s" % spec)
        teach.whiten.fit = fit_with(groups, float(weight), int(rank or whiten.RANK))
        base = eye_recall.taught_base(embedder, sets)
        if os.environ.get("TRADE"):
            trade(base, embedder, sets, [float(t) for t in os.environ["TRADE"].split()])
        else:
            eye_recall.run(base, embedder, sets, SEEDS)


if __name__ == "__main__":
    main(sys.argv[1:])
