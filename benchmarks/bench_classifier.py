"""Sock classifier speed on one CPU core, against ResNet-18, and model file sizes.

    .venv/bin/python benchmarks/bench_classifier.py [MODEL_DIR] [--repeat N]

Both networks are timed in one fresh process with OMP_NUM_THREADS=1 and
MXNET_CPU_WORKER_NTHREADS=1 set before MXNet is imported and the process
pinned to one core (see sortcore/training/speed.py): classify() of a 640x480 BGR frame,
preprocessing included, batch 1, median of N runs. ResNet-18 is
mxnet.gluon.model_zoo.vision.resnet18_v1 with random weights at 224x224.
Not a test: figures depend on the machine.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sortcore.training import speed  # noqa: E402  (imports no mxnet: timing runs in a subprocess)


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", default=os.path.join(ROOT, "model"))
    parser.add_argument("--repeat", type=int, default=300, help="Timed frames for our model.")
    parser.add_argument("--resnet-repeat", type=int, default=30, help="Timed frames for ResNet-18.")
    args = parser.parse_args(argv)
    r = speed.measure(args.model_dir, repeat=args.repeat, resnet_repeat=args.resnet_repeat)
    print("one CPU core, batch 1, 640x480 BGR frame incl. preprocessing (median)")
    print("  sockclf   %3dx%-3d  %8.2f ms/frame  (%5.0f fps)" % (
        r["size"], r["size"], r["ms_per_frame"], 1000.0 / r["ms_per_frame"]))
    print("  ResNet-18 224x224  %8.2f ms/frame  (%5.0f fps)" % (
        r["resnet18_ms_per_frame"], 1000.0 / r["resnet18_ms_per_frame"]))
    print("  ratio: sockclf is %.1fx faster" % r["ratio"])
    print("model files in %s:" % args.model_dir)
    for name, size in sorted(r["file_sizes"].items()):
        print("  %-24s %9d bytes" % (name, size))
    print("  %-24s %9d bytes (%.2f MB)" % ("total", r["total_bytes"], r["total_bytes"] / 1e6))


if __name__ == "__main__":
    main(sys.argv[1:])
