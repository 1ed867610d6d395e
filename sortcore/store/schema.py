"""The store's SQL: the version 1 tables, the pairs views, and bringing a database up to date.

Plain SQL through :mod:`sqlite3` (sqlite-utils imports numpy when installed). Python 3.7.
"""

import json
import sqlite3

from ..core.events import PAIRS_SQL, UNKNOWN
from .storefile import Transaction

PAIRS_VIEW = """
select session, image, {}
from sightings where image != '{}' group by session, image order by session, image
""".format(PAIRS_SQL, UNKNOWN)
CURRENT_PAIRS_VIEW = """
select image, number_socks_seen, pair_seen, pairs from pairs
where session = (select max(id) from sessions)
"""


V1_TABLES = """
CREATE TABLE "meta" ("key" TEXT PRIMARY KEY, "value" TEXT);
CREATE TABLE "sessions" (
   "id" INTEGER PRIMARY KEY, "started_at" REAL NOT NULL, "ended_at" REAL, "mode" TEXT NOT NULL,
   "config" TEXT NOT NULL, "source" TEXT, "status" TEXT NOT NULL DEFAULT 'open', "position" TEXT,
   "engine_state" TEXT, "frames" INTEGER DEFAULT 0, "ghosts" INTEGER DEFAULT 0
);
CREATE TABLE "sightings" (
   "id" INTEGER PRIMARY KEY, "session" INTEGER NOT NULL REFERENCES "sessions"("id"),
   "image" TEXT NOT NULL, "camera" TEXT, "first_seen" REAL, "confirmed_at" REAL NOT NULL,
   "last_seen" REAL, "frames" INTEGER, "mean_probability" REAL, "closed_reason" TEXT
);
CREATE INDEX "idx_sightings_session_image" ON "sightings" ("session", "image");
CREATE TABLE "dead_letters" (
   "id" INTEGER PRIMARY KEY, "session" INTEGER REFERENCES "sessions"("id"), "received_at" REAL,
   "source" TEXT, "line" INTEGER, "reason" TEXT NOT NULL, "raw" TEXT
);
CREATE TABLE "outbox" (
   "id" INTEGER PRIMARY KEY, "session" INTEGER, "sighting" INTEGER, "topic" TEXT NOT NULL,
   "payload" TEXT NOT NULL, "created_at" REAL NOT NULL
);
CREATE TABLE "deliveries" ("outbox" INTEGER REFERENCES "outbox"("id"), "destination" TEXT,
   "sent_at" REAL, PRIMARY KEY ("outbox", "destination"));
"""


def _create_v1(conn: sqlite3.Connection):
    """Version 1, as sqlite-utils 3.36+ created it (written out: sqlite_utils imports numpy)."""
    for statement in V1_TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute('CREATE VIEW "pairs" AS ' + PAIRS_VIEW)
    conn.execute('CREATE VIEW "current_pairs" AS ' + CURRENT_PAIRS_VIEW)


def _v2_session_columns(conn: sqlite3.Connection):
    """Version 2: one column per meaning instead of ``position``, which held two shapes.

    ``replay_position`` (``{"file", "line", "dead"}``: where a killed replay resumes) and
    ``recent_messages`` (digests of the messages serve committed last, to skip their
    redelivery). ``position`` stays in the table, always NULL (older SQLite cannot drop it).
    """
    conn.execute('ALTER TABLE "sessions" ADD COLUMN "replay_position" TEXT')
    conn.execute('ALTER TABLE "sessions" ADD COLUMN "recent_messages" TEXT')
    rows = conn.execute('SELECT id, position FROM sessions WHERE position IS NOT NULL').fetchall()
    for session, text in rows:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict) and "line" in value:
            conn.execute("UPDATE sessions SET replay_position = ? WHERE id = ?", [text, session])
        elif isinstance(value, dict) and isinstance(value.get("recent"), list):
            conn.execute("UPDATE sessions SET recent_messages = ? WHERE id = ?",
                         [json.dumps(value["recent"]), session])
    conn.execute("UPDATE sessions SET position = NULL")


def _v3_engine_cameras(conn: sqlite3.Connection):
    """Version 3: the engine state in parts. ``sessions.engine_state`` keeps its head
    (counts, sighting ids; a version-2 state stays whole there) and ``engine_cameras``
    one row per camera of the open session, written only when that camera changed
    (30,000 cameras made the whole state 7.7 MB, rewritten at every commit)."""
    conn.execute('CREATE TABLE "engine_cameras" ("session" INTEGER NOT NULL REFERENCES "sessions"("id"),'
                 ' "camera" TEXT NOT NULL, "state" TEXT NOT NULL, PRIMARY KEY ("session", "camera"))'
                 ' WITHOUT ROWID')



def _v4_new_designs(conn: sqlite3.Connection):
    """Version 4: the designs found in a session (issue 24), so they survive a restart.

    One row per design: its views (float16 embeddings, ``count`` x ``dim``, row-major), its
    palettes (float16, ``count`` x 40) and its picture (a JPEG crop, at most 128 px a side).
    """
    conn.execute('CREATE TABLE "new_designs" ('
                 ' "session" INTEGER NOT NULL REFERENCES "sessions"("id"), "name" TEXT NOT NULL,'
                 ' "count" INTEGER NOT NULL, "dim" INTEGER NOT NULL, "views" BLOB NOT NULL,'
                 ' "palettes" BLOB NOT NULL, "picture" BLOB, "created_at" REAL NOT NULL,'
                 ' "updated_at" REAL NOT NULL, PRIMARY KEY ("session", "name"))')


def _v5_design_socks(conn: sqlite3.Connection):
    """Version 5: the socks of a session design, so one of a false pair can be told apart.

    ``new_designs.owners``: per view, the sighting id of the sock it came from (int64 bytes; NULL
    in a row stored before: its views are nobody's). ``design_socks``: the picture of each sock
    of a session design that still owns a view (at most 48 a design, as its views)."""
    conn.execute('ALTER TABLE "new_designs" ADD COLUMN "owners" BLOB')
    conn.execute('CREATE TABLE "design_socks" ("session" INTEGER NOT NULL REFERENCES "sessions"("id"),'
                 ' "sighting" INTEGER NOT NULL, "design" TEXT NOT NULL, "picture" BLOB,'
                 ' PRIMARY KEY ("session", "sighting"))')


MIGRATIONS = [_create_v1, _v2_session_columns, _v3_engine_cameras, _v4_new_designs,
              _v5_design_socks]  # MIGRATIONS[n]: version n to n+1
VIEWS = (("pairs", PAIRS_VIEW), ("current_pairs", CURRENT_PAIRS_VIEW))


def ensure_views(conn: sqlite3.Connection):
    """Recreate the views whose SQL is not this version's (e.g. pairs before ``Unknown``)."""
    found = dict(conn.execute("select name, sql from sqlite_master where type = 'view'").fetchall())
    if all((found.get(name) or "").rstrip().endswith(sql.strip()) for name, sql in VIEWS):
        return
    with Transaction(conn):
        for name, sql in reversed(VIEWS):  # current_pairs reads pairs
            conn.execute("drop view if exists %s" % name)
        for name, sql in VIEWS:
            conn.execute("create view %s as %s" % (name, sql.strip()))
