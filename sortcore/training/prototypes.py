"""Class prototypes: the mean L2-normalised embedding of augmented views of each class.

Works on any ``forward(nchw) -> (N, M * (D + S))`` (a freshly trained net or ensemble of M
members, or a loaded model folder), so training, leave-one-photo-out and enrolment share it.
An ensemble's prototype is one block of D per member, each normalised on its own
(:mod:`sortcore.classifier.openset`). ``Blank``'s prototype comes from synthetic blank frames
unless the data has its own Blank photos.
"""

import numpy as np

from . import augment
from ..classifier.model import preprocess
from ..classifier.openset import BLANK, normalise_blocks, split_members

VIEWS = 40
SEED = 5


def embed(forward, images, size, dim, batch=64, members=1):
    """(N, M * dim) block-normalised embeddings and (N, S) mean softmax rows of BGR images."""
    rows = [np.asarray(forward(preprocess(images[i:i + batch], size)))
            for i in range(0, len(images), batch)]
    return split_members(np.concatenate(rows), dim, members)


def mean_direction(embeddings, members=1):
    """The mean of block-normalised rows, each member's block normalised again."""
    return normalise_blocks(np.asarray(embeddings).mean(axis=0)[None, :], members)[0]


def views_of(images, count, size, rng):
    """``count`` augmented views cycling through ``images``."""
    return [augment.augment(images[i % len(images)], rng, size * 2) for i in range(count)]


def class_prototypes(forward, size, dim, labels, photos, views=VIEWS, seed=SEED, members=1):
    """(C, M * dim) prototypes in ``labels`` order from ``photos`` (with .label/.image)."""
    rng = np.random.RandomState(seed)
    out = np.zeros((len(labels), members * dim), np.float32)
    for c, label in enumerate(labels):
        sources = [p.image for p in photos if p.label == label]
        if sources:
            images = views_of(sources, views, size, rng)
        elif label == BLANK:
            images = [augment.blank(rng, size * 2) for _ in range(views)]
        else:
            raise ValueError("no photos of %r" % label)
        out[c] = mean_direction(embed(forward, images, size, dim, members=members)[0], members)
    return out
