"""Count socks offline: frames of a source -> classifier -> de-ghosting pipeline -> a session.

The library behind ``sortcore count``. A video runs on its own timestamps
(``CAP_PROP_POS_MSEC``) as fast as the CPU allows; a folder of images at ``fps``; a
webcam or the DeepLens on the wall clock. With ``annotate`` every frame is written to a
video with its label and probability, and a banner where a sock was confirmed.
"""

import time

from ..engine import SockConfirmed
from ..errors import SourceError
from ..frames import Frame
from ..pipeline import Pipeline
from ..replay import ReplayResult
from . import annotate as drawing
from .sources import open_source


def _video_frames(path, start):
    import cv2
    import os
    if not os.path.isfile(path):
        raise SourceError("video file %s does not exist" % path)
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise SourceError("cannot open video:%s with OpenCV" % path)
    try:
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                return
            yield start + capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, image
    finally:
        capture.release()


def timed_frames(spec, fps, clock=time.time):
    """(ts, BGR image) of a source spec: video on its timestamps, folder at ``fps``, live on
    the clock. Returns (iterator, frame count or None, frame rate for writing)."""
    kind, _, arg = str(spec).partition(":")
    start = clock()
    if kind == "video" and arg:
        import cv2
        capture = cv2.VideoCapture(arg)
        total, rate = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None, capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        return _video_frames(arg, start), total, rate or fps or 10.0
    source = open_source(spec)
    if kind == "folder" or hasattr(source, "files"):
        if not fps or fps <= 0:
            raise SourceError("a folder source needs --fps > 0 to give its frames times")
        frames = ((start + i / float(fps), image) for i, image in enumerate(source))
        return frames, len(source.files), fps
    return ((clock(), image) for image in source), None, fps or 10.0


class _Writer(object):
    def __init__(self, path, rate):
        self.path, self.rate, self.video = path, rate, None

    def write(self, image):
        import cv2
        if self.video is None:
            height, width = image.shape[:2]
            self.video = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.rate,
                                         (width, height))
            if not self.video.isOpened():
                raise SourceError("cannot write video %s" % self.path)
        self.video.write(image)

    def close(self):
        if self.video is not None:
            self.video.release()


def count(spec, classifier, store, config, fps=5.0, camera="count", annotate=None,
          progress=None, clock=time.time):
    """Run ``spec`` through ``classifier`` and the engine into a new session of ``store``.

    Returns a :class:`sortcore.replay.ReplayResult` (``replay --json``'s shape, with
    ``unknown``). ``progress(n)`` is called per frame; ``progress.total`` is set when known.
    """
    frames, total, rate = timed_frames(spec, fps, clock)
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(total)
    pipe = Pipeline(store, config, source="count:%s" % spec, resume=False, outbox_topic=None)
    writer = _Writer(annotate, rate) if annotate else None
    try:
        for number, (ts, image) in enumerate(frames):
            prediction = classifier.classify(image)
            events = pipe.feed(Frame(prediction.label, prediction.probability, ts, camera, number))
            if writer is not None:
                confirmed = [e for e in events if isinstance(e, SockConfirmed)]
                note = ("sock: " + ", ".join(e.label for e in confirmed)) if confirmed else None
                writer.write(drawing.draw(image, prediction.label, prediction.probability, note))
            if progress is not None:
                progress(1)
        pipe.finish()
    finally:
        if writer is not None:
            writer.close()
    return ReplayResult(pipe.session, config.mode, pipe.engine.frames, 0, pipe.table(), False,
                        pipe.unknown)
