"""Sock classifier inference: a frozen embedding net plus the numpy open-set head.

A model folder holds the embedding net, ``labels.txt`` (one label a line) and the open-set
head (``gallery.npz``, ``calibration.json``, see :mod:`sortcore.classifier.openset`). The net
is ``lite0-int8.onnx`` (EfficientNet-Lite0, ImageNet weights; model/README.md) run by ONNX
Runtime (:mod:`sortcore.classifier.onnx_net`); a folder may instead (or also) hold the same
network as MXNet files (``lite0-symbol.json``, ``lite0-0000.params``) for the DeepLens, which
``sortcore package-lambda`` and ``sortcore export-mxnet`` build from the fp32 weights
(:mod:`sortcore.devtools.lite0_mxnet`; this module only loads them). Either gives
``forward(nchw_float32) -> (N, D)`` embeddings; the head does the rest.

:func:`preprocess` is the one preprocessing step shared by enrolment, inference and the
DeepLens adapter. Must stay Python 3.7 compatible (runs on the camera).
"""

import collections
import os

import numpy as np

from ..core.errors import ModelError
from ..core.frames import read_labels

#: The embedding net's input scaling (EfficientNet-Lite's ImageNet training): RGB, (x - 127) / 128.
INPUT_MEAN = 127.0
INPUT_SCALE = 1.0 / 128.0
#: Its input size in pixels (square).
SIZE = 224

Prediction = collections.namedtuple("Prediction", ["label", "probability"])
Prediction.__doc__ = """One label (a design, ``Blank`` or ``Unknown``) and its confidence in percent
(0-100): the best design's score (cosine similarity to its nearest views), 100 minus it for Blank."""


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
    BGR -> RGB, ``(x - INPUT_MEAN) * INPUT_SCALE``.
    ``images_bgr`` is one HxWx3 array or a list of them; the result has shape
    (N, 3, size, size). Training and inference both use this function.
    """
    if isinstance(images_bgr, np.ndarray) and images_bgr.ndim != 4:
        images_bgr = [images_bgr]
    batch = np.empty((len(images_bgr), 3, size, size), dtype=np.float32)
    for i, image in enumerate(images_bgr):
        rgb = resize(image, size)[:, :, ::-1].transpose(2, 0, 1)
        batch[i] = (rgb.astype(np.float32) - INPUT_MEAN) * INPUT_SCALE
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
    cv2 = _cv2()
    try:
        image = cv2.imread(path, 1)
    except cv2.error as exc:  # e.g. a header claiming more pixels than OpenCV allows
        raise ModelError("cannot read image %s: %s" % (path, str(exc).strip().split("error: ")[-1]))
    if image is None:
        raise ModelError("cannot read image %s: not an image OpenCV can decode" % path)
    return image


def model_files(dirpath, name=None):
    """(symbol, params, labels) paths of the MXNet model ``name`` in ``dirpath``.

    Without ``name``, the directory must hold exactly one ``*-symbol.json``.
    """
    dirpath = str(dirpath)
    if not os.path.isdir(dirpath):
        raise ModelError("model directory %s does not exist" % dirpath)
    if name is None:
        names = sorted(f[: -len("-symbol.json")] for f in os.listdir(dirpath)
                       if f.endswith("-symbol.json"))
        if not names:
            raise ModelError("model directory %s holds no *-symbol.json (no MXNet model; "
                             "sortcore export-mxnet --out DIR writes one)" % dirpath)
        if len(names) > 1:
            raise ModelError("model directory %s holds several models: %s; pass a model name"
                             % (dirpath, ", ".join(names)))
        name = names[0]
    paths = (os.path.join(dirpath, name + "-symbol.json"),
             os.path.join(dirpath, name + "-0000.params"),
             os.path.join(dirpath, "labels.txt"))
    for path in paths:
        if not os.path.isfile(path):
            raise ModelError("model file %s is missing" % path)
    return paths


class Classifier(object):
    """Labels BGR frames: a net's ``forward`` (embeddings) plus the numpy open-set head.

    ``forward`` maps a preprocessed NCHW float32 batch to (N, D) embeddings; the
    :class:`sortcore.classifier.openset.Head` maps those to :class:`Prediction`, with the
    label ``Unknown`` when not sure. Build it with :func:`load_model` or :func:`classifier_for`.
    """

    def __init__(self, labels, size, forward, head):
        self.labels = list(labels)
        self.size = int(size)
        self.forward = forward
        self.head = head

    def embed(self, images_bgr, batch=32):
        """(N, D) raw embeddings of one image or a list, ``batch`` at a time."""
        if isinstance(images_bgr, np.ndarray) and images_bgr.ndim != 4:
            images_bgr = [images_bgr]
        rows = [np.asarray(self.forward(preprocess(images_bgr[i:i + batch], self.size)))
                for i in range(0, len(images_bgr), batch)]
        if not rows:
            return np.zeros((0, self.head.dim if self.head else 0), np.float32)
        return np.concatenate(rows).reshape(len(images_bgr), -1)

    def classify_many(self, images_bgr):
        """One :class:`Prediction` per image."""
        return [Prediction(label, p) for label, p in self.head.predict(self.embed(images_bgr))]

    def classify(self, image_bgr):
        """The :class:`Prediction` for one BGR uint8 image of any size (``Unknown`` if unsure)."""
        return self.classify_many(image_bgr)[0]


def classifier_for(dirpath, forward, size=SIZE, min_probability=None):
    """A :class:`Classifier` from a model folder's labels and head around any ``forward``.

    ``min_probability`` (percent) overrides the calibrated threshold ``tau``.
    """
    from . import openset
    labels = read_labels(os.path.join(str(dirpath), "labels.txt"), ModelError)
    if not openset.has_head(dirpath):
        raise ModelError("model %s has no %s and %s (the open-set head)" % (
            dirpath, openset.GALLERY, openset.CALIBRATION))
    head = openset.load_head(dirpath, labels).with_threshold(min_probability)
    return Classifier(labels, size, forward, head)


def _mx():
    try:
        import mxnet as mx
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError("MXNet is not installed (pip install 'sortcore[model]'): %s" % exc)
    return mx


def mxnet_forward(dirpath, name=None, size=SIZE):
    """``forward`` of the folder's MXNet files (the same network as the ONNX one)."""
    symbol_path, params_path, _ = model_files(dirpath, name)
    mx = _mx()
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = mx.gluon.SymbolBlock.imports(symbol_path, ["data"], params_path, ctx=mx.cpu())
        net.hybridize(static_alloc=True, static_shape=True)
        net(mx.nd.zeros((1, 3, size, size)))
    except mx.base.MXNetError as exc:
        raise ModelError("cannot load model %s: %s" % (symbol_path, str(exc).splitlines()[0]))
    return lambda batch: net(mx.nd.array(batch)).asnumpy()


def load_model(dirpath, name=None, min_probability=None):
    """The folder's MXNet net with its head, as a CPU :class:`Classifier`.

    ``min_probability`` (percent) overrides the calibrated threshold of the head.
    :func:`sortcore.classifier.backends.load_classifier` picks ONNX Runtime when it can.
    """
    classifier = classifier_for(dirpath, mxnet_forward(dirpath, name), SIZE, min_probability)
    out = classifier.embed(np.zeros((SIZE, SIZE, 3), np.uint8))
    if out.shape != (1, classifier.head.dim):
        raise ModelError("model %s outputs shape %s, the gallery has %d-d embeddings" % (
            dirpath, out.shape, classifier.head.dim))
    return classifier
