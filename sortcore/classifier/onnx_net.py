"""The classifier's network through ONNX Runtime: no MXNet, any recent Python.

:class:`OnnxNet` runs the model folder's one ``.onnx`` file (the shipped model:
``lite0-int8.onnx``, written by ``scripts/export_lite0.py``); :meth:`OnnxNet.forward` maps a
:func:`sortcore.classifier.model.preprocess` batch to its (N, D) embeddings. The head
(:mod:`sortcore.classifier.openset`) does the rest. Must stay Python 3.7 compatible.
"""

import logging
import os

import numpy as np

from ..core.errors import ModelError

log = logging.getLogger(__name__)


def onnx_file(model_dir, name=None):
    """The ``.onnx`` file of ``model_dir`` (``<name>.onnx``, or the only one); ModelError if none."""
    model_dir = str(model_dir)
    if name is not None:
        path = os.path.join(model_dir, name + ".onnx")
        if not os.path.isfile(path):
            raise ModelError("model file %s is missing" % path)
        return path
    try:
        found = sorted(f for f in os.listdir(model_dir) if f.endswith(".onnx"))
    except OSError as exc:
        raise ModelError("cannot read model directory %s: %s" % (model_dir, exc.strerror or exc))
    if len(found) != 1:
        raise ModelError("model directory %s holds %s" % (
            model_dir, "no .onnx file" if not found else "several .onnx files: " + ", ".join(found)))
    return os.path.join(model_dir, found[0])


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelError("ONNX Runtime is not installed (pip install 'sortcore[onnx]'): %s" % exc)
    return onnxruntime


def available(model_dir, name=None):
    """True when ``model_dir`` has one ``.onnx`` file and onnxruntime imports."""
    try:
        onnx_file(model_dir, name)
        _ort()
    except ModelError as exc:
        log.debug("ONNX runtime not available for %s: %s", model_dir, exc)
        return False
    return True


def _session(path, threads):
    ort = _ort()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's pybind errors share no base class but Exception
        raise ModelError("cannot load ONNX model %s: %s" % (path, str(exc).splitlines()[0]))


class OnnxNet(object):
    """``forward(nchw_float32) -> np.ndarray``: the model's embeddings, through ONNX Runtime.

    ``threads``: ONNX Runtime's intra-op threads (1: one core, like the camera).
    ``size``: the square input size of the graph (None when it is dynamic).
    """

    def __init__(self, model_dir, name=None, threads=1):
        self.path = onnx_file(model_dir, name)
        self._session = _session(self.path, threads)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 1:
            raise ModelError("ONNX model %s must take one NCHW input and give one output, has %s"
                             % (self.path, [(i.name, i.shape) for i in inputs]))
        self._input = inputs[0].name
        self.size = inputs[0].shape[3] if isinstance(inputs[0].shape[3], int) else None

    def forward(self, batch):
        """The (N, D) output for a float32 (N, 3, size, size) batch."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != 3 or (
                self.size is not None and batch.shape[2:] != (self.size, self.size)):
            raise ModelError("ONNX model %s expects (N, 3, %s, %s) input, got %s" % (
                self.path, self.size, self.size, batch.shape))
        try:
            return self._session.run(None, {self._input: batch})[0]
        except Exception as exc:  # onnxruntime's pybind errors
            raise ModelError("ONNX model %s failed: %s" % (self.path, str(exc).splitlines()[0]))
