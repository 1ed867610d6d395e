"""Publishing from an AWS IoT Greengrass v2 component over the nucleus's IPC.

The only module that imports ``awsiotsdk`` (``awsiot.greengrasscoreipc.clientv2``),
lazily on the first publish, so sortcore imports anywhere.
:class:`GreengrassV2Publisher` has the same ``publish(topic, payload, qos=1,
retain=False)``/``close()`` as the paho publisher and the v1
:class:`~sortcore.adapters.greengrass.GreengrassPublisher`.

Two targets, as the component's access control allows (recipe
``accessControl``, ``deploy/greengrass-v2/recipe.yaml``):

- ``"iotcore"``: ``publish_to_iot_core`` through the nucleus's MQTT connection
  to AWS IoT Core (IPC service ``aws.greengrass.ipc.mqttproxy``, operation
  ``aws.greengrass#PublishToIoTCore``); ``qos`` and ``retain`` are passed on;
- ``"local"``: ``publish_to_topic`` on the core's local publish/subscribe bus
  (``aws.greengrass.ipc.pubsub``, ``aws.greengrass#PublishToTopic``), to other
  components; that bus has neither QoS nor retained messages.

Any SDK error (``UnauthorizedError`` when access control is missing, a closed
connection, ...) becomes :class:`~sortcore.core.errors.MqttError`, so the outbox row
stays unsent and is retried. Outside a Greengrass v2 component (no
``SVCUID``/IPC socket in the environment) the first publish raises
:class:`GreengrassUnavailable`. Python 3.7 compatible (awsiotsdk itself needs 3.8+).
"""

import logging

from ..core.errors import GreengrassUnavailable, MqttError
from .greengrass import LazyClient

log = logging.getLogger(__name__)

TARGETS = ("iotcore", "local")
#: ``awsiot.greengrasscoreipc.model.QOS`` values: the SDK takes them as strings.
QOS = {0: "0", 1: "1"}


def _make_client():
    """A connected ``GreengrassCoreIPCClientV2`` or :class:`GreengrassUnavailable`."""
    try:
        from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
    except ImportError as exc:
        raise GreengrassUnavailable(
            "awsiotsdk is not installed (%s): pip install 'sortcore[greengrass-v2]'" % exc)
    try:
        return GreengrassCoreIPCClientV2()
    except Exception as exc:  # no SVCUID / socket path outside a component, or refused
        raise GreengrassUnavailable(
            "cannot connect to the Greengrass nucleus over IPC (%s: %s); this only works "
            "inside a Greengrass v2 component" % (type(exc).__name__, exc))


def _binary_message(payload):
    """``PublishMessage(binary_message=BinaryMessage(message=payload))`` of the SDK's model."""
    from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage
    return PublishMessage(binary_message=BinaryMessage(message=payload))


class GreengrassV2Publisher(LazyClient):
    """Publish through the local Greengrass v2 nucleus; the IPC client is made on first use.

    ``client_factory`` returns an object with the SDK client's
    ``publish_to_iot_core(topic_name=, qos=, payload=, retain=)``,
    ``publish_to_topic(topic=, publish_message=)`` and ``close()``;
    ``message_factory`` wraps a payload for ``publish_to_topic``. Tests inject both.
    """

    name = "greengrass-v2"

    def __init__(self, target="iotcore", client_factory=_make_client, message_factory=_binary_message):
        if target not in TARGETS:
            raise MqttError("Greengrass v2 target must be one of %s, not %r" % (", ".join(TARGETS), target))
        LazyClient.__init__(self, client_factory)
        self.target = target
        self._message = message_factory

    def publish(self, topic, payload, qos=1, retain=False):
        """Hand one message to the nucleus; block until it answers; :class:`MqttError` if it refuses."""
        payload = self._bytes(payload)
        if qos not in QOS:
            raise MqttError("Greengrass v2 publish: qos must be 0 or 1, not %r" % (qos,))
        client = self._get()
        try:
            if self.target == "iotcore":
                client.publish_to_iot_core(topic_name=topic, qos=QOS[qos], payload=payload, retain=bool(retain))
            else:
                client.publish_to_topic(topic=topic, publish_message=self._message(payload))
        except Exception as exc:  # the SDK's errors share no base class with its connection errors
            raise MqttError("Greengrass v2 publish (%s) to %s failed: %s: %s"
                            % (self.target, topic, type(exc).__name__, exc))

    def close(self):
        """Close the IPC connection; safe to call twice, never raises."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:
                log.warning("closing the Greengrass IPC client: %s: %s", type(exc).__name__, exc)


def connect_greengrass_v2(target="iotcore"):
    """The publisher, connected now: raises :class:`GreengrassUnavailable` outside a component."""
    publisher = GreengrassV2Publisher(target)
    publisher._get()
    return publisher
