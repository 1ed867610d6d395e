"""Sock classifier: LOPO figures, speed on one core against ResNet-18, count and enrol, sizes.

    .venv/bin/python benchmarks/bench_classifier.py [MODEL_DIR] [--repeat N]

- Leave-one-photo-out right / Unknown / wrong: refitted from the LOPO scores the model's
  calibration.json names (no training; ``benchmarks/lopo_colour.py`` makes them).
- ``sortcore count video:V --json`` and ``sortcore enroll --design D --source folder:F``,
  each run as its own process as a user runs them (start-up and model loading included):
  V is a generated 640x480 video, at 5 and at 30 frames/s, of the shared photos held up one
  after another with the wall between (``sortcore.devtools.sockvideo``), F a 12-frame clip of
  a synthetic sock; count speed is V's duration over the wall time.

Both networks are timed in one fresh process with OMP_NUM_THREADS=1 and
MXNET_CPU_WORKER_NTHREADS=1 set before MXNet is imported and the process
pinned to one core (see sortcore/training/speed.py): classify() of a 640x480 BGR frame,
preprocessing included, batch 1, median of N runs. ResNet-18 is
mxnet.gluon.model_zoo.vision.resnet18_v1 with random weights at 224x224.
Not a test: figures depend on the machine.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sortcore.training import speed  # noqa: E402  (imports no mxnet: timing runs in a subprocess)


PHOTOS = os.path.join(os.path.dirname(ROOT), "shared", "sock-photos")
FRAME = (640, 480)


def lopo_row(model_dir):
    from sortcore.training import lopo
    with open(os.path.join(model_dir, "calibration.json")) as fh:
        pattern = lopo.scores_pattern(json.load(fh))
    if pattern is None:
        return "no committed LOPO scores named in calibration.json"
    pattern = os.path.join(ROOT, pattern)
    return "argmax | calibrated | nested | unknown designs rejected | blanks | rule: " + \
        lopo.card_cells(lopo.summarise(lopo.load_scores(pattern)))


def sortcore(*args):
    """Wall seconds and stdout of ``python -m sortcore ARGS`` in its own process."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "sortcore"] + list(args), env=env, check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, out.stdout.decode()


def count_and_enrol(model_dir, tmp):
    import cv2
    import numpy as np
    from sortcore.devtools import sockvideo
    from sortcore.training import synth
    photos = sorted(os.path.join(d, f) for d, _, files in os.walk(PHOTOS) for f in files
                    if f.endswith(".jpg"))
    images = [cv2.imread(p) for p in photos]
    for fps in (5, 30):  # the same 1.6 s of each sock and 2 s of wall between at either rate
        video = os.path.join(tmp, "socks%d.mp4" % fps)
        frames = sockvideo.write_video(video, images, fps, FRAME, per_sock=8 * fps // 5,
                                       wall=2 * fps)
        seconds, out = sortcore("count", "video:" + video, "--json", "--model", model_dir,
                                "--db", os.path.join(tmp, "count%d.db" % fps))
        counted = json.loads(out)
        print("sortcore count, %d fps %dx%d video: %d frames (%.1f s, %d socks shown, %d"
              " classified at --fps 5) in %.2f s wall: %.1fx real time; counted %d socks, %d"
              " unrecognised" % (fps, FRAME[0], FRAME[1], frames, frames / float(fps),
                                 len(photos), counted["frames"], seconds,
                                 frames / float(fps) / seconds,
                                 sum(r["number_socks_seen"] for r in counted["socks"]),
                                 counted["unknown"]))
    clip = os.path.join(tmp, "clip")
    os.makedirs(clip)
    sock = synth.unknown_sock(np.random.RandomState(3), view_size=224)
    for i, frame in enumerate(sockvideo.moving(sock, 12, 3)):
        cv2.imwrite(os.path.join(clip, "%02d.jpg" % i), frame)
    seconds, _ = sortcore("enroll", "--design", "Bench", "--source", "folder:" + clip,
                          "--model", model_dir, "--out", os.path.join(tmp, "enrolled"))
    print("sortcore enroll of a 12-frame clip: %.1f s wall (target <= 180 s)" % seconds)


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", default=os.path.join(ROOT, "model"))
    parser.add_argument("--repeat", type=int, default=300, help="Timed frames for our model.")
    parser.add_argument("--resnet-repeat", type=int, default=30, help="Timed frames for ResNet-18.")
    args = parser.parse_args(argv)
    print("leave-one-photo-out, %:", lopo_row(args.model_dir))
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
    with tempfile.TemporaryDirectory() as tmp:
        count_and_enrol(args.model_dir, tmp)


if __name__ == "__main__":
    main(sys.argv[1:])
