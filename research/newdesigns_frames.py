"""Frame by frame: what the new-designs path saw in a generated video (issue 24 diagnostics).

    PYTHONPATH=. python research/newdesigns_frames.py SEED [UNTAUGHT]

Runs :func:`sortcore.devtools.sockvideo.new_designs_video` of ``SEED`` through ``count``'s own
objects (the session classifier, the pipeline, a throw-away store) and prints, per sock of the
truth, each frame's box, the head's label and best design scores, the track it joined, and the
label given; then each session design's k-NN and colour scores against every other design.
"""

import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PHOTOS = os.path.join(os.path.dirname(ROOT), "shared", "sock-photos")

from sortcore.classifier import newdesigns, session  # noqa: E402
from sortcore.classifier.backends import load_classifier  # noqa: E402
from sortcore.core.engine import EngineConfig  # noqa: E402
from sortcore.devtools.sockvideo import new_designs_video  # noqa: E402
from sortcore.offline.count import count  # noqa: E402
from sortcore.store.database import Store  # noqa: E402


def main():
    seed = int(sys.argv[1])
    untaught = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    classifier = load_classifier(os.path.join(ROOT, "model"))
    head = classifier.head
    names = [head.labels[i] for i in head.designs]
    log = []
    original = newdesigns.NewDesigns.label

    def label(self, camera, ts, taught_label, view, palette, picture=None, scores=None):
        out = original(self, camera, ts, taught_label, view, palette, picture, scores)
        tracks = self.tracks.get(camera, [])
        track = next((t for t in tracks if t.last == ts), None)
        nearest = []
        for name, design in self.designs.items():
            nearest.append("%s %.2f/%.2f" % (name, newdesigns.knn_score(view[None], design.views, 3),
                                             newdesigns.colour_score([palette], design.palettes)))
        log.append((ts, taught_label, None if scores is None else np.asarray(scores), id(track) % 1000, out,
                    picture is not None, nearest))
        return out
    newdesigns.NewDesigns.label = label
    first = []
    classify_at = session.SessionClassifier.classify_at

    def classify(self, image, ts, camera="camera"):
        first.append(ts)
        prediction = classify_at(self, image, ts, camera)
        if prediction.label == "Blank":
            log.append((ts, "Blank", None, 0, "Blank", False, []))
        return prediction
    session.SessionClassifier.classify_at = classify
    with tempfile.TemporaryDirectory() as folder:
        video = os.path.join(folder, "v.mp4")
        truth = new_designs_video(video, PHOTOS, seed, untaught)
        store = Store(os.path.join(folder, "s.db"))
        result = count("video:" + video, classifier, store, EngineConfig(), new_designs=True)
        store.close()
    print("truth:", " ".join(truth))
    print("counted:", result.table if hasattr(result, "table") else result)
    start = min(first)
    log.sort(key=lambda row: row[0])
    for ts, taught_label, scores, track, out, boxed, nearest in log:
        if out == "Blank" and taught_label == "Blank" and not boxed and (ts - start) % 5.0 < 1.9:
            continue
        sock = int((ts - start) // 5.0)
        top = ""
        if scores is not None:
            order = np.argsort(scores)[::-1][:2]
            top = " ".join("%s %.2f" % (names[i], scores[i]) for i in order)
        print("%6.2f sock %2d %-10s head %-10s track %3d box %d -> %-10s | %s | %s"
              % (ts - start, sock, truth[sock] if sock < len(truth) else "-", taught_label, track, boxed, out,
                 top, "; ".join(nearest)))


if __name__ == "__main__":
    main()
