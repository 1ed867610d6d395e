"""Watch a frame source: classify frames at a rate limit and emit ``sockfound`` payloads.

A payload is the JSON object ``{"image", "probability", "ts", "frame",
"camera"}`` that :func:`sortcore.frames.frame_from_obj` accepts. Where it goes
is the caller's ``emit(payload_json)`` (an MQTT publish, or a line on stdout).
Time is injected (``clock``/``sleep``) so tests never wait. Python 3.7 compatible.
"""

import dataclasses
import json
import time

from ..errors import ConfigError

TOPIC = "sockfound"


@dataclasses.dataclass(frozen=True)
class WatchOptions:
    """At most ``fps`` frames a second (0: unlimited), ``count`` frames (None: all)."""

    fps: float = 5.0
    camera: str = "camera"
    count: object = None
    topic: str = TOPIC

    def __post_init__(self):
        if not self.fps >= 0:
            raise ConfigError("fps must be 0 (unlimited) or positive, got %r" % self.fps)
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ConfigError("count must be a positive integer, got %r" % self.count)
        if not self.camera or len(self.camera) > 64:
            raise ConfigError("camera must be 1-64 characters, got %r" % self.camera)


def payload(prediction, frame_no, camera, ts):
    """The ``sockfound`` JSON text for one prediction."""
    return json.dumps({"image": prediction.label, "probability": prediction.probability,
                       "ts": round(ts, 3), "frame": frame_no, "camera": camera},
                      sort_keys=True)


def watch(source, classifier, emit, options=None, clock=time.time, sleep=time.sleep):
    """Classify frames from ``source`` and ``emit`` one payload each; returns the count.

    The rate limit sleeps *before* taking the next frame, so a live camera
    delivers a fresh frame rather than one that waited in a buffer.
    """
    options = options or WatchOptions()
    period = 1.0 / options.fps if options.fps else 0.0
    frames = iter(source)
    sent = 0
    due = None
    while options.count is None or sent < options.count:
        now = clock()
        if due is not None and now < due:
            sleep(due - now)
            now = due
        try:
            frame = next(frames)
        except StopIteration:
            break
        prediction = classifier.classify(frame)
        emit(payload(prediction, sent, options.camera, clock()))
        sent += 1
        due = now + period
    return sent
