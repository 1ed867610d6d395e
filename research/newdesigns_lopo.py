"""The new-designs rule on the eye's leave-one-photo-out views (issue 24's protocol).

The two shared photos of a design are two socks of one design. A session design is made of one
photo's 20 held views (``held/<photo>`` of research/eye_sets.py: crops of 45-100 %, any
rotation, flips, colour, blur); tracks of 4 views decide against it: 5 tracks (20 views) of the
other photo of its design (a split when they do not match) and 5 of each photo of every other
design (a false match when they do). Whole photos, their own backgrounds, no empty scene to
crop against: palettes of all the pixels. Harsher than a session: the views of one track differ
as much as augmentation makes them, and the colour jitter of the views changes the palette.
"""

import numpy as np

import eye_sets
import newdesigns_calibrate as calib
from sortcore.classifier import palette
from sortcore.classifier.newdesigns import RULE, colour_score, knn_score


def held_palettes(image):
    import cv2
    out = []
    for view in eye_sets.held_views(image):
        small = cv2.resize(view, (160, 160), interpolation=cv2.INTER_AREA)
        out.append(palette.palette(small.reshape(-1, 3)))
    return np.array(out)


def main():
    sets = eye_sets.all_sets(eye_sets.Embedder(calib.ONNX))
    photos = eye_sets.photos()
    held = {name: (label, sets["held/" + name], held_palettes(image)) for label, name, image in photos}
    rows = []
    for g, (dg, gv, gp) in held.items():
        for p, (dp, pv, pp) in held.items():
            if p == g:
                continue
            for t in range(0, 20, 4):
                rows.append((dg == dp, knn_score(pv[t:t + 4], gv, RULE.k), colour_score(pp[t:t + 4], gp)))
    same = np.array([r[0] for r in rows])
    emb, col = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    print("LOPO: %d tracks of the same design, %d of different designs" % (same.sum(), (~same).sum()))
    for what, ok in (("embedding only (tau %.2f)" % RULE.tau, emb >= RULE.tau),
                     ("colours only (%.2f)" % RULE.colour, col >= RULE.colour),
                     ("the rule (both)", (emb >= RULE.tau) & (col >= RULE.colour))):
        print("  %-28s false matches %3d of %d (%.2f %%), splits %3d of %d (%.1f %%)" % (
            what, ok[~same].sum(), (~same).sum(), 100 * ok[~same].mean(), (~ok[same]).sum(), same.sum(),
            100 * (1 - ok[same].mean())))
    print("  different designs: emb p99 %.3f max %.3f; same design: emb median %.3f" % (
        np.quantile(emb[~same], 0.99), emb[~same].max(), np.median(emb[same])))
