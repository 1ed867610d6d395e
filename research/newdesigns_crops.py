"""Which cut of a held sock to embed (issue 24): taught socks recognised, untaught ones paired.

    PYTHONPATH=. python research/newdesigns_crops.py [FIRST_SEED] [SEEDS] [UNTAUGHT]

Per seed, a wall (as :func:`sortcore.devtools.sockvideo.new_designs_video` makes it), UNTAUGHT
restyled designs (both socks) and the three taught photos of the bench, each held up for 12
frames (:func:`sortcore.devtools.sockvideo.held`), the sock found against the wall
(:func:`sortcore.classifier.foreground.find`). For each way of cutting the frame (see CUTS):

- taught: frames the head names right, and tracks whose first 4 frames the track rule names right;
- untaught: frames the head names a taught design (a false pair with the taught), frames it
  would call Blank (best design score < the region floor);
- between tracks, as :meth:`NewDesigns._decide` compares a track's first 4 frames with a
  design's views: the k-NN score of the same design's other sock (must pass) and of every
  other design (must not); with the colour gate, how many same pairs pass and different pass.
"""

import collections
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PHOTOS = os.path.join(os.path.dirname(ROOT), "shared", "sock-photos")

from sortcore.classifier import foreground, palette  # noqa: E402
from sortcore.classifier.backends import load_classifier  # noqa: E402
from sortcore.classifier.newdesigns import RULE, colour_score, knn_score, matches  # noqa: E402
from sortcore.classifier.openset import normalise  # noqa: E402
from sortcore.classifier.session import judge_for  # noqa: E402
from sortcore.devtools import sockvideo  # noqa: E402

TAUGHT = ("Github/file_90.jpg", "Github/file_96.jpg", "Streamsets/file_92.jpg")


def cut(margin):
    def cut(frame, found):
        return foreground.crop(frame, found.box, margin) if found.box else frame
    return cut


def cut_box(margin):
    def cut(frame, found):
        if not found.box:
            return frame
        x0, y0, x1, y1 = found.box
        mx, my = int(round((x1 - x0) * margin)), int(round((y1 - y0) * margin))
        return np.ascontiguousarray(frame[max(0, y0 - my):y1 + my, max(0, x0 - mx):x1 + mx])
    return cut


CUTS = collections.OrderedDict([
    ("square .12", cut(0.12)),  # the camera side's (foreground.MARGIN)
    ("square .05", cut(0.05)),
    ("square 0", cut(0.0)),
    ("box .05", cut_box(0.05)),  # not square: stretched to the net's square input
])


def socks_of(seed, untaught):
    """[(truth, frames, palettes, founds)] of one seed: untaught designs' socks, then taught."""
    import cv2
    from sortcore.training import augment, restyle
    from sortcore.training.mask import sock_mask

    def photo(name):
        image = cv2.imread(os.path.join(PHOTOS, name))
        return image, sock_mask(image)
    rng = np.random.RandomState(seed)
    socks = []
    for design in rng.choice(np.arange(5000, 6000), untaught, replace=False):
        cloth = restyle.design(int(design))
        for k, name in enumerate(sockvideo.SILHOUETTES[rng.randint(len(sockvideo.SILHOUETTES))]):
            image, mask = photo(name)
            socks.append(("r%d" % design, restyle.restyle(image, cloth, int(design) * 10 + k, mask), mask))
    for name in TAUGHT:
        socks.append((name.split("/")[0],) + photo(name))
    wall = augment.blank(np.random.RandomState(seed + 100), 640, kinds=3)[:480]
    empty = foreground.small(sockvideo.noisy(wall, rng))
    out = []
    for i, (truth, image, mask) in enumerate(socks):
        frames = sockvideo.held(image, mask, wall, 12, seed * 1000 + i)
        founds = [foreground.find(frame, empty) for frame in frames]
        out.append((truth, frames, [palette.palette(f.pixels) for f in founds], founds))
    return out


def main():
    first = int(sys.argv[1]) if len(sys.argv) > 1 else 101
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    untaught = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    classifier = load_classifier(os.path.join(ROOT, "model"))
    head = classifier.head
    judge = judge_for(head)
    stats = collections.defaultdict(collections.Counter)
    same, other = collections.defaultdict(list), collections.defaultdict(list)
    for seed in range(first, first + seeds):
        socks = socks_of(seed, untaught)
        for name, cut in CUTS.items():
            s = stats[name]
            tracks = []
            for truth, frames, palettes, founds in socks:
                embeddings = classifier.embed([cut(f, fd) for f, fd in zip(frames, founds)])
                scores = head.scores(embeddings)[0]
                labels = [label for label, _ in head.predict_scores(scores)]
                best = scores.max(axis=1)
                if truth.startswith("r"):
                    s["untaught frames"] += len(labels)
                    s["untaught named taught"] += sum(l not in ("Unknown", "Blank") for l in labels)
                    s["untaught below floor"] += int((best < head.floor).sum())
                    tracks.append((truth, normalise(embeddings), palettes))
                    named = collections.Counter(l for l in labels[:4] if l not in ("Unknown", "Blank")).most_common(1)
                    wrong = bool(named) and (2 * named[0][1] >= 4 or judge(scores[:4].mean(axis=0)) is not None)
                    s["untaught tracks taught"] += int(wrong)
                else:
                    s["taught frames"] += len(labels)
                    s["taught frames right"] += sum(l == truth for l in labels)
                    s["taught tracks"] += 1
                    named = collections.Counter(labels[:4]).most_common(1)[0]
                    right = named[0] == truth and 2 * named[1] >= 4 or judge(scores[:4].mean(axis=0)) == truth
                    s["taught tracks right"] += int(right)
            for i, (ti, vi, pi) in enumerate(tracks):
                for j, (tj, vj, pj) in enumerate(tracks):
                    if i == j:
                        continue
                    score = knn_score(vi[:4], vj, RULE.k)
                    colour = colour_score(pi[:4], np.asarray(pj))
                    passes = bool(matches(RULE, score, colour))
                    (same if ti == tj else other)[name].append(score)
                    key = "same" if ti == tj else "different"
                    s[key + " pairs"] += 1
                    s[key + " pass"] += int(passes)
                    s[key + " knn"] += int(score >= RULE.tau)
                    s[key + " colour"] += int(colour >= RULE.colour)
        print("seed %d done" % seed, file=sys.stderr)
    for name in CUTS:
        s = stats[name]
        print("%-11s taught frames %d/%d tracks %d/%d | untaught named taught %d (tracks %d), below floor %d of %d"
              " | same pass %d/%d (knn %d colour %d, median %.2f) different pass %d/%d (knn %d colour %d, 99%% %.2f)"
              % (name, s["taught frames right"], s["taught frames"], s["taught tracks right"], s["taught tracks"],
                 s["untaught named taught"], s["untaught tracks taught"], s["untaught below floor"], s["untaught frames"],
                 s["same pass"], s["same pairs"], s["same knn"], s["same colour"], np.median(same[name]),
                 s["different pass"], s["different pairs"], s["different knn"], s["different colour"],
                 np.percentile(other[name], 99)))


if __name__ == "__main__":
    main()
