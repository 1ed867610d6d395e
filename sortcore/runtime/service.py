"""The MQTT service: ``sockfound`` frames in, ``sockpairs`` results out.

A thin shell over :class:`~sortcore.runtime.core.Core`: frames come from one
broker connection, results go back to it. One thread runs :meth:`Service.run`;
the paho network thread only queues events (see :mod:`sortcore.adapters.mqtt`).
A batch of received messages is fed to the core and committed in one
transaction, and only then acknowledged to the broker (manual ack): a frame the
broker delivered is either in the store or will be delivered again. When the
store cannot commit (a full disk), nothing is acknowledged: the broker holds
the frames back (QoS 1 flow control), the status says ``degraded``, and the
held batch commits and is acknowledged once space returns.

Topics: ``sockfound`` and ``sockfound/<camera>`` (frames, QoS 1),
``sockpairs`` (one message per sock), ``sockpairs/state`` (retained table),
``sockpairs/status`` (retained, one schema for every runtime; the last will
says ``offline``), ``sockpairs/control`` (``{"cmd": "reset"}``, see
:mod:`sortcore.runtime.control`).
"""

import dataclasses
import hashlib
import logging
import queue
import threading
import time
from typing import Optional

from ..adapters.mqtt import Connected, Connection, Disconnected, Message
from ..adapters.mqtt_config import ConnectOptions, parse_url
from ..core.engine import EngineConfig
from ..core.errors import BadFrame, ConfigError, MqttError, StoreError
from ..core.frames import DeadLetter, decode_payload, raw_text
from ..core.messages import TOPIC_CONTROL, TOPIC_FRAMES, TOPIC_STATUS, offline_will
from ..store.pipeline import Pipeline
from .control import Control, ControlRequests
from .core import Core, CoreOptions
from .links import ConnectionLink

log = logging.getLogger(__name__)

_STOP = object()
_WAKE = object()  # a reset asked for from another thread
SUBSCRIPTIONS = ((TOPIC_FRAMES, 1), (TOPIC_FRAMES + "/+", 1), (TOPIC_CONTROL, 1))


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """Everything ``sortcore serve`` takes besides the engine config and the store.

    ``connect``: how to reach the broker (its client id and session are fixed
    here); ``core``: status pacing. ``max_future``: frames whose ``ts`` is
    further than this many seconds ahead of their receive time are dead letters.
    """

    broker: str = "mqtt://127.0.0.1:1883"
    connect: ConnectOptions = ConnectOptions(client_id="sortcore-serve", clean_session=False)
    core: CoreOptions = CoreOptions()
    camera_default: str = ""
    batch: int = 50
    tick_interval: float = 0.5
    max_future: float = 300.0
    labels: Optional[frozenset] = None  # the model's labels; any other is a dead letter

    def __post_init__(self):
        parse_url(self.broker)  # raises ConfigError
        if not self.connect.client_id:
            raise ConfigError("the service needs a fixed client id for its persistent session")
        if self.batch < 1:
            raise ConfigError("batch must be at least 1")
        for name in ("tick_interval", "max_future"):
            if not getattr(self, name) > 0:
                raise ConfigError("%s must be positive" % name)

    def connect_options(self) -> ConnectOptions:
        return dataclasses.replace(
            self.connect, clean_session=False, manual_ack=True, subscriptions=SUBSCRIPTIONS,
            will=(TOPIC_STATUS, offline_will(), 1, True))


def _digest(message: Message) -> str:
    return hashlib.sha1(message.topic.encode("utf-8") + b"\0" + message.payload).hexdigest()[:16]


class Service(object):
    """The serve loop around one store, one core and one broker connection.

    ``clock`` gives the receive time of frames without ``ts`` (and the times in
    results); ``monotonic`` paces ticks and status. :meth:`stop` may be called
    from any thread (or a signal handler).
    """

    def __init__(self, store, config: EngineConfig = EngineConfig(), options: ServeOptions = ServeOptions(),
                 clock=time.time, monotonic=time.monotonic):
        self.store = store
        self.options = options
        self.clock = clock
        self.monotonic = monotonic
        client_id = options.connect.client_id
        pipeline = Pipeline(store, config, source="serve:" + client_id, clock=clock)
        self.conn = Connection(options.broker, options.connect_options())
        self.events = self.conn.events
        self.core = Core(pipeline, [ConnectionLink("mqtt", self.conn)], options.core, "serve",
                         clock=clock, monotonic=monotonic)
        self.control = Control(self.core, clock=monotonic)
        self.requests = ControlRequests(wake=lambda: self.events.put(_WAKE))
        self.pipeline = pipeline
        self.counters = self.core.counters
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once subscribed and the status is online
        self._recent = list(pipeline.recent_messages)
        self._held = []  # received but not committed (the store refused): not acknowledged
        self._last_event = None  # (event time, monotonic receive time) of the latest frame
        self.beat = lambda: None  # called each iteration (the systemd watchdog)

    # --- control -----------------------------------------------------------

    def stop(self):
        """Ask :meth:`run` to finish (safe from signal handlers and other threads)."""
        self.stopping.set()
        self.events.put(_STOP)

    def run(self):
        """Serve until :meth:`stop`; then commit, publish ``offline`` and disconnect."""
        log.info("serving %s as %s, session %d", self.conn.url, self.options.connect.client_id,
                 self.pipeline.session)
        self.conn.start()
        next_tick = self.monotonic() + self.options.tick_interval
        try:
            while not self.stopping.is_set():
                self.beat()
                batch = self._take(max(0.0, next_tick - self.monotonic()))
                if batch:
                    self._handle(batch)
                self.requests.serve(self.control)
                if self.monotonic() >= next_tick:
                    self._tick()
                    next_tick = self.monotonic() + self.options.tick_interval
                if self.conn.connected:
                    self.core.publish_due()
                    self.ready.set()
        finally:
            self._shutdown()

    def _take(self, timeout: float) -> list:
        try:
            batch = [self.events.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < self.options.batch:
            try:
                batch.append(self.events.get_nowait())
            except queue.Empty:
                break
        return batch

    # --- one batch ---------------------------------------------------------

    def _handle(self, batch: list):
        for event in batch:
            if isinstance(event, Message):
                self._message(event)
            elif isinstance(event, Connected):
                self.counters.connects += 1
                log.info("connected to %s (%s session)", self.conn.url,
                         "resumed" if event.session_present else "new")
                self.core.status_soon()
            elif isinstance(event, Disconnected):
                log.debug("broker: %s", event.reason)  # sortcore.adapters.mqtt logged it
        if self._held or self.pipeline.dirty:
            self._commit()

    def _message(self, message: Message):
        self._held.append(message)
        if message.dup and _digest(message) in self._recent:
            self.counters.duplicates += 1  # committed before a crash, delivered again
            return
        self.counters.received += 1
        if message.topic == TOPIC_CONTROL:
            self.control.handle(message.payload, message.retain, message.topic)
            if self.control.reset_done:
                self._last_event = None
        else:
            self._frame(message)

    def _commit(self):
        digests = [_digest(m) for m in self._held]
        recent = (self._recent + digests)[-2 * self.options.batch:]
        try:
            self.core.commit(recent_messages=recent)
        except StoreError as exc:  # a full disk: hold the acks, so the broker holds the frames
            if self.core.problem != str(exc):
                log.error("store: %s; not acknowledging frames until it can commit", exc)
                self.core.problem = str(exc)
                self.core.status_soon()
            return
        if self.core.problem is not None:
            log.info("store: committing again")
            self.core.problem = None
            self.core.status_soon()
        self._recent = recent
        held, self._held = self._held, []
        for message in held:
            try:
                self.conn.ack(message)
            except MqttError as exc:  # the broker will deliver it again; dedup catches it
                log.debug("%s", exc)

    def wait_until(self, predicate, timeout: float) -> bool:
        """Block until ``predicate(service)`` holds after a batch (for demos and tests)."""
        return self.core.wait_until(lambda: predicate(self), timeout)

    def _frame(self, message: Message):
        topic = message.topic
        if topic.startswith(TOPIC_FRAMES + "/"):
            camera = topic[len(TOPIC_FRAMES) + 1:]
        else:  # the publisher's own name where the adapter has one, so one publisher cannot blind the others
            camera = getattr(message, "publisher", None) or self.options.camera_default
        received_at = self.clock()
        try:
            if message.retain:
                raise BadFrame("retained frame ignored (frames must not be retained)")
            frame = decode_payload(message.payload, camera, labels=self.options.labels)
            if frame.ts is None:
                frame = frame._replace(ts=received_at)
            elif frame.ts > received_at + self.options.max_future:
                raise BadFrame("'ts' is %.0f s ahead of the receive time" % (frame.ts - received_at))
        except BadFrame as exc:
            source = topic if len(topic) <= 200 else topic[:200] + "..."  # a 64 KB topic stays out of the store
            self.core.reject(DeadLetter(source, None, exc.reason, raw_text(message.payload)))
            return
        self.core.feed(frame, received_at)
        if self._last_event is None or frame.ts >= self._last_event[0]:
            self._last_event = (frame.ts, self.monotonic())

    # --- time --------------------------------------------------------------

    def _tick(self):
        """Report idle socks: event time moves on by the wall time since the last frame;
        publish the waiting socks of silent cameras and evict idle ones (receive time);
        retry a batch the store refused (no new message may come: the broker holds them)."""
        if self._last_event is not None:
            ts, seen = self._last_event
            self.pipeline.tick(ts + (self.monotonic() - seen))
        self.pipeline.idle(self.clock())
        if self._held or self.pipeline.dirty:
            self._commit()

    def status(self, state=None) -> dict:
        return self.core.status(state)

    def state(self) -> dict:
        return self.core.state()

    def _shutdown(self):
        try:
            if self.pipeline.dirty or self._held:
                self._commit()
            if self.conn.connected:
                self.core.publish_due()
                self.core.say_offline()
        except MqttError as exc:
            log.warning("could not say offline: %s", exc.reason)
        finally:
            self.conn.close()
            log.info("stopped; session %d is kept in the store", self.pipeline.session)


def serve(store, config: EngineConfig, options: ServeOptions, install_signals: bool = True,
          listeners=()) -> Service:
    """Run the service in this thread until SIGTERM/SIGINT (or ``Service.stop``)."""
    from .systemd import Notifier

    service = Service(store, config, options)
    notifier = Notifier()  # systemd: READY, then the watchdog from each iteration
    service.beat = notifier.beat
    service.core.listeners.extend(listeners)
    for listener in listeners:
        listener.bind_reset(service.requests.ask)
    if install_signals:
        import signal

        def on_signal(signum, frame):
            service.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    try:
        service.run()
    finally:
        notifier.stopping()
    return service
