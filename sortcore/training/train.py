"""Train, evaluate and cross-validate the small sock classifier (Gluon, CPU).

A data directory holds one folder per sock design (folder name = label) with
photos in it. Unless it has its own ``Blank`` folder, a ``Blank`` class of
synthetic walls and backgrounds (:func:`sortcore.training.augment.blank`) is added.

The network is a tiny MobileNet: a strided 3x3 convolution, then depthwise-
separable blocks (depthwise 3x3 + pointwise 1x1, BatchNorm, ReLU), global
average pooling and one dense layer. With probability ``background_swap`` a training
view is the photo's sock (GrabCut mask, :mod:`sortcore.training.mask`) pasted on a
synthetic background, so the background carries no label. The exported graph has no
Dropout and outputs the 256-d pooled embedding concatenated with the softmax
probabilities; the open-set head (:mod:`sortcore.classifier.openset`) works on that.
An ensemble (``members`` > 1: the same recipe with seeds ``seed``, ``seed + 1``, ...) is
exported as one graph whose output concatenates every member's embedding and softmax.
Only DeepLens-supported operators.
"""

import dataclasses
import json
import os
import random

import numpy as np

from . import augment, mask as masks
from ..errors import ConfigError, ModelError
from ..classifier.model import DEFAULT_NAME, preprocess, read_image

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
    members: int = 1  # ensemble of nets trained with seeds seed .. seed + members - 1
    background_swap: float = 0.7  # share of views with the sock on a synthetic background
    cosine_loss: float = 0.0  # weight of the training-only cosine-classifier loss (0: off)
    cosine_scale: float = 16.0  # its logits: scale * (cos(embedding, class weight) - margin)
    cosine_margin: float = 0.1  # for the true class (CosFace); the exported graph is unchanged
    name: str = DEFAULT_NAME
    progress: bool = True

    def __post_init__(self):
        if not 16 <= self.size <= 512:
            raise ConfigError("size must be between 16 and 512 pixels, got %r" % self.size)
        for field in ("epochs", "views_per_photo", "batch_size", "width", "members"):
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


def build_net(num_classes, width=16, member=0):
    """The tiny MobileNet (logits out; softmax is added by :func:`export`).

    ``member`` > 0 gives the parameters their own prefix so that members share one graph.
    """
    from mxnet.gluon import nn

    def conv_bn(out, channels, kernel, stride, groups=1):
        out.add(nn.Conv2D(channels, kernel, stride, kernel // 2, groups=groups, use_bias=False))
        out.add(nn.BatchNorm())
        out.add(nn.Activation("relu"))

    net = nn.HybridSequential(prefix="sockclf_" if member == 0 else "sockclf%d_" % member)
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


def _views(items, blank_share, count, size, rng, swap):
    """``count`` (image, class index or -1 for Blank) pairs: augmented photos plus blanks."""
    images, targets = [], []
    for _ in range(count):
        if rng.rand() < blank_share:
            images.append(augment.blank(rng, size * 2))
            targets.append(-1)
            continue
        target, image, soft = items[rng.randint(len(items))]
        if soft is not None and rng.rand() < swap:
            image = masks.composite(image, soft, rng)
        images.append(augment.augment(image, rng, size * 2))
        targets.append(target)
    return images, targets


def net_parts(net):
    """(the blocks up to the pooled embedding, the Dropout, the Dense) of a :func:`build_net` net."""
    children = list(net._children.values())
    return children[:-2], children[-2], children[-1]


def cosine_training_block(net, num_classes, options):
    """``net`` with a training-only loss head on its pooled embedding: ``(images, one-hot
    targets) -> (logits, scale * (cosines to learnt class weights - margin on the true
    class))`` (CosFace), so that training separates the cosines the open-set head compares.
    The class weights are not exported; the exported graph is ``net``'s as without it."""
    from mxnet import gluon

    class CosineTraining(gluon.HybridBlock):
        def __init__(self):
            super().__init__(prefix="cosine_")
            self.net = net
            with self.name_scope():
                self.weight = self.params.get("weight", shape=(num_classes, options.width * 16))

        def hybrid_forward(self, F, x, onehot, weight):
            blocks, dropout, dense = net_parts(self.net)
            for block in blocks:
                x = block(x)
            feats = F.flatten(x)
            logits = dense(dropout(feats))
            cos = F.dot(F.L2Normalization(feats), F.L2Normalization(weight), transpose_b=True)
            return logits, options.cosine_scale * (cos - options.cosine_margin * onehot)
    return CosineTraining()


def _trainer(net, options, steps):
    import mxnet as mx
    from mxnet import gluon
    max_update = options.epochs * steps
    schedule = mx.lr_scheduler.CosineScheduler(
        max_update=max_update, base_lr=options.learning_rate,
        final_lr=options.learning_rate / 100, warmup_steps=min(steps, max_update // 2))
    return gluon.Trainer(net.collect_params(), "sgd", {
        "learning_rate": options.learning_rate, "momentum": 0.9,
        "wd": options.weight_decay, "lr_scheduler": schedule})


def fit_members(labels, photos, options):
    """``options.members`` nets trained with seeds ``options.seed`` + 0, 1, ..."""
    return [fit(labels, photos, dataclasses.replace(options, seed=options.seed + k), member=k)
            for k in range(options.members)]


def _loss(net, num_classes, options):
    """(``loss(data, target)``, the block whose parameters training updates)."""
    import mxnet as mx
    from mxnet import gluon
    cross_entropy = gluon.loss.SoftmaxCrossEntropyLoss()
    if not options.cosine_loss:
        return (lambda data, target: cross_entropy(net(data), target)), net
    block = cosine_training_block(net, num_classes, options)
    block.weight.initialize(mx.init.Xavier(), ctx=mx.cpu())
    block.hybridize(static_alloc=True)

    def loss(data, target):
        logits, cosine = block(data, mx.nd.one_hot(target, num_classes))
        return cross_entropy(logits, target) + options.cosine_loss * cross_entropy(cosine, target)
    return loss, block


def fit(labels, photos, options, member=0):
    """Train a fresh network on ``photos``; returns the Gluon net (logits)."""
    import mxnet as mx
    from mxnet import autograd

    rng = seed_everything(options.seed)
    index = {label: i for i, label in enumerate(labels)}
    swap = options.background_swap
    items = [(index[p.label], p.image, masks.soft_mask(p.image) if swap > 0 else None)
             for p in photos]
    # Synthetic blanks as often as an average real class, unless the data has its own.
    blank_share = 0.0 if any(p.label == BLANK for p in photos) else 1.0 / len(labels)
    net = build_net(len(labels), options.width, member)
    net.initialize(mx.init.Xavier(magnitude=2.0), ctx=mx.cpu())
    net.hybridize(static_alloc=True)
    steps_per_epoch = max(1, (len(photos) * options.views_per_photo) // options.batch_size)
    loss_of, trained = _loss(net, len(labels), options)
    trainer = _trainer(trained, options, steps_per_epoch)
    epochs = range(options.epochs)
    if options.progress:
        from tqdm import tqdm
        epochs = tqdm(epochs, desc="training", unit="epoch")
    for _ in epochs:
        total_loss, seen = 0.0, 0
        for _ in range(steps_per_epoch):
            images, targets = _views(items, blank_share, options.batch_size, options.size,
                                     rng, swap)
            target = mx.nd.array([index[BLANK] if t < 0 else t for t in targets])
            data = mx.nd.array(preprocess(images, options.size))
            with autograd.record():
                loss = loss_of(data, target)
            loss.backward()
            trainer.step(len(targets))
            total_loss += float(loss.sum().asscalar())
            seen += len(targets)
        if options.progress:
            epochs.set_postfix(loss="%.3f" % (total_loss / seen))
    return net


def _members(nets):
    return list(nets) if isinstance(nets, (list, tuple)) else [nets]


def inference_graph(nets):
    """The exported graph around trained nets (one or a list): for each member its embedding
    then its softmax, all in one Concat; no Dropout."""
    from mxnet import gluon
    from mxnet.gluon import nn

    class Graph(gluon.HybridBlock):
        def __init__(self, parts):
            super().__init__(prefix="")
            self.parts = parts
            for k, (body, dense) in enumerate(parts):
                self.register_child(body, "body%d" % k)
                self.register_child(dense, "dense%d" % k)

        def hybrid_forward(self, F, x):
            outs = []
            for body, dense in self.parts:
                feats = F.flatten(body(x))
                outs += [feats, F.SoftmaxActivation(dense(feats))]
            return F.concat(*outs, dim=1)

    parts = []
    for net in _members(nets):
        blocks, _, dense = net_parts(net)
        body = nn.HybridSequential(prefix="")
        body.add(*blocks)
        parts.append((body, dense))
    return Graph(parts)


def forward_of(nets):
    """``forward(nchw) -> (N, M * (256 + C))`` of trained Gluon nets, as the exported graph."""
    import mxnet as mx
    graph = inference_graph(nets)
    graph.hybridize()
    return lambda batch: graph(mx.nd.array(batch)).asnumpy()


def export(nets, labels, out_dir, size, name=DEFAULT_NAME):
    """Write ``<name>-symbol.json``, ``<name>-0000.params`` and ``labels.txt``.

    The exported graph (:func:`inference_graph`) records the input shape on its
    ``data`` node, which :func:`sortcore.classifier.model.load_model` reads back.
    """
    import mxnet as mx

    os.makedirs(str(out_dir), exist_ok=True)
    model = inference_graph(nets)
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
