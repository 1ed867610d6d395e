"""Publishing through the AWS IoT Greengrass (v1) core: the ``iot-data`` client.

The only module that imports ``greengrasssdk``, lazily on the first publish, so
sortcore imports anywhere. :class:`GreengrassPublisher` has the same
``publish(topic, payload, qos=1, retain=False)``/``close()`` as the paho
publisher in :mod:`sortcore.adapters.mqtt`, so the device loop does not care which one
it holds. Greengrass routes the message by the group's subscription definition
(``deploy/greengrass/subscription-definition.json``): to AWS IoT, to other
lambdas, or to local devices.

Differences from the paho publisher, on purpose:

- ``qos`` and ``retain`` are accepted and ignored: the v1 ``iot-data`` publish
  has neither (the core's spooler decides delivery; nothing is retained);
- ``queueFullPolicy='AllOrException'`` makes a full core queue an exception,
  which we turn into :class:`~sortcore.core.errors.MqttError`, so the outbox row
  stays unsent and is retried instead of being dropped silently.

Off the device the SDK cannot work (it needs ``greengrass_common`` and the
core's IPC); the first publish raises :class:`GreengrassUnavailable` saying so.
Python 3.7 compatible.
"""

import logging

from ..core.errors import GreengrassUnavailable, MqttError

log = logging.getLogger(__name__)

QUEUE_FULL_POLICY = "AllOrException"


def _make_client():
    """A ``greengrasssdk.client('iot-data')`` or :class:`GreengrassUnavailable`."""
    try:
        import greengrasssdk
    except ImportError as exc:
        raise GreengrassUnavailable(
            "greengrasssdk is not installed (%s); the Greengrass publisher only works "
            "inside an AWS IoT Greengrass v1 lambda" % exc)
    try:
        return greengrasssdk.client("iot-data")
    except Exception as exc:  # the SDK raises ImportError/KeyError/... off-device
        raise GreengrassUnavailable(
            "cannot create the Greengrass iot-data client (%s: %s); this only works "
            "inside an AWS IoT Greengrass v1 lambda" % (type(exc).__name__, exc))


class LazyClient(object):
    """A publisher whose SDK client is made on first use: off a core, that is where it fails
    (with :class:`GreengrassUnavailable`), not on import. Shared by Greengrass v1 and v2."""

    def __init__(self, client_factory):
        self._factory = client_factory
        self._client = None

    def _get(self):
        if self._client is None:
            self._client = self._factory()
        return self._client

    @staticmethod
    def _bytes(payload) -> bytes:
        return payload.encode("utf-8") if isinstance(payload, str) else payload


class GreengrassPublisher(LazyClient):
    """Publish through the local Greengrass core; the client is created on first use."""

    name = "greengrass"

    def __init__(self, client_factory=_make_client):
        LazyClient.__init__(self, client_factory)

    def publish(self, topic, payload, qos=1, retain=False):
        """Hand one message to the core; raise :class:`MqttError` if it refuses."""
        payload = self._bytes(payload)
        client = self._get()
        try:
            client.publish(topic=topic, queueFullPolicy=QUEUE_FULL_POLICY, payload=payload)
        except Exception as exc:
            raise MqttError("Greengrass publish to %s failed: %s: %s" % (topic, type(exc).__name__, exc))

    def close(self):
        """Forget the client (the core owns the connection); safe to call twice."""
        self._client = None
