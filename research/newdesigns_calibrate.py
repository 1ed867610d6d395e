"""Calibrate and measure new designs (issue 24) on cached holds (research/newdesigns_sets.py).

    python research/newdesigns_calibrate.py pairs [WALL]        # the rule's grid, pair by pair
    python research/newdesigns_calibrate.py sessions [WALL] [N] # N simulated sessions, the real code
    python research/newdesigns_calibrate.py lopo                # the eye's leave-one-photo-out views

*pairs*: every sock's hold is a session design (its 12 frames), every other sock's first 4
frames a track deciding (the engine's min_frames): a pair of socks of different designs that
passes is a **false match** (a false pair), one of the same design that fails a **split**.
*sessions*: laundry loads of taught and untaught designs, both socks of each, in a random order,
12 frames (3 s at 4 fps) a sock and 2 s of wall between, through the real
:class:`~sortcore.classifier.newdesigns.NewDesigns` and :class:`~sortcore.core.engine.Engine`.
*lopo*: the brief's protocol on the eye's own cached views (whole photos, no crop, no wall):
gallery one photo's 20 held views, probes the other photo of its design and every other photo.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import newdesigns_sets as nd  # noqa: E402

from sortcore.classifier import newdesigns  # noqa: E402
from sortcore.classifier.newdesigns import colour_score, knn_score  # noqa: E402
from sortcore.classifier.backends import load_classifier  # noqa: E402
from sortcore.core.engine import Engine, EngineConfig, SockConfirmed  # noqa: E402
from sortcore.core.frames import Frame  # noqa: E402

MODEL = os.path.join(nd.eye_sets.ROOT, "model")
ONNX = os.path.join(MODEL, "lite0-int8.onnx")


def base(design):
    return design[:-4] if design.endswith("-hue") else design


def pair_scores(sets, decide=4, k=3):
    """[(kind, emb score, colour score, gallery, probe)]: kind 0 same design, 1 different, 2
    a recoloured twin."""
    names, rows = sorted(sets), []
    for g in names:
        dg, views, pals = sets[g]
        for p in names:
            if p == g:
                continue
            dp, pv, pp = sets[p]
            kind = 0 if dg == dp else 2 if base(dg) == base(dp) else 1
            rows.append((kind, knn_score(pv[:decide], views, k), colour_score(pp[:decide], pals), g, p))
    return rows


def pairs(wall):
    sets, missed = nd.embedded(ONNX, wall)
    rows = pair_scores(sets)
    kind = np.array([r[0] for r in rows])
    emb, col = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    print("wall %d: %d socks (%d frames without a box); %d same-design pairs, %d different, %d twins"
          % (wall, len(sets), missed, (kind == 0).sum(), (kind == 1).sum(), (kind == 2).sum()))
    for tau in (0.55, 0.58, 0.6, 0.62, 0.65, 0.68, 0.7):
        cells = []
        for colour in (0.3, 0.4, 0.5, 0.55, 0.6, 0.7):
            ok = (emb >= tau) & (col >= colour)
            cells.append("%.2f:%4.1f%%/%d/%d" % (colour, 100 * (1 - ok[kind == 0].mean()),
                                                 ok[kind == 1].sum(), ok[kind == 2].sum()))
        print("tau %.2f  colour:split/false/twin  %s" % (tau, "  ".join(cells)))
    rule = newdesigns.RULE
    neg = (kind > 0)
    ok = newdesigns.matches(rule, emb, col)
    print("RULE tau %.2f colour %.2f (or %s): split %.1f %% (%d of %d), false matches %d of %d (%.3f %%), twins %d of %d"
          % (rule.tau, rule.colour, ", ".join("%.2f and %.2f" % tier for tier in rule.tiers),
             100 * (1 - ok[kind == 0].mean()), (~ok[kind == 0]).sum(), (kind == 0).sum(),
             ok[kind == 1].sum(), (kind == 1).sum(), 100 * ok[kind == 1].mean(), ok[kind == 2].sum(), (kind == 2).sum()))
    for r, good in zip(rows, ok):
        if good and r[0] != 0:
            print("  false match: gallery %s probe %s emb %.3f colour %.3f" % (r[3], r[4], r[1], r[2]))
    print("  highest different-design emb score with colour >= rule: %.3f; highest colour with emb >= rule: %.3f"
          % (emb[neg & (col >= rule.colour)].max(initial=0), col[neg & (emb >= rule.tau)].max(initial=0)))


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "pairs"
    if what == "pairs":
        pairs(int(sys.argv[2]) if len(sys.argv) > 2 else nd.WALL_SEED)
    elif what == "sessions":
        import newdesigns_sessions
        newdesigns_sessions.main(sys.argv[2:])
    elif what == "lopo":
        import newdesigns_lopo
        newdesigns_lopo.main()


if __name__ == "__main__":
    main()
