"""Which runtime runs the classifier's network: ONNX Runtime or MXNet (setting ``runtime``).

``auto`` takes ONNX Runtime when the model folder has a current ``.onnx`` and
onnxruntime imports, else MXNet; ``onnx`` and ``mxnet`` insist (a clear
:class:`ModelError` when they cannot). Both nets have ``forward(nchw_float32)
-> np.ndarray`` with the same raw output. Must stay Python 3.7 compatible.
"""

import logging

from ..errors import ModelError
from . import onnx_net

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnx", "mxnet")


def choose_net(model_dir, runtime, mxnet_net, name=None):
    """The net that runs ``model_dir`` under ``runtime`` (auto, onnx or mxnet).

    ``mxnet_net(model_dir)`` builds the MXNet net; it is called only when
    MXNet is chosen, so the ONNX path never imports MXNet.
    """
    if runtime not in RUNTIMES:
        raise ModelError("runtime must be one of %s, not %r" % (", ".join(RUNTIMES), runtime))
    if runtime == "onnx" or (runtime == "auto" and onnx_net.available(model_dir, name)):
        net = onnx_net.OnnxNet(model_dir, name)
        log.info("classifier runtime: ONNX Runtime (%s)", net.path)
        return net
    log.info("classifier runtime: MXNet (%s)", model_dir)
    return mxnet_net(model_dir)


def load_classifier(model_dir, runtime="auto", min_probability=None, name=None):
    """The classifier of ``model_dir`` on the chosen runtime, with the folder's open-set head.

    ``min_probability`` (percent) overrides the calibrated threshold.
    """
    from .model import classifier_for, load_model

    net = choose_net(model_dir, runtime, mxnet_net=lambda _: None, name=name)
    if net is None:  # MXNet: load_model checks the symbol against labels and head
        return load_model(model_dir, name=name, min_probability=min_probability)
    return classifier_for(model_dir, net.forward, net.size, min_probability)
