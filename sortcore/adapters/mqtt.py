"""The MQTT boundary: the only module that imports paho.

- :func:`parse_url` reads ``mqtt://[user[:password]@]host[:port]`` and
  ``mqtts://...`` (TLS, default port 8883);
- :class:`Connection` owns one paho client (callback API version 2) and its
  network thread. paho callbacks only put :class:`Message` and connection
  events on a queue; reconnects back off between ``reconnect_min`` and
  ``reconnect_max`` seconds, with one clear log line per new kind of failure;
- :func:`connect_publisher` returns a connected :class:`Connection` whose
  :meth:`Connection.publish` blocks until the broker's PUBACK (QoS 1).

paho return and reason codes become :class:`sortcore.errors.MqttError`.
Passwords are never logged: :class:`BrokerUrl` hides them in ``str``/``repr``.
"""

import logging
import queue
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Tuple
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ..errors import ConfigError, MqttError

log = logging.getLogger(__name__)

SCHEMES = {"mqtt": 1883, "mqtts": 8883}


class BrokerUrl(NamedTuple):
    """A parsed broker URL; ``str()`` never shows the password."""

    host: str
    port: int
    tls: bool
    username: Optional[str] = None
    password: Optional[str] = None

    def __str__(self):
        user = (self.username + "@") if self.username else ""
        return "%s://%s%s:%d" % ("mqtts" if self.tls else "mqtt", user, self.host, self.port)

    def __repr__(self):
        return "BrokerUrl(%s)" % (str(self),)


def parse_url(url: str) -> BrokerUrl:
    """``mqtt://host:port`` or ``mqtts://user:password@host``; raise ConfigError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise ConfigError("broker URL must start with mqtt:// or mqtts://, not %r" % redact(url))
    if not parts.hostname:
        raise ConfigError("broker URL %r has no host" % redact(url))
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("broker URL %r has a path or query; give only host and port" % redact(url))
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise ConfigError("broker URL %r has a bad port" % redact(url))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return BrokerUrl(parts.hostname, port, parts.scheme == "mqtts", username, password)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class ConnectOptions:
    """How to connect. ``password`` is kept out of ``repr``.

    ``clean_session=False`` with a fixed ``client_id`` makes the broker keep
    our subscriptions and queue QoS 1 messages while we are away.
    ``manual_ack``: a received QoS 1 message is only acknowledged by
    :meth:`Connection.ack`. ``will``: ``(topic, payload, qos, retain)``.
    """

    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    tls_ca: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    client_id: str = ""
    clean_session: bool = True
    keepalive: int = 30
    subscriptions: Tuple[Tuple[str, int], ...] = ()
    will: Optional[Tuple[str, str, int, bool]] = None
    manual_ack: bool = False
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    timeout: float = 10.0
    max_queued: int = 0

    def __post_init__(self):
        if self.keepalive < 5:
            raise ConfigError("keepalive must be at least 5 seconds")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise ConfigError("need 0 < reconnect_min <= reconnect_max")
        if self.timeout <= 0:
            raise ConfigError("timeout must be positive")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("give both a TLS client certificate and its key, or neither")
        if not self.clean_session and not self.client_id:
            raise ConfigError("a persistent session (clean_session=False) needs a fixed client id")


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


def describe_error(exc: BaseException, url: BrokerUrl) -> str:
    """One readable line for a failed TCP/TLS connect (no secrets in it)."""
    where = "%s:%d" % (url.host, url.port)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate of %s not trusted: %s" % (where, exc.verify_message or exc.reason)
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake with %s failed: %s" % (where, exc.reason or exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection to %s refused (is the broker running and listening there?)" % where
    if isinstance(exc, socket.gaierror):
        return "cannot resolve broker host %r: %s" % (url.host, exc.strerror or exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "connection to %s timed out" % where
    return "cannot connect to %s: %s" % (where, getattr(exc, "strerror", None) or exc)


def connack_text(reason_code) -> str:
    """paho's reason code as text, e.g. 'Not authorized'."""
    try:
        return str(reason_code)
    except Exception:  # pragma: no cover - paho always has a name
        return "code %r" % (reason_code,)


class Connection:
    """One broker connection with its own network thread.

    Incoming messages and :class:`Connected`/:class:`Disconnected` events go to
    ``events`` (a :class:`queue.Queue`; a fresh one if not given).
    """

    def __init__(self, url, options: ConnectOptions = ConnectOptions(), events=None):
        self.url = parse_url(url) if isinstance(url, str) else url
        if self.url.username and options.username is None:
            options = _replace(options, username=self.url.username, password=self.url.password)
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
        self._client = self._make_client()

    def _make_client(self):
        o = self.options
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=o.client_id or "sortcore-" + uuid.uuid4().hex[:12],
            clean_session=o.clean_session, protocol=paho.MQTTv311, manual_ack=o.manual_ack,
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
        # Only our network thread may write to the socket: with a write-register
        # callback set, paho queues packets from other threads (publish, ack) and
        # wakes the loop instead of writing concurrently with it.
        client.on_socket_register_write = _ignore
        return client

    # --- paho callbacks: hand over, nothing else ---------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._failed("broker %s refused the connection: %s" % (self.url, connack_text(reason_code)))
            return
        self._session_present = bool(flags.session_present)
        if self.options.subscriptions:
            # Connected only once the broker confirmed the subscriptions: a peer
            # that publishes after that cannot race ahead of our SUBSCRIBE.
            self._subscribe_mid = client.subscribe(list(self.options.subscriptions))[1]
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
            text = "connection to %s lost: %s" % (self.url, connack_text(reason_code))
            log.warning("%s", text)
            self.events.put(Disconnected(text))

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
                client.connect(self.url.host, self.url.port, self.options.keepalive)
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
                self._connected.clear()
            if self._stop.wait(delay) or self._closing:
                break
            log.debug("reconnecting to %s", self.url)
            delay = min(delay * 2, self.options.reconnect_max)

    # --- use ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        return self._connected.wait(self.options.timeout if timeout is None else timeout)

    def publish(self, topic: str, payload, qos: int = 1, retain: bool = False, timeout: Optional[float] = None):
        """Publish; for QoS 1 block until the broker's PUBACK.

        Raise :class:`MqttError` when not connected, on a timeout, or when the
        connection drops first (the message may still arrive later: at least once).
        """
        info = self._send(topic, payload, qos, retain)
        if qos == 0:
            return
        generation = self._generation
        deadline = time.monotonic() + (self.options.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MqttError("no PUBACK from %s for %s within the timeout" % (self.url, topic))
            try:
                info.wait_for_publish(min(remaining, 0.25))  # returns as soon as acked
                if info.is_published():
                    return
            except (RuntimeError, ValueError) as exc:
                raise MqttError("publish to %s failed: %s" % (topic, exc), info.rc)
            if not self._connected.is_set() or self._generation != generation:
                raise MqttError("connection to %s lost before PUBACK for %s" % (self.url, topic))

    def publish_nowait(self, topic: str, payload, qos: int = 1, retain: bool = False):
        """Queue a publish without waiting for its acknowledgement."""
        self._send(topic, payload, qos, retain)

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


Publisher = Connection


def _ignore(*args):
    """paho's on_socket_register_write: our loop already selects for writing."""


def _no_delay(sock):
    """Send small packets at once: Nagle plus delayed ACKs would hold a PUBACK
    followed by a result for 40 ms (mosquitto's side is ``set_tcp_nodelay``)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # pragma: no cover - not a TCP socket
        pass


def _replace(options: ConnectOptions, **changes) -> ConnectOptions:
    import dataclasses

    return dataclasses.replace(options, **changes)


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
