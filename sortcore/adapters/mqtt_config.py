"""How to reach a broker, without paho: the URL, the connect options, readable errors.

:func:`parse_url` reads ``mqtt://[user@]host[:port]`` and ``mqtts://...`` (TLS,
default port 8883). A password in the URL is refused: it would show in ``ps`` and
in ``/proc/PID/environ``; give a password file instead. Python 3.7 compatible.
"""

import socket
import ssl
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Tuple
from urllib.parse import unquote, urlsplit

from ..core.errors import ConfigError

SCHEMES = {"mqtt": 1883, "mqtts": 8883}
#: MQTT 5 tells a denied publish from a delivered one (the PUBACK reason code); 3.1.1 cannot.
PROTOCOLS = ("5", "3.1.1")
#: How long the broker keeps our session (MQTT 5 session expiry) while we are away: a week.
SESSION_EXPIRY = 7 * 24 * 3600


class BrokerUrl(NamedTuple):
    """A parsed broker URL (never with a password)."""

    host: str
    port: int
    tls: bool
    username: Optional[str] = None

    def __str__(self):
        user = (self.username + "@") if self.username else ""
        return "%s://%s%s:%d" % ("mqtts" if self.tls else "mqtt", user, self.host, self.port)

    def __repr__(self):
        return "BrokerUrl(%s)" % (str(self),)


def parse_url(url: str) -> BrokerUrl:
    """``mqtt://host:port`` or ``mqtts://user@host``; raise ConfigError (also for a password)."""
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
    if parts.password is not None:
        raise ConfigError("broker URL %r carries a password, which would show in ps and the process "
                          "environment; give it in a password file (password_file)" % redact(url))
    username = unquote(parts.username) if parts.username else None
    return BrokerUrl(parts.hostname, port, parts.scheme == "mqtts", username)


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
    protocol: str = "5"

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ConfigError("protocol must be one of %s, not %r" % (", ".join(PROTOCOLS), self.protocol))
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
