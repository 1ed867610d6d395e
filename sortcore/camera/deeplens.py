"""AWS DeepLens adapter: camera frames from ``awscam`` and the optimized model.

The only module that imports ``awscam`` and ``mo`` (the DeepLens device
library and model optimizer), always lazily inside functions, so the rest of
sortcore imports and tests anywhere. Off the device every entry point raises
:class:`sortcore.camera.sources.SourceError` (frames) or :class:`ModelError` (model)
saying so. Must stay Python 3.7 compatible.
"""

import logging

import numpy as np

from ..core.errors import ModelError, SourceError
from ..classifier.model import SIZE, classifier_for, model_files
from .base import FrameSource

log = logging.getLogger(__name__)

OFF_DEVICE = ("%s is only available on an AWS DeepLens (the %r module cannot be imported: %s); "
              "use folder:, video: or webcam: sources and the MXNet model elsewhere")


def _import(module, what, error):
    try:
        return __import__(module)
    except ImportError as exc:
        raise error(OFF_DEVICE % (what, module, exc))


class DeepLensSource(FrameSource):
    """Frames from ``awscam.getLastFrame()``; ``max_failures`` bad reads in a row raise."""

    name = "deeplens"

    def __init__(self, max_failures=50):
        self._awscam = _import("awscam", "the deeplens frame source", SourceError)
        self.max_failures = max_failures
        self._closed = False

    def __iter__(self):
        failures = 0
        while not self._closed:
            ok, frame = self._awscam.getLastFrame()
            if not ok or frame is None:
                failures += 1
                if failures >= self.max_failures:
                    raise SourceError("awscam.getLastFrame() failed %d times in a row" % failures)
                continue
            failures = 0
            yield frame

    def close(self):
        self._closed = True


def load_optimized_model(dirpath, name=None, loading_config=None):
    """Optimize the MXNet files with ``mo.optimize`` and load them with ``awscam.Model``.

    ``dirpath`` must be the DeepLens artifacts folder the model was deployed to
    (``/opt/awscam/artifacts``). Returns a :class:`Classifier` with the same
    ``classify()`` (label ``Unknown`` when unsure) as :func:`sortcore.classifier.model.load_model`.
    Not yet verified on a device: check its predictions against the MXNet model.
    """
    import os
    mo = _import("mo", "the DeepLens model optimizer", ModelError)
    awscam = _import("awscam", "the DeepLens optimized model", ModelError)
    symbol_path, _, _ = model_files(dirpath, name)
    name = os.path.basename(symbol_path)[: -len("-symbol.json")]
    size = SIZE
    error, model_path = mo.optimize(name, size, size, "MXNet",
                                    {"--epoch": 0, "--models-dir": str(dirpath)})
    if error:
        raise ModelError("mo.optimize(%r) failed with error code %s" % (name, error))
    model = awscam.Model(model_path, loading_config or {"GPU": 1})

    def predict(batch):
        rows = []
        for chw in batch:
            # doInference takes an HxWxC image; ours is already preprocessed.
            output = model.doInference(np.ascontiguousarray(chw.transpose(1, 2, 0)))
            if not output:
                raise ModelError("awscam doInference returned no output")
            rows.append(np.asarray(list(output.values())[0], dtype=np.float32).ravel())
        return np.stack(rows)

    return classifier_for(dirpath, predict, size)  # labels.txt + the numpy open-set head
