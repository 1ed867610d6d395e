"""How often a model calls a synthetic sock of an unknown design a known design, per frame
and per sock.

    .venv/bin/python benchmarks/unknown_designs.py [MODEL_DIR] [--seeds 31337 9001 1] [--socks 60]

Per sock: each of --socks synthetic socks (``synth.unknown_sock``, seeds 100 on) is held up
for 12 frames at 5 frames/s, moving in the hand (``sortcore.devtools.sockvideo.moving``); the
frames go through the engine (default config, sighting mode) and the sock counts as what the
engine confirms: a known design is the count being wrong.

For each seed, 100 views of :func:`sortcore.training.synth.unknown_views` (patterned socks of
designs no model was trained on, on wall/wood backgrounds) are classified one by one; prints
the labels counted and the share given a known design (the model card's "Measured after
training"). Not a test: tests/test_openset.py bounds it for seed 31337.
"""

import collections
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from sortcore.classifier.model import load_model  # noqa: E402
from sortcore.devtools.sockvideo import moving  # noqa: E402
from sortcore.engine import Engine, SockConfirmed  # noqa: E402
from sortcore.frames import Frame  # noqa: E402
from sortcore.training import synth  # noqa: E402


def per_sock(clf, socks, frames=12, fps=5.0):
    """{what the engine confirmed for each sock (or 'nothing'): socks}."""
    confirmed = collections.Counter()
    for seed in range(100, 100 + socks):
        sock = synth.unknown_sock(np.random.RandomState(seed), view_size=224)
        engine = Engine()
        events = []
        for i, p in enumerate(clf.classify_many(moving(sock, frames, seed))):
            events += engine.feed(Frame(p.label, p.probability, 1000.0 + i / fps, "bench", i))
        events += engine.close_all()
        labels = sorted({e.label for e in events if isinstance(e, SockConfirmed)})
        confirmed[" + ".join(labels) or "nothing"] += 1
    return confirmed


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", default=os.path.join(ROOT, "model"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[31337, 9001, 1])
    parser.add_argument("--socks", type=int, default=60, help="Socks for the per-sock count.")
    args = parser.parse_args(argv)
    clf = load_model(args.model_dir)
    for seed in args.seeds:
        labels = [p.label for p in clf.classify_many(synth.unknown_views(100, seed=seed))]
        counts = collections.Counter(labels).most_common()
        known = sum(n for label, n in counts if label not in ("Unknown", "Blank"))
        print("seed %d: %s; known design %d of %d" % (
            seed, ", ".join("%d %s" % (n, label) for label, n in counts), known, len(labels)))
    confirmed = per_sock(clf, args.socks)
    wrong = sum(n for label, n in confirmed.items() if label not in ("Unknown", "nothing"))
    print("per sock (12 frames at 5/s through the engine), %d socks: %s; counted as a known"
          " design: %d" % (args.socks, ", ".join("%d %s" % (n, k) for k, n in
                                                 confirmed.most_common()), wrong))


if __name__ == "__main__":
    main(sys.argv[1:])
