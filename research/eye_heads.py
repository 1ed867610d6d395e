"""Compare open-set heads on the cached embeddings of research/eye_sets.py (no network time).

    python research/eye_heads.py build/eye/lite0-int8.onnx
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eye_sets  # noqa: E402

MAX_RISK = 0.01


def gallery(sets, names, extra=()):
    """(labels, [view embeddings per design]) from photo names (label/name) and extra designs."""
    by = {}
    for label, name in names:
        by.setdefault(label, []).append(sets["enrol/" + name])
    for label, emb in extra:
        by.setdefault(label, []).append(emb)
    labels = sorted(by)
    return labels, [np.concatenate(by[l]) for l in labels]


def scorer(method):
    def mean(emb, views):
        protos = np.stack([v.mean(0) / np.linalg.norm(v.mean(0)) for v in views])
        return emb @ protos.T

    def knn(k):
        def f(emb, views):
            out = np.empty((len(emb), len(views)), np.float32)
            for c, v in enumerate(views):
                s = np.sort(emb @ v.T, axis=1)[:, ::-1][:, :k]
                out[:, c] = s.mean(1)
            return out
        return f
    if method == "mean":
        return mean
    return knn(int(method[3:]))


def decide(scores, tau, margin, floor):
    """class index, -1 Unknown, -2 Blank."""
    order = np.sort(scores, axis=1)
    top1, top2 = order[:, -1], order[:, -2]
    pred = np.where((top1 >= tau) & (top1 - top2 >= margin), scores.argmax(1), -1)
    return np.where(top1 < floor, -2, pred)


def calibrate(scores, truth, floor, untaught=None, max_untaught=None):
    """(tau, margin): most right with wrong <= MAX_RISK (and untaught accepted <= max_untaught)."""
    order = np.sort(scores, axis=1)
    taus = np.unique(np.quantile(order[:, -1], np.linspace(0, 1, 61)))
    if untaught is not None:
        taus = np.unique(np.concatenate([taus, np.quantile(np.sort(untaught, 1)[:, -1],
                                                            np.linspace(0.5, 1, 41))]))
    gaps = order[:, -1] - order[:, -2]
    margins = np.unique(np.concatenate([[0.0], np.quantile(gaps, np.linspace(0, 0.6, 31))]))
    best = (-1, 0, 0)
    for tau in taus:
        for margin in margins:
            pred = decide(scores, tau, margin, floor)
            right, wrong = np.mean(pred == truth), np.mean(pred >= 0) - np.mean(pred == truth)
            if wrong > MAX_RISK:
                continue
            if untaught is not None and np.mean(decide(untaught, tau, margin, floor) >= 0) > max_untaught:
                continue
            if right > best[0] + 1e-12:
                best = (right, tau, margin)
    return best[1], best[2]


def rates(pred, truth):
    right = np.mean(pred == truth)
    unknown = np.mean(pred < 0)
    return 100 * right, 100 * unknown, 100 * (1 - right - unknown)


def lopo(sets, photos, score, floor, max_untaught=None):
    """LOPO held views (fold p: gallery without photo p) and leave-one-design-out probes (the
    same views against a gallery without their design: every acceptance is wrong), the rule
    calibrated on both and nested (refitted without photo p's views of either kind)."""
    names = [(l, n) for l, n, _ in photos]
    s, truth, unt = [], [], []
    for p, (label, name) in enumerate(names):
        labels, views = gallery(sets, names[:p] + names[p + 1:])
        s.append(score(sets["held/" + name], views))
        truth.append(np.full(len(s[-1]), labels.index(label)))
        unt.append(score(sets["held/" + name], gallery(sets, [x for x in names if x[0] != label])[1]))
    groups = np.concatenate([np.full(len(x), g) for g, x in enumerate(s)])
    s, truth, unt = np.concatenate(s), np.concatenate(truth), np.concatenate(unt)
    use = unt if max_untaught is not None else None
    tau, margin = calibrate(s, truth, floor, use, max_untaught)
    nested, nested_unt = np.empty(len(truth), int), np.empty(len(truth), int)
    for g in range(groups.max() + 1):
        inside = groups == g
        t, m = calibrate(s[~inside], truth[~inside], floor,
                         None if use is None else use[~inside], max_untaught)
        nested[inside] = decide(s[inside], t, m, floor)
        nested_unt[inside] = decide(unt[inside], t, m, floor)
    return {"argmax": 100 * np.mean(s.argmax(1) == truth), "cal": rates(decide(s, tau, margin, floor), truth),
            "nested": rates(nested, truth), "tau": tau, "margin": margin,
            "lodo_known": 100 * np.mean(decide(unt, tau, margin, floor) >= 0),
            "nested_lodo_known": 100 * np.mean(nested_unt >= 0),
            "held_top1_min": float(np.sort(s, 1)[:, -1].min()),
            "held_top1_p1": float(np.quantile(np.sort(s, 1)[:, -1], 0.01))}


def full(sets, photos, score, tau, margin, floor):
    names = [(l, n) for l, n, _ in photos]
    labels, views = gallery(sets, names)
    out = {}
    fr = np.concatenate([score(sets["frame/" + n], views) for _, n in names])
    truth = np.concatenate([np.full(len(sets["frame/" + n]), labels.index(l)) for l, n in names])
    out["frames"] = rates(decide(fr, tau, margin, floor), truth)
    for key in ("untaught-cal", "untaught-test"):
        pred = decide(score(sets[key], views), tau, margin, floor)
        out[key + " known%"] = 100 * np.mean(pred >= 0)
    bl = score(sets["blanks"], views)
    out["blanks blank%"] = 100 * np.mean(decide(bl, tau, margin, floor) == -2)
    out["blanks top1 max"] = float(np.sort(bl, 1)[:, -1].max())
    new = [("new%d" % d, sets["new-enrol/%d" % d]) for d in eye_sets.NEW_DESIGNS]
    labels2, views2 = gallery(sets, names, new)
    nt = np.concatenate([score(sets["new-test/%d" % d], views2) for d in eye_sets.NEW_DESIGNS])
    truth2 = np.concatenate([np.full(len(sets["new-test/%d" % d]), labels2.index("new%d" % d))
                             for d in eye_sets.NEW_DESIGNS])
    out["new designs r/u/w"] = rates(decide(nt, tau, margin, floor), truth2)
    pred = decide(score(sets["untaught-test"], views2), tau, margin, floor)
    out["untaught-test known% (8 designs)"] = 100 * np.mean(pred >= 0)
    return out


def main():
    sets = eye_sets.all_sets(eye_sets.Embedder(sys.argv[1]))
    photos = eye_sets.photos()
    floors = [float(f) for f in os.environ.get("FLOORS", "0.45").split()]
    caps = [None if c == "none" else float(c) for c in os.environ.get("CAPS", "none").split()]
    for method in os.environ.get("METHODS", "mean knn1 knn3 knn10").split():
        score = scorer(method)
        for floor in floors:
            for cap in caps:
                res = lopo(sets, photos, score, floor, cap)
                f = full(sets, photos, score, res["tau"], res["margin"], floor)
                print("== %s floor %.2f untaught cap %s" % (method, floor, cap))
                print("  LOPO argmax %.1f cal %s nested %s LODO known %.1f nested %.1f tau %.3f margin %.3f held top1 min %.3f p1 %.3f" % (
                    res["argmax"], "/".join("%.1f" % x for x in res["cal"]),
                    "/".join("%.1f" % x for x in res["nested"]), res["lodo_known"], res["nested_lodo_known"], res["tau"], res["margin"],
                    res["held_top1_min"], res["held_top1_p1"]))
                print("  " + "; ".join("%s %s" % (k, "/".join("%.1f" % x for x in v) if isinstance(v, tuple)
                                                 else "%.3f" % v) for k, v in f.items()))


if __name__ == "__main__":
    main()
