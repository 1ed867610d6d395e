"""SQLite persistence: sessions, sightings, dead letters, outbox.

Schema (version 5; older stores are migrated on open):

- ``sessions``: one sorting session (a laundry load): mode, engine config,
  the engine's state at the last commit (its head; each camera's part is a row of
  ``engine_cameras``, written only when it changed), where a replay resumes
  (``replay_position``), the messages serve committed last (``recent_messages``),
  counters;
- ``sightings``: confirmed socks, ``id`` = the engine's sighting id (unique
  across sessions);
- ``dead_letters``: input that was not a frame, with its reason;
- ``new_designs``: the designs found in a session (views, palettes, picture; issue 24; per
  view the sock it came from), ``design_socks``: each of their socks' picture;
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
autocommit mode. The schema is plain SQL and queries go through :mod:`sqlite3`:
the camera needs no more, and the file is a plain SQLite database that the
``sqlite-utils`` CLI and Datasette read (docs/store.md).

Failures become :class:`StoreError` subclasses: ``StoreCorrupt``, ``StoreFull``
(the batch is rolled back and can be retried), ``StoreBusy``, ``StoreLocked``.
"""

import json
import sqlite3
import time
from typing import List, Optional

from ..core.engine import UNKNOWN
from .outboxrows import OutboxRows
from .schema import MIGRATIONS, ensure_views
from ..core.errors import StoreCorrupt, StoreError, store_error
from .storefile import StoreLock, Transaction, connect_readonly, create_private, guarded

try:  # the engine state is written at every commit: orjson is ~10x faster (the lambda zip goes without)
    from orjson import dumps as _orjson_dumps

    def _dumps(obj) -> str:
        return _orjson_dumps(obj).decode("utf-8")
except ImportError:  # pragma: no cover - exercised by the compat suite
    _dumps = json.dumps

SCHEMA_VERSION = 5

DEAD_LETTER_ROWS = 10000
DEAD_LETTER_BYTES = 5 * 1024 * 1024
BUSY_TIMEOUT = 10.0  # seconds a short command waits for another writer's transaction


class Store(OutboxRows):
    """The SQLite file behind replay, the service and the lambda.

    ``exclusive``: take the store's lock file for the long-running writer
    ``owner`` (``serve``, ``run``, the lambda), see :meth:`lock`.
    Dead letters are kept up to ``max_dead_letters`` rows and
    ``max_dead_letter_bytes`` bytes, the oldest dropped first. ``check``: run
    ``PRAGMA quick_check`` on open, so no command writes into a damaged file
    (the store stays small: dead letters bounded, outbox pruned).
    """

    def __init__(self, path: str, clock=time.time, exclusive: bool = False, owner: str = "",
                 busy_timeout: float = BUSY_TIMEOUT, max_dead_letters: int = DEAD_LETTER_ROWS,
                 max_dead_letter_bytes: int = DEAD_LETTER_BYTES, check: bool = True,
                 readonly: bool = False):
        self.path = path
        self.clock = clock
        self.max_dead_letters = max_dead_letters
        self.max_dead_letter_bytes = max_dead_letter_bytes
        self._lock = self.conn = None
        try:
            if readonly:  # pairs, sessions: read, create nothing, write nothing
                self.conn = connect_readonly(path, busy_timeout)
                self._readable(check)
                return
            if exclusive:
                self.lock(owner)
            create_private(path)
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                        timeout=busy_timeout)
            self.conn.execute("PRAGMA journal_mode=wal")
            # FULL: a commit survives a power cut too, not only a killed process; a sock
            # published after its commit must never be rolled back and counted again.
            self.conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
            ensure_views(self.conn)
            if check:
                self._quick_check()
        except (sqlite3.Error, OSError, StoreError) as exc:
            self.close()
            if isinstance(exc, StoreError):
                raise
            raise store_error(path, exc) from exc

    def lock(self, owner: str = ""):
        """Take the store's lock file or raise StoreLocked naming the holder (pid, command)."""
        if self._lock is None:
            self._lock = StoreLock(self.path, owner)

    def unlock(self):
        """Release the lock file (:meth:`close` does)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.unlock()

    def durable(self, flag: bool = True):
        """``synchronous=FULL`` (default: a commit survives a power cut) or ``NORMAL``
        (survives a killed process; a power cut may undo the last commits, which is
        safe where nothing left the machine after them, as in a replay)."""
        self.conn.execute("PRAGMA synchronous=%s" % ("FULL" if flag else "NORMAL"))

    def _query(self, sql: str, params=()) -> List[dict]:
        cursor = self.conn.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def _quick_check(self):
        problems = [row[0] for row in self.conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:  # one line: a problem may span several
            raise StoreCorrupt("the store %s is damaged (%s): run 'sortcore doctor --db %s'"
                               % (self.path, "; ".join(" ".join(p.split()) for p in problems), self.path))

    def _version(self) -> int:
        tables = {row[0] for row in self.conn.execute("select name from sqlite_master where type = 'table'")}
        if "meta" not in tables:
            return 0
        row = self.conn.execute("select value from meta where key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _readable(self, check: bool):
        version = self._version()
        if version != SCHEMA_VERSION:
            raise StoreError("%s has schema version %d, this sortcore reads %d: a command that writes "
                             "(replay, run, serve) updates it" % (self.path, version, SCHEMA_VERSION))
        if check:
            self._quick_check()

    def _migrate(self):
        while self._version() != SCHEMA_VERSION:
            with self.transaction():  # read again under the write lock: another process may migrate too
                version = self._version()
                if version > SCHEMA_VERSION:
                    raise StoreError("%s has schema version %d; this sortcore knows up to %d"
                                     % (self.path, version, SCHEMA_VERSION))
                if version < SCHEMA_VERSION:
                    MIGRATIONS[version](self.conn)
                    self.conn.execute("insert or replace into meta (key, value) values ('schema_version', ?)",
                                      [str(version + 1)])

    # --- sessions ----------------------------------------------------------

    @guarded
    def new_session(self, mode: str, config: dict, source: Optional[str] = None) -> int:
        """Start a sorting session; earlier open sessions are ended."""
        now = self.clock()
        with self.transaction():
            self.conn.execute("delete from engine_cameras where session in"
                              " (select id from sessions where status = 'open')")
            self.conn.execute("update sessions set status = 'done', ended_at = ? where status = 'open'", [now])
            cursor = self.conn.execute(
                "insert into sessions (started_at, mode, config, source, status) values (?, ?, ?, ?, 'open')",
                [now, mode, json.dumps(config), source],
            )
        return cursor.lastrowid

    @guarded
    def end_session(self, session: int):
        with self.transaction():
            self.conn.execute("delete from engine_cameras where session = ?", [session])
            self.conn.execute(
                "update sessions set status = 'done', ended_at = ? where id = ?", [self.clock(), session]
            )

    @guarded
    def session(self, session: Optional[int] = None) -> Optional[dict]:
        """One session as a dict (the latest one when ``session`` is None)."""
        if session is None:
            rows = list(self._query("select * from sessions order by id desc limit 1"))
        else:
            rows = list(self._query("select * from sessions where id = ?", [session]))
        if not rows:
            return None
        row = rows[0]
        del row["position"]  # unused since version 2
        for key in ("config", "replay_position", "recent_messages", "engine_state"):
            row[key] = json.loads(row[key]) if row[key] else None
        return row

    @guarded
    def sessions(self) -> List[dict]:
        """Every session with its sock and dead-letter counts, oldest first."""
        return list(self._query(
            "select s.id, s.started_at, s.ended_at, s.mode, s.status, s.source, s.frames, s.ghosts,"
            " (select count(*) from sightings where session = s.id) as socks,"
            " (select count(*) from dead_letters where session = s.id) as dead_letters"
            " from sessions s order by s.id"
        ))

    @guarded
    def open_session(self, source: str) -> Optional[dict]:
        """The latest session if it is still open and was fed from ``source``."""
        row = self.session()
        if row and row["status"] == "open" and row["source"] == source:
            return row
        return None

    @guarded
    def engine_state(self, session: int) -> Optional[dict]:
        """The engine state a session resumes from: its head with every camera's row."""
        row = self.conn.execute("select engine_state from sessions where id = ?", [session]).fetchone()
        state = json.loads(row[0]) if row and row[0] else None
        if state is None or state.get("version", 0) < 3:
            return state  # written whole (version 2 and before)
        cameras, floors = {}, {}
        for camera, text in self.conn.execute("select camera, state from engine_cameras where session = ?",
                                              [session]):
            data = json.loads(text)
            if "floor" in data:
                floors[camera] = data["floor"]
            else:
                cameras[camera] = data
        state.update(cameras=cameras, floors=floors)
        return state

    @guarded
    def next_sighting_id(self) -> int:
        row = self.conn.execute("select max(id) from sightings").fetchone()
        return (row[0] or 0) + 1

    # --- writes ------------------------------------------------------------

    def transaction(self):
        """``with store.transaction():`` -- BEGIN IMMEDIATE ... COMMIT or ROLLBACK."""
        return Transaction(self.conn)

    @guarded
    def commit(self, session: int, confirmed=(), closed=(), dead_letters=(), outbox=(),
               engine_state: Optional[dict] = None, replay_position: Optional[dict] = None,
               recent_messages: Optional[list] = None, frames: Optional[int] = None,
               engine_cameras: Optional[dict] = None):
        """Write one batch of engine output atomically.

        ``confirmed``: SockConfirmed events; ``closed``: SightingClosed events;
        ``dead_letters``: DeadLetter tuples; ``outbox``: (sighting, topic, payload);
        ``engine_state``, ``engine_cameras``: :meth:`sortcore.core.engine.Engine.changes`.
        """
        now = self.clock()
        c = self.conn
        # A sighting's last report in this batch; one confirmed in it too is written once, closed.
        last = {e.sighting: e for e in closed if e.sighting is not None}
        with self.transaction():
            c.executemany(
                "insert into sightings (id, session, image, camera, first_seen, confirmed_at, last_seen,"
                " frames, mean_probability, closed_reason) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_sighting_row(session, e, last.pop(e.sighting, None)) for e in confirmed],
            )
            ghosts = sum(1 for e in closed if e.sighting is None)
            c.executemany(
                "update sightings set last_seen = ?, frames = ?, mean_probability = ?, closed_reason = ?"
                " where id = ?",
                [(e.last_seen, e.frames, e.mean_probability, e.reason, e.sighting) for e in last.values()],
            )
            if dead_letters:
                self._keep_dead_letters(session, now, dead_letters)
            if engine_cameras:
                self.write_cameras(session, engine_cameras)
            c.executemany(
                "insert into outbox (session, sighting, topic, payload, created_at) values (?, ?, ?, ?, ?)",
                [(session, sighting, topic, payload, now) for sighting, topic, payload in outbox],
            )
            sets, params = ["ghosts = ghosts + ?"], [ghosts]
            if engine_state is not None:
                sets.append("engine_state = ?")
                params.append(_dumps(engine_state))
            for column, value in (("replay_position", replay_position), ("recent_messages", recent_messages)):
                if value is not None:
                    sets.append(column + " = ?")
                    params.append(json.dumps(value))
            if frames is not None:
                sets.append("frames = ?")
                params.append(frames)
            c.execute("update sessions set %s where id = ?" % ", ".join(sets), params + [session])

    def write_cameras(self, session: int, cameras: dict):
        """Each changed camera's row of the engine state (None: the engine forgot it)."""
        self.conn.executemany("insert or replace into engine_cameras (session, camera, state) values (?, ?, ?)",
                              [(session, camera, _dumps(data)) for camera, data in cameras.items()
                               if data is not None])
        self.conn.executemany("delete from engine_cameras where session = ? and camera = ?",
                              [(session, camera) for camera, data in cameras.items() if data is None])

    def _keep_dead_letters(self, session: int, now: float, dead_letters):
        """Insert, count in ``meta``, and drop the oldest beyond the row and byte bounds."""
        c = self.conn
        c.executemany(
            "insert into dead_letters (session, received_at, source, line, reason, raw)"
            " values (?, ?, ?, ?, ?, ?)",
            [(session, now, d.source, d.line, d.reason, d.raw) for d in dead_letters],
        )
        c.execute("insert or ignore into meta (key, value) values ('dead_letters_received', '0')")
        c.execute("update meta set value = cast(value as integer) + ? where key = 'dead_letters_received'",
                  [len(dead_letters)])
        c.execute("delete from dead_letters where id <= (select id from dead_letters order by id desc"
                  " limit 1 offset ?)", [self.max_dead_letters])
        size = "length(cast(coalesce(raw, '') as blob)) + length(cast(reason as blob))"
        excess = c.execute("select sum(%s) from dead_letters" % size).fetchone()[0] - self.max_dead_letter_bytes
        if excess > 0:
            last = None
            for last, nbytes in c.execute("select id, %s from dead_letters order by id" % size):
                excess -= nbytes
                if excess <= 0:
                    break
            c.execute("delete from dead_letters where id <= ?", [last])

    @guarded
    def dead_letters_received(self) -> int:
        """Dead letters ever received, including those dropped to keep the bounds."""
        row = self.conn.execute("select value from meta where key = 'dead_letters_received'").fetchone()
        return int(row[0]) if row else 0

    # --- reads -------------------------------------------------------------

    @guarded
    def unknown(self, session: int) -> int:
        """Unrecognised socks of a session (sightings of ``Unknown``; never in ``pairs``)."""
        return self.conn.execute(
            "select count(*) from sightings where session = ? and image = ?", [session, UNKNOWN]
        ).fetchone()[0]

    def pairs(self, session: int) -> List[dict]:
        """The pairs table of a session, one row per design."""
        return list(self._query(
            "select image, number_socks_seen, pair_seen, pairs from pairs where session = ?", [session]
        ))

    @guarded
    def dead_letter_count(self, session: int) -> int:
        return self.conn.execute("select count(*) from dead_letters where session = ?", [session]).fetchone()[0]

    @guarded
    def dead_letters(self, session: Optional[int] = None) -> List[dict]:
        if session is None:
            return list(self._query("select * from dead_letters order by id"))
        return list(self._query("select * from dead_letters where session = ? order by id", [session]))


def _sighting_row(session: int, confirmed, closed) -> tuple:
    """A sightings row: as confirmed, with its closing report if ``closed`` (else None)."""
    e = confirmed
    if closed is None:
        return (e.sighting, session, e.label, e.camera, e.first_seen, e.confirmed_at, None, e.frames,
                e.mean_probability, None)
    return (e.sighting, session, e.label, e.camera, e.first_seen, e.confirmed_at, closed.last_seen,
            closed.frames, closed.mean_probability, closed.reason)
