"""Watch a frame source: classify frames at a rate limit and emit ``sockfound`` payloads.

The thinnest runtime: camera -> classifier -> payload, without engine or store. The
payload is :func:`sortcore.core.messages.frame_payload` (what the camera loop publishes and
:func:`sortcore.core.frames.frame_from_obj` accepts) and the pacing is the core's
:class:`~sortcore.runtime.core.RateLimiter`. Where a payload goes is the caller's
``emit(payload_json)`` (an MQTT publish, or a line on stdout). Time is injected
(``clock``/``sleep``) so tests never wait.

With ``new_designs`` (the default) watch labels socks nobody taught as ``serve`` will count them:
over ``serve`` only the camera has the embeddings, so watch does the session labelling
(:class:`~sortcore.classifier.session.SessionClassifier`) and runs an engine of its own with the
default settings, only to hear which candidates ``New k`` became socks; ``serve`` counts the
labels it gets. Its designs live as long as the process. Python 3.7 compatible.
"""

import dataclasses
import json
import time

from ..core.errors import ConfigError, MqttError
from ..core.messages import DEFAULT_CAMERA, frame_payload
from .backlog import FrameBacklog
from .core import RateLimiter, frame_ts
from .links import Link


@dataclasses.dataclass(frozen=True)
class WatchOptions:
    """At most ``fps`` frames a second (0: unlimited), ``count`` frames (None: all)."""

    fps: float = 5.0
    camera: str = DEFAULT_CAMERA
    count: object = None
    new_designs: bool = True

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


class _Labeller(object):
    """The session labelling of a camera without a store: new designs and a private engine."""

    def __init__(self, classifier, enabled):
        from ..core.engine import Engine, EngineConfig
        self.classifier = classifier
        self.labeller = None
        if enabled and hasattr(classifier, "embed") and hasattr(classifier, "head"):
            from ..classifier.session import engine_labels, session_classifier
            self.engine = Engine(EngineConfig(lateness=0.0))  # as run's: the camera's frames come in order
            config = self.engine.config
            self.labeller = session_classifier(classifier, True, config.gap, config.min_frames,
                                               in_use=lambda: engine_labels(self.engine))

    def classify(self, frame, ts, camera):
        if self.labeller is None:
            return self.classifier.classify(frame)
        from ..core.engine import SockConfirmed
        from ..core.frames import Frame
        prediction = self.labeller.classify_at(frame, ts, camera)
        events = self.engine.feed(Frame(prediction.label, prediction.probability, ts, camera, 0))
        self.labeller.confirmed([e for e in events if isinstance(e, SockConfirmed)])
        return prediction


def watch(source, classifier, emit, options=None, clock=time.time, sleep=time.sleep):
    """Classify frames from ``source`` and ``emit`` one payload each; returns the count. A
    source with a clock of its own (a video) stamps its frames with it."""
    options = options or WatchOptions()
    labeller = _Labeller(classifier, options.new_designs)
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
        ts = frame_ts(source, start, clock)
        emit(payload(labeller.classify(frame, ts, options.camera), sent, options.camera, ts))
        sent += 1
    return sent


class BrokerEmit(object):
    """``emit`` for a broker: frames go out without waiting, through a :class:`FrameBacklog`,
    so an outage delays them (in order) and loses none. ``connect()`` gives a publisher
    (:func:`sortcore.adapters.mqtt.connect_publisher`)."""

    def __init__(self, connect, topic: str, name: str = "mqtt"):
        self.link = Link(name, connect)
        self.backlog = FrameBacklog([self.link], topic)

    def __call__(self, text: str):
        self.backlog.put(text)
        self.link.settle()  # the PUBACKs so far (a refusal is logged once)

    def close(self, timeout: float = 10.0) -> int:
        """Send what waits, for up to ``timeout`` s while the broker is away; the frames left."""
        deadline = time.monotonic() + timeout
        while len(self.backlog) and time.monotonic() < deadline:
            publisher = self.link.publisher
            if publisher is not None and hasattr(publisher, "wait_connected"):
                publisher.wait_connected(min(1.0, max(0.0, deadline - time.monotonic())))
            elif not self.link.ready:  # waiting out the backoff after a failed connect
                time.sleep(max(0.0, min(self.link.retry_at - self.link.clock(), deadline - time.monotonic())))
            self.backlog.flush()
        if not len(self.backlog) and self.link.publisher is not None:
            try:
                self.link.settle(max(0.0, deadline - time.monotonic()))  # wait for the PUBACKs
            except MqttError:
                pass
        self.link.close()
        return len(self.backlog)


def broker_emit(values: dict, topic: str) -> BrokerEmit:
    """:class:`BrokerEmit` to ``values['broker']`` with the connection settings; no last will
    and no subscription (watch has no status of its own)."""
    from .config import connect_options, connect_to
    return BrokerEmit(connect_to(values["broker"], connect_options(values, persistent=False)), topic)
