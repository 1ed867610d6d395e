"""The classifier's network through ONNX Runtime: no MXNet, any recent Python.

:class:`OnnxNet` runs the ``<name>.onnx`` that ``sortcore export-onnx`` writes
beside the MXNet files (:mod:`sortcore.training.export_onnx`); its
:meth:`OnnxNet.forward` gives the same raw output as the MXNet net on the same
:func:`sortcore.classifier.model.preprocess` batch (tests/test_onnx.py holds it
within 1e-5). The folder needs only the ``.onnx`` and ``labels.txt``.

The export records the SHA-256 of the ``-0000.params`` it came from; when that
file is beside the ``.onnx`` and differs (the model was retrained and not
re-exported), :class:`OnnxNet` refuses it and :func:`available` is False.
Must stay Python 3.7 compatible.
"""

import hashlib
import logging
import os

import numpy as np

from ..errors import ModelError

log = logging.getLogger(__name__)

#: The key of the ONNX metadata entry holding the source params' SHA-256.
PARAMS_SHA256 = "sortcore.params_sha256"


def file_sha256(path):
    digest = hashlib.sha256()
    with open(str(path), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def onnx_file(model_dir, name=None):
    """The ``.onnx`` file of ``model_dir`` (``<name>.onnx``, or the only one); ModelError if none."""
    model_dir = str(model_dir)
    if name is not None:
        path = os.path.join(model_dir, name + ".onnx")
        if not os.path.isfile(path):
            raise ModelError("model file %s is missing (sortcore export-onnx --model %s)" % (
                path, model_dir))
        return path
    try:
        found = sorted(f for f in os.listdir(model_dir) if f.endswith(".onnx"))
    except OSError as exc:
        raise ModelError("cannot read model directory %s: %s" % (model_dir, exc.strerror or exc))
    if len(found) != 1:
        raise ModelError("model directory %s holds %s" % (
            model_dir, "no .onnx file (sortcore export-onnx --model %s)" % model_dir if not found
            else "several .onnx files: " + ", ".join(found)))
    return os.path.join(model_dir, found[0])


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelError("ONNX Runtime is not installed (pip install 'sortcore[onnx]'): %s" % exc)
    return onnxruntime


def available(model_dir, name=None):
    """True when ``model_dir`` has a current ``.onnx`` file and onnxruntime imports."""
    try:
        path = onnx_file(model_dir, name)
        _ort()
    except ModelError as exc:
        log.debug("ONNX runtime not available for %s: %s", model_dir, exc)
        return False
    try:
        OnnxNet.check_current(path, _session(path, 1))
    except ModelError as exc:
        log.warning("%s", exc)
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
    """``forward(nchw_float32) -> np.ndarray``: the model's raw output, through ONNX Runtime.

    ``threads``: ONNX Runtime's intra-op threads (1: one core, like the camera).
    ``size``: the square input size the graph was exported with.
    """

    def __init__(self, model_dir, name=None, threads=1):
        self.path = onnx_file(model_dir, name)
        self._session = _session(self.path, threads)
        self.check_current(self.path, self._session)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError("ONNX model %s must take one NCHW input, takes %s" % (
                self.path, [(i.name, i.shape) for i in inputs]))
        self._input = inputs[0].name
        self._outputs = [o.name for o in outputs]
        self.size = inputs[0].shape[3] if isinstance(inputs[0].shape[3], int) else None

    @staticmethod
    def check_current(path, session):
        """ModelError when the ``-0000.params`` beside ``path`` is not the one it was exported from."""
        recorded = session.get_modelmeta().custom_metadata_map.get(PARAMS_SHA256)
        params = path[: -len(".onnx")] + "-0000.params"
        if recorded and os.path.isfile(params) and file_sha256(params) != recorded:
            raise ModelError("ONNX model %s is stale: %s changed since the export "
                             "(re-run sortcore export-onnx)" % (path, params))

    def forward(self, batch):
        """The raw output for a float32 (N, 3, size, size) batch (a list if the graph has several)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != 3 or (
                self.size is not None and batch.shape[2:] != (self.size, self.size)):
            raise ModelError("ONNX model %s expects (N, 3, %s, %s) input, got %s" % (
                self.path, self.size, self.size, batch.shape))
        try:
            outputs = self._session.run(self._outputs, {self._input: batch})
        except Exception as exc:  # onnxruntime's pybind errors
            raise ModelError("ONNX model %s failed: %s" % (self.path, str(exc).splitlines()[0]))
        return outputs[0] if len(outputs) == 1 else outputs
