"""Sock classifier inference: load an exported MXNet model and label BGR frames.

The model directory holds the files written by :mod:`sortcore.training.train`:
``<name>-symbol.json``, ``<name>-0000.params`` (the net: frame -> 256-d embedding
followed by softmax probabilities), ``labels.txt`` (one label a line) and the open-set
head (``prototypes.npy``, ``calibration.json``, see :mod:`sortcore.classifier.openset`).
The graph uses only DeepLens-supported operators (Convolution, BatchNorm, Activation,
Pooling, Flatten, FullyConnected, SoftmaxActivation, Concat), so the DeepLens model
optimizer can convert the same files (see :mod:`sortcore.camera.deeplens`); the head
runs in numpy everywhere.

:func:`preprocess` is the one preprocessing step shared by training, inference
and the DeepLens adapter. Must stay Python 3.7 compatible (runs on the camera).
"""

import collections
import os

import numpy as np

from ..errors import ModelError

#: Per-channel RGB mean and standard deviation (ImageNet), applied after /255.
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

#: The model name used when a directory holds one ``*-symbol.json``.
DEFAULT_NAME = "sockclf"

Prediction = collections.namedtuple("Prediction", ["label", "probability"])
Prediction.__doc__ = """One label (a design, ``Blank`` or ``Unknown``) and its confidence in percent
(0-100): the cosine similarity to the nearest prototype, or the softmax P(Blank) for Blank."""


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError("OpenCV is not installed (pip install 'sortcore[model]'): %s" % exc)
    return cv2


def resize(image_bgr, size):
    """Step 1 of :func:`preprocess`: a checked ``size`` x ``size`` BGR uint8 image.

    Area interpolation; a frame at least 4x ``size`` both ways is first halved (exact 2x2
    means) until it is not, which is much cheaper than one area resize by an odd factor.
    Smaller images (the 2x ``size`` training and LOPO views) take the one resize as before.

    The DeepLens adapter stops here: its model optimizer applies step 2.
    """
    cv2 = _cv2()
    image = _check_image(image_bgr)
    h, w = image.shape[:2]
    while h >= 4 * size and w >= 4 * size:  # exact 2x2 means first: a 640x480 frame costs
        h, w = h // 2, w // 2               # 0.46 ms instead of 1.1 (mean change 0.3 levels)
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def preprocess(images_bgr, size):
    """Turn BGR uint8 images of any size into a float32 NCHW batch.

    Step 1 :func:`resize` to ``size`` x ``size`` (area interpolation); step 2
    BGR -> RGB, scale to [0, 1], normalise with :data:`MEAN`/:data:`STD`.
    ``images_bgr`` is one HxWx3 array or a list of them; the result has shape
    (N, 3, size, size). Training and inference both use this function.
    """
    if isinstance(images_bgr, np.ndarray) and images_bgr.ndim != 4:
        images_bgr = [images_bgr]
    batch = np.empty((len(images_bgr), 3, size, size), dtype=np.float32)
    for i, image in enumerate(images_bgr):
        rgb = resize(image, size)[:, :, ::-1].astype(np.float32) / 255.0
        batch[i] = ((rgb - MEAN) / STD).transpose(2, 0, 1)
    return batch


def _check_image(image):
    if not isinstance(image, np.ndarray):
        raise ModelError("expected a numpy image, got %s" % type(image).__name__)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise ModelError("expected an HxWx3 BGR image, got shape %s" % (image.shape,))
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype != np.uint8:
        raise ModelError("expected a uint8 image, got dtype %s" % image.dtype)
    return image


def read_image(path):
    """Read an image file as a BGR uint8 array; :class:`ModelError` if unreadable."""
    path = str(path)
    if not os.path.isfile(path):
        raise ModelError("cannot read image %s: no such file" % path)
    image = _cv2().imread(path, 1)
    if image is None:
        raise ModelError("cannot read image %s: not an image OpenCV can decode" % path)
    return image


def read_labels(path):
    """Labels from a ``labels.txt`` file, one a line, blank lines ignored."""
    try:
        with open(str(path), encoding="utf-8") as fh:
            labels = [line.strip() for line in fh if line.strip()]
    except OSError as exc:
        raise ModelError("cannot read labels %s: %s" % (path, exc.strerror or exc))
    if not labels:
        raise ModelError("labels file %s is empty" % path)
    return labels


def model_files(dirpath, name=None):
    """(symbol, params, labels) paths of the model ``name`` in ``dirpath``.

    Without ``name``, the directory must hold exactly one ``*-symbol.json``.
    """
    dirpath = str(dirpath)
    if not os.path.isdir(dirpath):
        raise ModelError("model directory %s does not exist" % dirpath)
    if name is None:
        names = sorted(f[: -len("-symbol.json")] for f in os.listdir(dirpath)
                       if f.endswith("-symbol.json"))
        if len(names) != 1:
            raise ModelError("model directory %s holds %s; pass a model name" % (
                dirpath, "no *-symbol.json" if not names else "several models: " + ", ".join(names)))
        name = names[0]
    paths = (os.path.join(dirpath, name + "-symbol.json"),
             os.path.join(dirpath, name + "-0000.params"),
             os.path.join(dirpath, "labels.txt"))
    for path in paths:
        if not os.path.isfile(path):
            raise ModelError("model file %s is missing" % path)
    return paths


class Classifier(object):
    """Labels BGR frames: a net's ``forward`` plus the numpy open-set head.

    ``forward`` maps a preprocessed NCHW float32 batch to raw outputs (N, D + S); the
    :class:`sortcore.classifier.openset.Head` maps those to :class:`Prediction`, with the
    label ``Unknown`` when not sure. Without a head (a model folder from before the
    open-set head) the raw outputs are softmax probabilities and the argmax wins.
    Build it with :func:`load_model` or :func:`classifier_for`.
    """

    def __init__(self, labels, size, forward, head=None):
        self.labels = list(labels)
        self.size = int(size)
        self.forward = forward
        self.head = head

    def raw(self, images_bgr):
        """The net's raw outputs for one image or a list."""
        return np.asarray(self.forward(preprocess(images_bgr, self.size)))

    def classify_many(self, images_bgr):
        """One :class:`Prediction` per image."""
        raw = self.raw(images_bgr)
        if self.head is not None:
            return [Prediction(label, p) for label, p in self.head.predict(raw)]
        if raw.ndim != 2 or raw.shape[1] != len(self.labels):
            raise ModelError("model output has shape %s, expected (N, %d)" % (
                raw.shape, len(self.labels)))
        return [Prediction(self.labels[i], round(float(row[i]) * 100.0, 2))
                for row, i in zip(raw, raw.argmax(axis=1))]

    def classify(self, image_bgr):
        """The :class:`Prediction` for one BGR uint8 image of any size (``Unknown`` if unsure)."""
        return self.classify_many(image_bgr)[0]


def classifier_for(dirpath, forward, size, min_probability=None):
    """A :class:`Classifier` from a model folder's labels and head around any ``forward``.

    ``min_probability`` (percent) overrides the calibrated cosine threshold ``tau``.
    """
    from . import openset
    labels = read_labels(os.path.join(str(dirpath), "labels.txt"))
    head = None
    if openset.has_head(dirpath):
        head = openset.load_head(dirpath, labels).with_threshold(min_probability)
    return Classifier(labels, size, forward, head)


def _mx():
    try:
        import mxnet as mx
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError("MXNet is not installed (pip install 'sortcore[model]'): %s" % exc)
    return mx


def input_size(symbol_path):
    """The square input size recorded on the ``data`` node (``__shape__`` attr).

    Training writes it (the attribute ``mx.sym.var(shape=...)`` uses); graphs
    exported elsewhere without it fall back to 64.
    """
    import json
    try:
        with open(symbol_path, encoding="utf-8") as fh:
            graph = json.load(fh)
        for node in graph["nodes"]:
            if node.get("op") == "null" and node.get("name") == "data":
                shape = (node.get("attrs") or {}).get("__shape__")
                return int(shape.strip("()[] ").split(",")[-1]) if shape else 64
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError("cannot read model symbol %s: %s" % (symbol_path, exc))
    raise ModelError("model symbol %s has no 'data' input" % symbol_path)


def load_model(dirpath, name=None, size=None, min_probability=None):
    """Load a model folder (symbol, params, labels, head) into a CPU :class:`Classifier`.

    ``min_probability`` (percent) overrides the calibrated threshold of the head.
    """
    symbol_path, params_path, labels_path = model_files(dirpath, name)
    labels = read_labels(labels_path)
    size = int(size or input_size(symbol_path))
    mx = _mx()
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = mx.gluon.SymbolBlock.imports(symbol_path, ["data"], params_path, ctx=mx.cpu())
        net.hybridize(static_alloc=True, static_shape=True)
        out = net(mx.nd.zeros((1, 3, size, size)))
    except mx.base.MXNetError as exc:
        raise ModelError("cannot load model %s: %s" % (symbol_path, str(exc).splitlines()[0]))
    classifier = classifier_for(dirpath, lambda batch: net(mx.nd.array(batch)).asnumpy(),
                                size, min_probability)
    expected = len(labels) if classifier.head is None else classifier.head.outputs
    if out.shape != (1, expected):
        raise ModelError("model %s outputs shape %s but labels.txt has %d labels" % (
            symbol_path, out.shape, len(labels)))
    return classifier
