"""Measure the classifier's ms/frame on one CPU core.

Thread settings are read when the runtimes load, so the timing runs in a fresh interpreter
(``python -m sortcore.training.speed MODEL_DIR --json``) with ``OMP_NUM_THREADS=1`` set first,
ONNX Runtime on one intra-op thread and the process pinned to one core. :func:`measure` starts
it and returns its figures: the median of ``classify()`` on a 640x480 BGR frame, batch 1,
preprocessing and the head included, and of the preprocessing alone.
"""

import json
import os
import subprocess
import sys

from ..core.errors import ModelError

ONE_CORE_ENV = {
    "OMP_NUM_THREADS": "1",
    "MXNET_CPU_WORKER_NTHREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def file_sizes(model_dir):
    """{file name: bytes} of the files in ``model_dir`` (README.md excluded)."""
    return {f: os.path.getsize(os.path.join(str(model_dir), f))
            for f in sorted(os.listdir(str(model_dir)))
            if f != "README.md" and os.path.isfile(os.path.join(str(model_dir), f))}


def measure(model_dir, repeat=200, runtime="onnx", timeout=600):
    """Time ``model_dir`` in a one-core subprocess; a dict with ``ms_per_frame``,
    ``preprocess_ms``, ``file_sizes`` and ``total_bytes``."""
    env = dict(os.environ, **ONE_CORE_ENV)
    cmd = [sys.executable, "-m", "sortcore.training.speed", str(model_dir), "--json",
           "--repeat", str(repeat), "--runtime", runtime]
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


def _run(model_dir, repeat, runtime):
    """Runs inside the one-core subprocess."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import numpy as np

    from ..classifier.model import preprocess
    from ..classifier.backends import load_classifier

    frame = np.random.RandomState(0).randint(0, 256, (480, 640, 3)).astype(np.uint8)
    clf = load_classifier(model_dir, runtime)
    sizes = file_sizes(model_dir)
    return {"ms_per_frame": round(_time(lambda: clf.classify(frame), repeat), 3),
            "preprocess_ms": round(_time(lambda: preprocess(frame, clf.size), repeat), 3),
            "size": clf.size, "file_sizes": sizes, "total_bytes": sum(sizes.values())}


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--runtime", default="onnx")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for key, value in ONE_CORE_ENV.items():
        os.environ.setdefault(key, value)
    result = _run(args.model_dir, args.repeat, args.runtime)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
