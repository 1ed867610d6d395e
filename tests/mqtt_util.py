"""Test helpers for MQTT: a real mosquitto (:class:`Broker`) and a paho subscriber
(:class:`Collector`) that lets a test wait for messages.

Tests may import paho directly (only ``sortcore`` itself keeps it inside
``sortcore/adapters/mqtt.py``). Used by the service, demo and lambda tests.
"""

import json
import threading
from contextlib import contextmanager
import time
import uuid

import pytest

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sortcore.devtools.broker import LocalBroker, find_mosquitto
from sortcore.adapters.mqtt_config import ConnectOptions
from sortcore.core.engine import EngineConfig
from sortcore.core.errors import MqttError
from sortcore.runtime.core import CoreOptions
from sortcore.runtime.service import ServeOptions, Service


class Broker(LocalBroker):
    """:class:`sortcore.devtools.broker.LocalBroker` with persistence, skipping the test
    when mosquitto is not installed: ``stop()``/``start()`` restart it on the
    same port and persistent sessions survive; ``kill()`` is SIGKILL.
    """

    def __init__(self, workdir, port=None, extra=(), tls=False):
        try:
            find_mosquitto()
        except MqttError as exc:
            pytest.skip(exc.reason)
        super().__init__(workdir, port=port, extra=extra, tls=tls, persistent=True)


class Collector:
    """Subscribe to ``topics`` and keep every message; wait for them with timeouts.

    ``target`` is a broker object (``.host``, ``.port``) or a ``(host, port)``
    pair. The constructor returns once the broker acknowledged the subscription,
    so anything published afterwards is seen.
    """

    def __init__(self, target, topics=("sockpairs",), qos=1, username=None, password=None,
                 tls_ca=None, timeout=10.0, client_id=None, clean_session=True):
        host, port = (target.host, target.port) if hasattr(target, "host") else target
        self.messages = []  # (topic, payload bytes, retain)
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._refused = None
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=client_id or "collector-" + uuid.uuid4().hex[:8],
                                  clean_session=clean_session)
        self.client.reconnect_delay_set(0.1, 1)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca:
            self.client.tls_set(ca_certs=tls_ca)
        topics = [topics] if isinstance(topics, str) else list(topics)

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                self._refused = str(reason_code)
                self._subscribed.set()
                return
            client.subscribe([(t, qos) for t in topics])

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            self._subscribed.set()

        def on_message(client, userdata, msg):
            with self._cond:
                self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
                self._cond.notify_all()

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect(host, port, 30)
        self.client.loop_start()
        if not self._subscribed.wait(timeout) or self._refused:
            self.close()
            raise RuntimeError("collector could not subscribe: %s" % (self._refused or "timeout"))

    def payloads(self, topic=None):
        with self._cond:
            return [p for t, p, r in self.messages if topic is None or t == topic]

    def json(self, topic=None):
        return [json.loads(p) for p in self.payloads(topic)]

    def wait(self, n, topic=None, timeout=10.0):
        """The first ``n`` payloads on ``topic`` (any topic if None); AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [p for t, p, r in self.messages if topic is None or t == topic]
                if len(got) >= n:
                    return got[:n]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("waited %.1f s for %d messages on %s, got %d"
                                         % (timeout, n, topic, len(got)))
                self._cond.wait(remaining)

    def wait_json(self, n, topic=None, timeout=10.0):
        return [json.loads(p) for p in self.wait(n, topic, timeout)]

    def wait_for(self, predicate, topic=None, timeout=10.0):
        """The first JSON message on ``topic`` for which ``predicate(obj)`` is true."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for t, p, r in self.messages[seen:]:
                    if topic is None or t == topic:
                        try:
                            obj = json.loads(p)
                        except ValueError:
                            obj = p
                        if predicate(obj):
                            return obj
                seen = len(self.messages)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("no matching message on %s within %.1f s" % (topic, timeout))
                self._cond.wait(remaining)

    def first_by(self, key, topic="sockpairs"):
        """JSON messages on ``topic`` without repeats of ``key`` (at-least-once delivery)."""
        seen, out = set(), []
        for obj in self.json(topic):
            if obj[key] not in seen:
                seen.add(obj[key])
                out.append(obj)
        return out

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextmanager
def serving(broker, store, **opts):
    """A :class:`Service` on ``store`` in a thread; stopped (and the store closed) at the end."""
    core = opts.pop("core", CoreOptions(status_interval=0.1))
    options = dict(broker=broker.url, core=core, tick_interval=0.1,
                   connect=ConnectOptions(client_id="sortcore-serve", clean_session=False, reconnect_max=0.5))
    options.update(opts)
    service = Service(store, EngineConfig(), ServeOptions(**options))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(15)
        assert not thread.is_alive()
        store.close()
