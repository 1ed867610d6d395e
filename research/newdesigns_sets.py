"""The sock holds the new-designs calibration (issue 24) measures, and their cached embeddings.

A *hold* is what the camera sees while a person holds one sock up: 12 frames (3 s at 4 fps) of
the sock on the session's wall (640x480, filling 35-90 % of it), moving, turning and changing
light from frame to frame (:func:`sortcore.devtools.sockvideo.moving`). Every sock of a
calibration session hangs on the same wall, as in a real laundry load.

Socks (each a fixed function of its seed):

- ``real/<photo>``: the 12 shared photos; the two photos of a design are two socks of one design;
- ``restyled/<d>/<a|b>``: design ``d`` (:func:`sortcore.training.restyle.design`, seeds 1000+
  for the calibration wall, others for a test wall: :func:`design_seeds`)
  on the two photos of one shared pair (its silhouette, folds, light and background), so the two
  socks of a pair are photographed differently and 8 designs share each silhouette pair;
- ``twin/<d>/<a|b>`` and ``twin/<d>/<a|b>-hue``: design ``d`` and the same cloth with its hues
  turned (a recoloured copy: another design to a person, nearly the same to ImageNet features).

The shared photos are read from ``../shared/sock-photos`` and never copied. Embeddings (L2
normalised, the shipped int8 net on one thread) go to ``build/eye-cache/<model>/nd-*.npy``.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eye_sets  # noqa: E402

from sortcore.devtools import sockvideo  # noqa: E402
from sortcore.training import restyle  # noqa: E402
from sortcore.training.mask import sock_mask  # noqa: E402

HOLD = 12
#: Pairs of shared photos whose sock masks hold (Google's two masks are the whole photo).
SILHOUETTES = (("file_16", "file_5"), ("file_87", "file_99"), ("file_90", "file_96"),
               ("file_108", "file_95"), ("file_92", "file_98"))
WALL_SEED = 77  # the calibration session; any other wall is a test session with its own designs


def design_seeds(wall_seed=WALL_SEED):
    """(restyled design seeds, twin design seeds) of a session: 40 and 10."""
    offset = 0 if wall_seed == WALL_SEED else 100000 + 100 * wall_seed
    return tuple(range(1000 + offset, 1040 + offset)), tuple(range(2000 + offset, 2010 + offset))


def session_wall(wall_seed=WALL_SEED):
    """The session's empty 640x480 scene: plain, gradient or textured wall."""
    return eye_sets.wall(np.random.RandomState(wall_seed)).copy()


def _noisy(frame, rng):
    return sockvideo.noisy(frame, rng)


def hold(image, mask, seed, wall_seed=WALL_SEED, frames=HOLD):
    """``frames`` 640x480 frames of the sock of ``image`` (cut out by ``mask``) held up on the
    session's wall (:func:`sortcore.devtools.sockvideo.held`)."""
    return sockvideo.held(image, mask, session_wall(wall_seed), frames, seed)


def features(frames, wall_seed=WALL_SEED):
    """What the camera side sees of each frame (:func:`sortcore.classifier.session.look`
    against an empty frame of the wall): the image it embeds and the sock's palette."""
    from sortcore.classifier import foreground, palette, session
    empty = foreground.small(_noisy(session_wall(wall_seed), np.random.RandomState(1)))
    looks = [session.look(frame, empty) for frame in frames]
    return [seen.image for seen in looks], np.array([palette.palette(seen.found.pixels) for seen in looks]), \
        sum(seen.found.box is None for seen in looks)


def hue_turned(pattern, seed):
    import cv2
    rng = np.random.RandomState(seed)
    hsv = cv2.cvtColor(pattern, cv2.COLOR_BGR2HSV).astype(np.int32)
    hsv[:, :, 0] = (hsv[:, :, 0] + rng.randint(45, 135)) % 180
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


def socks(wall_seed=WALL_SEED):
    """{sock name: (design name, BGR photo, sock mask)} of every sock above."""
    restyled, twins = design_seeds(wall_seed)
    photos = {name: (label, image) for label, name, image in eye_sets.photos()}
    masks = {name: sock_mask(image) for name, (_, image) in photos.items()}
    out = {"real/" + name: (label, image, masks[name]) for name, (label, image) in photos.items()}
    for d in restyled:
        pair, pattern = SILHOUETTES[d % len(SILHOUETTES)], restyle.design(d)
        for side, name in zip("ab", pair):
            out["restyled/%d/%s" % (d, side)] = (
                "r%d" % d, restyle.restyle(photos[name][1], pattern, d * 10 + ord(side), masks[name]),
                masks[name])
    for d in twins:
        pair, pattern = SILHOUETTES[d % len(SILHOUETTES)], restyle.design(d)
        for cloth, suffix in ((pattern, ""), (hue_turned(pattern, d), "-hue")):
            for side, name in zip("ab", pair):
                out["twin/%d/%s%s" % (d, side, suffix)] = (
                    "t%d%s" % (d, suffix),
                    restyle.restyle(photos[name][1], cloth, d * 10 + ord(side), masks[name]), masks[name])
    return out


def region_shifts(wall_seed=WALL_SEED):
    """({sock name: (HOLD,) colour shifts of its frames' regions, NaN without a region}
    (:func:`sortcore.classifier.foreground.shift`), the empty wall as the camera embeds it), cached
    beside the embeddings: what :func:`sortcore.classifier.session.head_label` needs of a frame
    besides its scores."""
    from sortcore.classifier import foreground
    path = os.path.join(eye_sets.CACHE, "ndshift%d-%s.npz" % (wall_seed, cut_tag()))
    wall = _noisy(session_wall(wall_seed), np.random.RandomState(1))
    if not os.path.isfile(path):
        empty = foreground.small(wall)
        shifts = {}
        for i, (name, (_, image, mask)) in enumerate(sorted(socks(wall_seed).items())):
            found = [foreground.find(f, empty) for f in hold(image, mask, 500 + i, wall_seed)]
            shifts[name] = np.array([f.shift if f.box else np.nan for f in found], np.float32)
        os.makedirs(eye_sets.CACHE, exist_ok=True)
        np.savez(path, **shifts)
    with np.load(path) as data:
        return {name: data[name] for name in data.files}, wall


def cut_tag():
    """The camera side's cut in the cache's names (a changed cut embeds again)."""
    from sortcore.classifier import foreground
    return "m%g" % foreground.MARGIN


def embedded(model_path, wall_seed=WALL_SEED):
    """{sock name: (design, (HOLD, D) embeddings of what the camera side embeds, (HOLD, BINS)
    palettes)}, cached; and how many frames had no sock box (their whole frame is embedded)."""
    embedder = eye_sets.Embedder(model_path)
    out, missed = {}, 0
    every = None
    for i, name in enumerate(sorted(socks_names(wall_seed))):
        key = os.path.join(embedder.cache, "ndv%d-%s-%s" % (wall_seed, cut_tag(), name.replace("/", "-")))
        if not os.path.isfile(key + "-palettes.npy"):
            every = every or socks(wall_seed)
            design, image, mask = every[name]
            images, palettes, miss = features(hold(image, mask, 500 + i, wall_seed), wall_seed)
            os.makedirs(embedder.cache, exist_ok=True)
            np.save(key + "-views.npy", embedder.embed(images))
            np.save(key + "-palettes.npy", palettes)
            np.save(key + "-missed.npy", np.array([miss]))
        out[name] = (design_of(name), np.load(key + "-views.npy"), np.load(key + "-palettes.npy"))
        missed += int(np.load(key + "-missed.npy")[0])
    return out, missed


def socks_names(wall_seed=WALL_SEED):
    restyled, twins = design_seeds(wall_seed)
    names = ["real/" + name for name in photo_labels()]
    names += ["restyled/%d/%s" % (d, side) for d in restyled for side in "ab"]
    names += ["twin/%d/%s%s" % (d, side, suffix) for d in twins for suffix in ("", "-hue") for side in "ab"]
    return names


def design_of(name):
    """The design of a sock name (the label of a real photo's folder, r<d>, t<d>[-hue])."""
    kind, rest = name.split("/", 1)
    if kind == "real":
        return photo_labels()[rest]
    d, side = rest.split("/")
    return ("r%s" if kind == "restyled" else "t%s") % d + ("-hue" if side.endswith("-hue") else "")


def photo_labels():
    """{photo name: its design} of the shared photos (without reading them)."""
    import glob
    return {os.path.basename(p)[:-4]: os.path.basename(os.path.dirname(p))
            for p in glob.glob(os.path.join(eye_sets.PHOTOS, "*", "*.jpg"))}


if __name__ == "__main__":
    import time
    start = time.time()
    for seed in (sys.argv[2:] or [WALL_SEED]):
        sets, missed = embedded(sys.argv[1] if len(sys.argv) > 1 else "model/lite0-int8.onnx", int(seed))
        print("wall %s: %d socks, %d frames without a sock box, %.0f s" % (seed, len(sets), missed, time.time() - start))
