"""The camera loop as a library: what the Greengrass lambda runs on the DeepLens.

One iteration (:meth:`DeviceLoop.step`) takes at most one frame::

    frame source -> classifier -> publish ``sockfound`` -> Pipeline.feed
        -> Pipeline.commit -> outbox drain to the publisher(s) -> rate limit

The ``sockfound`` payload is ``{"image", "probability", "ts", "frame",
"camera"}``, the object :func:`sortcore.frames.frame_from_obj` accepts, and it
goes through that check before it is counted: a frame the classifier mangled is
a dead letter, not a crash.

Failures never end the loop. A camera that is not ready (the source cannot be
opened or stops delivering), a model that does not load, a store that is
locked: logged, then retried after a growing delay (:class:`Backoff`). A
publisher that fails is closed and reconnected after its own backoff
(:class:`Link`); meanwhile frames are still counted and the confirmed socks
wait in the SQLite outbox, so nothing is lost. Publishing is at least once,
and each publisher keeps its own place in the outbox (a delivery row per
destination), so one that is down holds back no other.

Time is injected (``clock``, ``sleep``): tests move a fake clock instead of
sleeping. ``stop`` is a :class:`threading.Event`; the default ``sleep`` waits
on it, so setting it ends a rate-limit or backoff wait at once.
Python 3.7 compatible (runs on the camera).
"""

import dataclasses
import logging
import threading
import time
from typing import Callable, List, Optional

from ..errors import BadFrame, ConfigError, MqttError
from ..frames import DeadLetter, frame_from_obj
from ..outbox import drain
from ..messages import TOPIC_FRAMES, TOPIC_STATE, TOPIC_STATUS, dumps, state_message

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DeviceOptions:
    """How the loop runs; validated on creation.

    ``fps``: at most this many frames a second (0: as fast as the model goes).
    ``publish_frames``: publish every classified frame on ``frames_topic``.
    ``drain_limit``: outbox rows published per iteration at most.
    ``backoff_initial``/``backoff_max``: seconds; the delay doubles per failure.
    ``status_every``: seconds between ``sockpairs/status`` heartbeats (0: never).
    ``stop_at_end``: stop when the source runs out instead of reopening it
    (image folders and videos in tests); ``max_frames``: stop after that many.
    """

    camera: str = "deeplens"
    fps: float = 5.0
    frames_topic: str = TOPIC_FRAMES
    publish_frames: bool = True
    drain_limit: int = 100
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    status_every: float = 30.0
    stop_at_end: bool = False
    max_frames: Optional[int] = None

    def __post_init__(self):
        if not self.camera or len(self.camera) > 64:
            raise ConfigError("camera must be 1-64 characters, got %r" % (self.camera,))
        if not self.fps >= 0:
            raise ConfigError("fps must be 0 (unlimited) or positive, got %r" % (self.fps,))
        if not isinstance(self.drain_limit, int) or self.drain_limit < 1:
            raise ConfigError("drain_limit must be a positive integer, got %r" % (self.drain_limit,))
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ConfigError("need 0 < backoff_initial <= backoff_max, got %r, %r"
                              % (self.backoff_initial, self.backoff_max))
        if not self.status_every >= 0:
            raise ConfigError("status_every must be >= 0, got %r" % (self.status_every,))
        if self.max_frames is not None and (not isinstance(self.max_frames, int) or self.max_frames < 1):
            raise ConfigError("max_frames must be a positive integer, got %r" % (self.max_frames,))


class Backoff(object):
    """Delays that double from ``initial`` up to ``maximum``; :meth:`reset` after a success."""

    def __init__(self, initial=0.5, maximum=30.0, factor=2.0):
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.failures = 0
        self._delay = initial

    def next(self) -> float:
        delay = self._delay
        self._delay = min(self._delay * self.factor, self.maximum)
        self.failures += 1
        return delay

    def reset(self):
        self.failures = 0
        self._delay = self.initial


class Link(object):
    """One destination: a publisher from ``connect()``, replaced after a failure.

    After a failure the publisher is closed and no attempt is made until its
    backoff delay has passed on ``clock``; :meth:`publish` raises
    :class:`MqttError` meanwhile (cheaply, without touching the network).
    ``topics`` renames topics on the way out, e.g. ``{"sockpairs": "site1/sockpairs"}``.
    """

    def __init__(self, name: str, connect: Callable, clock=time.time, backoff: Optional[Backoff] = None,
                 topics: Optional[dict] = None):
        self.name = name
        self._connect = connect
        self.topics = dict(topics or {})
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.publisher = None
        self.retry_at = None  # type: Optional[float]
        self.last_error = None  # type: Optional[str]
        self.sent = 0

    @property
    def ready(self) -> bool:
        """True unless waiting out a backoff delay."""
        return self.retry_at is None or self.clock() >= self.retry_at

    def publish(self, topic, payload, qos=1, retain=False):
        if not self.ready:
            raise MqttError("%s: waiting to reconnect after: %s" % (self.name, self.last_error))
        try:
            if self.publisher is None:
                self.publisher = self._connect()
            self.publisher.publish(self.topics.get(topic, topic), payload, qos=qos, retain=retain)
        except Exception as exc:
            self._failed(exc)
            if isinstance(exc, MqttError):
                raise
            raise MqttError("%s: %s: %s" % (self.name, type(exc).__name__, exc))
        if self.retry_at is not None:
            log.info("%s: publishing again", self.name)
        self.retry_at = None
        self.backoff.reset()
        self.sent += 1

    def _failed(self, exc):
        self.last_error = "%s: %s" % (type(exc).__name__, exc)
        delay = self.backoff.next()
        self.retry_at = self.clock() + delay
        log.warning("%s: publish failed (%s); reconnecting in %.1fs", self.name, self.last_error, delay)
        self.close()

    def close(self):
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            try:
                publisher.close()
            except Exception as exc:  # closing a broken client may fail too
                log.debug("%s: close failed: %s", self.name, exc)


class Fanout(object):
    """Several links as one: best-effort messages go to every ready link."""

    def __init__(self, links: List[Link]):
        self.links = list(links)

    def best_effort(self, topic, payload, qos=0, retain=False) -> int:
        """Publish on every ready link, ignoring failures; return how many took it."""
        taken = 0
        for link in self.links:
            if link.ready:
                try:
                    link.publish(topic, payload, qos=qos, retain=retain)
                    taken += 1
                except MqttError:
                    pass  # Link logged it and backs off
        return taken

    def close(self):
        for link in self.links:
            link.close()


class SourceEnded(Exception):
    """The frame source ran out of frames (a video or folder); it is reopened."""


class DeviceLoop(object):
    """Frames to ``sockfound`` and ``sockpairs``; see the module docstring.

    ``open_source()`` returns an iterable of BGR frames with ``close()``;
    ``load_classifier()`` returns an object with ``classify(image)`` giving
    ``(image, probability)``; ``open_pipeline()`` returns a
    :class:`sortcore.pipeline.Pipeline`. All three are called lazily and again
    after a failure, so a camera or store that is not ready yet is waited for.
    """

    def __init__(self, open_source: Callable, load_classifier: Callable, open_pipeline: Callable,
                 links: List[Link], options: DeviceOptions = DeviceOptions(), clock=time.time,
                 sleep=None, stop: Optional[threading.Event] = None, drain=drain):
        self._open_source = open_source
        self._load_classifier = load_classifier
        self._open_pipeline = open_pipeline
        self.out = Fanout(links)
        self.options = options
        self.clock = clock
        self.stop = stop or threading.Event()
        self.sleep = sleep or self.stop.wait
        self._drain = drain
        self.backoff = Backoff(options.backoff_initial, options.backoff_max)
        self.source = None
        self.classifier = None
        self.pipeline = None
        self._frames = None
        self._due = None  # type: Optional[float]
        self._next_status = None  # type: Optional[float]
        self._reset = threading.Event()
        self._status_now = threading.Event()
        self.frames = 0  # frames read since start
        self.sent = 0  # outbox rows published
        self.errors = 0
        self.last_error = None  # type: Optional[str]
        self.state = "starting"

    # --- control (any thread) ----------------------------------------------

    def request_reset(self):
        """Start a new sorting session at the next iteration (thread-safe)."""
        self._reset.set()

    def request_status(self):
        """Publish a ``sockpairs/status`` message at the next iteration (thread-safe)."""
        self._status_now.set()

    def status(self) -> dict:
        """The ``sockpairs/status`` payload."""
        return {
            "camera": self.options.camera, "state": self.state, "frames": self.frames,
            "session": getattr(self.pipeline, "session", None), "sent": self.sent,
            "errors": self.errors, "last_error": self.last_error, "ts": round(self.clock(), 3),
        }

    # --- the loop ----------------------------------------------------------

    def run(self):
        """Iterate until ``stop`` is set (or the options say to stop); never raises an Exception."""
        log.info("device loop starting for camera %s", self.options.camera)
        try:
            while not self.stop.is_set():
                try:
                    if not self.step():
                        break
                except Exception as exc:  # the loop never dies: log, wait, retry
                    self.errors += 1
                    self.last_error = "%s: %s" % (type(exc).__name__, exc)
                    self.state = "retrying"
                    delay = self.backoff.next()
                    if isinstance(exc, SourceEnded):
                        log.info("%s; reopening in %.1fs", exc, delay)
                    else:
                        log.warning("device loop: %s; retrying in %.1fs", self.last_error, delay,
                                    exc_info=log.isEnabledFor(logging.DEBUG))
                    self.sleep(delay)
        finally:
            self.close()
        log.info("device loop stopped after %d frames", self.frames)

    def step(self) -> bool:
        """One iteration, at most one frame; False when there is nothing more to do."""
        if self.options.max_frames is not None and self.frames >= self.options.max_frames:
            self._finish()
            return False
        self._ready()
        if self._reset.is_set():
            self._reset.clear()
            session = self.pipeline.reset()
            log.info("sorting session %d started on request", session)
            self._publish_state()
        self._rate_limit()
        if self.stop.is_set():
            return False
        try:
            image = next(self._frames)
        except StopIteration:
            self._close_source()
            if self.options.stop_at_end:
                self._finish()
                return False
            raise SourceEnded("frame source ended")
        except Exception:
            self._close_source()  # a camera that stops delivering is reopened
            raise
        self.frames += 1
        self._handle(image, self.frames - 1, self.clock())
        self.state = "running"
        self.backoff.reset()
        self._heartbeat()
        return True

    def _ready(self):
        if self.pipeline is None:
            self.state = "opening store"
            self.pipeline = self._open_pipeline()
        if self.classifier is None:
            self.state = "loading model"
            self.classifier = self._load_classifier()
        if self._frames is None:
            self.state = "opening camera"
            self.source = self._open_source()
            self._frames = iter(self.source)

    def _rate_limit(self):
        """Sleep *before* taking a frame, so a live camera gives a fresh one."""
        now = self.clock()
        if self._due is not None and now < self._due:
            self.sleep(self._due - now)
            now = self._due
        self._due = now + (1.0 / self.options.fps if self.options.fps else 0.0)

    def _handle(self, image, number: int, ts: float):
        source = getattr(self.source, "name", "camera")
        try:
            prediction = self.classifier.classify(image)
            payload = {"image": prediction[0], "probability": float(prediction[1]), "ts": round(ts, 3),
                       "frame": number, "camera": self.options.camera}
            frame = frame_from_obj(payload)
        except BadFrame as exc:
            log.warning("frame %d: bad classifier output: %s", number, exc.reason)
            self.pipeline.reject(DeadLetter(source, number, exc.reason, ""))
            self.pipeline.tick(ts)
        except Exception as exc:  # a frame the model cannot take is a dead letter
            reason = "cannot classify: %s: %s" % (type(exc).__name__, exc)
            log.warning("frame %d: %s", number, reason)
            self.pipeline.reject(DeadLetter(source, number, reason[:200], ""))
            self.pipeline.tick(ts)
        else:
            if self.options.publish_frames:
                self.out.best_effort(self.options.frames_topic, dumps(payload), qos=0)
            self.pipeline.feed(frame)
        self.pipeline.commit(position={"frame": number})
        self._drain_outbox()

    def _drain_outbox(self) -> int:
        """Publish the outbox on every ready link; each link keeps its own place
        (deliveries per destination), so a link that is down holds back no other."""
        sent = 0
        for link in self.out.links:
            if not link.ready:
                continue
            try:
                sent += self._drain(self.pipeline.store, link, limit=self.options.drain_limit,
                                    destination=link.name)
            except MqttError as exc:
                log.debug("outbox drain to %s stopped: %s", link.name, exc)
        if sent:
            self.sent += sent
            self._publish_state()
        return sent

    def _publish_state(self):
        message = state_message(self.pipeline.session, self.pipeline.table(), self.clock())
        self.out.best_effort(TOPIC_STATE, dumps(message), qos=1, retain=True)

    def _heartbeat(self):
        every = self.options.status_every
        now = self.clock()
        due = every and (self._next_status is None or now >= self._next_status)
        if due or self._status_now.is_set():
            self._status_now.clear()
            self._next_status = now + every
            self.out.best_effort(TOPIC_STATUS, dumps(self.status()), qos=0)

    def _finish(self):
        """End of a finite source: publish what is left in the outbox."""
        self.state = "finished"
        if self.pipeline is not None:
            self.pipeline.commit()
            self._drain_outbox()

    def _close_source(self):
        source, self.source, self._frames = self.source, None, None
        if source is not None:
            try:
                source.close()
            except Exception as exc:
                log.debug("closing the frame source failed: %s", exc)

    def close(self):
        """Release the camera, the publishers and the store; safe to call twice."""
        self._close_source()
        self.out.close()
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            try:
                pipeline.commit()
            except Exception as exc:
                log.warning("final commit failed: %s", exc)
            pipeline.store.close()


def start_thread(loop: DeviceLoop, name: str = "sortcore-device") -> threading.Thread:
    """Run ``loop`` in a daemon thread (the lambda's long-lived worker)."""
    thread = threading.Thread(target=loop.run, name=name)
    thread.daemon = True
    thread.start()
    return thread
