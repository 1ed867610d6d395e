"""The runtime core under ``serve``, ``run`` and the Greengrass lambda.

Each runtime is a thin shell: it says where frames come from (MQTT, a camera) and
where results go (links: MQTT, Greengrass, both). The core does the rest, the
same way for all of them:

- feeds frames and dead letters to the :class:`~sortcore.store.pipeline.Pipeline` and
  counts them (:class:`Counters`);
- after each commit hands the confirmed socks to listeners (the live page);
- publishes on every ready link: the outbox through one :class:`OutboxPump` per
  link (many in flight, sent rows marked in one transaction), the retained
  ``sockpairs/state`` when it changed, and the retained ``sockpairs/status``
  (one schema, :func:`sortcore.core.messages.status_message`) when counters changed,
  at most every ``status_interval``, and at least every ``heartbeat``;
- counts what a broker refused: outbox rows (kept, retried) and fire-and-forget
  publishes (frames, state, status; the links' :class:`~.links.Refusals`);
- on each new connection of a broker link, the Home Assistant discovery configs
  (:mod:`sortcore.runtime.hass`), or their removal when ``ha_discovery`` is off.

:class:`RateLimiter` paces cameras. Time is injected. Python 3.7 compatible.
"""

import dataclasses
import logging
import threading
import time
from typing import List, Optional

from . import hass
from ..core.engine import FrameLate, FrameRefused, SockConfirmed
from ..core.errors import ConfigError, MqttError, StoreError
from ..core.settings import BY_NAME as _DEFAULT
from ..core.messages import (TOPIC_STATE, TOPIC_STATUS, dumps, sock_message, state_message,
                        status_message)
from ..store.outbox import OutboxPump

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CoreOptions:
    """``status_interval``: seconds between status updates while counters change;
    ``heartbeat``: seconds between status messages when nothing does (0: none);
    the outbox keeps sent rows ``outbox_retention`` seconds, and at most ``outbox_rows``
    rows (pruned every ``prune_interval`` s, or once a tenth of them came since).
    ``ha_discovery``: True publishes the Home Assistant discovery configs under ``ha_prefix``,
    False removes them, None does neither; ``ha_name``: the device's name (default: the
    camera, else the runtime)."""

    status_interval: float = _DEFAULT["status_interval"].default  # the settings table's defaults
    heartbeat: float = _DEFAULT["heartbeat"].default
    retry_denied: float = 5.0
    outbox_retention: float = _DEFAULT["outbox_retention"].default
    prune_interval: float = 3600.0
    outbox_rows: int = _DEFAULT["outbox_rows"].default
    ha_discovery: Optional[bool] = None
    ha_prefix: str = hass.DEFAULT_PREFIX
    ha_name: str = ""

    def __post_init__(self):
        if not self.status_interval > 0 or not self.heartbeat >= 0 or not self.retry_denied > 0:
            raise ConfigError("status_interval and retry_denied must be positive, heartbeat >= 0")
        if not self.outbox_retention >= 0 or not self.prune_interval > 0 or not self.outbox_rows >= 1:
            raise ConfigError("outbox_retention must be >= 0, prune_interval positive and outbox_rows >= 1")
        if not self.ha_prefix or any(c in self.ha_prefix for c in "#+") or self.ha_prefix.strip("/") != self.ha_prefix:
            raise ConfigError("ha_prefix must be a topic without wildcards or outer '/', not %r" % self.ha_prefix)


class Counters(object):
    """What a runtime did since it started (in its status)."""

    FIELDS = ("received", "frames", "dead_letters", "duplicates", "socks", "resets", "connects",
              "errors")

    def __init__(self):
        for name in self.FIELDS:
            setattr(self, name, 0)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}


def frame_ts(source, start: float, clock) -> float:
    """A frame's event time: ``start`` plus the source's own clock (a video,
    :meth:`~sortcore.camera.base.FrameSource.frame_time`), else ``clock()`` (a camera)."""
    offset = getattr(source, "frame_time", lambda: None)()
    return clock() if offset is None else start + offset


class RateLimiter(object):
    """At most ``fps`` frames a second (0: no limit): :meth:`wait` sleeps *before* a frame,
    so a live camera gives a fresh one rather than one that waited in a buffer."""

    def __init__(self, fps: float, clock=time.time, sleep=time.sleep):
        if not fps >= 0:
            raise ConfigError("fps must be 0 (unlimited) or positive, got %r" % (fps,))
        self.period = 1.0 / fps if fps else 0.0
        self.clock = clock
        self.sleep = sleep
        self._due = None  # type: Optional[float]

    def wait(self):
        now = self.clock()
        if self._due is not None and now < self._due:
            self.sleep(self._due - now)
            now = self._due
        self._due = now + self.period


class Core(object):
    """One pipeline, its counters, and what every runtime publishes; see the module docstring."""

    def __init__(self, pipeline, links: List, options: CoreOptions = CoreOptions(), runtime: str = "serve",
                 camera: Optional[str] = None, clock=time.time, monotonic=time.monotonic):
        self.pipeline = pipeline
        self.links = list(links)
        self.options = options
        self.runtime = runtime
        self.camera = camera
        self.clock = clock
        self.monotonic = monotonic
        self.counters = Counters()
        self.pumps = {link.name: OutboxPump(pipeline.store, link.name, retry_after=options.retry_denied,
                                            monotonic=monotonic) for link in self.links}
        self.listeners = []  # type: List  # objects with sock(dict), set_state(dict), set_status(dict)
        self.problem = None  # type: Optional[str]  # why the status says degraded
        self.started_at = clock()
        self.progress = threading.Condition()  # notified after each commit
        self._state_due = self._status_now = True
        self._status_due = False
        self._status_at = None  # type: Optional[float]
        self._prune_at = monotonic()  # the first prune at the first publish
        self._sent_at_prune = 0  # results the links had sent at the last prune
        self._drained = set()  # links whose pump found nothing left since the last new outbox row
        self._started = (None, None)  # type: tuple  # (session, its started_at) for the page
        self._refused = 0  # fire-and-forget publishes refused, as last reported
        self._announced = {}  # type: dict  # link name -> the connection the discovery went to

    # --- frames ------------------------------------------------------------

    def feed(self, frame, received_at: Optional[float] = None) -> int:
        """Count one frame (a late or refused one as a dead letter, the pipeline keeps it);
        return the socks it confirmed. ``received_at``: see :meth:`Pipeline.feed`."""
        events = self.pipeline.feed(frame, received_at)
        if any(isinstance(e, (FrameLate, FrameRefused)) for e in events):
            self.counters.dead_letters += 1
        else:
            self.counters.frames += 1
        self._status_due = True
        return sum(1 for e in events if isinstance(e, SockConfirmed))

    def reject(self, dead_letter):
        self.pipeline.reject(dead_letter)
        self.counters.dead_letters += 1
        self._status_due = True

    def commit(self, **session_fields):
        """Commit what was fed; tell listeners about the socks that are now stored.
        ``session_fields``: see :meth:`sortcore.store.pipeline.Pipeline.commit`."""
        confirmed = self.pipeline.commit(**session_fields)
        if confirmed:
            self._drained.clear()  # new outbox rows
            self.counters.socks += len(confirmed)
            self._state_due = True
            for event in confirmed:
                self._tell("sock", sock_message(self.pipeline.session, event, self.pipeline.untaught))
        with self.progress:
            self.progress.notify_all()
        return confirmed

    def reset(self) -> int:
        self.pipeline.close_runs()  # its waiting socks are published in the session they belong to
        self.commit()
        session = self.pipeline.reset()
        self._drained.clear()  # the reset committed what was fed, outbox rows too
        self.counters.resets += 1
        self._state_due = self._status_now = True
        log.info("new sorting session %d", session)
        return session

    def wait_until(self, predicate, timeout: float) -> bool:
        """Block until ``predicate()`` holds after a commit (for demos and tests)."""
        deadline = time.monotonic() + timeout
        with self.progress:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.progress.wait(remaining)
        return True

    # --- messages ----------------------------------------------------------

    def state(self) -> dict:
        return state_message(self.pipeline.session, self.pipeline.table(), self.clock(),
                             self.pipeline.unknown, self.pipeline.untaught)

    def _refusals(self) -> list:
        return [link.refusals for link in self.links if hasattr(link, "refusals")]

    def status(self, state: Optional[str] = None) -> dict:
        pending = sum(0 if name in self._drained else pump.pending() for name, pump in self.pumps.items())
        held = sum(len(pump.denied) for pump in self.pumps.values())
        refusing = [reason for r in self._refusals() for reason in r.now.values()]
        denied = held + sum(r.count for r in self._refusals())
        down = [link for link in self.links if not link.ready]  # results wait in the outbox
        reason = self.problem or next((p.last_error for p in self.pumps.values() if p.denied), None) or \
            next(iter(refusing), None) or \
            next(("%s: %s" % (link.name, getattr(link, "last_error", None) or "not connected")
                  for link in down), None)
        if state is None:
            state = "degraded" if self.problem or held or refusing or down else "online"
        broker = "none" if not self.links else "disconnected" if down else "connected"
        return status_message(
            status=state, runtime=self.runtime, session=self.pipeline.session, camera=self.camera,
            broker=broker, reason=reason, since=self.started_at, updated_at=self.clock(),
            published=sum(pump.sent for pump in self.pumps.values()), pending=pending, denied=denied,
            **self.counters.as_dict())

    def status_soon(self):
        """Send the status at the next :meth:`publish_due` (a connect, a reset, a fault)."""
        self._status_now = True

    def state_soon(self):
        """Send the state at the next :meth:`publish_due` (a design named or merged)."""
        self._state_due = True

    def tell(self, method: str, message: dict):
        """Hand ``message`` to the listeners that have ``method`` (the live page)."""
        self._tell(method, message, quiet=True)

    # --- publishing ---------------------------------------------------------

    def publish_due(self):
        """Outbox, state and status to every ready link; failures wait for the next call."""
        self._settle()
        for link in self.links:
            pump = self.pumps[link.name]
            if link.ready and link.name not in self._drained:
                denied = len(pump.denied)
                try:
                    if pump.pump(link) or len(pump.denied) != denied:
                        self._status_due = True  # published, pending, denied changed
                except StoreError as exc:  # sent but not marked: sent again later (at least once)
                    log.warning("outbox %s: %s", link.name, exc)
                if pump.drained:
                    self._drained.add(link.name)  # no query until a commit adds rows
        self._prune()  # after the pumps: what they just sent may go
        if self._state_due:
            state = self.state()
            self._tell("set_state", dict(state, started_at=self._session_start()))
            self._state_due = not self._broadcast(TOPIC_STATE, state)
        now = self.monotonic()
        since = None if self._status_at is None else now - self._status_at
        heartbeat = self.options.heartbeat and since is not None and since >= self.options.heartbeat
        changed = self._status_due and (since is None or since >= self.options.status_interval)
        if self._status_now or changed or heartbeat:
            status = self.status()
            self._tell("set_status", status)
            if self._broadcast(TOPIC_STATUS, status) or not self.links:
                self._status_now = self._status_due = False
                self._status_at = now
        if self.options.ha_discovery is not None:
            self._announce()

    def _settle(self, wait: float = 0.0):
        """Hear which fire-and-forget publishes the brokers refused; a change is news."""
        for link in self.links:
            if hasattr(link, "settle") and link.ready:
                link.settle(wait)
        refused = sum(r.count + len(r.now) for r in self._refusals())
        if refused != self._refused:
            self._refused, self._status_due = refused, True

    def _announce(self):
        """Home Assistant discovery, once per connection of each broker link (retained)."""
        name = self.options.ha_name or self.camera or self.runtime
        for link in self.links:
            generation = getattr(link, "generation", None)
            if not getattr(link, "mqtt", False) or not generation or self._announced.get(link.name) == generation:
                continue
            messages = hass.discovery_messages(name, self.runtime, link.topics, self.options.ha_prefix,
                                               self.options.ha_discovery)
            results = link.publish_many([(topic, payload, True) for topic, payload in messages])
            if any(r is not None and not r.startswith("denied") for r in results):
                continue  # not connected after all: again at the next call
            self._announced[link.name] = generation
            denied = [r for r in results if r is not None]
            what = "configs" if self.options.ha_discovery else "removals"
            if denied:
                log.warning("Home Assistant discovery %s refused (%s%s); give this user write access to %s/# "
                            "or set ha_discovery off", what, denied[0], " and %d more" % (len(denied) - 1)
                            if len(denied) > 1 else "", self.options.ha_prefix)
            else:
                log.info("Home Assistant discovery: %d %s published on %s", len(messages), what, link.name)

    def _session_start(self) -> Optional[float]:
        """When the current session started (for the page; one query per session)."""
        session = self.pipeline.session
        if self._started[0] != session:
            try:
                row = self.pipeline.store.session(session)
            except StoreError as exc:
                log.debug("session %s: %s", session, exc)
                return None
            self._started = (session, row["started_at"] if row else None)
        return self._started[1]

    def _prune(self):
        """Every ``prune_interval``, or once the links sent ``outbox_rows / 10`` results since:
        drop outbox rows every link had ``outbox_retention`` ago, and the oldest sent beyond
        ``outbox_rows``."""
        now, options = self.monotonic(), self.options
        sent = sum(pump.sent for pump in self.pumps.values())
        if (now < self._prune_at and (sent - self._sent_at_prune) * 10 < options.outbox_rows) or not self.links:
            return
        self._prune_at, self._sent_at_prune = now + options.prune_interval, sent
        try:
            pruned = self.pipeline.store.prune(options.outbox_retention, [link.name for link in self.links],
                                               max_rows=options.outbox_rows)
        except StoreError as exc:  # a busy or full store: try again next interval
            log.warning("outbox prune failed: %s", exc)
            return
        if pruned:
            log.info("outbox: pruned %d sent results (older than %.0f s, or beyond %d rows)", pruned,
                     options.outbox_retention, options.outbox_rows)

    def _broadcast(self, topic: str, message: dict) -> bool:
        """Retained, to every ready link; True when at least one took it."""
        payload, taken = dumps(message), 0
        for link in self.links:
            if not link.ready:
                continue
            try:
                nowait = getattr(link, "publish_nowait", None)
                if nowait is not None:
                    nowait(topic, payload, qos=1, retain=True)
                else:
                    link.publish(topic, payload, qos=1, retain=True)
                taken += 1
            except MqttError as exc:
                log.debug("%s to %s: %s", topic, link.name, exc)
        return taken > 0

    def say_offline(self):
        """The last status before a clean stop (the will covers an unclean one), counting
        the refusals of the last frames."""
        self._settle(wait=2.0)
        status = self.status("offline")
        self._tell("set_status", status)
        for link in self.links:
            if link.ready:
                try:
                    link.publish(TOPIC_STATUS, dumps(status), qos=1, retain=True)
                except MqttError as exc:
                    log.warning("could not say offline to %s: %s", link.name, exc.reason)

    def _tell(self, method: str, message: dict, quiet: bool = False):
        for listener in self.listeners:
            if quiet and not hasattr(listener, method):
                continue
            try:
                getattr(listener, method)(message)
            except Exception as exc:  # a page must never stop the counting
                log.warning("listener %s.%s failed: %s", type(listener).__name__, method, exc)
