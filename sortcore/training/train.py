"""Train, evaluate and cross-validate the small sock classifier (Gluon, CPU).

A data directory holds one folder per sock design (folder name = label) with
photos in it. Unless it has its own ``Blank`` folder, a ``Blank`` class of
synthetic walls and backgrounds (:func:`sortcore.training.augment.blank`) is added.

The network is a tiny MobileNet: a strided 3x3 convolution, then depthwise-
separable blocks (depthwise 3x3 + pointwise 1x1, BatchNorm, ReLU), global
average pooling and one dense layer, with a softmax added on export. Only
standard operators, so the DeepLens model optimizer converts it.
"""

import dataclasses
import json
import os
import random

import numpy as np

from . import augment
from ..errors import ConfigError, ModelError
from ..classifier.model import DEFAULT_NAME, load_model, preprocess, read_image

BLANK = "Blank"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """How to train: input size, schedule, seed and width of the network."""

    size: int = 96
    epochs: int = 30
    views_per_photo: int = 48  # augmented views of each photo per epoch
    batch_size: int = 32
    learning_rate: float = 0.05
    weight_decay: float = 5e-4
    width: int = 16  # channels of the first convolution; later blocks double it
    seed: int = 0
    name: str = DEFAULT_NAME
    progress: bool = True

    def __post_init__(self):
        if not 16 <= self.size <= 512:
            raise ConfigError("size must be between 16 and 512 pixels, got %r" % self.size)
        for field in ("epochs", "views_per_photo", "batch_size", "width"):
            if getattr(self, field) < 1:
                raise ConfigError("%s must be at least 1, got %r" % (field, getattr(self, field)))
        if not self.learning_rate > 0:
            raise ConfigError("learning_rate must be positive, got %r" % self.learning_rate)


@dataclasses.dataclass(frozen=True)
class Photo:
    """One training photo: its path, label and BGR pixels."""

    path: str
    label: str
    image: np.ndarray = dataclasses.field(repr=False, compare=False)


def load_photos(data_dir):
    """(labels, photos) from a folder-per-label directory; labels sorted, Blank included."""
    data_dir = str(data_dir)
    if not os.path.isdir(data_dir):
        raise ModelError("data directory %s does not exist" % data_dir)
    photos = []
    for label in sorted(os.listdir(data_dir)):
        folder = os.path.join(data_dir, label)
        if not os.path.isdir(folder) or label.startswith("."):
            continue
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                path = os.path.join(folder, name)
                photos.append(Photo(path, label, read_image(path)))
    labels = sorted({p.label for p in photos} | {BLANK})
    if len(labels) < 2:
        raise ModelError("data directory %s has no photos in label folders" % data_dir)
    return labels, photos


def seed_everything(seed):
    """Seed Python, NumPy and MXNet; returns a RandomState for augmentation."""
    import mxnet as mx
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)
    return np.random.RandomState(seed)


def build_net(num_classes, width=16):
    """The tiny MobileNet (logits out; softmax is added by :func:`export`)."""
    from mxnet.gluon import nn

    def conv_bn(out, channels, kernel, stride, groups=1):
        out.add(nn.Conv2D(channels, kernel, stride, kernel // 2, groups=groups, use_bias=False))
        out.add(nn.BatchNorm())
        out.add(nn.Activation("relu"))

    net = nn.HybridSequential(prefix="sockclf_")
    with net.name_scope():
        conv_bn(net, width, 3, 2)
        channels = width
        for out_channels, stride in ((2, 1), (4, 2), (4, 1), (8, 2), (8, 1), (16, 2)):
            conv_bn(net, channels, 3, stride, groups=channels)  # depthwise
            conv_bn(net, width * out_channels, 1, 1)  # pointwise
            channels = width * out_channels
        net.add(nn.GlobalAvgPool2D())
        net.add(nn.Dropout(0.2))
        net.add(nn.Dense(num_classes))
    return net


def _views(photo_images, blank_share, count, size, rng):
    """``count`` (image, class index) pairs: augmented photos plus synthetic blanks."""
    images, targets = [], []
    for _ in range(count):
        if rng.rand() < blank_share:
            images.append(augment.blank(rng, size * 2))
            targets.append(-1)
        else:
            index = rng.randint(len(photo_images))
            target, image = photo_images[index]
            images.append(augment.augment(image, rng, size * 2))
            targets.append(target)
    return images, targets


def fit(labels, photos, options):
    """Train a fresh network on ``photos``; returns the Gluon net (logits)."""
    import mxnet as mx
    from mxnet import autograd, gluon

    rng = seed_everything(options.seed)
    index = {label: i for i, label in enumerate(labels)}
    photo_images = [(index[p.label], p.image) for p in photos]
    generate_blanks = not any(p.label == BLANK for p in photos)
    # Synthetic blanks as often as an average real class.
    blank_share = 1.0 / len(labels) if generate_blanks else 0.0
    net = build_net(len(labels), options.width)
    net.initialize(mx.init.Xavier(magnitude=2.0), ctx=mx.cpu())
    net.hybridize(static_alloc=True)
    steps_per_epoch = max(1, (len(photos) * options.views_per_photo) // options.batch_size)
    max_update = options.epochs * steps_per_epoch
    schedule = mx.lr_scheduler.CosineScheduler(
        max_update=max_update, base_lr=options.learning_rate,
        final_lr=options.learning_rate / 100, warmup_steps=min(steps_per_epoch, max_update // 2))
    trainer = gluon.Trainer(net.collect_params(), "sgd", {
        "learning_rate": options.learning_rate, "momentum": 0.9,
        "wd": options.weight_decay, "lr_scheduler": schedule})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    epochs = range(options.epochs)
    if options.progress:
        from tqdm import tqdm
        epochs = tqdm(epochs, desc="training", unit="epoch")
    for _ in epochs:
        total_loss, correct, seen = 0.0, 0, 0
        for _ in range(steps_per_epoch):
            images, targets = _views(photo_images, blank_share, options.batch_size,
                                     options.size, rng)
            targets = [index[BLANK] if t < 0 else t for t in targets]
            data = mx.nd.array(preprocess(images, options.size))
            target = mx.nd.array(targets)
            with autograd.record():
                out = net(data)
                loss = loss_fn(out, target)
            loss.backward()
            trainer.step(len(targets))
            total_loss += float(loss.sum().asscalar())
            correct += int((out.argmax(axis=1) == target).sum().asscalar())
            seen += len(targets)
        if options.progress:
            epochs.set_postfix(loss="%.3f" % (total_loss / seen), acc="%.2f" % (correct / seen))
    return net


def export(net, labels, out_dir, size, name=DEFAULT_NAME):
    """Write ``<name>-symbol.json``, ``<name>-0000.params`` and ``labels.txt``.

    The exported graph ends in a softmax and records the input shape on its
    ``data`` node, which :func:`sortcore.classifier.model.load_model` reads back.
    """
    import mxnet as mx
    from mxnet import gluon

    class WithSoftmax(gluon.HybridBlock):
        def __init__(self, body):
            super().__init__(prefix="")
            with self.name_scope():
                self.body = body

        def hybrid_forward(self, F, x):
            return F.softmax(self.body(x))

    os.makedirs(str(out_dir), exist_ok=True)
    model = WithSoftmax(net)
    model.hybridize()
    model(mx.nd.zeros((1, 3, size, size)))
    prefix = os.path.join(str(out_dir), name)
    model.export(prefix, epoch=0)
    symbol_path = prefix + "-symbol.json"
    with open(symbol_path, encoding="utf-8") as fh:
        graph = json.load(fh)
    for node in graph["nodes"]:
        if node["op"] == "null" and node["name"] == "data":
            node.setdefault("attrs", {})["__shape__"] = "(1, 3, %d, %d)" % (size, size)
    with open(symbol_path, "w", encoding="utf-8") as fh:
        json.dump(graph, fh, indent=2)
    with open(os.path.join(str(out_dir), "labels.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(labels) + "\n")
    return prefix


def train(data_dir, out_dir, options=None):
    """Train on every photo in ``data_dir`` and export the model to ``out_dir``."""
    options = options or TrainOptions()
    labels, photos = load_photos(data_dir)
    net = fit(labels, photos, options)
    export(net, labels, out_dir, options.size, options.name)
    return labels


@dataclasses.dataclass
class Evaluation:
    """Per-class counts of correct augmented views: {label: [correct, total]}."""

    per_class: dict
    views: int

    @property
    def accuracy(self):
        correct = sum(c for c, _ in self.per_class.values())
        return correct / max(1, sum(t for _, t in self.per_class.values()))


def _photo_views(image, views, size, rng):
    return [augment.augment(image, rng, size * 2) for _ in range(views)]


def evaluate(data_dir, model_dir, views=20, seed=12345):
    """Accuracy of the model in ``model_dir`` on ``views`` augmented views per photo.

    Without a ``Blank`` folder, as many synthetic blanks as an average class gets.
    """
    labels, photos = load_photos(data_dir)
    clf = load_model(model_dir)
    rng = np.random.RandomState(seed)
    per_class = {}
    groups = [(p.label, _photo_views(p.image, views, clf.size, rng)) for p in photos]
    if not any(p.label == BLANK for p in photos):
        count = views * max(1, len(photos) // max(1, len(labels) - 1))
        groups.append((BLANK, [augment.blank(rng, clf.size * 2) for _ in range(count)]))
    for label, images in groups:
        predicted = clf.probabilities(images).argmax(axis=1)
        hits = int(sum(clf.labels[i] == label for i in predicted))
        counts = per_class.setdefault(label, [0, 0])
        counts[0] += hits
        counts[1] += len(images)
    return Evaluation(per_class, views)


@dataclasses.dataclass
class HeldOut:
    """One leave-one-photo-out fold: the held-out photo and how its views were labelled."""

    path: str
    label: str
    correct: int
    views: int
    majority: str

    @property
    def ok(self):
        return self.majority == self.label


@dataclasses.dataclass
class CrossValidation:
    """Leave-one-photo-out results, one :class:`HeldOut` per photo."""

    folds: list

    @property
    def view_accuracy(self):
        return sum(f.correct for f in self.folds) / max(1, sum(f.views for f in self.folds))

    @property
    def photos_right(self):
        return sum(f.ok for f in self.folds)


def cross_validate(data_dir, views=20, epochs=None, seed=0, options=None, progress=True):
    """Leave-one-photo-out: train without each photo, classify its augmented views.

    The held-out photo counts as right when the majority of its views get its label.
    """
    import collections
    import tempfile

    base = options or TrainOptions()
    options = dataclasses.replace(base, seed=seed, progress=False,
                                  epochs=epochs if epochs else base.epochs)
    labels, photos = load_photos(data_dir)
    folds = []
    items = photos
    if progress:
        from tqdm import tqdm
        items = tqdm(photos, desc="leave-one-photo-out", unit="fold")
    for held in items:
        rest = [p for p in photos if p.path != held.path]
        net = fit(labels, rest, options)
        with tempfile.TemporaryDirectory() as tmp:
            export(net, labels, tmp, options.size, options.name)
            clf = load_model(tmp)
        rng = np.random.RandomState(seed + 777)
        predicted = [clf.labels[i] for i in
                     clf.probabilities(_photo_views(held.image, views, clf.size, rng)).argmax(axis=1)]
        majority = collections.Counter(predicted).most_common(1)[0][0]
        folds.append(HeldOut(held.path, held.label, predicted.count(held.label), views, majority))
    return CrossValidation(folds)
