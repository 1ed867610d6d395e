"""The frames the ONNX parity checks use, and their MXNet outputs (the reference).

:func:`frames`: the shared sock photos plus seeded random frames of camera
sizes (numpy + OpenCV only). :func:`mxnet_forward`: the raw output of the
model folder's MXNet symbol, straight from ``-symbol.json``/``-0000.params``.
Run as a script in the export env (it has MXNet; the ONNX env has not):
``python tests/onnx_reference.py MODEL_DIR OUT.npz`` saves the preprocessed
batch and the MXNet output.
"""

import sys
from pathlib import Path

import numpy as np

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "sock-photos"
RANDOM_SHAPES = ((480, 640), (96, 96), (720, 1280), (300, 200))


def frames():
    """BGR uint8 frames: every shared photo, then one seeded random frame per shape."""
    from sortcore.classifier.model import read_image

    photos = [read_image(p) for p in sorted(PHOTOS.glob("*/*.jpg"))]
    rng = np.random.RandomState(0)
    noise = [rng.randint(0, 256, size=shape + (3,)).astype(np.uint8) for shape in RANDOM_SHAPES]
    return photos + noise


def mxnet_forward(model_dir):
    """``forward(nchw_float32) -> np.ndarray`` of the MXNet symbol in ``model_dir``, and its input size."""
    import mxnet as mx

    from sortcore.classifier.model import input_size, model_files

    symbol_path, params_path, _ = model_files(model_dir)
    net = mx.gluon.SymbolBlock.imports(symbol_path, ["data"], params_path, ctx=mx.cpu())

    def forward(batch):
        return net(mx.nd.array(batch)).asnumpy()

    return forward, input_size(symbol_path)


def main(model_dir, out):
    from sortcore.classifier.model import preprocess

    forward, size = mxnet_forward(model_dir)
    batch = preprocess(frames(), size)
    np.savez(out, batch=batch, out=forward(batch))


if __name__ == "__main__":
    main(*sys.argv[1:])
