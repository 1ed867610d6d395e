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

from sortcore.classifier.model import load_model  # noqa: E402
from sortcore.training.unknown_socks import confirmed_as, known as known_socks  # noqa: E402
from sortcore.training import synth  # noqa: E402


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
    confirmed = confirmed_as(clf, args.socks)
    wrong = known_socks(confirmed)
    print("per sock (12 frames at 5/s through the engine), %d socks: %s; counted as a known"
          " design: %d" % (args.socks, ", ".join("%d %s" % (n, k) for k, n in
                                                 confirmed.most_common()), wrong))


if __name__ == "__main__":
    main(sys.argv[1:])
