"""Issue 24's targets on generated videos, through the real ``sortcore count`` CLI.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_newdesigns.py [VIDEOS] [UNTAUGHT] [FIRST_SEED]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_newdesigns.py --speed

Each video (:func:`sortcore.devtools.sockvideo.new_designs_video`, seeds FIRST_SEED.. (default
1), VIDEOS of them) is a laundry
load on one wall at 4 fps: UNTAUGHT designs nobody taught (a real photo's sock re-clothed, both
socks of each) and three taught socks (a Github pair, an odd Streamsets), each held up 3 s with
2 s of wall between. ``count --json`` and the session's sightings (in order) are compared with
the truth: every sock of an untaught design under one label of its own, no label for two
designs (false pairs), taught socks under their design, nothing Unknown, and the speed as a
multiple of real time (the CLI's own start-up included).

``--speed``: ``count`` of video 1, in-process (the model loaded once, as a camera runs) and
through the CLI (start-up included), with and without new designs, the runs interleaved so a
busy machine slows both alike; the best of 3 of each.
"""

import collections
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PHOTOS = os.path.join(os.path.dirname(ROOT), "shared", "sock-photos")
FPS, PER_SOCK, BETWEEN = 4.0, 12, 8  # sockvideo.write_held_video's defaults
MISSING = "(missing)"

from sortcore.devtools.sockvideo import new_designs_video  # noqa: E402


def judge(truth, labels):
    """(socks right, false pairs, splits, taught wrong, missing, truth, labels) of one video;
    a sock nothing was counted for is missing, not a label."""
    owners, of = collections.defaultdict(set), collections.defaultdict(set)
    for design, label in zip(truth, labels):
        if label != MISSING:
            owners[label].add(design)
            of[design].add(label)
    false = sum(1 for label, who in owners.items() if len(who) > 1)
    missing = labels.count(MISSING)
    splits = sum(1 for design, got in of.items() if design.startswith("r") and len(got) > 1)
    taught = sum(1 for design, label in zip(truth, labels) if not design.startswith("r") and label != design)
    right = sum(1 for design, label in zip(truth, labels)
                if (label == design if not design.startswith("r") else
                    label.startswith("New") and owners[label] == {design} and of[design] == {label}))
    return right, false, splits, taught, missing, truth, labels


def one(seed, untaught, folder):
    video, db = os.path.join(folder, "v%d.mp4" % seed), os.path.join(folder, "v%d.db" % seed)
    truth = new_designs_video(video, PHOTOS, seed, untaught)
    env = dict(os.environ, PYTHONPATH=ROOT)
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "sortcore", "count", "video:" + video, "--db", db, "--json"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    seconds = time.time() - start
    counted = json.loads(out.stdout)
    labels = sock_labels(db, len(truth))
    duration = counted["frames"] / FPS
    return judge(truth, labels) + (len(truth), counted["unknown"], duration / seconds, counted)


def sock_labels(db, socks):
    """The label counted for each sock of the video, by when it was seen: a sock is held from
    2 s into each 5 s; "(missing)" when nothing was counted, "a+b" when counted twice."""
    conn = sqlite3.connect(db)
    start = conn.execute("select started_at from sessions order by id desc limit 1").fetchone()[0]
    rows = conn.execute("select image, first_seen from sightings order by first_seen").fetchall()
    conn.close()
    period = (PER_SOCK + BETWEEN) / FPS
    got = collections.defaultdict(list)
    for image, first in rows:
        got[int((first - start) // period)].append(image)
    return ["+".join(got[i]) if got[i] else MISSING for i in range(socks)]


def timing(repeats=3):
    """``count`` of video 1 as a multiple of real time, best of ``repeats``: in-process (the
    model loaded once, as a camera runs) and through the CLI, with and without new designs."""
    from sortcore.offline.count import count
    from sortcore.classifier.backends import load_classifier
    from sortcore.core.engine import EngineConfig
    from sortcore.store.database import Store
    classifier = load_classifier(os.path.join(ROOT, "model"))
    best = collections.defaultdict(lambda: 1e9)
    with tempfile.TemporaryDirectory() as folder:
        video = os.path.join(folder, "v.mp4")
        new_designs_video(video, PHOTOS, 1)
        for run in range(repeats * 2):
            on = run % 2 == 0
            store = Store(os.path.join(folder, "s%d.db" % run))
            start = time.perf_counter()
            result = count("video:" + video, classifier, store, EngineConfig(), new_designs=on)
            best["in-process", on] = min(best["in-process", on], time.perf_counter() - start)
            store.close()
            env = dict(os.environ, PYTHONPATH=ROOT, SORTCORE_NEW_DESIGNS="1" if on else "0")
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "sortcore", "count", "video:" + video, "--json",
                            "--db", os.path.join(folder, "c%d.db" % run)], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            best["CLI", on] = min(best["CLI", on], time.perf_counter() - start)
        duration = result.frames / FPS
    for how in ("in-process", "CLI"):
        print("count of %.0f s of 640x480 video at 4 fps, %s: %.1fx real time with new designs, %.1fx without"
              " (ratio %.2f)" % (duration, how, duration / best[how, True], duration / best[how, False],
                                 best[how, False] / best[how, True]))


def main():
    if sys.argv[1:2] == ["--speed"]:
        return timing()
    videos = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    untaught = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    totals = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(first, first + videos):
            right, false, splits, taught, missing, truth, labels, socks, unknown, speed, counted = one(
                seed, untaught, folder)
            rows = ", ".join("%s %d%s" % (r["image"], r["number_socks_seen"], "" if r.get("taught", True) else "*")
                             for r in counted["socks"])
            print("video %d: %d/%d socks right, false pairs %d, splits %d, taught wrong %d, missing %d,"
                  " Unknown %d, %.1fx real time  [%s]" % (seed, right, socks, false, splits, taught, missing,
                                                          unknown, speed, rows))
            if right < socks:
                print("   truth  " + " ".join(truth) + "\n   counted " + " ".join(labels))
            totals.update(right=right, socks=socks, false=false, splits=splits, taught=taught, missing=missing,
                          unknown=unknown)
            totals["speed_min"] = min(totals.get("speed_min", 1e9), speed)
    print("all: %d/%d socks right, false pairs %d, splits %d, taught wrong %d, missing %d, Unknown %d,"
          " slowest %.1fx real time" % (totals["right"], totals["socks"], totals["false"], totals["splits"],
                                        totals["taught"], totals["missing"], totals["unknown"], totals["speed_min"]))


if __name__ == "__main__":
    main()
