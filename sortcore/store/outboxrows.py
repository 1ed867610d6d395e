"""The store's outbox rows: what a destination still lacks, its acknowledgements, pruning.

A base of :class:`sortcore.store.database.Store` (its connection, clock and transactions).
The outbox is bounded by age and by rows: rows every destination acknowledged go
after ``outbox_retention`` seconds, or sooner, oldest first, once the outbox holds
more than ``outbox_rows``; their deliveries go with them. A row some destination
still lacks is never dropped (nothing is lost). Python 3.7 compatible.
"""

from typing import Iterable, List, Optional

from .storefile import guarded

DEFAULT_DESTINATION = "mqtt"


class OutboxRows(object):
    """The outbox methods of :class:`sortcore.store.database.Store`."""

    @guarded
    def prune(self, older_than_s: float, destinations: Iterable[str] = (DEFAULT_DESTINATION,),
              max_rows: Optional[int] = None) -> int:
        """Delete outbox rows every one of ``destinations`` acknowledged, with their
        deliveries: those acknowledged more than ``older_than_s`` seconds ago and, while
        the outbox holds more than ``max_rows`` rows, the oldest others; return how many.
        Rows some destination still lacks are never pruned."""
        destinations = sorted(set(destinations))
        done = ("select outbox from deliveries where destination in (%s) group by outbox having count(*) = ?"
                % ", ".join("?" * len(destinations)))
        params = destinations + [len(destinations)]
        c = self.conn
        with self.transaction():
            pruned = c.execute("delete from outbox where id in (%s and max(sent_at) < ?)" % done,
                               params + [self.clock() - older_than_s]).rowcount
            excess = 0 if max_rows is None else c.execute("select count(*) from outbox").fetchone()[0] - max_rows
            if excess > 0:
                pruned += c.execute("delete from outbox where id in (%s order by outbox limit ?)" % done,
                                    params + [excess]).rowcount
            c.execute("delete from deliveries where not exists"
                      " (select 1 from outbox where outbox.id = deliveries.outbox)")
        return pruned

    @guarded
    def pending_count(self, destination: str = DEFAULT_DESTINATION) -> int:
        """How many outbox rows ``destination`` has not acknowledged (for the status)."""
        return self.conn.execute(
            "select count(*) from outbox o where not exists"
            " (select 1 from deliveries d where d.outbox = o.id and d.destination = ?)", [destination]
        ).fetchone()[0]

    @guarded
    def pending(self, limit: int = 100, destination: str = DEFAULT_DESTINATION) -> List[dict]:
        """Outbox rows ``destination`` has not acknowledged yet, oldest first."""
        return list(self._query(
            "select id, session, sighting, topic, payload from outbox o where not exists"
            " (select 1 from deliveries d where d.outbox = o.id and d.destination = ?)"
            " order by id limit ?", [destination, limit]
        ))

    @guarded
    def mark_sent(self, ids: Iterable[int], destination: str = DEFAULT_DESTINATION):
        """Record that ``destination`` acknowledged these outbox rows."""
        ids = list(ids)
        if ids:
            with self.transaction():
                self.conn.executemany(
                    "insert or ignore into deliveries (outbox, destination, sent_at) values (?, ?, ?)",
                    [(i, destination, self.clock()) for i in ids],
                )
