"""Colour as a second opinion for the Unknown rule: the leave-one-photo-out table (issue #9).

    OMP_NUM_THREADS=1 MXNET_CPU_WORKER_NTHREADS=1 .venv/bin/python benchmarks/lopo_colour.py \\
        folds --out DIR [--photos 0 2 4] [--seed S] [--members N]  # net scores, fold%02d.npz
    .venv/bin/python benchmarks/lopo_colour.py combine --out DIR SEEDDIR...  # ensemble scores
    .venv/bin/python benchmarks/lopo_colour.py row --scores DIR   # the net's candidates row
    .venv/bin/python benchmarks/lopo_colour.py table --scores DIR   # every row of the table

``folds`` trains the shipped recipe (``TrainOptions()``) once per held-out photo through
:func:`sortcore.training.lopo.cross_validate` and saves one scores file per fold (run two
processes on disjoint ``--photos`` to use two cores); ``sortcore train --scores 'DIR/*.npz'``
calibrates from the same files. ``combine`` averages the fold files of single nets trained
with consecutive seeds into the scores of their ensemble (what ``folds --members N`` or
``sortcore train --members N`` computes; :func:`sortcore.training.lopo.mean_scores`). ``row``
prints one line of the model card's candidates table. ``table`` adds a colour descriptor of the same held-out views,
probes and prototype views (no training) and prints right/Unknown/wrong, calibrated (<= 1 %
wrong) and nested (every fitted parameter refitted without the photo), for the net alone (the
shipped :func:`sortcore.training.lopo.summarise`), colour alone and three fusions. Blank is
decided by the softmax in every row. Measured on 2026-12-02: no fusion beat the seed-0 net
alone on the nested figure; on the 3-member ensemble's scores cos + w * colour did, a little
(nested 83.8/14.6/1.7 against 82.5/15.4/2.1 %, model/README.md). The head has no colour term.
"""

import glob
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sortcore.classifier import openset  # noqa: E402
from sortcore.training import augment, lopo, train as training  # noqa: E402
from sortcore.training.prototypes import SEED, VIEWS, views_of  # noqa: E402

PHOTOS = os.path.join(os.path.dirname(ROOT), "shared", "sock-photos")
REJECTED = -10.0  # a score no threshold accepts


def colour(image, side=48, hue_bins=12, grey_bins=4, s_min=60, v_min=40, border_lab=20.0):
    """Hellinger-normalised histogram: hue x 2 saturation bins of coloured pixels, value bins
    of grey ones; pixels within ``border_lab`` (Lab) of the median border colour weigh 0.15."""
    import cv2
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
    ring = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    weight = np.where(np.linalg.norm(lab - np.median(ring, 0), axis=2) > border_lab, 1.0, 0.15)
    h, s, v = cv2.cvtColor(small, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32).T
    sat = np.clip((s - s_min) * 2 // (256 - s_min), 0, 1)
    index = np.where((s >= s_min) & (v >= v_min), (h * hue_bins // 180) * 2 + sat,
                     2 * hue_bins + np.minimum(v * grey_bins // 256, grey_bins - 1))
    hist = np.sqrt(np.bincount(index, weight.ravel(), 2 * hue_bins + grey_bins))
    return hist / (np.linalg.norm(hist) + 1e-8)


def colour_similarities(rest, labels, images, size):
    """(N, C): best cosine to a per-photo colour prototype of each label (Blank: synthetic)."""
    rng = np.random.RandomState(SEED)
    desc = np.array([colour(x) for x in images])
    out = np.full((len(images), len(labels)), -1.0)
    for c, label in enumerate(labels):
        sources = [[p.image] for p in rest if p.label == label] or [None]
        for source in sources:
            views = (views_of(source, VIEWS // 2, size, rng) if source else
                     [augment.blank(rng, size * 2) for _ in range(VIEWS)])
            proto = np.mean([colour(x) for x in views], axis=0)
            out[:, c] = np.maximum(out[:, c], desc @ (proto / np.linalg.norm(proto)))
    return out


def colour_scores(files, size=96):
    """Colour similarities (held, unknown probes, blank probes), one row per fold file."""
    labels, photos = training.load_photos(PHOTOS)
    probes = list(lopo.open_set_probes(size))
    rows = []
    for path in files:
        held = photos[int(os.path.basename(path)[4:6])]
        rest = [p for p in photos if p.path != held.path]
        rows.append([colour_similarities(rest, labels, images, size) for images in
                     [lopo.held_views(held.image, 20, size)] + probes])
    return [np.stack(c) for c in zip(*rows)]


def agree(cos, col, delta):
    """The net's cosines; rejected where colour rates the net's class > delta below its best."""
    ok = col[np.arange(len(col)), cos.argmax(1)] >= col.max(1) - delta
    return np.where(ok[:, None], cos, REJECTED)


RULES = {  # name: (fused score of net cosines and colour similarities, parameter grid)
    "colour alone": (lambda cos, col, p: col, [None]),
    "net class = colour argmax": (agree, [0.0]),
    "colour veto (delta fitted)": (agree, [0.0, 0.01, 0.02, 0.05, 0.1]),
    "cos + w * colour (w fitted)": (lambda cos, col, w: cos + w * col, [0.1, 0.25, 0.5, 1, 2]),
}


def fit(fuse, grid, cos, col, truth):
    """(parameter, tau, margin) with the most right answers at <= 1 % wrong."""
    fits = []
    for p in grid:
        score = fuse(cos, col, p)
        tau, margin = openset.calibrate(score, truth, lopo.MAX_RISK)
        fits.append((openset.rates(openset.decide(score, tau, margin), truth)[0], -len(fits),
                     p, tau, margin))
    return max(fits)[2:]


def fused_row(scores, colours, fuse, grid):
    """The same figures as :func:`sortcore.training.lopo.summarise` for one fused rule."""
    classes = scores.cos.shape[2]
    cos, col = scores.cos.reshape(-1, classes), colours[0].reshape(-1, classes)
    pb, views = scores.blank.reshape(-1), scores.cos.shape[1]
    truth, groups = np.repeat(scores.truth, views), np.repeat(np.arange(len(scores.truth)), views)
    b = scores.labels.index(openset.BLANK)
    p, tau, margin = fit(fuse, grid, cos, col, truth)
    blank_min = openset.calibrate_blank(fuse(cos, col, p), pb, truth, b, tau, margin)

    def rule(c, k, blank, q=p, t=tau, m=margin):
        return openset.decide_with_blank(fuse(c.reshape(-1, classes), k.reshape(-1, classes), q),
                                         blank.reshape(-1), b, t, m, blank_min)
    nested = np.empty(len(truth), int)
    for g in np.unique(groups):
        inside = groups == g
        q, t, m = fit(fuse, grid, cos[~inside], col[~inside], truth[~inside])
        nested[inside] = rule(cos[inside], col[inside], pb[inside], q, t, m)
    unknown = rule(scores.unknown_cos, colours[1], scores.unknown_blank)
    blanks = rule(scores.blanks_cos, colours[2], scores.blanks_blank)
    accepted = fuse(cos, col, p)
    return {"argmax_right": float(np.mean((accepted.max(1) > REJECTED) &
                                          (accepted.argmax(1) == truth))),
            "calibrated": openset.rates(rule(cos, col, pb), truth),
            "nested": openset.rates(nested, truth),
            "unknown_rejected": float(np.mean((unknown == openset.REJECT) | (unknown == b))),
            "blanks_to_blank": float(np.mean(blanks == b)), "parameter": p}


def table(directory):
    files = sorted(glob.glob(os.path.join(directory, "fold[0-9][0-9].npz")))
    scores, colours = lopo.load_scores(os.path.join(directory, "fold[0-9][0-9].npz")), \
        colour_scores(files)
    net = lopo.summarise(scores)
    rows = [("net alone (shipped rule)", dict(net, parameter=None, **{
        k: tuple(net[k][x] for x in ("right", "unknown", "wrong"))
        for k in ("calibrated", "nested")}))]
    rows += [(name, fused_row(scores, colours, *rule)) for name, rule in RULES.items()]
    pc = lambda x: "%.1f" % (100 * x)  # noqa: E731
    print("%d folds x %d held-out views; right/Unknown/wrong %%" % scores.cos.shape[:2])
    print("| rule | argmax right | calibrated | nested | unknown designs rejected |"
          " blanks -> Blank | fitted parameter |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            name, pc(r["argmax_right"]), "/".join(map(pc, r["calibrated"])),
            "/".join(map(pc, r["nested"])), pc(r["unknown_rejected"]),
            pc(r["blanks_to_blank"]), r["parameter"]))


def combine(out, directories):
    """Per fold, the mean of the seed directories' fold files (all must hold the same folds)."""
    os.makedirs(out, exist_ok=True)
    names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(directories[0],
                                                                        "fold[0-9][0-9].npz")))
    for name in names:
        lopo.mean_scores([lopo.load_scores(os.path.join(d, name)) for d in directories]).save(
            os.path.join(out, name))
    print("%d folds of %d members -> %s" % (len(names), len(directories), out))


def row(directory):
    scores = lopo.load_scores(os.path.join(directory, "fold[0-9][0-9].npz"))
    print("| %s |" % lopo.card_cells(lopo.summarise(scores)))


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    folds = sub.add_parser("folds", help="Net scores of the shipped recipe, one file per fold.")
    folds.add_argument("--out", required=True)
    folds.add_argument("--photos", type=int, nargs="*", help="Held-out photo indices (all).")
    folds.add_argument("--seed", type=int, default=0, help="Training seed (shipped: 0).")
    folds.add_argument("--members", type=int, default=1, help="Ensemble size (seeds seed...).")
    folds.add_argument("--cosine-loss", type=float, default=0.0,
                       help="TrainOptions.cosine_loss (shipped: 0).")
    folds.add_argument("--size", type=int, default=96,
                       help="TrainOptions.size, input pixels (shipped: 96; views at 2 x size).")
    folds.add_argument("--models", default=None,
                       help="Also export each fold's net to MODELS/foldNN_model (benchmarks/lopo_tta.py).")
    both = sub.add_parser("combine", help="Ensemble fold files from per-seed fold files.")
    both.add_argument("--out", required=True)
    both.add_argument("seeds", nargs="+", help="Folders of fold files, one per member.")
    sub.add_parser("row", help="One candidates row.").add_argument("--scores", required=True)
    sub.add_parser("table", help="The colour table.").add_argument("--scores", required=True)
    args = parser.parse_args(argv)
    if args.command in ("table", "row", "combine"):
        return (combine(args.out, args.seeds) if args.command == "combine" else
                {"table": table, "row": row}[args.command](args.scores))
    os.makedirs(args.out, exist_ok=True)
    for i in args.photos if args.photos is not None else range(len(training.load_photos(PHOTOS)[1])):
        options = training.TrainOptions(seed=args.seed, members=args.members,
                                        cosine_loss=args.cosine_loss, size=args.size)
        lopo.cross_validate(PHOTOS, options, views=20, progress=False, only=[i],
                            export_to=args.models).save(
            os.path.join(args.out, "fold%02d.npz" % i))
        print("fold %d saved" % i, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
