"""SQLite persistence through sqlite-utils: sessions, sightings, dead letters, outbox.

Schema (version 1):

- ``sessions``: one sorting session (a laundry load): mode, engine config,
  the engine's state and input position at the last commit, counters;
- ``sightings``: confirmed socks, ``id`` = the engine's sighting id (unique
  across sessions);
- ``dead_letters``: input that was not a frame, with its reason;
- ``outbox``: results to publish; ``deliveries`` records, per destination (a
  broker, the Greengrass core), each row the destination acknowledged, so one
  destination being down never holds results back from another;
- views ``pairs`` (per session and design) and ``current_pairs`` (latest session):
  designs only, never the unrecognised socks (image ``Unknown``, see
  :meth:`Store.unknown`). Views hold no data, so every open brings them to this
  version's SQL (:func:`_ensure_views`) without a schema version.

Every write of a batch happens in one transaction (:meth:`Store.commit`), so a
confirmed sock, its outbox row and the engine state that counted it land
together or not at all. We drive transactions ourselves on a connection in
autocommit mode, because sqlite-utils 3.x and 4.x commit differently.
"""

import json
import sqlite3
import time
from typing import Iterable, List, Optional

import sqlite_utils

from .engine import UNKNOWN
from .errors import StoreError

SCHEMA_VERSION = 1
DEFAULT_DESTINATION = "mqtt"

PAIRS_VIEW = """
select session, image,
       count(*) as number_socks_seen,
       case when count(*) % 2 = 0 then 'Pair' else 'Un-matched' end as pair_seen,
       count(*) / 2 as pairs
from sightings where image != '""" + UNKNOWN + """' group by session, image order by session, image
"""
CURRENT_PAIRS_VIEW = """
select image, number_socks_seen, pair_seen, pairs from pairs
where session = (select max(id) from sessions)
"""


def _create_v1(db: sqlite_utils.Database):
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["sessions"].create(
        {
            "id": int, "started_at": float, "ended_at": float, "mode": str, "config": str,
            "source": str, "status": str, "position": str, "engine_state": str,
            "frames": int, "ghosts": int,
        },
        pk="id", not_null={"started_at", "mode", "config", "status"},
        defaults={"status": "open", "frames": 0, "ghosts": 0},
    )
    db["sightings"].create(
        {
            "id": int, "session": int, "image": str, "camera": str, "first_seen": float,
            "confirmed_at": float, "last_seen": float, "frames": int,
            "mean_probability": float, "closed_reason": str,
        },
        pk="id", foreign_keys=[("session", "sessions", "id")],
        not_null={"session", "image", "confirmed_at"},
    )
    db["sightings"].create_index(["session", "image"])
    db["dead_letters"].create(
        {"id": int, "session": int, "received_at": float, "source": str, "line": int,
         "reason": str, "raw": str},
        pk="id", foreign_keys=[("session", "sessions", "id")], not_null={"reason"},
    )
    db["outbox"].create(
        {"id": int, "session": int, "sighting": int, "topic": str, "payload": str, "created_at": float},
        pk="id", not_null={"topic", "payload", "created_at"},
    )
    db["deliveries"].create(
        {"outbox": int, "destination": str, "sent_at": float},
        pk=("outbox", "destination"), foreign_keys=[("outbox", "outbox", "id")],
    )
    db.create_view("pairs", PAIRS_VIEW)
    db.create_view("current_pairs", CURRENT_PAIRS_VIEW)


MIGRATIONS = [_create_v1]  # MIGRATIONS[n] brings a database from version n to n+1
VIEWS = (("pairs", PAIRS_VIEW), ("current_pairs", CURRENT_PAIRS_VIEW))


def _ensure_views(conn: sqlite3.Connection):
    """Recreate the views whose SQL is not this version's (e.g. pairs before ``Unknown``)."""
    def stale():
        found = dict(conn.execute("select name, sql from sqlite_master where type = 'view'").fetchall())
        return [(name, sql) for name, sql in VIEWS if not (found.get(name) or "").rstrip().endswith(sql.strip())]

    if not stale():
        return
    with _Transaction(conn):
        for name, sql in reversed(VIEWS):  # current_pairs reads pairs
            conn.execute("drop view if exists %s" % name)
        for name, sql in VIEWS:
            conn.execute("create view %s as %s" % (name, sql.strip()))


class Store:
    """The SQLite file behind replay, the service and the lambda."""

    def __init__(self, path: str, clock=time.time):
        self.path = path
        self.clock = clock
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self.db = sqlite_utils.Database(conn)
            conn.execute("PRAGMA journal_mode=wal")
            # FULL: a commit survives a power cut too, not only a killed process; a sock
            # published after its commit must never be rolled back and counted again.
            conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError("cannot open the store %s: %s" % (path, exc))

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self):
        self.conn.close()

    def _migrate(self):
        version = 0
        if "meta" in self.db.table_names():
            row = self.conn.execute("select value from meta where key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                "%s has schema version %d; this sortcore knows up to %d" % (self.path, version, SCHEMA_VERSION)
            )
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](self.db)
            self.conn.execute(
                "insert or replace into meta (key, value) values ('schema_version', ?)", [str(step + 1)]
            )
        _ensure_views(self.conn)

    # --- sessions ----------------------------------------------------------

    def new_session(self, mode: str, config: dict, source: Optional[str] = None) -> int:
        """Start a sorting session; earlier open sessions are ended."""
        now = self.clock()
        with self.transaction():
            self.conn.execute("update sessions set status = 'done', ended_at = ? where status = 'open'", [now])
            cursor = self.conn.execute(
                "insert into sessions (started_at, mode, config, source, status) values (?, ?, ?, ?, 'open')",
                [now, mode, json.dumps(config), source],
            )
        return cursor.lastrowid

    def end_session(self, session: int):
        with self.transaction():
            self.conn.execute(
                "update sessions set status = 'done', ended_at = ? where id = ?", [self.clock(), session]
            )

    def session(self, session: Optional[int] = None) -> Optional[dict]:
        """One session as a dict (the latest one when ``session`` is None)."""
        if session is None:
            rows = list(self.db.query("select * from sessions order by id desc limit 1"))
        else:
            rows = list(self.db.query("select * from sessions where id = ?", [session]))
        if not rows:
            return None
        row = rows[0]
        for key in ("config", "position", "engine_state"):
            row[key] = json.loads(row[key]) if row[key] else None
        return row

    def sessions(self) -> List[dict]:
        """Every session with its sock and dead-letter counts, oldest first."""
        return list(self.db.query(
            "select s.id, s.started_at, s.ended_at, s.mode, s.status, s.source, s.frames, s.ghosts,"
            " (select count(*) from sightings where session = s.id) as socks,"
            " (select count(*) from dead_letters where session = s.id) as dead_letters"
            " from sessions s order by s.id"
        ))

    def open_session(self, source: str) -> Optional[dict]:
        """The latest session if it is still open and was fed from ``source``."""
        row = self.session()
        if row and row["status"] == "open" and row["source"] == source:
            return row
        return None

    def next_sighting_id(self) -> int:
        row = self.conn.execute("select max(id) from sightings").fetchone()
        return (row[0] or 0) + 1

    # --- writes ------------------------------------------------------------

    def transaction(self):
        """``with store.transaction():`` -- BEGIN IMMEDIATE ... COMMIT or ROLLBACK."""
        return _Transaction(self.conn)

    def commit(self, session: int, confirmed=(), closed=(), dead_letters=(), outbox=(),
               engine_state: Optional[dict] = None, position=None, frames: Optional[int] = None):
        """Write one batch of engine output atomically.

        ``confirmed``: SockConfirmed events; ``closed``: SightingClosed events;
        ``dead_letters``: DeadLetter tuples; ``outbox``: (sighting, topic, payload).
        """
        now = self.clock()
        c = self.conn
        with self.transaction():
            c.executemany(
                "insert into sightings (id, session, image, camera, first_seen, confirmed_at, frames,"
                " mean_probability) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [(e.sighting, session, e.image, e.camera, e.first_seen, e.confirmed_at, e.frames,
                  e.mean_probability) for e in confirmed],
            )
            ghosts = 0
            for e in closed:
                if e.sighting is None:
                    ghosts += 1
                    continue
                c.execute(
                    "update sightings set last_seen = ?, frames = ?, mean_probability = ?, closed_reason = ?"
                    " where id = ?", [e.last_seen, e.frames, e.mean_probability, e.reason, e.sighting],
                )
            c.executemany(
                "insert into dead_letters (session, received_at, source, line, reason, raw)"
                " values (?, ?, ?, ?, ?, ?)",
                [(session, now, d.source, d.line, d.reason, d.raw) for d in dead_letters],
            )
            c.executemany(
                "insert into outbox (session, sighting, topic, payload, created_at) values (?, ?, ?, ?, ?)",
                [(session, sighting, topic, payload, now) for sighting, topic, payload in outbox],
            )
            sets, params = ["ghosts = ghosts + ?"], [ghosts]
            if engine_state is not None:
                sets.append("engine_state = ?")
                params.append(json.dumps(engine_state))
            if position is not None:
                sets.append("position = ?")
                params.append(json.dumps(position))
            if frames is not None:
                sets.append("frames = ?")
                params.append(frames)
            c.execute("update sessions set %s where id = ?" % ", ".join(sets), params + [session])

    # --- outbox ------------------------------------------------------------

    def pending(self, limit: int = 100, destination: str = DEFAULT_DESTINATION) -> List[dict]:
        """Outbox rows ``destination`` has not acknowledged yet, oldest first."""
        return list(self.db.query(
            "select id, session, sighting, topic, payload from outbox o where not exists"
            " (select 1 from deliveries d where d.outbox = o.id and d.destination = ?)"
            " order by id limit ?", [destination, limit]
        ))

    def mark_sent(self, ids: Iterable[int], destination: str = DEFAULT_DESTINATION):
        """Record that ``destination`` acknowledged these outbox rows."""
        ids = list(ids)
        if ids:
            with self.transaction():
                self.conn.executemany(
                    "insert or ignore into deliveries (outbox, destination, sent_at) values (?, ?, ?)",
                    [(i, destination, self.clock()) for i in ids],
                )

    # --- reads -------------------------------------------------------------

    def pairs(self, session: int) -> List[dict]:
        """The pairs table of a session, one row per design."""
        return list(self.db.query(
            "select image, number_socks_seen, pair_seen, pairs from pairs where session = ?", [session]
        ))

    def unknown(self, session: int) -> int:
        """Unrecognised socks of a session (sightings of ``Unknown``; never in ``pairs``)."""
        return self.conn.execute(
            "select count(*) from sightings where session = ? and image = ?", [session, UNKNOWN]
        ).fetchone()[0]

    def dead_letter_count(self, session: int) -> int:
        return self.conn.execute("select count(*) from dead_letters where session = ?", [session]).fetchone()[0]

    def dead_letters(self, session: Optional[int] = None) -> List[dict]:
        if session is None:
            return list(self.db.query("select * from dead_letters order by id"))
        return list(self.db.query("select * from dead_letters where session = ? order by id", [session]))

    def sightings(self, session: int) -> List[dict]:
        return list(self.db.query("select * from sightings where session = ? order by id", [session]))


class _Transaction:
    """BEGIN IMMEDIATE on enter; COMMIT, or ROLLBACK on an exception."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
