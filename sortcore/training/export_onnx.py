"""Export a model folder's MXNet graph to ``<name>.onnx`` beside it.

MXNet 1.9.1's exporter (``mxnet.onnx.export_model``) needs ``onnx<1.15`` and
``protobuf<4``, which onnxruntime cannot share, so the export runs in its own
env (``scripts/export-env.sh`` builds ``.venv-export``; ``pip install
'sortcore[export]'`` on Python <= 3.11). :func:`export_onnx` exports in this
interpreter when it can, else re-runs itself under ``.venv-export/bin/python``
of the source checkout. The ONNX graph is the symbol as it is (whatever it
outputs), with a dynamic batch axis; :class:`sortcore.classifier.onnx_net.OnnxNet`
runs it. See docs/onnx.md.

Run directly (what the re-run does): ``python -m sortcore.training.export_onnx MODEL_DIR``.
"""

import json
import os
import subprocess
import sys

from ..classifier.model import input_size, model_files
from ..classifier.onnx_net import PARAMS_SHA256, file_sha256
from ..errors import ModelError

#: The source checkout this package lives in (holds .venv-export when built there).
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORT_PYTHON = os.path.join(SOURCE_ROOT, ".venv-export", "bin", "python")
#: How long the export may take in the export env (it takes seconds).
TIMEOUT = 300


def onnx_path(model_dir, name=None):
    """Where the ``.onnx`` of the model ``name`` in ``model_dir`` goes: ``<name>.onnx`` beside its symbol."""
    symbol_path = model_files(model_dir, name)[0]
    return symbol_path[: -len("-symbol.json")] + ".onnx"


def exporter_missing():
    """Why this interpreter cannot export (a one-line reason), or None when it can."""
    try:
        import onnx  # first: where it is missing, MXNet's slow import is skipped
        import mxnet  # noqa: F401  (the exporter lives in mxnet.onnx)
    except ImportError as exc:
        return "%s (needs mxnet 1.9.1 and onnx<1.15)" % exc
    major_minor = tuple(int(p) for p in onnx.__version__.split(".")[:2])
    if major_minor >= (1, 15):
        return "onnx %s is too new for MXNet 1.9.1's exporter (needs onnx<1.15)" % onnx.__version__
    return None


def export_onnx(model_dir, name=None):
    """Write ``<name>.onnx`` beside the model's MXNet files; its path.

    Exports here when this interpreter has mxnet and onnx<1.15, else in
    ``.venv-export``; :class:`ModelError` when neither can.
    """
    out = onnx_path(model_dir, name)  # checks the folder first, in any env
    reason = exporter_missing()
    if reason is None:
        return _export_here(model_dir, name, out)
    if not os.path.isfile(EXPORT_PYTHON):
        raise ModelError("cannot export to ONNX in this Python: %s; build the export env with "
                         "scripts/export-env.sh (or pip install 'sortcore[export]' on Python <= 3.11)"
                         % reason)
    return _export_in_env(model_dir, name, out)


def _export_here(model_dir, name, out):
    import warnings

    import mxnet as mx
    import numpy as np
    import onnx

    symbol_path, params_path, _ = model_files(model_dir, name)
    size = input_size(symbol_path)
    tmp = out + ".tmp"
    plain = _plain_softmax(symbol_path, out[: -len(".onnx")] + "-onnxplain-symbol.json")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = {key.split(":", 1)[-1]: value for key, value in mx.nd.load(params_path).items()}
            mx.onnx.export_model(mx.sym.load(plain), params, in_shapes=[(1, 3, size, size)],
                                 in_types=[np.float32], onnx_file_path=tmp, dynamic=True,
                                 dynamic_input_shapes=[(None, 3, size, size)])
        graph = _tidy(onnx.load(tmp))
        onnx.helper.set_model_props(graph, {PARAMS_SHA256: file_sha256(params_path)})
        onnx.checker.check_model(graph)
        onnx.save(graph, tmp)
        os.replace(tmp, out)
    except (mx.base.MXNetError, onnx.checker.ValidationError, ValueError, KeyError,
            AttributeError, NotImplementedError) as exc:
        raise ModelError("cannot export %s to ONNX: %s" % (symbol_path, str(exc).splitlines()[0]))
    finally:
        for leftover in (tmp, plain):
            if os.path.exists(leftover):
                os.remove(leftover)
    return out


def _plain_softmax(symbol_path, out):
    """The symbol with DeepLens's ``SoftmaxActivation`` written as ``softmax`` (the same
    function: instance mode is the last axis, channel mode axis 1), which MXNet's ONNX
    exporter knows; the model folder's own symbol is not changed."""
    with open(symbol_path, encoding="utf-8") as f:
        graph = json.load(f)
    for node in graph["nodes"]:
        if node["op"] == "SoftmaxActivation":
            channel = node.get("attrs", {}).get("mode") == "channel"
            node["op"], node["attrs"] = "softmax", {"axis": "1" if channel else "-1"}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(graph, f)
    return out


def _tidy(model):
    """Drop what MXNet's exporter leaves that ONNX Runtime warns about, in place.

    Weights listed as graph inputs too (they block constant folding) and
    initializers no node reads.
    """
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    if model.ir_version >= 4:  # from IR 4 on, an initializer need not be an input
        weights = {init.name for init in graph.initializer}
        for entry in [i for i in graph.input if i.name in weights]:
            graph.input.remove(entry)
    return model


def _export_in_env(model_dir, name, out):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SOURCE_ROOT, env.get("PYTHONPATH")) if p)
    cmd = [EXPORT_PYTHON, "-m", "sortcore.training.export_onnx", os.path.abspath(str(model_dir))]
    if name:
        cmd += ["--name", name]
    try:
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelError("cannot run the export env %s: %s" % (EXPORT_PYTHON, exc))
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise ModelError("export in %s failed: %s" % (EXPORT_PYTHON, lines[-1] if lines else
                                                      "exit %d" % done.returncode))
    if not os.path.isfile(out):
        raise ModelError("export in %s wrote no %s" % (EXPORT_PYTHON, out))
    return out


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Export a model folder to <name>.onnx.")
    parser.add_argument("model_dir")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    reason = exporter_missing()
    if reason is not None:  # never re-run from the re-run
        sys.exit("cannot export to ONNX in %s: %s" % (sys.executable, reason))
    try:
        print(_export_here(args.model_dir, args.name, onnx_path(args.model_dir, args.name)))
    except ModelError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
