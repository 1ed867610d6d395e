"""Enrolment over many pairs of new synthetic designs (issue 23: 2 new designs enrolled from 3
photos, then 10 new photos of each: >= 95 % right, <= 1 wrong in 20; the 6 designs' LOPO
unchanged).

One pair (501, 502: the pair tests/test_enroll.py and the benchmark use) is one draw. This enrols
``PAIRS`` pairs per seed set (``--seeds 501 601 701``: designs 501-520, 601-620, 701-720) into a
base model and prints, per set and over all pairs, right / Unknown / wrong of their 20 new
photos, how many pairs meet the target, and for each grown 8-design model: the shared photos'
LOPO with the pair in the gallery, synthetic untaught socks called a known design, and frames
with no sock called Blank (the benchmark's blanks, and a fresh draw no calibration saw).

The base (``--head``):

- ``shipped``: model/ as it is (its gallery, metric if any, and calibration);
- ``taught``: what ``sortcore train --data ../shared/sock-photos`` computes now (gallery, the
  metric of sortcore.training.whiten, LOPO/LODO calibration), on cached embeddings;
- ``plain``: the same without a metric (plain cosine), recalibrated: the head before the metric.

Embeddings are cached in build/eye-cache/ like research/eye_sets.py's; a set of 10 pairs is
about a minute on one core once cached.

    PYTHONPATH=. .venv/bin/python research/eye_recall.py --head shipped --seeds 501 601 701
    VERBOSE=1 ... prints every miss (its best, second and own scores against tau and floor)
"""

import argparse
import collections
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eye_sets  # noqa: E402
from sortcore.classifier import openset  # noqa: E402
from sortcore.classifier.model import read_labels  # noqa: E402
from sortcore.training import augment, calibrate, synth, teach, views as teaching  # noqa: E402

MODEL = os.path.join(eye_sets.ROOT, "model")
PAIRS = 10
VERBOSE = os.environ.get("VERBOSE") == "1"

Base = collections.namedtuple("Base", "labels views owners taught calibration metric metric_for")


def shared_photos():
    return [teach.Photo(name, label, image) for label, name, image in eye_sets.photos()]


def taught_photos(sets):
    return [teach.Taught(label, sets["enrol/" + name], sets["held/" + name])
            for label, name, _ in eye_sets.photos()]


def probes(embedder, seed):
    """teach.blank_probes of the shared photos (as ``sortcore train`` draws them)."""
    return embedder.cached("recall-probes-%d" % seed,
                           lambda: teach.blank_probes(shared_photos(), seed=seed))


def others(embedder, first=synth.SPREAD_FIRST, designs=synth.SPREAD_DESIGNS,
           renders=synth.SPREAD_RENDERS):
    """teach.spread_embeddings on the cache: synth.spread_renders, one array a design."""
    return [embedder.cached("within-%d-%d" % (renders, seed),
                            lambda: synth.spread_renders(seed, 1, renders)[0])
            for seed in range(first, first + designs)]


def fresh_blanks(embedder):
    """Frames with no sock that no calibration draws: 200 synthetic (seed 7171) and 200 crops
    of the shared photos' backgrounds (seed 7172)."""
    def make():
        rng = np.random.RandomState(7171)
        return [augment.blank(rng, 448) for _ in range(200)] + eye_sets.background_crops(seed=7172)
    return embedder.cached("recall-fresh-blanks", make)


def gallery_of(taught):
    labels = sorted({t.label for t in taught})
    views = np.concatenate([t.views for t in taught])
    owners = np.concatenate([np.full(len(t.views), labels.index(t.label)) for t in taught])
    return labels, views, owners


def shipped_base(embedder, sets):
    """model/'s head; its LOPO folds in metrics refitted without the photo held out, as
    ``sortcore train`` calibrated them (when the gallery has a metric)."""
    labels = read_labels(os.path.join(MODEL, "labels.txt"))
    head = openset.load_head(MODEL, labels)
    taught, metric_for = taught_photos(sets), None
    if head.metric is not None:
        refit = teach.metric_fitter(openset.normalise(probes(embedder, teach.METRIC_SEED)), taught,
                                    others(embedder))
        metric_for = lambda excluded=(): refit(excluded) if excluded else head.metric  # noqa
    return Base(labels, head.views, head.owners, taught, head.calibration, head.metric, metric_for)


def taught_base(embedder, sets, with_metric=True):
    """teach.cross_validate on the cached embeddings: the base ``sortcore train`` makes."""
    taught = taught_photos(sets)
    labels, views, owners = gallery_of(taught)
    if with_metric:
        metric_for = teach.metric_fitter(openset.normalise(probes(embedder, teach.METRIC_SEED)),
                                         taught, others(embedder))
        metric = metric_for()
    else:
        metric_for, metric = None, None
    apply = (metric or openset._PLAIN).apply
    blank = openset.label_scores(apply(probes(embedder, teach.BLANK_SEED)), apply(views), owners,
                                 len(labels), calibrate.K)
    s = calibrate.summarise(taught, blank, metric_for=metric_for)
    print("calibrated: tau %.3f margin %.3f floor %.3f; LOPO argmax %.1f, calibrated %s, nested %s;"
          " LODO known %.1f / nested %.1f; blank probes %.1f" % (
              s["tau"], s["margin"], s["floor"], 100 * s["argmax_right"],
              calibrate.three(s["calibrated"]), calibrate.three(s["nested"]),
              100 * s["untaught_known"], 100 * s["nested_untaught_known"], 100 * s["blanks_to_blank"]))
    calibration = {key: s[key] for key in ("k", "tau", "margin", "floor")}
    return Base(labels, views, owners, taught, calibration, metric, metric_for)


def design_sets(embedder, seeds, views="shipped"):
    """{seed: (enrolment view embeddings, test photo embeddings)} of new synthetic designs."""
    make = teaching.enrol_views if views == "shipped" else getattr(teaching, "enrol_views_" + views)
    out = {}
    for seed in seeds:
        enrol, new = eye_sets.new_design(seed)
        out[seed] = (embedder.cached("recall-%s-%d" % (views, seed), lambda: make(enrol)),
                     embedder.cached("recall-test-%d" % seed, lambda: new))
    return out


def counts(pred, truth):
    right = int(np.sum(pred == truth))
    unknown = int(np.sum(pred < 0))
    return right, unknown, len(pred) - right - unknown


def decide(head, scores):
    """The head's rule on its design scores (a research variant may give a head its own)."""
    if hasattr(head, "decide"):
        return head.decide(scores)
    return openset.decide(scores, head.tau, head.margin, head.floor)


def rule(head, emb):
    return decide(head, head.scores(emb)[0])


def lopo_with(base, extra):
    """The shared photos' LOPO right/Unknown/wrong (shares) at the base's thresholds, with
    ``extra`` designs' views in every fold's gallery."""
    taught = base.taught + [teach.Taught("~extra%d" % i, v, v[:0]) for i, v in enumerate(extra)]
    lopo, truth, _, _ = calibrate.held_out_scores(taught, base.calibration["k"], base.metric_for)
    c = base.calibration
    return calibrate.rates(openset.decide(lopo, c["tau"], c["margin"], c["floor"]), truth)


def grown_head(base, pair, pairsets):
    names = base.labels + ["New%d" % s for s in pair]
    views = np.vstack([base.views] + [pairsets[s][0] for s in pair])
    owners = np.concatenate([base.owners] + [np.full(len(pairsets[s][0]), len(base.labels) + i)
                                             for i, s in enumerate(pair)])
    return openset.Head(names, views, owners, base.calibration, base.metric)


def evaluate(base, sets, fresh, pairsets, pairs):
    """One row per pair: right, Unknown, wrong (of 20), argmax right, 8-design untaught known
    %, blanks Blank %, fresh blanks Blank %, LOPO right/Unknown/wrong %."""
    rows = []
    for pair in pairs:
        head = grown_head(base, pair, pairsets)
        test = np.vstack([pairsets[s][1] for s in pair])
        truth = np.concatenate([np.full(len(pairsets[s][1]), len(base.labels) + i)
                                for i, s in enumerate(pair)])
        truth = np.array([head.designs.index(t) for t in truth])
        scores = head.scores(test)[0]
        pred = decide(head, scores)
        lopo = lopo_with(base, [pairsets[s][0] for s in pair])
        rows.append(counts(pred, truth) + (int(np.sum(scores.argmax(1) == truth)),
                                           100 * np.mean(rule(head, sets["untaught-test"]) >= 0),
                                           100 * np.mean(rule(head, sets["blanks"]) == -2),
                                           100 * np.mean(rule(head, fresh) == -2))
                    + tuple(100 * x for x in lopo))
        top = np.sort(scores, 1)
        for j in np.flatnonzero(pred != truth) if VERBOSE else ():
            print("    miss %s #%d: %s; best %.3f second %.3f own %.3f (tau %.3f floor %.3f)" % (
                pair, j, {-1: "Unknown", -2: "Blank"}.get(pred[j]) or
                head.labels[head.designs[pred[j]]], top[j, -1], top[j, -2], scores[j, truth[j]],
                head.tau, head.floor))
    return np.array(rows, float)


def base_figures(base, sets, fresh):
    """The base model's socks on a wall, untaught synthetic socks and blanks."""
    head = openset.Head(base.labels, base.views, base.owners, base.calibration, base.metric)
    photos = eye_sets.photos()
    pred = np.concatenate([rule(head, sets["frame/" + name]) for _, name, _ in photos])
    truth = np.concatenate([np.full(len(sets["frame/" + name]), base.labels.index(label))
                            for label, name, _ in photos])
    print("6 designs: LOPO at these thresholds %s; wall frames r/u/w %d/%d/%d; untaught known"
          " %d + %d of 400; blanks Blank %d of %d, fresh blanks %d of %d" % (
              "/".join("%.1f" % (100 * x) for x in lopo_with(base, [])),
              *counts(pred, truth), np.sum(rule(head, sets["untaught-test"]) >= 0),
              np.sum(rule(head, sets["untaught-cal"]) >= 0),
              np.sum(rule(head, sets["blanks"]) == -2), len(sets["blanks"]),
              np.sum(rule(head, fresh) == -2), len(fresh)))


def report(name, rows):
    r, w = rows[:, 0], rows[:, 2]
    if VERBOSE:
        print("  per pair r/u/w: " + " ".join("%d/%d/%d" % tuple(x[:3]) for x in rows))
    print("%-10s %2d pairs: right %.1f +- %.1f of 20 (min %d), Unknown %.1f, wrong %.2f +- %.2f"
          " (max %d), argmax %.1f; pairs <= 1 wrong %d, met (>= 19 right, <= 1 wrong) %d/%d | 8 designs:"
          " untaught known %.1f %%, blanks Blank %.1f %%, fresh blanks %.1f %%, LOPO %.1f/%.1f/%.1f" % (
              name, len(rows), r.mean(), r.std(), r.min(), rows[:, 1].mean(), w.mean(), w.std(),
              w.max(), rows[:, 3].mean(), int(np.sum(w <= 1)), int(np.sum((r >= 19) & (w <= 1))),
              len(rows),
              *rows[:, 4:].mean(axis=0)))


def run(base, embedder, sets, starts, views="shipped"):
    fresh = fresh_blanks(embedder)
    base_figures(base, sets, fresh)
    every = []
    for start in starts:
        seeds = list(range(start, start + 2 * PAIRS))
        pairs = [tuple(seeds[i:i + 2]) for i in range(0, len(seeds), 2)]
        rows = evaluate(base, sets, fresh, design_sets(embedder, seeds, views), pairs)
        report("seeds %d" % start, rows)
        every.append(rows)
    if len(every) > 1:
        report("all", np.concatenate(every))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", choices=("shipped", "taught", "plain"), default="shipped")
    parser.add_argument("--seeds", type=int, nargs="+", default=[501, 601, 701],
                        help="first design seed of each set of %d pairs" % PAIRS)
    parser.add_argument("--views", default="shipped", help="enrolment views of the new designs")
    args = parser.parse_args(argv)
    embedder = eye_sets.Embedder(os.path.join(MODEL, "lite0-int8.onnx"))
    sets = eye_sets.all_sets(embedder)
    base = (shipped_base(embedder, sets) if args.head == "shipped" else
            taught_base(embedder, sets, with_metric=args.head == "taught"))
    run(base, embedder, sets, args.seeds, args.views)


if __name__ == "__main__":
    main(sys.argv[1:])
