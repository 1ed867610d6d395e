"""Publishing the outbox: results written with their sock, sent after the fact.

The store writes a ``sockpairs`` row in the same transaction as the confirmed
sock; an :class:`OutboxPump` publishes the rows a destination has not
acknowledged, oldest first, many in flight at once where the publisher can
(``publish_many``), and marks the acknowledged ones sent in one transaction.
A crash or an outage can repeat a message (at least once) but never lose one.

A row the broker *refused* (an MQTT 5 PUBACK reason code, e.g. its ACL) stays
in the outbox with its reason in :attr:`OutboxPump.denied`, shown in the
status, and is tried again after ``retry_after`` seconds: once the ACL allows
it, it goes. Marking rows sent does not wait for its own fsync (see :meth:`OutboxPump._round`).
Python 3.7 compatible.
"""

import logging
import time
from typing import List, Optional

from ..core.errors import MqttError
from .outboxrows import DEFAULT_DESTINATION

log = logging.getLogger(__name__)


def _publish_all(publisher, messages) -> List[Optional[str]]:
    """One result per message (None: acknowledged). Pipelined when the publisher can be."""
    many = getattr(publisher, "publish_many", None)
    if many is not None:
        return many(messages)
    results = []  # type: List[Optional[str]]
    for topic, payload, retain in messages:
        try:
            publisher.publish(topic, payload, qos=1, retain=retain)
        except MqttError as exc:  # the rest waits: keep the order for a blocking publisher
            return results + [exc.reason] * (len(messages) - len(results))
        results.append(None)
    return results


class OutboxPump(object):
    """Sends one destination's unsent outbox rows; keeps what was refused and why."""

    def __init__(self, store, destination: str = DEFAULT_DESTINATION, limit: int = 100,
                 retry_after: float = 5.0, monotonic=time.monotonic):
        self.store = store
        self.destination = destination
        self.limit = limit
        self.retry_after = retry_after
        self.monotonic = monotonic
        self.denied = {}  # type: Dict[int, str]
        self.sent = 0
        self.last_error = None  # type: Optional[str]
        self._retry_at = None  # type: Optional[float]
        self._drained = False  # unknown until the first pump

    @property
    def waiting(self) -> bool:
        """True while a failed round's retry delay has not passed."""
        return self._retry_at is not None and self.monotonic() < self._retry_at

    @property
    def drained(self) -> bool:
        """The last :meth:`pump` left nothing this destination has not acknowledged."""
        return self._drained

    def pump(self, publisher) -> int:
        """Publish until the destination has nothing pending or a round fails; return rows sent."""
        if self.waiting:
            return 0
        sent = 0
        while True:
            rows = self.store.pending(self.limit, self.destination)
            self._drained = False
            if not rows:
                self._retry_at, self._drained = None, True
                return sent
            ok, failed = self._round(publisher, rows)
            sent += ok
            if failed:
                self._retry_at = self.monotonic() + self.retry_after
                return sent
            if len(rows) < self.limit:
                self._retry_at, self._drained = None, True
                return sent

    def _round(self, publisher, rows):
        results = _publish_all(publisher, [(r["topic"], r["payload"], False) for r in rows])
        delivered = [row["id"] for row, reason in zip(rows, results) if reason is None]
        if delivered:
            # No fsync of its own: a mark lost to a power cut only sends the row again (at
            # least once), and the next commit's fsync makes it durable anyway (WAL).
            self.store.durable(False)
            try:
                self.store.mark_sent(delivered, self.destination)
            finally:
                self.store.durable(True)
        self.sent += len(delivered)
        failed = [(row["id"], reason) for row, reason in zip(rows, results) if reason is not None]
        for row_id in delivered:
            self.denied.pop(row_id, None)
        for row_id, reason in failed:
            if reason.startswith("denied"):
                self.denied[row_id] = reason
        if failed:
            self.last_error = failed[0][1]
            log.info("outbox %s: %d sent, %d waiting: %s", self.destination, len(delivered),
                     len(failed), self.last_error)
        return len(delivered), bool(failed)

    def pending(self) -> int:
        return self.store.pending_count(self.destination)
