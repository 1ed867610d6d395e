"""Publishing the outbox: results written with their sock, sent after the fact.

The store writes a ``sockpairs`` row in the same transaction as the confirmed
sock; :func:`drain` publishes unsent rows in id order and marks each one sent
only after the broker acknowledged it, so a crash or an outage can repeat a
message (at least once) but never lose one or reorder them.
"""

import logging

from .errors import MqttError
from .store import DEFAULT_DESTINATION

log = logging.getLogger(__name__)


def drain(store, publisher, limit: int = 100, destination: str = DEFAULT_DESTINATION) -> int:
    """Publish up to ``limit`` rows ``destination`` has not acknowledged (QoS 1,
    oldest first); return how many went.

    ``publisher.publish(topic, payload, qos=1, retain=False)`` must block until
    the acknowledgement and raise :class:`MqttError` if there is none. The
    first failure stops the drain; that row and the rest wait for the next try.
    """
    sent = 0
    for row in store.pending(limit, destination):
        try:
            publisher.publish(row["topic"], row["payload"], qos=1, retain=False)
        except MqttError as exc:
            log.info("outbox: %d sent, stopped at row %d: %s", sent, row["id"], exc.reason)
            return sent
        store.mark_sent([row["id"]], destination)
        sent += 1
    return sent

