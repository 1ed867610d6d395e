"""Measure the classifier's ms/frame on one CPU core, against ResNet-18.

MXNet reads its thread settings when it is imported, so the timing runs in a
fresh interpreter (``python -m sortcore.training.speed MODEL_DIR --json``) with
``OMP_NUM_THREADS=1`` and ``MXNET_CPU_WORKER_NTHREADS=1`` set first and the
process pinned to one core. :func:`measure` starts it and returns its figures.
Both networks are timed through the same path: :func:`sortcore.classifier.model.preprocess`
of a 640x480 BGR frame, then one forward pass with batch size 1.
"""

import json
import os
import subprocess
import sys

from ..errors import ModelError

ONE_CORE_ENV = {
    "OMP_NUM_THREADS": "1",
    "MXNET_CPU_WORKER_NTHREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def file_sizes(model_dir):
    """{file name: bytes} of the model files in ``model_dir`` (README excluded)."""
    return {f: os.path.getsize(os.path.join(str(model_dir), f))
            for f in sorted(os.listdir(str(model_dir)))
            if f.endswith(("-symbol.json", ".params", "labels.txt", ".npy", "calibration.json"))}


def measure(model_dir, repeat=200, resnet_repeat=20, resnet=True, timeout=600):
    """Time ``model_dir`` (and ResNet-18) in a one-core subprocess; returns a dict.

    Keys: ``ms_per_frame``, ``resnet18_ms_per_frame`` (None without ``resnet``),
    ``ratio``, ``size``, ``file_sizes``, ``total_bytes``.
    """
    env = dict(os.environ, **ONE_CORE_ENV)
    cmd = [sys.executable, "-m", "sortcore.training.speed", str(model_dir), "--json",
           "--repeat", str(repeat), "--resnet-repeat", str(resnet_repeat if resnet else 0)]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    try:
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=timeout, check=True)
    except subprocess.CalledProcessError as exc:
        raise ModelError("timing run failed: %s" % exc.stderr.decode(errors="replace")[-500:])
    except subprocess.TimeoutExpired:
        raise ModelError("timing run took more than %d s" % timeout)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def _time(fn, repeat, warmup=5):
    import time
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return 1000.0 * times[len(times) // 2]  # median, ms


def _run(model_dir, repeat, resnet_repeat):
    """Runs inside the one-core subprocess; mxnet must not be imported yet."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import numpy as np
    import mxnet as mx

    from ..classifier.model import load_model, preprocess

    frame = np.random.RandomState(0).randint(0, 256, (480, 640, 3)).astype(np.uint8)
    clf = load_model(model_dir)
    ours = _time(lambda: clf.classify(frame), repeat)
    result = {"ms_per_frame": round(ours, 3), "size": clf.size,
              "resnet18_ms_per_frame": None, "ratio": None}
    if resnet_repeat:
        net = mx.gluon.model_zoo.vision.resnet18_v1(pretrained=False, classes=len(clf.labels))
        net.initialize(mx.init.Xavier(), ctx=mx.cpu())
        net.hybridize(static_alloc=True, static_shape=True)

        def resnet_frame():
            batch = mx.nd.array(preprocess(frame, 224))
            return mx.nd.softmax(net(batch)).asnumpy()

        theirs = _time(resnet_frame, resnet_repeat, warmup=2)
        result["resnet18_ms_per_frame"] = round(theirs, 3)
        result["ratio"] = round(theirs / ours, 1)
    sizes = file_sizes(model_dir)
    result["file_sizes"] = sizes
    result["total_bytes"] = sum(sizes.values())
    return result


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--resnet-repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for key, value in ONE_CORE_ENV.items():
        os.environ.setdefault(key, value)
    result = _run(args.model_dir, args.repeat, args.resnet_repeat)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
