"""``sortcore doctor``: check a store's integrity and make a recovered copy of a damaged one.

The copy comes from the ``sqlite3`` command line's ``.recover`` (it reads
around damaged pages) when that program is installed and works, else from
reading each table row by row and keeping every row that can still be read.
"""

import os
import shutil
import sqlite3
import subprocess
from typing import List, NamedTuple, Optional

from ..core.errors import StoreError
from ..store.storefile import create_private

MAX_PROBLEMS = 20


class Recovery(NamedTuple):
    path: str
    method: str  # "sqlite3 .recover" or "row copy"
    rows: dict  # table -> rows in the copy
    lost: List[str]  # tables (or parts) that could not be read


def _connect(path: str) -> sqlite3.Connection:
    if not os.path.isfile(path):
        raise StoreError("no store at %s" % path)
    return sqlite3.connect(path, isolation_level=None)


def check(path: str, quick: bool = False) -> List[str]:
    """The problems ``PRAGMA integrity_check`` (or ``quick_check``) finds; [] when sound."""
    try:
        conn = _connect(path)
        try:
            rows = conn.execute("PRAGMA %s(%d)" % ("quick_check" if quick else "integrity_check",
                                                   MAX_PROBLEMS)).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    problems = [row[0] for row in rows]
    return [] if problems == ["ok"] else problems


def recovered_path(path: str) -> str:
    """``socks.db`` -> ``socks.recovered.db`` (``socks.recovered-2.db`` if taken)."""
    stem, ext = os.path.splitext(path)
    candidate, n = "%s.recovered%s" % (stem, ext or ".db"), 1
    while os.path.exists(candidate):
        n += 1
        candidate = "%s.recovered-%d%s" % (stem, n, ext or ".db")
    return candidate


def _count_rows(out: str) -> dict:
    conn = sqlite3.connect(out)
    try:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'"
                                             " and name not like 'sqlite_%' order by name")]
        return {t: conn.execute('select count(*) from "%s"' % t).fetchone()[0] for t in tables}
    finally:
        conn.close()


class _RecoverFailed(Exception):
    pass


def _with_cli(sqlite3_cli: str, path: str, out: str) -> List[str]:
    dump = subprocess.run([sqlite3_cli, path, ".recover"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    failed = dump.stderr.decode(errors="replace").strip()
    if dump.returncode != 0 or failed:  # Debian's 3.40.1 says "sql error: SQL logic error" on any index
        raise _RecoverFailed(failed or "exit code %d" % dump.returncode)
    load = subprocess.run([sqlite3_cli, out], input=dump.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if load.returncode != 0:
        raise StoreError("cannot write the recovered copy %s: %s" % (out, load.stderr.decode(errors="replace").strip()))
    conn = sqlite3.connect(out)
    try:
        lost = [r[0] for r in conn.execute("select name from sqlite_master where name = 'lost_and_found'")]
    finally:
        conn.close()
    return ["rows of unknown tables: see table lost_and_found"] if lost else []


def _copy_table(src, dst, name: str, lost: List[str]):
    columns = None
    try:
        cursor = src.execute('select * from "%s"' % name)
        columns = len(cursor.description)
        insert = 'insert into "%s" values (%s)' % (name, ", ".join("?" * columns))
        for row in cursor:
            dst.execute(insert, row)
    except sqlite3.DatabaseError as exc:
        lost.append("%s (rows after the damage: %s)" % (name, exc))


def _with_rows(path: str, out: str) -> List[str]:
    """Schema and every readable row, table by table (iterdump stops at the first damage)."""
    src, dst = _connect(path), sqlite3.connect(out, isolation_level=None)
    lost = []
    try:
        schema = src.execute("select type, name, sql from sqlite_master where sql is not null"
                             " and name not like 'sqlite_%' order by type = 'table' desc").fetchall()
        dst.execute("BEGIN")
        for kind, name, sql in schema:
            dst.execute(sql)
            if kind == "table":
                _copy_table(src, dst, name, lost)
        dst.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise StoreError("cannot read the schema of %s: %s; nothing to recover without sqlite3" % (path, exc))
    finally:
        src.close()
        dst.close()
    return lost


def recover(path: str, out: Optional[str] = None, sqlite3_cli: Optional[str] = "sqlite3") -> Recovery:
    """Write what can be read of ``path`` into a new file ``out`` (see :func:`recovered_path`),
    all at once: a temporary file beside it is renamed to ``out`` when the copy is complete,
    and removed when it fails (no empty or half-written ``out`` is left)."""
    out = out or recovered_path(path)
    if os.path.exists(out):
        raise StoreError("%s exists: give another --out" % out)
    tmp = "%s.partial-%d" % (out, os.getpid())
    cli = shutil.which(sqlite3_cli) if sqlite3_cli else None
    try:
        create_private(tmp)
        method, lost = None, []
        if cli:
            try:
                method, lost = "sqlite3 .recover", _with_cli(cli, path, tmp)
            except _RecoverFailed as exc:
                lost = ["sqlite3 .recover failed (%s): copied the readable rows instead" % exc]
                os.remove(tmp)
                create_private(tmp)
        if method is None:
            method, lost = "row copy", lost + _with_rows(path, tmp)
        counts = _count_rows(tmp)
        os.rename(tmp, out)
        return Recovery(out, method, counts, lost)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError("cannot recover %s into %s: %s" % (path, out, exc))
    finally:
        for leftover in (tmp, tmp + "-journal"):
            if os.path.exists(leftover):
                os.remove(leftover)


def next_steps(path: str, out: str) -> List[str]:
    """What to do with a recovered copy."""
    return [
        "check the copy: sortcore doctor --db %s && sortcore pairs --db %s" % (out, out),
        "stop whatever uses %s (sortcore serve / run / the lambda)" % path,
        "keep the damaged file: mv %s %s.damaged (and its -wal, -shm)" % (path, path),
        "put the copy in its place: mv %s %s, then start the service again" % (out, path),
    ]
