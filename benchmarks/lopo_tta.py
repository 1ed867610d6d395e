"""Test-time view averaging (TTA) on the leave-one-photo-out folds, without training (issue #9).

    OMP_NUM_THREADS=1 MXNET_CPU_WORKER_NTHREADS=1 PYTHONPATH=$PWD .venv/bin/python \\
        benchmarks/lopo_tta.py FOLD_MODELS_DIR [--check benchmarks/lopo-scores/seed0] \\
        [--variants single flip flip-crop rot] [--with-members benchmarks/lopo-scores/seed1 ...]
    PYTHONPATH=$PWD taskset -c 0 .venv/bin/python benchmarks/lopo_tta.py FOLD_MODELS_DIR --time 1 2 4

``FOLD_MODELS_DIR`` holds ``foldNN_model`` folders (exported graphs of the nets
``lopo_colour.py folds`` trains, photo NN held out, :func:`sortcore.training.train.load_photos`
order; not committed, only their scores are). For each fold the prototypes are the shipped
ones (:func:`sortcore.training.prototypes.class_prototypes` of single views of the other
photos); each held-out view, unknown-design probe and blank probe is embedded as K variants of
the same image, their normalised embeddings averaged and renormalised (softmax averaged for
P(Blank)), then scored as :func:`sortcore.training.lopo.fold_scores` scores one view.
``single`` (K = 1) must reproduce the committed seed-0 row; ``--check`` compares every fold's
single-view scores with the committed ones. Prints one candidates row per variant set.
"""

import glob
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sortcore.classifier import model as clf_model, openset  # noqa: E402
from sortcore.training import augment, lopo, train as training  # noqa: E402
from sortcore.training.prototypes import class_prototypes, embed  # noqa: E402

PHOTOS = os.path.join(os.path.dirname(ROOT), "shared", "sock-photos")
DIM = 256


def centre_crop(image, share=0.85):
    h, w = image.shape[:2]
    ch, cw = int(round(h * share)), int(round(w * share))
    y, x = (h - ch) // 2, (w - cw) // 2
    return image[y:y + ch, x:x + cw]


def hflip(image):
    return np.ascontiguousarray(image[:, ::-1])


VARIANTS = {  # name: the K transforms of one frame (BGR, any size; preprocess resizes)
    "single": [lambda x: x],
    "flip": [lambda x: x, hflip],
    "flip-crop": [lambda x: x, hflip, centre_crop, lambda x: hflip(centre_crop(x))],
    "rot": [lambda x: x, lambda x: augment.rotate(x, 10), lambda x: augment.rotate(x, -10)],
}


def load_forward(directory):
    """``forward(nchw) -> (N, 256 + C)`` and the input size of one exported model folder."""
    import warnings
    import mxnet as mx
    symbol, params, _ = clf_model.model_files(directory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = mx.gluon.SymbolBlock.imports(symbol, ["data"], params, ctx=mx.cpu())
    net.hybridize(static_alloc=True)
    return (lambda batch: net(mx.nd.array(batch)).asnumpy()), clf_model.input_size(symbol)


def tta_embed(forward, images, size, transforms):
    """(N, D) renormalised mean of the K variants' embeddings and (N, S) mean softmax."""
    emb, soft = embed(forward, [t(x) for t in transforms for x in images], size, DIM)
    k, n = len(transforms), len(images)
    return (openset.normalise_blocks(emb.reshape(k, n, -1).mean(axis=0)),
            soft.reshape(k, n, -1).mean(axis=0))


def fold_rows(forward, size, labels, rest, sets, variants):
    """{variant: [cos, P(Blank)] per image set} against the fold's single-view prototypes."""
    protos = class_prototypes(forward, size, DIM, labels, rest)
    b = labels.index(openset.BLANK)
    out = {}
    for name in variants:
        out[name] = []
        for images in sets:
            emb, soft = tta_embed(forward, images, size, VARIANTS[name])
            out[name] += [openset.cosines(emb, protos), soft[:, b]]
    return out


def tta_scores(model_dir, variants):
    """{variant: :class:`sortcore.training.lopo.Scores`} over the fold models in ``model_dir``."""
    labels, photos = training.load_photos(PHOTOS)
    folders = sorted(glob.glob(os.path.join(model_dir, "fold[0-9][0-9]_model")))
    rows, truth = {name: [] for name in variants}, []
    for folder in folders:
        held = photos[int(os.path.basename(folder)[4:6])]
        if clf_model.read_labels(os.path.join(folder, "labels.txt")) != labels:
            raise ValueError("%s: labels differ from the photos'" % folder)
        forward, size = load_forward(folder)
        sets = [lopo.held_views(held.image, 20, size)] + list(lopo.open_set_probes(size))
        rest = [p for p in photos if p.path != held.path]
        for name, cols in fold_rows(forward, size, labels, rest, sets, variants).items():
            rows[name].append(cols)
        truth.append(labels.index(held.label))
    return {name: lopo.Scores(labels, np.array(truth), *[np.stack(c) for c in zip(*r)])
            for name, r in rows.items()}


def check(scores, directory):
    """Largest |difference| per field between ``scores`` and committed fold files."""
    saved = lopo.load_scores(os.path.join(directory, "fold[0-9][0-9].npz"))
    if not np.array_equal(saved.truth, scores.truth):
        raise ValueError("fold order differs from %s" % directory)
    return {f: float(np.abs(getattr(saved, f) - getattr(scores, f)).max()) for f in
            ("cos", "blank", "unknown_cos", "unknown_blank", "blanks_cos", "blanks_blank")}


def row(who, name, scores):
    return "| %s + TTA %s (K=%d) | %s |" % (who, name, len(VARIANTS[name]),
                                          lopo.card_cells(lopo.summarise(scores)))


def time_forward(folder, ks, repeats=300):
    """Median ms of one forward at batch K, and of preprocessing K variants of a 192 px frame."""
    forward, size = load_forward(folder)
    frame = augment.blank(np.random.RandomState(0), size * 2)
    for k in ks:
        transforms = VARIANTS["flip-crop"][:k]  # full, flip, crop, flipped crop
        batch = clf_model.preprocess([t(frame) for t in transforms], size)
        forward(batch)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            forward(batch)
            t1 = time.perf_counter()
            clf_model.preprocess([t(frame) for t in transforms], size)
            times.append((t1 - t0, time.perf_counter() - t1))
        net, pre = np.median(times, axis=0) * 1000
        print("batch %d: forward %.3f ms, preprocess %.3f ms" % (k, net, pre))


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", help="Folder of foldNN_model folders.")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--check", help="Folder of committed fold files the single view must match.")
    parser.add_argument("--with-members", nargs="*", default=[],
                        help="Committed fold-file folders of other members (single view) to "
                             "average with each TTA variant's scores, as combine does.")
    parser.add_argument("--time", type=int, nargs="*", choices=[1, 2, 3, 4],
                        help="Only time fold 0's net at these batch sizes K.")
    args = parser.parse_args(argv)
    if args.time:
        return time_forward(os.path.join(args.models, "fold00_model"), args.time)
    variants = list(dict.fromkeys((["single"] if args.check else []) + args.variants))
    start = time.time()
    scores = tta_scores(args.models, variants)
    if args.check:
        print("max |single - committed|:", check(scores["single"], args.check))
    others = [lopo.load_scores(os.path.join(d, "fold[0-9][0-9].npz")) for d in args.with_members]
    who = "seed 0" + "".join(" + " + os.path.basename(d.rstrip("/")) for d in args.with_members)
    for name in variants:
        print(row(who, name, lopo.mean_scores([scores[name]] + others)))
    print("%.0f s" % (time.time() - start))


if __name__ == "__main__":
    main(sys.argv[1:])
