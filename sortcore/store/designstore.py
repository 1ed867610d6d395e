"""The store's tables of designs found in a session (``new_designs``, ``design_socks``; schema 5).

A design's row holds its views and palettes as bytes (the camera side turns them into arrays:
:mod:`sortcore.classifier.design`), per view the sighting id of its sock (``owners``), its picture
(JPEG) and when it was made and last grown; ``design_socks`` holds each of its socks' picture (a
row per sock that owns a view); nothing here imports numpy. Naming or merging a design changes its
rows, the session's sightings and the engine state that counts them in one transaction
(:meth:`DesignStore.relabel`), so the pairs table and the designs never disagree after a crash; so
does forgetting one (the person says it is not a sock, :meth:`DesignStore.forget`): its row and its
sightings are deleted; and telling one sock apart (a false pair, :meth:`DesignStore.split`): its
sighting moves. A reset keeps only the new session's rows (:meth:`DesignStore.keep_only`). Python
3.7 compatible.
"""

import json
import logging
from typing import Iterable, List, Optional

from .storefile import guarded

log = logging.getLogger(__name__)

COLUMNS = ("name", "count", "dim", "views", "palettes", "picture", "owners")


class DesignStore(object):
    """The ``new_designs`` rows of a :class:`~sortcore.store.database.Store`."""

    def __init__(self, store):
        self.store = store
        self.path = store.path  # for guarded's error messages

    @property
    def conn(self):
        return self.store.conn

    @guarded
    def load(self, session: int) -> List[dict]:
        """The session's designs, oldest first: dicts of :data:`COLUMNS` and ``socks``
        ([(sighting id, JPEG)], oldest first)."""
        cursor = self.conn.execute("select %s from new_designs where session = ? order by created_at, name"
                                   % ", ".join(COLUMNS), [session])
        rows = [dict(zip(COLUMNS, row), socks=[]) for row in cursor]
        by_name = {row["name"]: row for row in rows}
        for sighting, design, picture in self.conn.execute(
                "select sighting, design, picture from design_socks where session = ? order by sighting", [session]):
            if design in by_name:
                by_name[design]["socks"].append((sighting, bytes(picture) if picture is not None else None))
        return rows

    @guarded
    def names(self, session: int) -> List[str]:
        return [row[0] for row in self.conn.execute(
            "select name from new_designs where session = ? order by name", [session])]

    @guarded
    def picture(self, session: int, name: str) -> Optional[bytes]:
        row = self.conn.execute("select picture from new_designs where session = ? and name = ?",
                                [session, name]).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    @guarded
    def save(self, session: int, rows: Iterable[dict]):
        """Insert or replace designs (dicts of :data:`COLUMNS`), in one transaction."""
        rows = list(rows)
        if rows:
            with self.store.transaction():
                self._save(session, rows)

    def _save(self, session, rows):
        """Insert or replace (no UPSERT: the DeepLens' SQLite predates 3.24); a row without a
        picture keeps the stored one; its ``socks`` (if given) replace the stored ones."""
        now = self.store.clock()
        for row in rows:
            if row.get("socks") is not None:
                self.conn.execute("delete from design_socks where session = ? and design = ?", [session, row["name"]])
                self.conn.executemany("insert or replace into design_socks (session, sighting, design, picture)"
                                      " values (?, ?, ?, ?)",
                                      [(session, sighting, row["name"], picture) for sighting, picture in row["socks"]])
            old = self.conn.execute("select created_at, picture from new_designs where session = ? and name = ?",
                                    [session, row["name"]]).fetchone()
            values = dict(row)
            if values.get("picture") is None and old is not None:
                values["picture"] = old[1]
            self.conn.execute(
                "insert or replace into new_designs (session, %s, created_at, updated_at)"
                " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" % ", ".join(COLUMNS),
                [session] + [values.get(c) for c in COLUMNS] + [old[0] if old else now, now])

    @guarded
    def relabel(self, session: int, old: str, new: str, engine_state: dict, rows: Iterable[dict] = (),
                engine_cameras: Optional[dict] = None):
        """``old`` becomes ``new`` in the session: its sightings, its design row (replaced by
        ``rows``, the designs as they are now) and the engine state, in one transaction."""
        with self.store.transaction():
            self.conn.execute("update sightings set image = ? where session = ? and image = ?", [new, session, old])
            self._delete(session, (old, new))
            self._save(session, list(rows))
            self._write_engine(session, engine_state, engine_cameras)

    @guarded
    def forget(self, session: int, name: str, engine_state: dict, engine_cameras: Optional[dict] = None) -> int:
        """``name`` is not a sock: its design row and its sightings in the session go, and the
        engine state that no longer counts it is written, in one transaction. Returns how many
        sightings (socks published) were deleted."""
        with self.store.transaction():
            socks = self.conn.execute("delete from sightings where session = ? and image = ?",
                                      [session, name]).rowcount
            self._delete(session, (name,))
            self._write_engine(session, engine_state, engine_cameras)
        log.info("session %d: %s is not a sock: %d socks removed from the store", session, name, socks)
        return socks

    @guarded
    def split(self, session: int, sock: int, old: str, rows: Iterable[dict], engine_state: dict,
              engine_cameras: Optional[dict] = None):
        """Sock ``sock`` (its sighting id) is not of the design ``old``: its sighting becomes the
        new design's (the last of ``rows``, the two designs as they are now), with both design
        rows and the engine state, in one transaction. ValueError (nothing written) when it is not
        a sock of ``old``."""
        rows = list(rows)
        with self.store.transaction():
            moved = self.conn.execute("update sightings set image = ? where session = ? and id = ? and image = ?",
                                      [rows[-1]["name"], session, sock, old]).rowcount
            if moved != 1:
                raise ValueError("sock %d is not a sock of %s in session %d" % (sock, old, session))
            self._save(session, rows)
            self._write_engine(session, engine_state, engine_cameras)
        log.info("session %d: sock %d is not %s: it is %s", session, sock, old, rows[-1]["name"])

    def _delete(self, session, names):
        """The rows of the designs ``names`` in both tables (in the caller's transaction)."""
        marks = ", ".join("?" * len(names))
        for table, column in (("new_designs", "name"), ("design_socks", "design")):
            self.conn.execute("delete from %s where session = ? and %s in (%s)" % (table, column, marks),
                              [session] + list(names))

    def _write_engine(self, session, engine_state, engine_cameras):
        self.conn.execute("update sessions set engine_state = ? where id = ?", [json.dumps(engine_state), session])
        if engine_cameras:
            self.store.write_cameras(session, engine_cameras)

    @guarded
    def keep_only(self, session: int) -> int:
        """Delete the designs of every other session (a reset clears them); how many."""
        with self.store.transaction():
            self.conn.execute("delete from design_socks where session != ?", [session])
            return self.conn.execute("delete from new_designs where session != ?", [session]).rowcount
