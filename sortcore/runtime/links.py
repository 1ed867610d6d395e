"""Where results go: a named destination that reconnects after a failure, and several as one.

A :class:`Link` holds a publisher from ``connect()`` (paho, Greengrass v1 or v2: anything
with ``publish(topic, payload, qos=1, retain=False)`` and ``close()``, and optionally
``publish_many``, ``publish_nowait`` with ``settle`` and ``events``); after a failure it
closes it and waits out a :class:`Backoff` before connecting again. Each link is one
outbox destination, so one that is down holds back no other. Fire-and-forget publishes
the broker refused (frames, state, status) are counted in its :class:`Refusals`.
Python 3.7 compatible (runs on the camera).
"""

import logging
import queue
import time
from typing import Callable, Optional

from ..core.errors import MqttError, PublishDenied

log = logging.getLogger(__name__)


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


class Refusals(object):
    """Fire-and-forget publishes a broker refused: ``count`` in all, ``now`` the topics whose
    latest acknowledged publish was refused (topic -> reason); each topic logged once."""

    def __init__(self):
        self.count = 0
        self.now = {}  # type: dict
        self._logged = set()  # type: set

    def note(self, topic: str, reason):
        """One acknowledged publish: ``reason`` None (taken) or why it was refused."""
        if reason is None:
            if self.now.pop(topic, None) is not None:
                log.info("the broker takes %s again", topic)
            return
        self.count += 1
        self.now[topic] = reason
        if topic not in self._logged:
            self._logged.add(topic)
            log.warning("%s; counted as denied in the status (logged once per topic)", reason)


class Link(object):
    """One destination: a publisher from ``connect()``, replaced after a failure.

    After a failure the publisher is closed and no attempt is made until its
    backoff delay has passed on ``clock``; :meth:`publish` raises
    :class:`MqttError` meanwhile (cheaply, without touching the network).
    ``topics`` renames topics on the way out, e.g. ``{"sockpairs": "site1/sockpairs"}``.
    ``mqtt``: a broker link (Home Assistant discovery goes to it).
    """

    def __init__(self, name: str, connect: Callable, clock=time.time, backoff: Optional[Backoff] = None,
                 topics: Optional[dict] = None, mqtt: bool = False):
        self.name = name
        self.mqtt = mqtt
        self._connect = connect
        self.topics = dict(topics or {})
        self.refusals = Refusals()
        self._connects = 0
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
        """Publish one message (QoS 1: blocks until acknowledged); MqttError if it failed."""
        self._deliver("publish", topic, payload, qos, retain)

    def publish_nowait(self, topic, payload, qos=1, retain=False):
        """Publish without waiting for the acknowledgement where the publisher can (paho);
        :meth:`settle` later counts a refusal."""
        self._deliver("publish_nowait", topic, payload, qos, retain)

    def _deliver(self, method, topic, payload, qos, retain):
        if not self.ready:
            raise MqttError("%s: waiting to reconnect after: %s" % (self.name, self.last_error))
        try:
            publisher = self._publisher()
            send = getattr(publisher, method, None) or publisher.publish
            send(self.topics.get(topic, topic), payload, qos=qos, retain=retain)
        except PublishDenied:
            raise  # the broker is there and said no: no reason to reconnect
        except Exception as exc:
            self._failed(exc)
            if isinstance(exc, MqttError):
                raise
            raise MqttError("%s: %s: %s" % (self.name, type(exc).__name__, exc))
        self._succeeded(1)

    def _publisher(self):
        if self.publisher is None:
            self.publisher = self._connect()
            self._connects += 1
        return self.publisher

    @property
    def generation(self):
        """Changes with each new connection (None: not connected): a new publisher, or one
        that reconnected by itself."""
        if self.publisher is None:
            return None
        return self._connects, getattr(self.publisher, "generation", 0)

    def settle(self, wait: float = 0.0):
        """Count the refused fire-and-forget publishes the publisher has heard of (waiting up
        to ``wait`` seconds for their acknowledgements)."""
        settle = getattr(self.publisher, "settle", None)
        for topic, reason in settle(wait) if settle is not None else ():
            self.refusals.note(topic, reason)

    def received(self) -> list:
        """Messages delivered to the publisher's subscriptions (``sockpairs/control``), oldest first."""
        events, messages = getattr(self.publisher, "events", None), []
        while events is not None:
            try:
                event = events.get_nowait()
            except queue.Empty:
                break
            if hasattr(event, "payload"):  # not a Connected/Disconnected event
                messages.append(event)
        return messages

    def publish_many(self, messages) -> list:
        """QoS 1 ``(topic, payload, retain)`` messages; one result each (None: acknowledged)."""
        if not self.ready:
            return ["%s: waiting to reconnect after: %s" % (self.name, self.last_error)] * len(messages)
        renamed = [(self.topics.get(t, t), p, r) for t, p, r in messages]
        try:
            self._publisher()
            many = getattr(self.publisher, "publish_many", None)
            results = many(renamed) if many is not None else [self._one(m) for m in renamed]
        except Exception as exc:
            self._failed(exc)
            return ["%s: %s" % (self.name, exc)] * len(messages)
        broken = [r for r in results if r is not None and not r.startswith("denied")]
        if broken:
            self._failed(MqttError(broken[0]))
        else:
            self._succeeded(sum(r is None for r in results))
        return results

    def _one(self, message):
        topic, payload, retain = message
        try:
            self.publisher.publish(topic, payload, qos=1, retain=retain)
        except MqttError as exc:
            return exc.reason
        return None

    def _succeeded(self, count):
        if self.retry_at is not None:
            log.info("%s: publishing again", self.name)
        self.retry_at = None
        self.backoff.reset()
        self.sent += count

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


class ConnectionLink(object):
    """A :class:`~sortcore.adapters.mqtt.Connection` that reconnects by itself, as a link."""

    mqtt = True

    def __init__(self, name: str, conn):
        self.name = name
        self.conn = conn
        self.topics = {}  # type: dict
        self.refusals = Refusals()

    @property
    def generation(self) -> int:
        return self.conn.generation

    def settle(self, wait: float = 0.0):
        for topic, reason in self.conn.settle(wait):
            self.refusals.note(topic, reason)

    @property
    def ready(self) -> bool:
        return self.conn.connected

    def publish(self, topic, payload, qos=1, retain=False):
        self.conn.publish(topic, payload, qos=qos, retain=retain)

    def publish_many(self, messages):
        return self.conn.publish_many(messages)

    def publish_nowait(self, topic, payload, qos=1, retain=False):
        self.conn.publish_nowait(topic, payload, qos=qos, retain=retain)

    def close(self):
        self.conn.close()
