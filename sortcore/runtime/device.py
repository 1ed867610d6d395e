"""The camera loop as a library: what ``sortcore run`` and the Greengrass lambda run.

A thin shell over :class:`~sortcore.runtime.core.Core`: frames come from a camera
and a classifier, results go to the links. One iteration (:meth:`DeviceLoop.step`)
takes at most one frame::

    frame source -> classifier -> publish ``sockfound`` -> Core.feed
        -> Core.commit -> Core.publish_due (outbox, state, status) -> rate limit

The ``sockfound`` payload (:func:`sortcore.core.messages.frame_payload`) goes through
:func:`sortcore.core.frames.frame_from_obj` before it is counted: a frame the
classifier mangled is a dead letter, not a crash.

Failures never end the loop. A camera that is not ready (the source cannot be
opened or stops delivering), a model that does not load, a store that is
locked: logged, the status says ``degraded``, then retried after a growing
delay (:class:`~sortcore.runtime.links.Backoff`). A link that fails reconnects
after its own backoff; meanwhile frames are still counted and the confirmed
socks wait in the SQLite outbox, so nothing is lost.

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

from ..core.errors import BadFrame, ConfigError, MqttError, SourceEnded
from ..core.frames import DeadLetter, frame_from_obj
from ..core.messages import DEFAULT_CAMERA, TOPIC_FRAMES, TOPIC_STATUS, dumps, frame_payload, status_message
from .control import Control, ControlRequests
from .core import Core, CoreOptions, RateLimiter, frame_ts
from .links import Backoff, Link

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DeviceOptions:
    """How the loop runs; validated on creation.

    ``fps``: at most this many frames a second (0: as fast as the model goes).
    ``publish_frames``: publish every classified frame on ``sockfound``.
    ``backoff_initial``/``backoff_max``: seconds; the delay doubles per failure.
    ``core``: status pacing. ``stop_at_end``: stop when the source runs out instead
    of reopening it (image folders and videos); ``max_frames``: stop after that many.
    ``new_designs``: pair socks the model was never taught (:mod:`sortcore.runtime.designs`);
    ``user_model``: the folder a named design is taught to, ``model``: the model loaded.
    """

    camera: str = DEFAULT_CAMERA
    fps: float = 5.0
    publish_frames: bool = True
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    core: CoreOptions = CoreOptions()
    stop_at_end: bool = False
    max_frames: Optional[int] = None
    new_designs: bool = True
    user_model: Optional[str] = None
    model: Optional[str] = None

    def __post_init__(self):
        if not self.camera or len(self.camera) > 64:
            raise ConfigError("camera must be 1-64 characters, got %r" % (self.camera,))
        if not self.fps >= 0:
            raise ConfigError("fps must be 0 (unlimited) or positive, got %r" % (self.fps,))
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ConfigError("need 0 < backoff_initial <= backoff_max, got %r, %r"
                              % (self.backoff_initial, self.backoff_max))
        if self.max_frames is not None and (not isinstance(self.max_frames, int) or self.max_frames < 1):
            raise ConfigError("max_frames must be a positive integer, got %r" % (self.max_frames,))


class DeviceLoop(object):
    """Frames to ``sockfound`` and ``sockpairs``; see the module docstring.

    ``open_source()`` returns an iterable of BGR frames with ``close()``;
    ``load_classifier()`` returns an object with ``classify(image)`` giving
    ``(label, probability)``; ``open_pipeline()`` returns a
    :class:`sortcore.store.pipeline.Pipeline`. All three are called lazily and again
    after a failure, so a camera or store that is not ready yet is waited for.
    ``on_frame(image, label, probability)``: optional, sees every classified frame
    (the live page's camera view).
    """

    def __init__(self, open_source: Callable, load_classifier: Callable, open_pipeline: Callable,
                 links: List[Link], options: DeviceOptions = DeviceOptions(), clock=time.time,
                 sleep=None, stop: Optional[threading.Event] = None, runtime: str = "lambda",
                 on_frame: Optional[Callable] = None, fatal: tuple = ()):
        self._open_source = open_source
        self._load_classifier = load_classifier
        self._open_pipeline = open_pipeline
        self.links = list(links)
        self.options = options
        self.clock = clock
        self.runtime = runtime
        self.on_frame = on_frame
        self.fatal = tuple(fatal)  # errors that end run() instead of being retried
        self.stop = stop or threading.Event()
        self.sleep = sleep or self.stop.wait
        self.backoff = Backoff(options.backoff_initial, options.backoff_max)
        self.pace = RateLimiter(options.fps, clock, lambda seconds: self.sleep(seconds))
        self.listeners = []  # type: list  # handed to the core once it exists
        self.source = self.classifier = self.pipeline = self.core = self.control = self.designs = None
        self._frames = None
        self._source_start = 0.0  # the wall-clock time a source with its own clock starts at
        self._last_ts = 0.0
        self.requests = ControlRequests()  # the page's and the lambda handler's commands
        self.frames = 0  # frames read since start
        self.errors = 0
        self.last_error = None  # type: Optional[str]
        self.counters = {}  # type: dict  # the core's counters when the loop closed
        self.state = "starting"
        self.beat = lambda: None  # called each iteration (the systemd watchdog)

    # --- control (any thread) ----------------------------------------------

    def status(self) -> dict:
        """The ``sockpairs/status`` payload: the core's, or before the store opens (no core
        yet) the same schema saying ``degraded`` and why."""
        if self.core is None:
            return status_message(status="degraded", runtime=self.runtime, camera=self.options.camera,
                                  reason=self.last_error or self.state, updated_at=self.clock(),
                                  frames=self.frames, errors=self.errors)
        return self.core.status()

    # --- the loop ----------------------------------------------------------

    def run(self):
        """Iterate until ``stop`` is set (or the options say to stop); never raises an Exception."""
        log.info("device loop starting for camera %s", self.options.camera)
        try:
            while not self.stop.is_set():
                self.beat()
                try:
                    if not self.step():
                        break
                except self.fatal as exc:  # e.g. ``run`` on a missing video: say so and stop
                    self.last_error, self.state = "%s: %s" % (type(exc).__name__, exc), "failed"
                    raise
                except Exception as exc:  # the loop never dies: log, wait, retry
                    self._failed(exc)
        finally:
            self.close()
        log.info("device loop stopped after %d frames", self.frames)

    def _failed(self, exc):
        self.errors += 1
        self.last_error = "%s: %s" % (type(exc).__name__, exc)
        self.state = "retrying"
        if self.core is not None:
            self.core.counters.errors = self.errors
            self.core.problem = self.last_error
            self._publish()
        else:
            self._say_degraded()
        delay = self.backoff.next()
        if isinstance(exc, SourceEnded):
            log.info("%s; reopening in %.1fs", exc, delay)
        else:
            log.warning("device loop: %s; retrying in %.1fs", self.last_error, delay,
                        exc_info=log.isEnabledFor(logging.DEBUG))
        self.beat()  # waiting out a backoff is not hanging
        self.sleep(delay)

    def step(self) -> bool:
        """One iteration, at most one frame; False when there is nothing more to do."""
        if self.options.max_frames is not None and self.frames >= self.options.max_frames:
            self._finish()
            return False
        self._ready()
        self._requests()
        self.pace.wait()
        if self.stop.is_set():
            return False
        try:
            image = next(self._frames)
        except StopIteration:
            self._skipped()
            self._close_source()
            if self.options.stop_at_end:
                self._finish()
                return False
            raise SourceEnded("frame source ended")
        except Exception:
            self._close_source()  # a camera that stops delivering is reopened
            raise
        self._skipped()
        self.frames += 1
        self._handle(image, self.frames - 1, self._frame_ts())
        if self.state != "running":
            self.state, self.core.problem = "running", None
            self.core.status_soon()
        self.backoff.reset()
        return True

    def _ready(self):
        if self.pipeline is None:
            self.state = "opening store"
            self.pipeline = self._open_pipeline()
            self.core = Core(self.pipeline, self.links, self.options.core, self.runtime,
                             camera=self.options.camera, clock=self.clock, monotonic=self.clock)
            self.core.listeners.extend(self.listeners)
            self.control = Control(self.core, clock=self.clock)
        if self.classifier is None:
            self.state = "loading model"
            self.classifier = self._load_classifier()
        if self.designs is None or self.designs.pipeline is not self.pipeline:
            from .designs import SessionDesigns
            options = self.options
            self.designs = SessionDesigns(self.classifier, self.pipeline, options.new_designs, options.user_model,
                                          options.model, on_design=lambda message: self.core.tell("design", message))
            self.control.designs = self.designs
        if self._frames is None:
            self.state = "opening camera"
            self.source = self._open_source()
            self._frames = iter(self.source)
            self._source_start = max(self.clock(), self._last_ts)  # a reopened video goes on

    def _skipped(self):
        """Inputs the source could not decode (a folder's bad images) are dead letters."""
        for path, reason in getattr(self.source, "drain_skipped", list)():
            self.core.reject(DeadLetter(self.source.name, None, reason, path))

    def _frame_ts(self) -> float:
        """The frame's event time: a video's own clock from when it was opened, else now."""
        self._last_ts = frame_ts(self.source, self._source_start, self.clock)
        return self._last_ts

    def _requests(self):
        self.requests.serve(self.control)
        for link in self.links:  # sockpairs/control from a broker (Home Assistant's button)
            for message in link.received() if hasattr(link, "received") else ():
                self.control.handle(message.payload, message.retain, message.topic)

    def _handle(self, image, number: int, ts: float):
        source = getattr(self.source, "name", "camera")
        try:
            label, probability = self.designs.classify_at(image, ts, self.options.camera)[:2]
            payload = frame_payload(label, probability, ts, number, self.options.camera)
            frame = frame_from_obj(payload)
        except BadFrame as exc:
            log.warning("frame %d: bad classifier output: %s", number, exc.reason)
            self.core.reject(DeadLetter(source, number, exc.reason, ""))
            self.pipeline.tick(ts)
        except Exception as exc:  # a frame the model cannot take is a dead letter
            reason = "cannot classify: %s: %s" % (type(exc).__name__, exc)
            log.warning("frame %d: %s", number, reason)
            self.core.reject(DeadLetter(source, number, reason[:200], ""))
            self.pipeline.tick(ts)
        else:
            if self.on_frame is not None:
                self.on_frame(image, label, probability)
            if self.options.publish_frames:
                self._frame_out(dumps(payload))
            self.core.feed(frame)
        self.designs.confirmed(self.core.commit())
        self._publish()

    def _frame_out(self, payload: str):
        """QoS 1 without waiting: a frame the broker refuses is counted as denied (the core
        settles the PUBACKs), one nobody took is still counted here."""
        for link in self.links:
            if link.ready:
                try:
                    link.publish_nowait(TOPIC_FRAMES, payload, qos=1)
                except MqttError:
                    pass  # the link logged it and backs off

    def _say_degraded(self):
        """No core yet (the store does not open): the page and the links still hear why."""
        status = self.status()
        for listener in self.listeners:
            try:
                listener.set_status(status)
            except Exception as exc:  # a page must never stop the loop
                log.warning("listener: %s", exc)
        for link in self.links:
            if link.ready:
                try:
                    link.publish(TOPIC_STATUS, dumps(status), qos=1, retain=True)
                except MqttError:
                    pass  # the link logged it and backs off

    def _publish(self):
        try:
            self.core.publish_due()
        except MqttError as exc:
            log.debug("publishing paused: %s", exc)

    def _finish(self):
        """End of a finite source: publish what is left in the outbox."""
        self.state = "finished"
        if self.designs is not None:
            self.designs.finish()
        if self.core is not None:
            self.core.commit()
            self._publish()

    def _close_source(self):
        source, self.source, self._frames = self.source, None, None
        if source is not None:
            try:
                source.close()
            except Exception as exc:
                log.debug("closing the frame source failed: %s", exc)

    def close(self):
        """Release the camera, the links and the store; safe to call twice."""
        self._close_source()
        designs, self.designs = self.designs, None
        if designs is not None and self.pipeline is not None:
            try:
                designs.finish()
            except Exception as exc:
                log.warning("new designs not stored: %s", exc)
        core, self.core = self.core, None
        if core is not None:
            self.counters = core.counters.as_dict()
            core.say_offline()
        for link in self.links:
            link.close()
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
