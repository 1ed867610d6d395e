"""Watch a frame source: classify frames at a rate limit and emit ``sockfound`` payloads.

The thinnest runtime: camera -> classifier -> payload, without engine or store. The
payload is :func:`sortcore.messages.frame_payload` (what the camera loop publishes and
:func:`sortcore.frames.frame_from_obj` accepts) and the pacing is the core's
:class:`~sortcore.runtime.core.RateLimiter`. Where a payload goes is the caller's
``emit(payload_json)`` (an MQTT publish, or a line on stdout). Time is injected
(``clock``/``sleep``) so tests never wait. Python 3.7 compatible.
"""

import dataclasses
import json
import time

from ..errors import ConfigError
from ..messages import frame_payload
from .core import RateLimiter, frame_ts


@dataclasses.dataclass(frozen=True)
class WatchOptions:
    """At most ``fps`` frames a second (0: unlimited), ``count`` frames (None: all)."""

    fps: float = 5.0
    camera: str = "camera"
    count: object = None

    def __post_init__(self):
        if not self.fps >= 0:
            raise ConfigError("fps must be 0 (unlimited) or positive, got %r" % self.fps)
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ConfigError("count must be a positive integer, got %r" % self.count)
        if not self.camera or len(self.camera) > 64:
            raise ConfigError("camera must be 1-64 characters, got %r" % self.camera)


def payload(prediction, frame_no, camera, ts):
    """The ``sockfound`` JSON text for one prediction."""
    return json.dumps(frame_payload(prediction.label, prediction.probability, ts, frame_no, camera),
                      sort_keys=True)


def watch(source, classifier, emit, options=None, clock=time.time, sleep=time.sleep):
    """Classify frames from ``source`` and ``emit`` one payload each; returns the count. A
    source with a clock of its own (a video) stamps its frames with it."""
    options = options or WatchOptions()
    pace = RateLimiter(options.fps, clock, sleep)
    frames = iter(source)
    start = clock()
    sent = 0
    while options.count is None or sent < options.count:
        pace.wait()
        try:
            frame = next(frames)
        except StopIteration:
            break
        emit(payload(classifier.classify(frame), sent, options.camera, frame_ts(source, start, clock)))
        sent += 1
    return sent
