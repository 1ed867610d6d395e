"""Per-class right / Unknown / wrong of a model folder on augmented views of photos."""

import dataclasses

import numpy as np

from . import augment
from .teach import load_photos
from ..classifier.openset import BLANK, UNKNOWN
from ..classifier.backends import load_classifier


@dataclasses.dataclass
class Evaluation:
    """{label: [right, unknown, wrong]} over ``views`` augmented views per photo."""

    per_class: dict
    views: int

    def share(self, column):
        total = sum(sum(row) for row in self.per_class.values())
        return sum(row[column] for row in self.per_class.values()) / max(1, total)

    @property
    def accuracy(self):
        return self.share(0)


def evaluate(data_dir, model_dir, views=20, seed=12345):
    """Views of every photo (plus as many synthetic blanks as a class) through the model."""
    photos = load_photos(data_dir)
    clf = load_classifier(model_dir)
    rng = np.random.RandomState(seed)
    groups = [(p.label, [augment.augment(p.image, rng, clf.size * 2) for _ in range(views)])
              for p in photos]
    if not any(p.label == BLANK for p in photos):
        designs = len({p.label for p in photos})
        count = views * max(1, len(photos) // designs)
        groups.append((BLANK, [augment.blank(rng, clf.size * 2) for _ in range(count)]))
    per_class = {}
    for label, images in groups:
        row = per_class.setdefault(label, [0, 0, 0])
        for prediction in clf.classify_many(images):
            row[0 if prediction.label == label else 1 if prediction.label == UNKNOWN else 2] += 1
    return Evaluation(per_class, views)
