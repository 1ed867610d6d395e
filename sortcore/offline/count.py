"""Count socks offline: frames of a source -> classifier -> de-ghosting pipeline -> a session.

The library behind ``sortcore count``. A video runs on its own timestamps
(``CAP_PROP_POS_MSEC``) as fast as the CPU allows, and like a live camera at ``fps`` the
classifier labels at most ``fps`` of its frames a second (``fps`` 0: every frame): the engine's
rules are tuned to a few frames a second, and a 30 fps video then costs little more than a
5 fps one. A folder of images runs at ``fps``; a
webcam or the DeepLens on the wall clock. With ``annotate`` every frame is written to a
video browsers play (:mod:`sortcore.camera.videoout`) with its label and probability, and a
banner naming a confirmed sock for :data:`BANNER_SECONDS` of video from its confirmation.
"""

import time

from ..core.engine import SockConfirmed
from ..core.errors import SourceError
from ..core.frames import DeadLetter, Frame
from ..store.pipeline import Pipeline
from .replay import ReplayResult
from ..camera import annotate as drawing
from ..camera.sources import VideoSource, open_source
from ..camera.videoout import VideoOut, choose

#: How long the "sock: X" banner stays on the annotated video (seconds of video).
BANNER_SECONDS = 1.0


def timed_frames(spec, fps, clock=time.time, decode_all=True):
    """(ts, BGR image, keep) of a source spec: a video on its timestamps with at most ``fps``
    frames a second of video kept (0: all), a folder at ``fps``, live on the clock (every
    frame kept). Returns (iterator, frame count or None, frame rate for writing, the source)."""
    start = clock()
    source = open_source(spec, fps)
    if isinstance(source, VideoSource):
        frames = ((start + ts, image, keep) for ts, image, keep in source.frames(decode_all))
        return _closing(frames, source), source.frame_count, source.rate or fps or 10.0, source
    if hasattr(source, "files"):
        if not fps or fps <= 0:
            source.close()
            raise SourceError("a folder source needs --fps > 0 to give its frames times")
        frames = ((start + i / float(fps), image, True) for i, image in enumerate(source))
        return _closing(frames, source), len(source.files), fps, source
    return _closing(((clock(), image, True) for image in source), source), None, fps or 10.0, source


def _skipped(source, pipe) -> int:
    """Files the source could not decode become the session's dead letters; how many."""
    skipped = source.drain_skipped()
    for path, reason in skipped:
        pipe.reject(DeadLetter(source.name, None, reason, path))
    return len(skipped)


def _closing(frames, source):
    try:
        for frame in frames:
            yield frame
    finally:
        source.close()


def count(spec, classifier, store, config, fps=5.0, camera="count", annotate=None,
          progress=None, clock=time.time, new_designs=True):
    """Run ``spec`` through ``classifier`` and the engine into a new session of ``store``;
    with ``new_designs``, socks the model was never taught are paired as designs found in the
    session (:mod:`sortcore.runtime.designs`).

    Returns a :class:`sortcore.offline.replay.ReplayResult` (``replay --json``'s shape, with
    ``unknown``). ``progress(n)`` is called per frame; ``progress.total`` is set when known.
    ``annotate``: the video to write, at :func:`sortcore.camera.videoout.choose`'s path.
    """
    from ..runtime.designs import SessionDesigns
    fmt = choose(annotate) if annotate else None
    frames, total, rate, source = timed_frames(spec, fps, clock, decode_all=bool(annotate))
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(total)
    pipe = Pipeline(store, config, source="count:%s" % spec, resume=False, outbox_topic=None)
    designs = SessionDesigns(classifier, pipe, enabled=new_designs)
    writer = VideoOut(fmt, rate) if fmt else None
    number, prediction, note, note_until, dead = 0, None, None, None, 0
    try:
        for ts, image, keep in frames:
            dead += _skipped(source, pipe)
            events = ()
            if keep:
                prediction = designs.classify_at(image, ts, camera)
                events = pipe.feed(Frame(prediction.label, prediction.probability, ts, camera, number))
                designs.confirmed([e for e in events if isinstance(e, SockConfirmed)])
                number += 1
            if writer is not None:  # a frame not kept shows the last label
                confirmed = [e.label for e in events if isinstance(e, SockConfirmed)]
                if confirmed:
                    note, note_until = "sock: " + ", ".join(confirmed), ts + BANNER_SECONDS
                shown = note if note_until is not None and ts < note_until else None
                writer.write(drawing.draw(image, prediction.label, prediction.probability, shown))
            if progress is not None:
                progress(1)
        dead += _skipped(source, pipe)
        designs.confirmed([e for e in pipe.close_runs() if isinstance(e, SockConfirmed)])  # the last socks
        designs.finish()
    finally:
        if writer is not None:
            writer.close()
        pipe.finish()  # whatever happened, the session is not left open
    if number == 0:
        raise SourceError("%s gave no frame that could be decoded (session %d ended empty)"
                          % (spec, pipe.session))
    return ReplayResult(pipe.session, config.mode, pipe.engine.frames, dead, pipe.table(), False,
                        pipe.unknown, tuple(sorted(pipe.untaught)))
