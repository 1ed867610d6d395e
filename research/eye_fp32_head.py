"""Does the shipped head (gallery embedded by the int8 net) answer the same on fp32 embeddings?

The DeepLens path runs the fp32 network on MXNet (parity <= 1e-4 with build/eye/lite0-fp32.onnx),
while model/gallery.npz holds int8 embeddings and model/calibration.json was fitted on them. This
scores research/eye_sets.py's sets (cached embeddings of both nets) three ways:

- ``int8/int8``: int8 queries against the int8 gallery (what ONNX Runtime ships);
- ``fp32/int8``: fp32 queries against the same int8 gallery and thresholds (the MXNet lambda with
  the shipped head);
- ``fp32/fp32``: fp32 queries against a gallery re-embedded with fp32 and recalibrated.

The gallery's metric (sortcore.training.whiten) is the int8 one for the shipped head (on the
camera too); LOPO refits it without the photo held out, as ``sortcore train`` calibrates. The
recalibrated heads fit theirs on their own net's blank probes and views.

    PYTHONPATH=. .venv/bin/python research/eye_fp32_head.py   # needs build/eye/ (export_lite0.py)
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eye_recall  # noqa: E402
import eye_sets  # noqa: E402
from sortcore.classifier import openset  # noqa: E402
from sortcore.classifier.model import read_labels  # noqa: E402
from sortcore.training import calibrate, teach  # noqa: E402
from sortcore.training.teach import Taught  # noqa: E402

MODEL = os.path.join(eye_sets.ROOT, "model")
NETS = {"int8": os.path.join(MODEL, "lite0-int8.onnx"),
        "fp32": os.path.join(eye_sets.ROOT, "build", "eye", "lite0-fp32.onnx")}


def taught(gallery_sets, query_sets, photos):
    return [Taught(label, gallery_sets["enrol/" + name], query_sets["held/" + name])
            for label, name, _ in photos]


def fitter(embedder, photos):
    """The metric refit without some photos, on ``embedder``'s blank probes (teach's draw)."""
    return teach.metric_fitter(openset.normalise(eye_recall.probes(embedder, teach.METRIC_SEED)),
                               photos, eye_recall.others(embedder))


def lopo_fixed(photos, calibration, metric_for):
    """LOPO and LODO with the shipped thresholds: (argmax right, right/unknown/wrong, LODO known)."""
    lopo, truth, lodo, _ = calibrate.held_out_scores(photos, calibration["k"], metric_for)
    args = calibration["tau"], calibration["margin"], calibration["floor"]
    pred = openset.decide(lopo, *args)
    return (float(np.mean(lopo.argmax(1) == truth)), calibrate.rates(pred, truth),
            float(np.mean(openset.decide(lodo, *args) >= 0)))


def labels_of(head, emb):
    return [label for label, _ in head.predict(emb)]


def main():
    photos = eye_sets.photos()
    embedders = {kind: eye_sets.Embedder(path) for kind, path in NETS.items()}
    sets = {kind: eye_sets.all_sets(embedder) for kind, embedder in embedders.items()}
    labels = read_labels(os.path.join(MODEL, "labels.txt"))
    shipped = openset.load_head(MODEL, labels)
    int8_views = np.concatenate([sets["int8"]["enrol/" + n] for _, n, _ in photos])
    print("shipped gallery vs int8 enrol cache: max |diff| %.1e (float16)"
          % np.abs(shipped.views - int8_views).max())
    for group in ("held/", "frame/", "blanks", "untaught-test"):
        names = [k for k in sets["int8"] if k.startswith(group)]
        cos = np.concatenate([(sets["int8"][k] * sets["fp32"][k]).sum(1) for k in names])
        print("cos(int8, fp32) on %-14s %4d frames, min %.4f mean %.4f" % (
            group, len(cos), cos.min(), cos.mean()))
    cal = shipped.calibration
    print("\n| gallery, thresholds | queries | LOPO argmax | LOPO right/Unknown/wrong | LODO known |")
    print("|---|---|---|---|---|")
    int8_fitter = fitter(embedders["int8"], taught(sets["int8"], sets["int8"], photos))
    for query in ("int8", "fp32"):
        argmax, shares, known = lopo_fixed(taught(sets["int8"], sets[query], photos), cal,
                                           int8_fitter)
        print("| int8, shipped | %s | %.1f %% | %s | %.1f %% |" % (
            query, 100 * argmax, "/".join("%.1f" % (100 * s) for s in shares), 100 * known))
    print("\nRecalibrated (calibrate.summarise, nested, teach's blank probes of the query net);")
    print("then the socks on a wall (frame/) through that head:")
    for gallery, query in (("int8", "int8"), ("int8", "fp32"), ("fp32", "fp32")):
        t = taught(sets[gallery], sets[query], photos)
        views = np.concatenate([x.views for x in t])
        owners = np.concatenate([np.full(len(x.views), labels.index(x.label)) for x in t])
        metric_for = fitter(embedders[gallery], t)
        metric = metric_for()
        probes = metric.apply(eye_recall.probes(embedders[query], teach.BLANK_SEED))
        blank = openset.label_scores(probes, metric.apply(views), owners, len(labels), 3)
        s = calibrate.summarise(t, blank, metric_for=metric_for)
        print("  gallery %s, queries %s: tau %.3f margin %.3f floor %.3f; argmax %.1f %%, nested "
              "%s, LODO known %.1f / %.1f %%" % (
                  gallery, query, s["tau"], s["margin"], s["floor"], 100 * s["argmax_right"],
                  calibrate.three(s["nested"]), 100 * s["untaught_known"],
                  100 * s["nested_untaught_known"]))
        head = openset.Head(labels, views, owners, s, metric)
        got = sum((labels_of(head, sets[query]["frame/" + n]) for _, n, _ in photos), [])
        truth = sum(([l] * len(sets[query]["frame/" + n]) for l, n, _ in photos), [])
        right = sum(x == t for x, t in zip(got, truth))
        known = sum(x not in ("Unknown", "Blank") for x in got)
        print("    frames right/Unknown/wrong %d/%d/%d" % (right, len(got) - known, known - right))
    print("\nShipped head (int8 gallery, shipped thresholds): labels, int8 vs fp32 queries")
    keys = ["frame/" + n for _, n, _ in photos] + ["held/" + n for _, n, _ in photos]
    keys += ["untaught-test", "untaught-cal", "blanks"]
    for group in ("frame/", "held/", "untaught-test", "untaught-cal", "blanks"):
        a = sum((labels_of(shipped, sets["int8"][k]) for k in keys if k.startswith(group)), [])
        b = sum((labels_of(shipped, sets["fp32"][k]) for k in keys if k.startswith(group)), [])
        truth = sum(([l] * len(sets["int8"]["frame/" + n]) for l, n, _ in photos), []) \
            if group == "frame/" else None
        line = "  %-14s %4d frames, %3d labels differ" % (group, len(a), sum(x != y for x, y in zip(a, b)))
        for kind, got in (("int8", a), ("fp32", b)):
            known = sum(x not in ("Unknown", "Blank") for x in got)
            if truth is not None:
                right = sum(x == t for x, t in zip(got, truth))
                line += "; %s right/Unknown/wrong %d/%d/%d" % (kind, right, len(got) - known,
                                                               known - right)
            else:
                line += "; %s known %d Blank %d" % (kind, known, got.count("Blank"))
        print(line)


if __name__ == "__main__":
    main()
