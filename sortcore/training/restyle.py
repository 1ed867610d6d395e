"""Socks of designs nobody taught that look photographed: a real photo's sock, re-patterned.

Flat synthetic socks (:mod:`sortcore.training.synth`) mostly fall below the eye's Blank floor,
and ImageNet features see them all as alike (model/README.md). Here a real photo keeps its
sock's silhouette, folds, light and background; only the cloth changes: a new pattern (fixed
by the design's seed: stripes, argyle, dots, ...; colours, scale, angle) is laid over the sock,
multiplied by the photo's own shading (its grey level, blurred, so folds and light stay and the
old logo goes) with a fine knit texture, and its edges blended. One design on two photos of a
pair gives two socks of one design photographed differently; two designs on the same photo are
two different socks held the same way against the same wall, the hard case.

Used by research/ (calibrating new designs), tests and benchmarks; never to teach a model.
"""

import cv2
import numpy as np

from . import synth
from .mask import sock_mask

#: Pattern kinds a restyled design takes (``plain`` is left out: a plain sock of another
#: colour is a recolouring, :func:`recolour`).
KINDS = ("stripes", "dots", "checks", "zigzag", "argyle", "plaid", "shapes")


def design(seed):
    """The cloth of design ``seed``: a 896 px BGR pattern (its kind, colours and scale)."""
    rng = np.random.RandomState(seed)
    return synth._pattern(rng, 896, KINDS[rng.randint(len(KINDS))])


def _shading(image, mask):
    """The photo's light and folds on the sock: its grey level blurred, around 1."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) + 8.0
    inside = mask > 0
    level = np.median(grey[inside]) if inside.any() else grey.mean()
    blurred = cv2.GaussianBlur(grey, (0, 0), 14)
    return np.clip(blurred / level, 0.6, 1.35)


def _knit(shape, rng):
    """A fine knit-like texture around 1: vertical ribs and noise."""
    h, w = shape
    ribs = 1.0 + 0.06 * np.sin(np.arange(w, dtype=np.float32) * rng.uniform(1.2, 2.2))[None, :]
    noise = cv2.GaussianBlur(rng.normal(0, 0.07, (h, w)).astype(np.float32), (0, 0), 0.8)
    return ribs + noise


def _cloth(pattern, size, rng):
    """A cut of the pattern at a random scale, angle and place, ``size`` (w, h)."""
    w, h = size
    side = int(max(w, h) * rng.uniform(0.55, 0.9))
    y, x = rng.randint(0, pattern.shape[0] - side + 1, 2)
    cut = cv2.resize(pattern[y:y + side, x:x + side], (max(w, h), max(w, h)),
                     interpolation=cv2.INTER_AREA)
    matrix = cv2.getRotationMatrix2D((cut.shape[1] / 2.0, cut.shape[0] / 2.0),
                                     rng.uniform(-25, 25), 1.15)
    cut = cv2.warpAffine(cut, matrix, cut.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    return cut[:h, :w]


def restyle(photo, pattern, seed, mask=None):
    """``photo`` (BGR) with its sock re-clothed in ``pattern`` (:func:`design`); ``seed`` fixes
    the cut of the cloth and the knit. ``mask``: the photo's sock mask, if already known."""
    rng = np.random.RandomState(seed)
    mask = sock_mask(photo) if mask is None else mask
    h, w = photo.shape[:2]
    cloth = _cloth(pattern, (w, h), rng).astype(np.float32)
    cloth = cv2.GaussianBlur(cloth, (0, 0), 0.7)
    lit = cloth * (_shading(photo, mask) * _knit((h, w), rng))[:, :, None]
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.2)[:, :, None]
    out = lit * soft + photo.astype(np.float32) * (1 - soft)
    return np.clip(out, 0, 255).astype(np.uint8)


def recolour(photo, seed, mask=None):
    """``photo`` with its sock's hues turned and saturation changed (a recoloured copy of
    its design, the case ImageNet features can hardly tell apart)."""
    rng = np.random.RandomState(seed)
    mask = sock_mask(photo) if mask is None else mask
    hsv = cv2.cvtColor(photo, cv2.COLOR_BGR2HSV).astype(np.int32)
    hsv[:, :, 0] = (hsv[:, :, 0] + rng.randint(30, 150)) % 180
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * rng.uniform(0.8, 1.6) + 40, 0, 255)
    turned = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    return np.where(mask[:, :, None] > 0, turned, photo)
