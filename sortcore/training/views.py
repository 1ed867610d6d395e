"""The views a design is taught from: each photo or frame as it is, turned and mirrored,
plus augmented views of it.

Socks lie at any angle, so every image gives its four 90-degree turns, each also mirrored
(8 views), then random views (:func:`sortcore.training.augment.augment`: crops of 45-100 %,
any rotation, flips, colour, blur) up to ``per_image``. The same seed gives the same views.
"""

import numpy as np

from . import augment
from ..classifier.model import SIZE

PER_IMAGE = 40
SEED = 5


def turns(image):
    """The 8 views of ``image`` under 90-degree turns and mirroring."""
    out = []
    for k in range(4):
        turned = np.rot90(image, k)
        out += [np.ascontiguousarray(turned), np.ascontiguousarray(turned[:, ::-1])]
    return out


def enrol_views(images, per_image=PER_IMAGE, seed=SEED, size=SIZE):
    """``per_image`` views of each BGR image (at least its 8 turns), in image order."""
    rng = np.random.RandomState(seed)
    out = []
    for image in images:
        fixed = turns(image)[:per_image]
        out += fixed + [augment.augment(image, rng, size * 2)
                        for _ in range(per_image - len(fixed))]
    return out
