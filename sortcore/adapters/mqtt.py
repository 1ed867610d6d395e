"""The MQTT boundary: the only module that imports paho.

- :class:`Connection` owns one paho client (callback API version 2) and its
  network thread. paho callbacks only put :class:`Message` and connection
  events on a queue; reconnects back off between ``reconnect_min`` and
  ``reconnect_max`` seconds, with one clear log line per new kind of failure;
  :meth:`Connection.settle` tells which fire-and-forget publishes the broker refused;
- :func:`connect_publisher` returns a connected :class:`Connection` whose
  :meth:`Connection.publish` blocks until the broker's PUBACK (QoS 1).

paho return and reason codes become :class:`sortcore.core.errors.MqttError`. URLs and
options are :mod:`.mqtt_config`'s; passwords are never logged.
"""

import collections
import dataclasses
import logging
import queue
import socket
import threading
import time
import uuid
from typing import NamedTuple, Optional

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ..core.errors import ConfigError, MqttError, PublishDenied
from .mqtt_config import SESSION_EXPIRY, ConnectOptions, describe_error, parse_url

log = logging.getLogger(__name__)

class Message(NamedTuple):
    """A received message, as the queue carries it."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    dup: bool


class Connected(NamedTuple):
    """The broker accepted us; ``session_present``: it kept our session."""

    session_present: bool


class Disconnected(NamedTuple):
    """The connection ended or could not be made; ``reason`` is readable text."""

    reason: str


class Connection:
    """One broker connection with its own network thread.

    Incoming messages and :class:`Connected`/:class:`Disconnected` events go to
    ``events`` (a :class:`queue.Queue`; a fresh one if not given).
    """

    def __init__(self, url, options: ConnectOptions = ConnectOptions(), events=None):
        self.url = parse_url(url) if isinstance(url, str) else url
        if self.url.username and options.username is None:
            options = dataclasses.replace(options, username=self.url.username)
        if (options.tls_ca or options.tls_cert) and not self.url.tls:
            raise ConfigError("TLS files given for %s; use an mqtts:// URL" % (self.url,))
        self.options = options
        self.events = events if events is not None else queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._generation = 0  # counts connections, to notice one that ended
        self._last_failure = None
        self._session_present = False
        self._subscribe_mid = None
        self._closing = False
        self._thread = None
        # mid -> (reason, when) for PUBACKs that said no (MQTT 5). Never held while calling
        # paho: paho calls on_publish with its own lock held.
        self._lock = threading.Lock()
        self._refused = {}
        # (topic, info, sent_at) of QoS 1 publish_nowait messages whose outcome settle() has not told
        self._unsettled = collections.deque()
        self._client = self._make_client()

    def _make_client(self):
        o = self.options
        session = {"protocol": paho.MQTTv5} if o.protocol == "5" else \
            {"protocol": paho.MQTTv311, "clean_session": o.clean_session}
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=o.client_id or "sortcore-" + uuid.uuid4().hex[:12], manual_ack=o.manual_ack, **session
        )
        if o.username is not None:
            client.username_pw_set(o.username, o.password)
        if self.url.tls:
            try:
                client.tls_set(ca_certs=o.tls_ca, certfile=o.tls_cert, keyfile=o.tls_key)
            except (OSError, ValueError) as exc:
                raise ConfigError("cannot load TLS files: %s" % exc)
        if o.will is not None:
            topic, payload, qos, retain = o.will
            client.will_set(topic, payload, qos=qos, retain=retain)
        client.max_queued_messages_set(o.max_queued)
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        # Only our network thread may write to the socket: with a write-register
        # callback set, paho queues packets from other threads (publish, ack) and
        # wakes the loop instead of writing concurrently with it.
        client.on_socket_register_write = _ignore
        return client

    # --- paho callbacks: hand over, nothing else ---------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._failed("broker %s refused the connection: %s" % (self.url, reason_code))
            return
        self._session_present = bool(flags.session_present)
        if self.options.subscriptions:
            # Connected only once the broker confirmed the subscriptions: a peer
            # that publishes after that cannot race ahead of our SUBSCRIBE.
            self._subscribe_mid = client.subscribe(self._subscriptions())[1]
        else:
            self._ready()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if mid != self._subscribe_mid:
            return
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.warning("broker %s refused a subscription: %s", self.url, ", ".join(refused))
        self._ready()

    def _ready(self):
        self._generation += 1
        self._last_failure = None
        self._connected.set()
        self.events.put(Connected(self._session_present))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self._connected.is_set():
            self._connected.clear()
            text = "connection to %s lost: %s" % (self.url, reason_code)
            log.warning("%s", text)
            self.events.put(Disconnected(text))

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        if reason_code.is_failure:
            with self._lock:
                if len(self._refused) > 1000:  # nobody waits for these any more
                    self._refused.clear()
                self._refused[mid] = (str(reason_code), time.monotonic())

    def _on_message(self, client, userdata, msg):
        self.events.put(Message(msg.topic, msg.payload, msg.qos, msg.mid, bool(msg.retain), bool(msg.dup)))

    # --- the network thread ------------------------------------------------

    def start(self):
        """Start connecting in the background (reconnecting until :meth:`close`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mqtt-%s" % self.url.host, daemon=True)
            self._thread.start()
        return self

    def _failed(self, text: str):
        if text != self._last_failure:
            log.warning("%s", text)
            self.events.put(Disconnected(text))
        else:
            log.debug("%s (again)", text)
        self._last_failure = text

    def _run(self):
        delay = self.options.reconnect_min
        client = self._client
        while not self._stop.is_set():
            try:
                client.connect(self.url.host, self.url.port, self.options.keepalive, **self._connect_args())
            except (OSError, ValueError) as exc:
                self._failed(describe_error(exc, self.url))
            else:
                _no_delay(client.socket())
                rc = paho.MQTT_ERR_SUCCESS
                while rc == paho.MQTT_ERR_SUCCESS and not self._stop.is_set():
                    rc = client.loop(0.5)
                    if self._connected.is_set():
                        delay = self.options.reconnect_min
                if self._stop.is_set() or self._closing:
                    break
                if rc != paho.MQTT_ERR_CONN_REFUSED and self._connected.is_set():
                    self._connected.clear()
                    text = "connection to %s lost: %s" % (self.url, paho.error_string(rc))
                    log.warning("%s", text)
                    self.events.put(Disconnected(text))
                elif rc == paho.MQTT_ERR_CONN_LOST and self._generation == 0 and self._last_failure is None:
                    self._failed("%s closed the connection before answering%s" % (
                        self.url, "" if self.url.tls else " (a TLS port? then use mqtts://)"))
                self._connected.clear()
            if self._stop.wait(delay) or self._closing:
                break
            log.debug("reconnecting to %s", self.url)
            delay = min(delay * 2, self.options.reconnect_max)

    def _subscriptions(self) -> list:
        """MQTT 5 keeps the retain flag as published, so a retained command can be refused."""
        if self.options.protocol != "5":
            return list(self.options.subscriptions)
        from paho.mqtt.subscribeoptions import SubscribeOptions

        return [(topic, SubscribeOptions(qos=qos, retainAsPublished=True))
                for topic, qos in self.options.subscriptions]

    def _connect_args(self) -> dict:
        """MQTT 5: a persistent session is clean_start=False plus a session expiry."""
        if self.options.protocol != "5":
            return {}
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)
        persistent = not self.options.clean_session
        properties.SessionExpiryInterval = SESSION_EXPIRY if persistent else 0
        return {"clean_start": not persistent, "properties": properties}

    # --- use ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def generation(self) -> int:
        """How many connections were made (0: none yet); a new value means a new connection."""
        return self._generation

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        return self._connected.wait(self.options.timeout if timeout is None else timeout)

    def publish(self, topic: str, payload, qos: int = 1, retain: bool = False, timeout: Optional[float] = None):
        """Publish; for QoS 1 block until the broker's PUBACK.

        Raise :class:`MqttError` when not connected, on a timeout, or when the
        connection drops first (the message may still arrive later: at least once).
        """
        if qos == 0:
            self._send(topic, payload, qos, retain)
            return
        reason = self.publish_many([(topic, payload, retain)], timeout)[0]
        if reason is not None:
            raise (PublishDenied if reason.startswith("denied") else MqttError)(reason)

    def publish_many(self, messages, timeout: Optional[float] = None) -> list:
        """Publish ``(topic, payload, retain)`` messages at QoS 1, all in flight at once; wait
        for their PUBACKs. Return one entry per message: None when the broker took it, else
        the reason (``denied: ...`` when an MQTT 5 broker refused it, e.g. by its ACL).
        """
        generation, sent_at = self._generation, time.monotonic()
        infos = []
        try:
            for topic, payload, retain in messages:
                infos.append((topic, self._send(topic, payload, 1, retain)))
        except MqttError as exc:
            infos += [(None, str(exc))] * (len(messages) - len(infos))
        deadline = sent_at + (self.options.timeout if timeout is None else timeout)
        return [self._outcome(topic, info, deadline, generation, sent_at) for topic, info in infos]

    def _outcome(self, topic, info, deadline, generation, sent_at) -> Optional[str]:
        """Wait for one message's PUBACK; None, or why it was not taken."""
        if topic is None:
            return info  # not sent: the reason
        while not info.is_published():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "no PUBACK from %s for %s within the timeout" % (self.url, topic)
            if not self._connected.is_set() or self._generation != generation:
                return "connection to %s lost before PUBACK for %s" % (self.url, topic)
            try:
                info.wait_for_publish(min(remaining, 0.25))  # returns as soon as acked
            except (RuntimeError, ValueError) as exc:
                return "publish to %s failed: %s" % (topic, exc)
        return self._refusal(topic, info, sent_at)

    def _refusal(self, topic, info, sent_at) -> Optional[str]:
        """None when the broker took an acknowledged publish, else ``denied: ...``."""
        with self._lock:
            refused = self._refused.pop(info.mid, None)
        if refused is None or refused[1] < sent_at:  # none, or one for an earlier use of the mid
            return None
        return "denied: %s refused %s: %s" % (self.url, topic, refused[0])

    def publish_nowait(self, topic: str, payload, qos: int = 1, retain: bool = False):
        """Queue a publish without waiting for its acknowledgement; a QoS 1 one's outcome
        comes later from :meth:`settle`."""
        sent_at = time.monotonic()
        info = self._send(topic, payload, qos, retain)
        if qos > 0:
            if len(self._unsettled) >= 10000:  # nobody settles: forget the oldest
                self._unsettled.popleft()
            self._unsettled.append((topic, info, sent_at))

    def settle(self, wait: float = 0.0) -> list:
        """``(topic, None or 'denied: ...')`` of each :meth:`publish_nowait` message acknowledged
        since the last call (MQTT 5 PUBACK reason code, e.g. the ACL), after waiting up to ``wait``
        seconds for them all; from the publishing thread. Messages unacknowledged after 6
        timeouts are forgotten (lost with a connection)."""
        done, unsettled = [], self._unsettled
        now = time.monotonic()
        too_old, deadline = now - 6 * self.options.timeout, now + wait
        while unsettled:  # a broker acknowledges QoS 1 publishes in order (MQTT 4.6)
            topic, info, sent_at = unsettled[0]
            while not info.is_published() and self.connected and time.monotonic() < deadline:
                info.wait_for_publish(min(0.25, max(0.0, deadline - time.monotonic())))
            if info.is_published():  # paho calls on_publish (which notes a refusal) before this is set
                done.append((topic, self._refusal(topic, info, sent_at)))
            elif sent_at > too_old:
                break
            unsettled.popleft()
        return done

    def _send(self, topic, payload, qos, retain):
        if not self._connected.is_set():
            raise MqttError("not connected to %s" % (self.url,), paho.MQTT_ERR_NO_CONN)
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as exc:  # bad topic, payload too large
            raise MqttError("cannot publish to %r: %s" % (topic, exc))
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_AGAIN):
            raise MqttError("publish to %s failed: %s" % (topic, paho.error_string(info.rc)), info.rc)
        return info

    def ack(self, message: Message):
        """Acknowledge a received QoS 1 message (with ``manual_ack``)."""
        if message.qos > 0 and self.options.manual_ack:
            rc = self._client.ack(message.mid, message.qos)
            if rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                raise MqttError("cannot acknowledge message %d: %s" % (message.mid, paho.error_string(rc)), rc)

    def close(self, timeout: float = 5.0):
        """Disconnect cleanly (no last will) and stop the network thread."""
        if self._closing:
            return
        self._closing = True
        if self._connected.is_set():
            self._connected.clear()  # our own disconnect is not a lost connection
            self._client.disconnect()  # the loop sends it, closes the socket and ends
        else:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._stop.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _ignore(*args):
    """paho's on_socket_register_write: our loop already selects for writing."""


def _no_delay(sock):
    """Send small packets at once: Nagle plus delayed ACKs would hold a PUBACK
    followed by a result for 40 ms (mosquitto's side is ``set_tcp_nodelay``)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # pragma: no cover - not a TCP socket
        pass


def connect_publisher(url: str, timeout: float = 10.0, **opts) -> Connection:
    """Connect and return a publisher: ``publish(topic, payload, qos=1, retain=False)``
    blocks until the PUBACK; ``close()``. ``opts`` are :class:`ConnectOptions` fields.

    Raise :class:`MqttError` with the broker's reason when it cannot connect
    within ``timeout`` (refused, wrong password, TLS failure).
    """
    conn = Connection(url, ConnectOptions(timeout=timeout, **opts)).start()
    deadline = time.monotonic() + timeout
    reason = "no answer from %s within %.0f s" % (conn.url, timeout)
    while time.monotonic() < deadline:
        try:
            event = conn.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if isinstance(event, Connected):
            return conn
        if isinstance(event, Disconnected):
            reason = event.reason
            break
    conn.close()
    raise MqttError(reason)
