"""A sock's colours: a small hue/saturation/grey histogram of its pixels, and how alike two are.

ImageNet features tell a sock's kind of pattern and shape better than its colours: a cyan sock
with blue dots and one with yellow dots, or a design and its recoloured copy, look nearly alike
to them. Colours tell them apart, and a session's socks share one camera and one light, so
the same design keeps its colours. :func:`palette` bins the pixels into 12 hues x 3 saturations
plus 4 grey levels for the pixels with little colour (40 bins, summing to 1); :func:`cover`
compares two palettes by the colour they agree on least: over every bin holding at least
:data:`SIGNIFICANT` of either, the smallest sqrt(min / max) of the two masses. A colour that
is a tenth of one sock and absent from the other gives 0. Python 3.7 compatible.
"""

import numpy as np

HUES, SATURATIONS, GREYS = 12, 3, 4
BINS = HUES * SATURATIONS + GREYS
#: A pixel has colour when its saturation and value are at least these (0-1).
MIN_SATURATION, MIN_VALUE = 0.2, 0.15
#: Bins below this mass in both palettes are noise, not a colour of the sock.
SIGNIFICANT = 0.04


def palette(pixels_bgr):
    """The (BINS,) float32 palette of (N, 3) BGR uint8 pixels, hue bins smoothed with their
    neighbours (a hue on a bin's edge lands in both)."""
    import cv2
    pixels = np.asarray(pixels_bgr, np.uint8).reshape(-1, 1, 3)
    out = np.zeros(BINS, np.float64)
    if len(pixels) == 0:
        return out.astype(np.float32)
    hsv = cv2.cvtColor(pixels, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float32)
    hue, sat, val = hsv[:, 0] / 180.0, hsv[:, 1] / 255.0, hsv[:, 2] / 255.0
    coloured = (sat >= MIN_SATURATION) & (val >= MIN_VALUE)
    h = np.minimum((hue[coloured] * HUES).astype(int), HUES - 1)
    s = np.minimum(((sat[coloured] - MIN_SATURATION) / (1 - MIN_SATURATION) * SATURATIONS).astype(int),
                   SATURATIONS - 1)
    np.add.at(out, h * SATURATIONS + s, 1.0)
    np.add.at(out, HUES * SATURATIONS + np.minimum((val[~coloured] * GREYS).astype(int), GREYS - 1), 1.0)
    colours = out[:HUES * SATURATIONS].reshape(HUES, SATURATIONS)
    colours = 0.5 * colours + 0.25 * np.roll(colours, 1, 0) + 0.25 * np.roll(colours, -1, 0)
    out[:HUES * SATURATIONS] = colours.ravel()
    return (out / out.sum()).astype(np.float32)


def cover(probe, palettes):
    """How well ``probe`` (BINS,) agrees with each row of ``palettes`` (M, BINS): the smallest
    sqrt(min/max) over the bins where either has at least :data:`SIGNIFICANT` (1: the same
    colours in the same amounts; 0: a colour of one is missing in the other)."""
    probe = np.asarray(probe, np.float32)[None, :]
    palettes = np.asarray(palettes, np.float32).reshape(-1, BINS)
    low, high = np.minimum(probe, palettes), np.maximum(probe, palettes)
    ratio = np.where(high >= SIGNIFICANT, np.sqrt(low / np.maximum(high, 1e-9)), 1.0)
    return ratio.min(axis=1)
