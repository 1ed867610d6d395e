"""Synthetic socks of designs the model does not know, on wall- or wood-like backgrounds.

Used only for measuring open-set rejection (leave-one-photo-out, tests), never for training.
"""

import cv2
import numpy as np

from sortcore.training import augment


def _colour(rng):
    return tuple(int(c) for c in rng.randint(0, 256, 3))


def _pattern(rng, size):
    """A size x size BGR pattern: stripes, dots, checks, zigzag or plain."""
    base = np.zeros((size, size, 3), np.uint8)
    base[:] = _colour(rng)
    kind, ink, step = rng.randint(5), _colour(rng), int(rng.randint(8, 40))
    if kind == 0:
        for y in range(0, size, step):
            cv2.rectangle(base, (0, y), (size, y + step // 2), ink, -1)
    elif kind == 1:
        for y in range(0, size, step):
            for x in range(0, size, step):
                cv2.circle(base, (x, y), max(2, step // 4), ink, -1)
    elif kind == 2:
        for y in range(0, size, step):
            for x in range((y // step % 2) * step, size, 2 * step):
                cv2.rectangle(base, (x, y), (x + step, y + step), ink, -1)
    elif kind == 3:
        pts = np.array([[x, (x // step % 2) * step] for x in range(0, size + step, step)])
        for y in range(-step, size, 2 * step):
            cv2.polylines(base, [pts + [0, y]], False, ink, max(2, step // 4))
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
    """One augmented view of a synthetic, unknown-design sock."""
    background = augment.blank(rng, size)
    mask = _sock_mask(rng, size)[:, :, None]
    image = np.where(mask > 0, _pattern(rng, size), background).astype(np.uint8)
    return augment.augment(image, rng, view_size)


def unknown_views(count=100, seed=9001):
    rng = np.random.RandomState(seed)
    return [unknown_sock(rng) for _ in range(count)]
