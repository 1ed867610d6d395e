"""The shipped EfficientNet-Lite0 embedding as MXNet files, for the DeepLens / Greengrass v1 path.

The camera runs MXNet on Python 3.7 and has no ONNX Runtime, and MXNet 1.9.1's ONNX importer
rejects the exported graph (TF-style "same" padding becomes ``ConstantOfShape``). So the same
network is written here as a Gluon ``HybridBlock`` (``Lite0``, :func:`build`) that loads the same fp32
weights (``build/eye/lite0-fp32.npz``, keyed by their torch names, written by
``scripts/export_lite0.py``) and is exported as ``lite0-symbol.json`` / ``lite0-0000.params``:
what :func:`sortcore.classifier.model.mxnet_forward` (``SymbolBlock.imports``) and the DeepLens
model optimizer (``mo.optimize``) read. Only the packager needs this module: the lambda loads
the exported pair and never builds the graph, so it stays out of the lambda zip.

The graph, exactly the ONNX export's (parity <= 1e-4, ``tests/test_mxnet.py``):

- stem 3x3/2 conv (32), 16 MBConv blocks (1x1 expand, depthwise kxk, 1x1 project; a residual
  when the stride is 1 and the widths match; no squeeze-excitation in Lite), 1x1 head conv
  (1280), ReLU6 (``clip(0, 6)``) after every conv but the projections, global mean pool;
- BatchNorm (eps 1e-3) folded into each conv's weights and a bias at build time;
- TensorFlow's "same" padding for a 224 px input: symmetric padding in the convolution when the
  total is even (every stride-1 conv), otherwise an explicit ``pad`` of (top, bottom, left,
  right) = (total // 2, total - total // 2, ...) before an unpadded conv, as the torch code pads.
"""

import hashlib
import os

from ..core.errors import ModelError, PackageError

NAME = "lite0"
EPOCH = 0
#: The fp32 weights ``scripts/export_lite0.py`` writes (in ``build/eye/``), and where their
#: checksum is recorded (the model folder's ``SHA256SUMS``).
WEIGHTS = "lite0-fp32.npz"
SUMS = "SHA256SUMS"
#: What goes with the network into an MXNet model folder: the labels and the open-set head.
HEAD_FILES = ("labels.txt", "gallery.npz", "calibration.json")
MISSING = ("the MXNet model is built from %s, which is missing: run bash scripts/eye-env.sh, then "
           ".venv-eye/bin/python scripts/export_lite0.py")
BN_EPS = 1e-3
#: EfficientNet-Lite0's stages: (repeats, kernel, stride of the first block, expand ratio, width).
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM = 32


def blocks():
    """[(kernel, stride, expand, in, out)] of the 16 MBConv blocks."""
    out, width = [], STEM
    for repeats, kernel, stride, expand, out_width in STAGES:
        for i in range(repeats):
            out.append((kernel, stride if i == 0 else 1, expand, width, out_width))
            width = out_width
    return out


def same_padding(size, kernel, stride):
    """TensorFlow "same": (before, after, output size) for one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def _mx():
    try:
        import mxnet as mx
    except ImportError as exc:
        raise ModelError("building the MXNet model needs MXNet (pip install 'sortcore[model]'): %s"
                         % exc)
    return mx


def fold(weights, conv, bn):
    """(weight, bias) of torch conv ``conv`` with BatchNorm ``bn`` folded in (float32)."""
    import numpy as np

    scale = weights[bn + ".weight"] / np.sqrt(weights[bn + ".running_var"] + BN_EPS)
    weight = weights[conv + ".weight"] * scale.reshape(-1, 1, 1, 1)
    bias = weights[bn + ".bias"] - weights[bn + ".running_mean"] * scale
    return weight.astype(np.float32), bias.astype(np.float32)


def _classes(mx):
    nn = mx.gluon.nn

    def sequential(children):
        """The built ``children`` in a row (they carry their own parameter names)."""
        row = nn.HybridSequential(prefix="")
        row.add(*children)
        return row

    class Conv(mx.gluon.HybridBlock):
        """One conv (BatchNorm folded into its weight and bias), its "same" padding, ReLU6 or not."""

        def __init__(self, name, weight, bias, stride, depthwise, relu6, size):
            super(Conv, self).__init__(prefix="%s_%s_" % (NAME, name))
            channels, kernel = weight.shape[0], weight.shape[2]
            before, after, self.size_out = same_padding(size, kernel, stride)
            self.pad = None if before == after else (0, 0, 0, 0, before, after, before, after)
            self.relu6 = relu6
            with self.name_scope():
                self.conv = nn.Conv2D(channels, kernel, strides=stride,
                                      padding=before if self.pad is None else 0,
                                      groups=channels if depthwise else 1,
                                      in_channels=channels if depthwise else weight.shape[1],
                                      prefix="")
            self.conv.initialize(ctx=mx.cpu())
            self.conv.weight.set_data(mx.nd.array(weight))
            self.conv.bias.set_data(mx.nd.array(bias))

        def hybrid_forward(self, F, x):
            if self.pad is not None:
                x = F.pad(x, mode="constant", pad_width=self.pad, constant_value=0)
            x = self.conv(x)
            return F.clip(x, 0.0, 6.0) if self.relu6 else x

    class MBConv(mx.gluon.HybridBlock):
        """Expand (1x1, unless the ratio is 1), depthwise, project; the input added back when
        the stride is 1 and the widths match."""

        def __init__(self, name, convs, residual):
            super(MBConv, self).__init__(prefix=name + "_")
            self.residual = residual
            self.convs = sequential(convs)

        def hybrid_forward(self, F, x):
            y = self.convs(x)
            return y + x if self.residual else y

    class Lite0(mx.gluon.HybridBlock):
        """Preprocessed (N, 3, 224, 224) -> (N, 1280): the last features, mean-pooled."""

        def __init__(self, layers):
            super(Lite0, self).__init__(prefix=NAME + "_")
            self.body = sequential(layers)

        def hybrid_forward(self, F, x):
            x = self.body(x)
            return F.Flatten(F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="avg"))

    return Conv, MBConv, Lite0


class _Weights(object):
    """The torch-named arrays, folded per conv; remembers which were used."""

    def __init__(self, weights):
        import numpy as np

        self.weights = {k: np.asarray(weights[k], np.float32) for k in weights}
        self.used = set()

    def conv(self, conv, bn):
        try:
            folded = fold(self.weights, conv, bn)
        except KeyError as exc:
            raise ModelError("the Lite0 weights have no %s" % exc)
        self.used.update([conv + ".weight"] + [bn + s for s in (
            ".weight", ".bias", ".running_mean", ".running_var")])
        return folded

    def check_all_used(self):
        unused = sorted(set(self.weights) - self.used)
        if unused:
            raise ModelError("the Lite0 weights hold %d arrays the network does not use: %s"
                             % (len(unused), ", ".join(unused[:5])))


def build(weights):
    """The Gluon Lite0 net (a HybridBlock, CPU) with ``weights`` (torch name -> array) folded in."""
    from ..classifier.model import SIZE  # numpy and OpenCV: only when building

    mx = _mx()
    Conv, MBConv, Lite0 = _classes(mx)
    w = _Weights(weights)
    stem = Conv("stem", *w.conv("_conv_stem", "_bn0"), stride=2, depthwise=False, relu6=True,
                size=SIZE)
    layers, size = [stem], stem.size_out
    for i, (kernel, stride, expand, width_in, width_out) in enumerate(blocks()):
        t = "_blocks.%d." % i
        convs = []
        if expand != 1:
            convs.append(Conv("b%d_expand" % i, *w.conv(t + "_expand_conv", t + "_bn0"), stride=1,
                              depthwise=False, relu6=True, size=size))
        convs.append(Conv("b%d_dw" % i, *w.conv(t + "_depthwise_conv", t + "_bn1"), stride=stride,
                          depthwise=True, relu6=True, size=size))
        size = convs[-1].size_out
        convs.append(Conv("b%d_project" % i, *w.conv(t + "_project_conv", t + "_bn2"), stride=1,
                          depthwise=False, relu6=False, size=size))
        layers.append(MBConv("b%d" % i, convs, stride == 1 and width_in == width_out))
    layers.append(Conv("head", *w.conv("_conv_head", "_bn1"), stride=1, depthwise=False,
                       relu6=True, size=size))
    w.check_all_used()
    return Lite0(layers)


def load_weights(path):
    """The torch-named fp32 arrays of ``lite0-fp32.npz``; ModelError if unreadable."""
    import numpy as np

    try:
        with np.load(str(path), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise ModelError("cannot read the Lite0 weights %s: %s" % (path, exc))


def export(weights_path, out_dir):
    """Write ``lite0-symbol.json`` and ``lite0-0000.params`` into ``out_dir``; return their paths.

    The same bytes for the same weights (``HybridBlock.export``: the symbol's JSON and the
    parameters in a fixed order), so the lambda zip stays reproducible.
    """
    from ..classifier.model import SIZE

    mx = _mx()
    net = build(load_weights(weights_path))
    net.hybridize(static_alloc=False)
    net(mx.nd.zeros((1, 3, SIZE, SIZE)))
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    prefix = os.path.join(str(out_dir), NAME)
    net.export(prefix, epoch=EPOCH)
    return prefix + "-symbol.json", prefix + "-%04d.params" % EPOCH


def sha256(path):
    digest = hashlib.sha256()
    with open(str(path), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_weights(weights_path, model_dir):
    """The SHA-256 of ``weights_path`` once it is known to be the fp32 twin of ``model_dir``'s
    network (the checksum its ``SHA256SUMS`` records for ``lite0-fp32.npz``): the head's gallery
    was embedded by that network, so other weights would answer confidently wrong."""
    weights_path = str(weights_path)
    if not os.path.isfile(weights_path):
        raise PackageError(MISSING % weights_path)
    sums = os.path.join(str(model_dir), SUMS)
    try:
        with open(sums) as fh:
            recorded = dict(line.split()[::-1] for line in fh if len(line.split()) == 2)
    except OSError as exc:
        raise PackageError("cannot read %s (the network's checksums): %s" % (sums, exc.strerror or exc))
    if WEIGHTS not in recorded:
        raise PackageError("%s records no checksum for %s: model %s may not be the Lite0 network"
                           % (sums, WEIGHTS, model_dir))
    digest = sha256(weights_path)
    if digest != recorded[WEIGHTS]:
        raise PackageError("%s is not the network %s records (sha256 %s..., expected %s...): "
                           "re-run .venv-eye/bin/python scripts/export_lite0.py"
                           % (weights_path, sums, digest[:12], recorded[WEIGHTS][:12]))
    return digest


def write_model(model_dir, out_dir, weights_path):
    """A model folder for the MXNet runtime: ``model_dir``'s labels and open-set head, and the
    Lite0 pair built from ``weights_path`` (checked by :func:`check_weights`). ``out_dir`` must
    be new or empty; it is written beside itself and renamed into place. Returns its file names."""
    from ..training.teach import Staged

    check_weights(weights_path, model_dir)
    missing = [n for n in HEAD_FILES if not os.path.isfile(os.path.join(str(model_dir), n))]
    if missing:
        raise PackageError("model %s has no %s" % (model_dir, ", ".join(missing)))
    with Staged(model_dir, out_dir) as staged:
        staged.copy(list(HEAD_FILES) + [SUMS])
        export(weights_path, staged.path)
    return sorted(os.listdir(str(out_dir)))
