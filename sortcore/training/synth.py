"""Synthetic socks on wall- or wood-like backgrounds: designs no model was taught.

A *design* is a pattern (stripes, dots, checks, zigzag, argyle, plaid, shapes or plain, with a
few "logos"), fixed by its seed; :func:`render` draws one photo of it: a sock silhouette cut from
the pattern at a random offset and scale, on a random background, then augmented. Used for
measuring open-set rejection and enrolment (research/, tests, the int8 calibration images of
scripts/export_lite0.py), never to teach the shipped model anything.
"""

import cv2
import numpy as np

from sortcore.training import augment

KINDS = ("stripes", "dots", "checks", "zigzag", "plain", "argyle", "plaid", "shapes")


def _colour(rng):
    return tuple(int(c) for c in rng.randint(0, 256, 3))


def _lines(base, rng, kind, ink, step):
    size = base.shape[0]
    if kind == "stripes":
        for y in range(0, size, step):
            cv2.rectangle(base, (0, y), (size, y + step // 2), ink, -1)
    elif kind == "dots":
        for y in range(0, size, step):
            for x in range(0, size, step):
                cv2.circle(base, (x, y), max(2, step // 4), ink, -1)
    elif kind == "checks":
        for y in range(0, size, step):
            for x in range((y // step % 2) * step, size, 2 * step):
                cv2.rectangle(base, (x, y), (x + step, y + step), ink, -1)
    elif kind == "zigzag":
        pts = np.array([[x, (x // step % 2) * step] for x in range(0, size + step, step)])
        for y in range(-step, size, 2 * step):
            cv2.polylines(base, [pts + [0, y]], False, ink, max(2, step // 4))


def _argyle(base, rng, ink, step):
    size, step = base.shape[0], step * 2
    for y in range(0, size + step, step):
        for x in range((y // step % 2) * step // 2, size + step, step):
            diamond = np.array([[x, y - step // 2], [x + step // 3, y], [x, y + step // 2],
                                [x - step // 3, y]])
            cv2.fillPoly(base, [diamond], ink)
    thin = _colour(rng)
    for x in range(-size, size, step):
        cv2.line(base, (x, 0), (x + size, size), thin, 1)
        cv2.line(base, (x + size, 0), (x, size), thin, 1)


def _plaid(base, rng, ink, step):
    size = base.shape[0]
    second = _colour(rng)
    overlay = base.copy()
    for k in range(0, size, step * 2):
        cv2.rectangle(overlay, (k, 0), (k + step // 2, size), ink, -1)
        cv2.rectangle(overlay, (0, k), (size, k + step // 2), second, -1)
    cv2.addWeighted(overlay, 0.6, base, 0.4, 0, dst=base)


def _shapes(base, rng, ink, step):
    size = base.shape[0]
    for y in range(step // 2, size, step * 2):
        for x in range(step // 2 + (y // step % 2) * step, size, step * 2):
            if rng.rand() < 0.5:
                cv2.circle(base, (x, y), step // 2, ink, max(2, step // 6))
            else:
                tri = np.array([[x, y - step // 2], [x + step // 2, y + step // 2],
                                [x - step // 2, y + step // 2]])
                cv2.fillPoly(base, [tri], ink)


def _pattern(rng, size, kind=None):
    """A size x size BGR pattern of one of :data:`KINDS` (random unless given)."""
    base = np.zeros((size, size, 3), np.uint8)
    base[:] = _colour(rng)
    kind = kind or KINDS[rng.randint(len(KINDS))]
    ink, step = _colour(rng), int(rng.randint(8, 40))
    if kind == "argyle":
        _argyle(base, rng, ink, step)
    elif kind == "plaid":
        _plaid(base, rng, ink, step)
    elif kind == "shapes":
        _shapes(base, rng, ink, step)
    else:
        _lines(base, rng, kind, ink, step)
    for _ in range(rng.randint(0, 4)):  # a few "logos"
        cv2.putText(base, "".join(chr(65 + rng.randint(26)) for _ in range(3)),
                    (int(rng.randint(0, size - 60)), int(rng.randint(20, size))),
                    cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.6, 1.5), _colour(rng), 2)
    return base


def _sock_mask(rng, size):
    """An L-shaped sock silhouette: leg and foot as thick lines."""
    mask = np.zeros((size, size), np.uint8)
    width = int(rng.randint(size // 5, size // 3))
    top = (int(rng.randint(size // 4, 3 * size // 4)), -10)
    heel = (int(rng.randint(size // 4, 3 * size // 4)), int(rng.randint(size // 2, 4 * size // 5)))
    toe = (int(np.clip(heel[0] + rng.choice([-1, 1]) * rng.randint(size // 4, size // 2), 0,
                       size)), int(heel[1] + rng.randint(-20, 20)))
    cv2.line(mask, top, heel, 1, width)
    cv2.line(mask, heel, toe, 1, int(width * 0.9))
    angle = rng.uniform(0, 360)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
    return cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_NEAREST)


def unknown_sock(rng, size=224, view_size=192):
    """One augmented view of a synthetic sock of a random design."""
    background = augment.blank(rng, size)
    mask = _sock_mask(rng, size)[:, :, None]
    image = np.where(mask > 0, _pattern(rng, size), background).astype(np.uint8)
    return augment.augment(image, rng, view_size)


def unknown_views(count=100, seed=9001):
    rng = np.random.RandomState(seed)
    return [unknown_sock(rng) for _ in range(count)]


def design(seed, size=448):
    """The pattern of design ``seed``: a (2 * size) square to cut socks from."""
    return _pattern(np.random.RandomState(seed), 2 * size)


def render(pattern, rng, size=448):
    """One photo (``size`` px) of a sock of ``pattern`` (:func:`design`): its own cut, pose,
    scale, background and light. Not augmented further: enrolment and tests do that."""
    scale = rng.uniform(0.8, 1.25)
    side = int(round(size * scale))
    y, x = rng.randint(0, pattern.shape[0] - side + 1, 2)
    cloth = cv2.resize(pattern[y:y + side, x:x + side], (size, size),
                       interpolation=cv2.INTER_AREA)
    mask = _sock_mask(rng, size)[:, :, None]
    photo = np.where(mask > 0, cloth, augment.blank(rng, size)).astype(np.uint8)
    shade = 0.75 + 0.5 * rng.rand()
    return np.clip(photo.astype(np.float32) * shade, 0, 255).astype(np.uint8)


#: The designs whose renders teach the metric what a design's photos vary in: seeds no
#: measurement uses (research/eye_recall.py's pairs are 501-920).
SPREAD_FIRST, SPREAD_DESIGNS, SPREAD_RENDERS = 20001, 100, 6


def spread_renders(first=SPREAD_FIRST, designs=SPREAD_DESIGNS, renders=SPREAD_RENDERS):
    """``designs`` lists of ``renders`` photos of one synthetic design each (fixed seeds)."""
    out = []
    for seed in range(first, first + designs):
        pattern, rng = design(seed), np.random.RandomState(seed * 11 + 3)
        out.append([render(pattern, rng) for _ in range(renders)])
    return out
