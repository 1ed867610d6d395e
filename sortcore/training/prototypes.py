"""Class prototypes: the mean L2-normalised embedding of augmented views of each class.

Works on any ``forward(nchw) -> (N, D + S)`` (a freshly trained net or a loaded model
folder), so training, leave-one-photo-out and enrolment share it. ``Blank``'s prototype
comes from synthetic blank frames unless the data has its own Blank photos.
"""

import numpy as np

from . import augment
from ..classifier.model import preprocess
from ..classifier.openset import BLANK

VIEWS = 40
SEED = 5


def embed(forward, images, size, dim, batch=64):
    """(N, dim) L2-normalised embeddings and (N, S) softmax rows of BGR images."""
    rows = [np.asarray(forward(preprocess(images[i:i + batch], size)))
            for i in range(0, len(images), batch)]
    raw = np.concatenate(rows).astype(np.float32)
    emb = raw[:, :dim]
    return emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-8), raw[:, dim:]


def mean_direction(embeddings):
    mean = np.asarray(embeddings).mean(axis=0)
    return mean / (np.linalg.norm(mean) + 1e-8)


def views_of(images, count, size, rng):
    """``count`` augmented views cycling through ``images``."""
    return [augment.augment(images[i % len(images)], rng, size * 2) for i in range(count)]


def class_prototypes(forward, size, dim, labels, photos, views=VIEWS, seed=SEED):
    """(C, dim) prototypes in ``labels`` order from ``photos`` (objects with .label/.image)."""
    rng = np.random.RandomState(seed)
    out = np.zeros((len(labels), dim), np.float32)
    for c, label in enumerate(labels):
        sources = [p.image for p in photos if p.label == label]
        if sources:
            images = views_of(sources, views, size, rng)
        elif label == BLANK:
            images = [augment.blank(rng, size * 2) for _ in range(views)]
        else:
            raise ValueError("no photos of %r" % label)
        out[c] = mean_direction(embed(forward, images, size, dim)[0])
    return out
