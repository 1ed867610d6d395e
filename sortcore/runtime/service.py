"""The MQTT service: ``sockfound`` frames in, ``sockpairs`` results out.

One thread runs :meth:`Service.run`; the paho network thread only queues
events (see :mod:`sortcore.adapters.mqtt`). A batch of received messages is fed to the
:class:`~sortcore.pipeline.Pipeline` and committed in one transaction, and only
then acknowledged to the broker (manual ack): a frame the broker delivered is
either in the store or will be delivered again. Confirmed socks reach
``sockpairs`` through the outbox, marked sent on the broker's PUBACK, so a
broker outage or a killed service repeats a result at worst, never loses one.

Topics: ``sockfound`` and ``sockfound/<camera>`` (frames, QoS 1),
``sockpairs`` (one message per sock), ``sockpairs/state`` (retained table),
``sockpairs/status`` (retained ``online``/``offline`` with counters; the last
will says ``offline``), ``sockpairs/control`` (``{"cmd": "reset"}``).
"""

import hashlib
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from ..engine import EngineConfig, SockConfirmed
from ..errors import BadFrame, ConfigError, MqttError
from ..frames import DeadLetter, decode_payload, raw_text
from ..adapters.mqtt import Connected, Connection, ConnectOptions, Disconnected, Message, parse_url
from ..outbox import drain
from ..pipeline import Pipeline
from ..messages import (TOPIC_CONTROL, TOPIC_FRAMES, TOPIC_STATE, TOPIC_STATUS, dumps,
                      state_message)

log = logging.getLogger(__name__)

_STOP = object()


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``sortcore serve`` takes besides the engine config and the store.

    ``max_future``: frames whose ``ts`` is further than this many seconds ahead
    of their receive time are dead letters (a wrong clock would otherwise
    move the engine's time far ahead and turn every later sock into ghosts).
    """

    broker: str = "mqtt://127.0.0.1:1883"
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    tls_ca: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    client_id: str = "sortcore-serve"
    camera_default: str = ""
    batch: int = 50
    tick_interval: float = 0.5
    status_interval: float = 5.0
    publish_timeout: float = 10.0
    keepalive: int = 30
    reconnect_max: float = 30.0
    max_future: float = 300.0

    def __post_init__(self):
        parse_url(self.broker)  # raises ConfigError
        if not self.client_id:
            raise ConfigError("the service needs a fixed client id for its persistent session")
        if self.batch < 1:
            raise ConfigError("batch must be at least 1")
        for name in ("tick_interval", "status_interval", "publish_timeout", "max_future"):
            if not getattr(self, name) > 0:
                raise ConfigError("%s must be positive" % name)

    def connect_options(self) -> ConnectOptions:
        return ConnectOptions(
            username=self.username, password=self.password, tls_ca=self.tls_ca,
            tls_cert=self.tls_cert, tls_key=self.tls_key, client_id=self.client_id,
            clean_session=False, keepalive=self.keepalive, manual_ack=True,
            subscriptions=((TOPIC_FRAMES, 1), (TOPIC_FRAMES + "/+", 1), (TOPIC_CONTROL, 1)),
            will=(TOPIC_STATUS, dumps({"status": "offline"}), 1, True),
            reconnect_max=self.reconnect_max, timeout=self.publish_timeout,
        )


class Counters:
    """What the service did since it started (published in the status)."""

    def __init__(self):
        self.received = 0
        self.frames = 0
        self.dead_letters = 0
        self.duplicates = 0
        self.socks = 0
        self.published = 0
        self.resets = 0
        self.connects = 0

    def as_dict(self) -> dict:
        return dict(vars(self))


def _digest(message: Message) -> str:
    return hashlib.sha1(message.topic.encode("utf-8") + b"\0" + message.payload).hexdigest()[:16]


class Service:
    """The serve loop around one store, one pipeline and one broker connection.

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
        self.pipeline = Pipeline(store, config, source="serve:" + options.client_id, clock=clock)
        self.conn = Connection(options.broker, options.connect_options())
        self.events = self.conn.events
        self.counters = Counters()
        self.started_at = clock()
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once subscribed and the status is online
        self._progress = threading.Condition()  # notified after each committed batch
        position = self.pipeline.position or {}
        self._recent = list(position.get("recent", [])) if isinstance(position, dict) else []
        self._last_event = None  # (event time, monotonic receive time) of the latest frame
        self._state_due = True
        self._status_due = True
        self._status_now = True  # publish the status at once (connect, reset), not at the interval
        self._outbox_due = True
        self._status_at = 0.0

    # --- control -----------------------------------------------------------

    def stop(self):
        """Ask :meth:`run` to finish (safe from signal handlers and other threads)."""
        self.stopping.set()
        self.events.put(_STOP)

    def run(self):
        """Serve until :meth:`stop`; then commit, publish ``offline`` and disconnect."""
        log.info("serving %s as %s, session %d", self.conn.url, self.options.client_id, self.pipeline.session)
        self.conn.start()
        next_tick = self.monotonic() + self.options.tick_interval
        try:
            while not self.stopping.is_set():
                batch = self._take(max(0.0, next_tick - self.monotonic()))
                if batch:
                    self._handle(batch)
                if self.monotonic() >= next_tick:
                    self._tick()
                    next_tick = self.monotonic() + self.options.tick_interval
                self._publish_due()
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
        received = []
        confirmed = False
        for event in batch:
            if isinstance(event, Message):
                received.append(event)
                if event.dup and _digest(event) in self._recent:
                    self.counters.duplicates += 1  # committed before a crash, delivered again
                    continue
                self.counters.received += 1
                if event.topic == TOPIC_CONTROL:
                    self._control(event)
                else:
                    confirmed = self._frame(event) or confirmed
            elif isinstance(event, Connected):
                self._on_connected(event)
            elif isinstance(event, Disconnected):
                log.debug("broker: %s", event.reason)  # sortcore.adapters.mqtt logged it
        if received or self.pipeline.dirty:
            digests = [_digest(m) for m in received]
            self._recent = (self._recent + digests)[-2 * self.options.batch:]
            self.pipeline.commit({"recent": self._recent})
        for message in received:
            try:
                self.conn.ack(message)
            except MqttError as exc:  # the broker will deliver it again; dedup catches it
                log.debug("%s", exc)
        if received:
            self._status_due = True  # counters changed; published at most every status_interval
        if confirmed:
            self._outbox_due = self._state_due = True
        with self._progress:
            self._progress.notify_all()

    def wait_until(self, predicate, timeout: float) -> bool:
        """Block until ``predicate(service)`` holds after a batch (for demos and tests)."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(remaining)
        return True

    def _frame(self, message: Message) -> bool:
        topic = message.topic
        camera = topic[len(TOPIC_FRAMES) + 1:] if topic.startswith(TOPIC_FRAMES + "/") else self.options.camera_default
        received_at = self.clock()
        try:
            if message.retain:
                raise BadFrame("retained frame ignored (frames must not be retained)")
            frame = decode_payload(message.payload, camera)
            if frame.ts is None:
                frame = frame._replace(ts=received_at)
            elif frame.ts > received_at + self.options.max_future:
                raise BadFrame("'ts' is %.0f s ahead of the receive time" % (frame.ts - received_at))
        except BadFrame as exc:
            self.pipeline.reject(DeadLetter(topic, None, exc.reason, raw_text(message.payload)))
            self.counters.dead_letters += 1
            self._status_due = True
            return False
        events = self.pipeline.feed(frame)
        self.counters.frames += 1
        if self._last_event is None or frame.ts >= self._last_event[0]:
            self._last_event = (frame.ts, self.monotonic())
        socks = sum(1 for e in events if isinstance(e, SockConfirmed))
        self.counters.socks += socks
        return socks > 0

    def _control(self, message: Message):
        try:
            if message.retain:
                raise BadFrame("retained control message ignored")
            try:
                obj = json.loads(message.payload.decode("utf-8"))
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise BadFrame("control message is not JSON")
            cmd = obj.get("cmd") if isinstance(obj, dict) else None
            if cmd != "reset":
                raise BadFrame("unknown control command %r" % (str(cmd)[:40],))
        except BadFrame as exc:
            self.pipeline.reject(DeadLetter(message.topic, None, exc.reason, raw_text(message.payload)))
            self.counters.dead_letters += 1
            self._status_due = True
            return
        session = self.pipeline.reset()
        self.counters.resets += 1
        self._last_event = None
        log.info("control: reset, new sorting session %d", session)
        self._state_due = True
        self._status_now = True

    def _on_connected(self, event: Connected):
        self.counters.connects += 1
        log.info("connected to %s (%s session)", self.conn.url, "resumed" if event.session_present else "new")
        self._state_due = self._outbox_due = True
        self._status_now = True

    # --- time and publishing ----------------------------------------------

    def _tick(self):
        """Close idle runs: event time moves on by the wall time since the last frame."""
        if self._last_event is None:
            return
        ts, seen = self._last_event
        if self.pipeline.tick(ts + (self.monotonic() - seen)):
            self.pipeline.commit()

    def status(self, state: str = "online") -> dict:
        return dict(status=state, session=self.pipeline.session, client_id=self.options.client_id,
                    since=self.started_at, updated_at=self.clock(), **self.counters.as_dict())

    def state(self) -> dict:
        return state_message(self.pipeline.session, self.pipeline.table(), self.clock())

    def _publish_due(self):
        if not self.conn.connected:
            return
        try:
            if self._outbox_due:
                while True:
                    sent = drain(self.store, self.conn, 100)
                    self.counters.published += sent
                    if sent < 100:
                        break
                self._outbox_due = bool(self.store.pending(1))
            if self._state_due:
                self.conn.publish_nowait(TOPIC_STATE, dumps(self.state()), qos=1, retain=True)
                self._state_due = False
            now = self.monotonic()
            if self._status_now or (self._status_due and now - self._status_at >= self.options.status_interval):
                self.conn.publish_nowait(TOPIC_STATUS, dumps(self.status()), qos=1, retain=True)
                self._status_due = self._status_now = False
                self._status_at = now
                self.ready.set()
        except MqttError as exc:
            log.info("publishing paused: %s", exc.reason)

    def _shutdown(self):
        try:
            if self.pipeline.dirty:
                self.pipeline.commit()
            if self.conn.connected:
                drain(self.store, self.conn, 100)
                self.conn.publish(TOPIC_STATUS, dumps(self.status("offline")), qos=1, retain=True,
                                  timeout=min(self.options.publish_timeout, 3.0))
        except MqttError as exc:
            log.warning("could not say offline: %s", exc.reason)
        finally:
            self.conn.close()
            log.info("stopped; session %d is kept in the store", self.pipeline.session)


def serve(store, config: EngineConfig, options: ServeOptions, install_signals: bool = True) -> Service:
    """Run the service in this thread until SIGTERM/SIGINT (or ``Service.stop``)."""
    service = Service(store, config, options)
    if install_signals:
        import signal

        def on_signal(signum, frame):
            service.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    service.run()
    return service
