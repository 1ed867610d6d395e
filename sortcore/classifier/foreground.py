"""Where the sock is in a frame of a still camera: the part that differs from the empty scene.

The camera of a sorting station does not move, and between socks it sees the empty scene (the
frames the eye calls ``Blank``). A frame with a sock differs from that scene where the sock is:
:func:`find` gives the box around the largest region that differs and its pixels, and
:func:`crop` cuts the box out (square, with a margin). New designs are remembered by their sock,
not by the wall every sock of the session shares: ImageNet features of a whole frame are mostly
the wall (docs/classifier.md, New designs).

Works on a small copy of the frame (160 px wide), about a millisecond. Python 3.7 compatible.
"""

import collections

import numpy as np

#: Width of the copy the difference is taken on.
WORK_WIDTH = 160
#: A pixel differs when a channel differs by more than this (0-255), after a blur.
THRESHOLD = 28
#: The region must cover at least MIN_FRACTION of the frame; one of MAX_FRACTION or more means
#: the scene itself changed (the light, the camera moved).
MIN_FRACTION, MAX_FRACTION = 0.01, 0.85
#: The crop's margin around the box, as a fraction of its side (docs/classifier.md, New designs).
MARGIN = 0.12

#: ``box`` (x0, y0, x1, y1) in the frame, or None; ``pixels``: (N, 3) BGR pixels of the small
#: copy inside the region (all of them when there is no region); ``changed``: the scene itself
#: differs (no region can be told apart).
#: ``scene``: the frame as :func:`small` gives it (what becomes the empty scene when it is one);
#: ``still``: no pixel of the frame differs from the empty scene (the frame is the empty scene);
#: ``shift``: how far the region's colours moved from the empty scene's under it (:func:`shift`;
#: 0 without a region).
Found = collections.namedtuple("Found", ["box", "pixels", "changed", "scene", "still", "shift"])


def _cv2():
    import cv2
    return cv2


def _shrink(image):
    cv2 = _cv2()
    h, w = image.shape[:2]
    scale = WORK_WIDTH / float(w)
    size = (WORK_WIDTH, max(1, int(round(h * scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def small(image):
    """What :func:`find` compares: the frame :data:`WORK_WIDTH` px wide, blurred; its scale."""
    shrunk, scale = _shrink(image)
    return _cv2().GaussianBlur(shrunk, (5, 5), 0), scale


def find(image, empty):
    """The sock of ``image`` against ``empty`` (:func:`small` of an empty frame of the same
    camera, or None: nothing to compare with, the whole frame is the sock)."""
    cv2 = _cv2()
    shrunk, scale = _shrink(image)
    now = cv2.GaussianBlur(shrunk, (5, 5), 0)
    scene = (now, scale)
    if empty is None or empty[0].shape != now.shape:
        return Found(None, shrunk.reshape(-1, 3), empty is not None, scene, False, 0.0)
    differs = (np.abs(now.astype(np.int16) - empty[0].astype(np.int16)).max(axis=2) > THRESHOLD)
    if not differs.any():
        return Found(None, shrunk.reshape(-1, 3), False, scene, True, 0.0)
    differs = cv2.morphologyEx(differs.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    differs = cv2.morphologyEx(differs, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(differs)
    if count < 2:
        return Found(None, shrunk.reshape(-1, 3), False, scene, False, 0.0)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = stats[best]
    fraction = area / float(differs.size)
    if not MIN_FRACTION <= fraction < MAX_FRACTION:
        return Found(None, shrunk.reshape(-1, 3), fraction >= MAX_FRACTION, scene, False, 0.0)
    box = tuple(int(round(v / scale)) for v in (x, y, x + w, y + h))
    region = labels == best
    return Found(box, shrunk[region], False, scene, False, shift(now[region], empty[0][region]))


def shift(now, before):
    """The mean L1 distance between the chromaticities (each channel over the pixel's sum, the
    sum padded by 30 so near-black pixels count little) of (N, 3) pixels ``now`` and
    ``before``: a shadow or a patch of light scales a pixel and keeps it (0.01-0.12 measured),
    a sock put in front of the wall changes it (docs/classifier.md, New designs)."""
    now, before = np.asarray(now, np.float32), np.asarray(before, np.float32)
    if not len(now):
        return 0.0
    chroma = now / (now.sum(axis=1, keepdims=True) + 30.0) - before / (before.sum(axis=1, keepdims=True) + 30.0)
    return float(np.abs(chroma).sum(axis=1).mean())


def square(box, shape, margin=MARGIN):
    """``box`` grown by ``margin`` and to a square, moved and clipped to fit an image of
    ``shape`` (a square as large as fits when it cannot)."""
    x0, y0, x1, y1 = box
    height, width = shape[:2]
    side = int(round(max(x1 - x0, y1 - y0) * (1 + 2 * margin)))
    side = max(1, min(side, width, height))
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left = min(max(0, cx - side // 2), width - side)
    top = min(max(0, cy - side // 2), height - side)
    return left, top, left + side, top + side


def crop(image, box, margin=MARGIN):
    """The square crop around ``box`` (a contiguous copy)."""
    x0, y0, x1, y1 = square(box, image.shape, margin)
    return np.ascontiguousarray(image[y0:y1, x0:x1])
