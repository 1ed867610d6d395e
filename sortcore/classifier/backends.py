"""Which runtime runs the classifier's network: ONNX Runtime or MXNet (setting ``runtime``).

``auto`` takes ONNX Runtime when the model folder has an ``.onnx`` file and onnxruntime
imports, else MXNet (the DeepLens path: the same network as ``<name>-symbol.json``);
``onnx`` and ``mxnet`` insist (a clear :class:`ModelError` when they cannot). Both give
``forward(nchw_float32) -> (N, D)`` embeddings for the same numpy head. Must stay Python 3.7
compatible.
"""

import logging

from ..core.errors import ModelError
from . import onnx_net

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnx", "mxnet")


def choose_net(model_dir, runtime, name=None):
    """The ONNX net of ``model_dir`` under ``runtime``, or None when MXNet is to run it."""
    if runtime not in RUNTIMES:
        raise ModelError("runtime must be one of %s, not %r" % (", ".join(RUNTIMES), runtime))
    if runtime == "onnx" or (runtime == "auto" and onnx_net.available(model_dir, name)):
        net = onnx_net.OnnxNet(model_dir, name)
        log.info("classifier runtime: ONNX Runtime (%s)", net.path)
        return net
    log.info("classifier runtime: MXNet (%s)", model_dir)
    return None


def load_classifier(model_dir, runtime="auto", min_probability=None, name=None):
    """The classifier of ``model_dir`` on the chosen runtime, with the folder's open-set head.

    ``min_probability`` (percent) overrides the calibrated threshold.
    """
    from .model import SIZE, classifier_for, load_model

    net = choose_net(model_dir, runtime, name=name)
    if net is None:
        return load_model(model_dir, name=name, min_probability=min_probability)
    return classifier_for(model_dir, net.forward, net.size or SIZE, min_probability)


def load_embedder(model_dir, runtime="auto", name=None):
    """The network of ``model_dir`` alone, as a head-less classifier whose ``embed`` gives
    (N, D) embeddings: what enrolment and ``train`` teach from (no gallery needed)."""
    from .model import SIZE, Classifier, mxnet_forward

    net = choose_net(model_dir, runtime, name=name)
    if net is None:
        return Classifier([], SIZE, mxnet_forward(model_dir, name), None)
    return Classifier([], net.size or SIZE, net.forward, None)
