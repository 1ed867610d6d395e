"""Options objects from a settings dict (:mod:`sortcore.core.settings`), built by keyword.

The CLI and the lambda both call these, so a setting means the same everywhere.
Python 3.7 compatible.
"""

import dataclasses
import socket
from typing import Optional

from ..core import settings as table
from ..adapters.mqtt_config import ConnectOptions
from ..core.engine import EngineConfig
from ..core.errors import ConfigError
from .secrets_file import read_secret
from ..core.messages import (DEFAULT_CAMERA, TOPIC_CONTROL, TOPIC_FRAMES, TOPIC_PAIRS, TOPIC_STATE, TOPIC_STATUS,
                             offline_will)
from .core import CoreOptions


def user_model_dir(values: dict) -> Optional[str]:
    """The ``user_model`` setting, by default ``user-model/`` beside the store (None without one)."""
    if values.get("user_model"):
        return values["user_model"]
    if not values.get("db"):
        return None
    import os
    return os.path.join(os.path.dirname(os.path.abspath(values["db"])), "user-model")


def value(values: dict, name: str, command: str = "run"):
    """``values[name]``, or where it is missing the settings table's default for ``command``."""
    found = values.get(name)
    return table.default(table.BY_NAME[name], command) if found is None else found


def engine_config(values: dict) -> EngineConfig:
    return EngineConfig(**table.group(values, "engine"))


def core_options(values: dict) -> CoreOptions:
    """Status pacing, and Home Assistant discovery when a broker is set (its device is the
    camera, or for ``serve`` the client id)."""
    discovery = value(values, "ha_discovery") if values.get("broker") else None
    return CoreOptions(status_interval=value(values, "status_interval"), heartbeat=value(values, "heartbeat"),
                       outbox_retention=value(values, "outbox_retention"), ha_discovery=discovery,
                       ha_prefix=value(values, "ha_prefix"), outbox_rows=value(values, "outbox_rows"),
                       ha_name=values.get("topic_prefix", "") + (values.get("camera") or values.get("client_id") or ""))


def connect_options(values: dict, persistent: bool = True) -> ConnectOptions:
    """How to reach ``values['broker']``; the password comes from ``password_file``."""
    return ConnectOptions(
        username=values.get("username"), password=read_secret(values.get("password_file")),
        tls_ca=values.get("tls_ca"), tls_cert=values.get("tls_cert"), tls_key=values.get("tls_key"),
        client_id=values.get("client_id") or "", clean_session=not persistent,
        protocol=values.get("protocol", "5"),
        reconnect_max=values.get("reconnect_max", ConnectOptions.reconnect_max))


def camera_name(values: dict, environ: dict) -> str:
    """The camera setting, else the Greengrass thing name, else this host's name."""
    name = values.get("camera") or environ.get("AWS_IOT_THING_NAME") or socket.gethostname() or DEFAULT_CAMERA
    return name[:64]


def prefixed_topics(prefix: str) -> dict:
    """``{topic: prefix + topic}`` for what the runtimes publish and read (``{}`` without a prefix)."""
    if not prefix:
        return {}
    if any(c in prefix for c in "#+"):
        raise ConfigError("topic_prefix must not contain MQTT wildcards: %r" % prefix)
    return {t: prefix + t for t in (TOPIC_FRAMES, TOPIC_PAIRS, TOPIC_STATE, TOPIC_STATUS, TOPIC_CONTROL)}


def publisher_to(url: str, options: ConnectOptions, topic_prefix: str = ""):
    """``connect()`` for a :class:`~sortcore.runtime.links.Link` to the broker at ``url``: it
    reads ``sockpairs/control``, and its last will says ``offline`` on ``sockpairs/status``."""
    topics = prefixed_topics(topic_prefix)
    return connect_to(url, dataclasses.replace(
        options, subscriptions=((topics.get(TOPIC_CONTROL, TOPIC_CONTROL), 1),),
        will=(topics.get(TOPIC_STATUS, TOPIC_STATUS), offline_will(), 1, True)))


def connect_to(url: str, options: ConnectOptions):
    """``connect()``: a publisher connected to ``url`` with ``options`` (paho imported only then)."""
    fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}

    def connect():
        from ..adapters.mqtt import connect_publisher  # paho only when a broker is configured
        return connect_publisher(url, **fields)

    return connect
