"""MXNet vs ONNX Runtime: ms/frame of the classifier's net on one CPU core, same frames, same run.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_onnx.py [MODEL_DIR] [--rounds N]

Needs MXNet and onnxruntime in this Python (the main .venv) and the export env
(scripts/export-env.sh): MODEL_DIR (default model/) is copied to a temporary
folder and exported there. One process, pinned to one core, with
OMP_NUM_THREADS=1 / MXNET_CPU_WORKER_NTHREADS=1 set before MXNet is imported
and ONNX Runtime at one intra-op thread. Frames: the shared sock photos plus
seeded random 640x480 frames, preprocessed once (the same batch for both); each
round times one forward pass (batch 1) per frame with MXNet, then with ONNX
Runtime, so load from other processes hits both alike. Prints median and p90
ms/frame and the largest output difference. Not a test: figures depend on the machine.
"""

import os
import sys

for _key in ("OMP_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_key] = "1"  # before numpy/MXNet are imported

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PHOTOS = os.path.join(os.path.dirname(ROOT), "shared", "sock-photos")


def _frames(count_random):
    import glob

    import numpy as np

    from sortcore.classifier.model import read_image

    photos = [read_image(p) for p in sorted(glob.glob(os.path.join(PHOTOS, "*", "*.jpg")))]
    rng = np.random.RandomState(0)
    return photos + [rng.randint(0, 256, (480, 640, 3)).astype(np.uint8) for _ in range(count_random)]


def _mxnet_forward(model_dir):
    """The MXNet net as sortcore.classifier.model.load_model builds it (CPU, hybridized)."""
    import warnings

    import mxnet as mx

    from sortcore.classifier.model import model_files

    symbol_path, params_path, _ = model_files(model_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = mx.gluon.SymbolBlock.imports(symbol_path, ["data"], params_path, ctx=mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    return lambda batch: net(mx.nd.array(batch)).asnumpy()


def _stats(times):
    times = sorted(times)
    return 1000.0 * times[len(times) // 2], 1000.0 * times[int(len(times) * 0.9)]


def measure(model_dir, rounds, count_random=8):
    import shutil
    import tempfile
    import time

    import numpy as np

    from sortcore.classifier.model import input_size, model_files, preprocess
    from sortcore.classifier.onnx_net import OnnxNet
    from sortcore.training.export_onnx import export_onnx

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    tmp = tempfile.mkdtemp(prefix="bench-onnx-")
    try:
        for name in os.listdir(model_dir):
            shutil.copy(os.path.join(model_dir, name), tmp)
        export_onnx(tmp)
        size = input_size(model_files(tmp)[0])
        frames = _frames(count_random)
        start = time.perf_counter()
        batch = preprocess(frames, size)
        prep_ms = 1000.0 * (time.perf_counter() - start) / len(frames)
        nets = {"MXNet": _mxnet_forward(tmp), "ONNX Runtime": OnnxNet(tmp, threads=1).forward}
        times = {name: [] for name in nets}
        worst = 0.0
        for _ in range(2):  # warm-up
            for forward in nets.values():
                forward(batch[:1])
        for _ in range(rounds):
            for i in range(len(batch)):
                one, outs = batch[i:i + 1], []
                for name, forward in nets.items():
                    start = time.perf_counter()
                    outs.append(forward(one))
                    times[name].append(time.perf_counter() - start)
                worst = max(worst, float(np.abs(outs[0] - outs[1]).max()))
    finally:
        shutil.rmtree(tmp)
    return len(frames), size, prep_ms, {name: _stats(t) for name, t in times.items()}, worst


def main(argv):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", default=os.path.join(ROOT, "model"))
    parser.add_argument("--rounds", type=int, default=20, help="Passes over all frames.")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    frames, size, prep_ms, stats, worst = measure(args.model_dir, args.rounds)
    print("one CPU core, batch 1, %d frames (shared photos + random 640x480) x %d rounds, "
          "%dx%d input; load average %.2f at start" % (frames, args.rounds, size, size, load))
    print("  preprocess (shared, once)  %7.3f ms/frame" % prep_ms)
    for name, (median, p90) in stats.items():
        print("  %-13s forward      %7.3f ms/frame median, %7.3f p90" % (name, median, p90))
    mx_ms, ort_ms = stats["MXNet"][0], stats["ONNX Runtime"][0]
    print("  ONNX Runtime / MXNet: %.2fx the speed; largest output difference %.2g" % (
        mx_ms / ort_ms, worst))


if __name__ == "__main__":
    main(sys.argv[1:])
