"""The pretrained eye's figures against issue 23's targets: prints the table of model/README.md.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_classifier.py [MODEL_DIR] [--fp32 ONNX]

- LOPO right / Unknown / wrong: the model's calibration.json (``sortcore train`` computed it:
  leave-one-photo-out with leave-one-design-out, nested);
- frames of the shared photos on a synthetic 640x480 wall filling 30-100 % of it, synthetic
  socks of designs never taught, blanks (synthetic walls, wood, tables and crops of the photos'
  backgrounds), and 2 new synthetic designs enrolled from 3 renders then 10 new renders each:
  the sets of research/eye_sets.py (embeddings cached in build/eye-cache/) through the model's
  own head, exactly as ``classify`` decides;
- ms/frame on one core (``sortcore.training.speed``: a fresh process, one thread, pinned;
  ``classify()`` of a 640x480 frame, preprocessing and head included) for the shipped int8
  net and, with ``--fp32`` (default build/eye/lite0-fp32.onnx when it exists), the fp32 one;
- ``sortcore count`` of a generated 640x480 video and ``sortcore enroll`` of one design from
  3 photos, each its own process as a user runs them;
- the model folder's size.

Not a test: the figures depend on the machine.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "research"))

import eye_sets  # noqa: E402
from sortcore.classifier import openset  # noqa: E402
from sortcore.classifier.model import read_labels  # noqa: E402
from sortcore.training import speed  # noqa: E402


def shares(labels, truth):
    right = sum(label == t for label, t in zip(labels, truth))
    unknown = sum(label in (openset.UNKNOWN, openset.BLANK) for label in labels)
    return right, unknown, len(labels) - right - unknown


def sets_rows(model_dir):
    head = openset.load_head(model_dir, read_labels(os.path.join(model_dir, "labels.txt")))
    onnx = [f for f in os.listdir(model_dir) if f.endswith(".onnx")][0]
    sets = eye_sets.all_sets(eye_sets.Embedder(os.path.join(model_dir, onnx)))
    labels = lambda emb: [label for label, _ in head.predict(emb)]  # noqa: E731
    photos = eye_sets.photos()
    framed = [(label, x) for label, name, _ in photos for x in labels(sets["frame/" + name])]
    rows = [("socks filling 30-100 %% of a 640x480 frame on a wall (right/Unknown/wrong of %d)"
             % len(framed), "%d/%d/%d" % shares([x for _, x in framed], [l for l, _ in framed]))]
    for key, seed in (("untaught-test", 31337), ("untaught-cal", 9001)):
        got = labels(sets[key])
        rows.append(("synthetic untaught designs (seed %d) called a known design" % seed,
                     "%d of %d" % (sum(x not in ("Unknown", "Blank") for x in got), len(got))))
    got = labels(sets["blanks"])
    rows.append(("frames with no sock called Blank", "%d of %d" % (got.count("Blank"), len(got))))
    new_labels = head.labels + ["New%d" % d for d in eye_sets.NEW_DESIGNS]
    views = np.vstack([head.views] + [sets["new-enrol/%d" % d] for d in eye_sets.NEW_DESIGNS])
    owners = np.concatenate([head.owners] + [np.full(len(sets["new-enrol/%d" % d]),
                                                     len(head.labels) + i)
                                             for i, d in enumerate(eye_sets.NEW_DESIGNS)])
    grown = openset.Head(new_labels, views, owners, head.calibration, head.metric)
    got, truth = [], []
    for d in eye_sets.NEW_DESIGNS:
        got += [label for label, _ in grown.predict(sets["new-test/%d" % d])]
        truth += ["New%d" % d] * len(sets["new-test/%d" % d])
    rows.append(("2 new designs enrolled from 3 renders, 20 new renders (right/Unknown/wrong)",
                 "%d/%d/%d" % shares(got, truth)))
    got = [label for label, _ in grown.predict(sets["untaught-test"])]
    rows.append(("  the same model: synthetic untaught designs called a known design",
                 "%d of %d" % (sum(x not in ("Unknown", "Blank") for x in got), len(got))))
    return rows


def sortcore(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "sortcore"] + list(args), env=env, check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, out.stdout.decode()


def count_and_enrol(model_dir, tmp):
    import cv2
    from sortcore.devtools import sockvideo
    from sortcore.training import synth
    images = [image for _, _, image in eye_sets.photos()]
    video = os.path.join(tmp, "socks.mp4")
    frames = sockvideo.write_video(video, images, 30, (640, 480), per_sock=48, wall=60)
    seconds, _ = sortcore("count", "video:" + video, "--json", "--model", model_dir,
                          "--db", os.path.join(tmp, "c.db"))
    rows = [("`count` of a 640x480 30 fps video at the default --fps 5", "%.1fx real time" % (
        frames / 30.0 / seconds))]
    folder = os.path.join(tmp, "enrol")
    os.makedirs(folder)
    pattern, rng = synth.design(501), np.random.RandomState(501 * 7 + 1)
    for i in range(3):
        cv2.imwrite(os.path.join(folder, "%d.png" % i), synth.render(pattern, rng))
    seconds, _ = sortcore("enroll", "--design", "New", "--source", "folder:" + folder, "--model",
                          model_dir, "--out", os.path.join(tmp, "enrolled"))
    return rows + [("`enroll` of one design from 3 photos (whole command)", "%.1f s" % seconds)]


def speed_rows(model_dir, fp32):
    rows = []
    s = speed.measure(model_dir, repeat=100)
    rows.append(("ms/frame, int8, one core, 224 px, preprocessing + head included",
                 "%.2f (preprocess %.2f)" % (s["ms_per_frame"], s["preprocess_ms"])))
    if fp32 and os.path.isfile(fp32):
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("labels.txt", "gallery.npz", "calibration.json"):
                shutil.copy(os.path.join(model_dir, name), tmp)
            shutil.copy(fp32, tmp)
            f = speed.measure(tmp, repeat=100)
        rows.append(("ms/frame, fp32 (not shipped), the same way", "%.2f" % f["ms_per_frame"]))
    rows.append(("model files (model/ total)", "%.2f MB" % (s["total_bytes"] / 1e6)))
    return rows


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", default=os.path.join(ROOT, "model"))
    parser.add_argument("--fp32", default=os.path.join(ROOT, "build", "eye", "lite0-fp32.onnx"))
    args = parser.parse_args(argv)
    with open(os.path.join(args.model_dir, "calibration.json")) as fh:
        lopo = json.load(fh)["lopo"]
    three = lambda s: "/".join("%.1f" % (100 * s[k]) for k in ("right", "unknown", "wrong"))  # noqa
    rows = [("LOPO argmax right", "%.1f %%" % (100 * lopo["argmax_right"])),
            ("LOPO right/Unknown/wrong, calibrated", three(lopo["calibrated"]) + " %"),
            ("LOPO right/Unknown/wrong, nested", three(lopo["nested"]) + " %"),
            ("real designs left out (LODO) called a known design, calibrated / nested",
             "%.1f / %.1f %%" % (100 * lopo["untaught_known"], 100 * lopo["nested_untaught_known"]))]
    rows += sets_rows(args.model_dir)
    rows += speed_rows(args.model_dir, args.fp32)
    with tempfile.TemporaryDirectory() as tmp:
        rows += count_and_enrol(args.model_dir, tmp)
    print("| what | measured |\n|---|---|")
    for what, value in rows:
        print("| %s | %s |" % (what, value))


if __name__ == "__main__":
    main(sys.argv[1:])
