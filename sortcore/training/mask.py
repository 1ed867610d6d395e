"""Foreground (sock) masks for training and enrolment photos: GrabCut seeded by a background colour model.

Background seeds: pixels close (Lab distance) to the brightest, least saturated border colours
(walls, tables are light); foreground seeds: pixels far from them. Only used offline on
training/enrolment photos, never at inference.
"""

import cv2
import numpy as np


def _border_mask(shape, width=6):
    m = np.zeros(shape, bool)
    m[:width], m[-width:], m[:, :width], m[:, -width:] = True, True, True, True
    return m


def _background_distance(image):
    """Distance to the smoother of two border colour clusters (walls/tables are smooth)."""
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (5, 5), 0), cv2.COLOR_BGR2LAB).astype(np.float32)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    texture = cv2.blur(np.abs(cv2.Laplacian(grey, cv2.CV_32F)), (7, 7))
    ring = _border_mask(grey.shape)
    border, border_tex = lab[ring], texture[ring]
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, assign, _ = cv2.kmeans(border, 2, None, crit, 3, cv2.KMEANS_PP_CENTERS)
    assign = assign.ravel()
    smooth = min((0, 1), key=lambda k: np.median(border_tex[assign == k]) if (assign == k).any()
                 else 1e9)
    light = border[assign == smooth]
    centre = np.median(light, axis=0)
    spread = np.maximum(np.percentile(np.abs(light - centre), 90, axis=0), 4.0)
    return np.sqrt((((lab - centre) / spread) ** 2).sum(axis=2))


def sock_mask(image, iters=4):
    """uint8 mask, 1 = sock, for one BGR photo (the same every time: OpenCV's RNG is reseeded)."""
    cv2.setRNGSeed(0)
    dist = _background_distance(image)
    init = np.full(image.shape[:2], cv2.GC_PR_FGD, np.uint8)
    init[dist < 2.0] = cv2.GC_PR_BGD
    init[dist < 1.0] = cv2.GC_BGD
    init[dist > 6.0] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(image, init, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # e.g. no foreground or no background seeds: keep the whole photo
        return np.ones(image.shape[:2], np.uint8)
    mask = np.isin(init, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, comp, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count > 1:  # keep the largest component
        mask = (comp == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])).astype(np.uint8)
    if not 0.15 <= mask.mean() <= 0.95:  # unreliable: keep the whole photo
        mask[:] = 1
    return mask


def soft_mask(image):
    """Blurred float mask (H, W, 1) of the sock, or None when no reliable mask was found."""
    mask = sock_mask(image)
    if mask.all():
        return None
    return cv2.GaussianBlur(mask.astype(np.float32), (7, 7), 0)[:, :, None]


def composite(image, soft, rng):
    """The photo's sock pasted on a random synthetic background (same size)."""
    from .augment import blank
    background = blank(rng, image.shape[0]).astype(np.float32)
    if background.shape[:2] != image.shape[:2]:
        background = cv2.resize(background, image.shape[1::-1])
    return (image.astype(np.float32) * soft + background * (1 - soft)).astype(np.uint8)
