"""The store's files: created private, locked by one service, transactions, errors translated.

One store, one service: an exclusive ``flock`` on ``<db>.lock`` names its holder.

The lock file holds the holder's pid and command as JSON. The kernel drops the
lock when the holder dies (even by SIGKILL), so a stale file never blocks: the
next holder overwrites it. The file is never deleted (deleting it would let two
processes lock two different files of the same name).
"""

import fcntl
import functools
import json
import os
import sqlite3
import sys
import time
from typing import Optional

from ..core.errors import ConfigError, StoreError, StoreLocked, store_error


def make_folder(db_path: str):
    """Create the store's folder and its parents. A regular file where a folder should be is a
    :class:`ConfigError` (the setting is wrong; no retry mends it); another failure (no
    permission, a disk not mounted yet) a :class:`StoreError`. Each in one line."""
    folder = os.path.dirname(os.path.abspath(db_path))
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = folder
        while blocker and not os.path.exists(blocker):
            blocker = os.path.dirname(blocker)
        raise ConfigError("cannot make the store's folder %s: %s is a file, not a folder" % (folder, blocker))
    except OSError as exc:
        raise StoreError("cannot make the store's folder %s: %s" % (folder, exc.strerror or exc))


def connect_readonly(db_path: str, timeout: float) -> sqlite3.Connection:
    """A connection that reads the store and creates nothing: with a write-ahead log beside it
    (a writer may be running) ``mode=ro`` reads its latest commits; without one (every writer
    closed and checkpointed) ``immutable=1``, since ``mode=ro`` would create ``-wal`` and
    ``-shm`` files. Works on a read-only file or folder."""
    if not os.path.isfile(db_path):
        raise StoreError("no store at %s: replay, count, run or serve make one" % db_path)
    from urllib.parse import quote

    mode = "mode=ro" if os.path.exists(db_path + "-wal") else "immutable=1"
    return sqlite3.connect("file:%s?%s" % (quote(os.path.abspath(db_path)), mode), uri=True,
                           isolation_level=None, check_same_thread=False, timeout=timeout)


def lock_path(db_path: str) -> str:
    return db_path + ".lock"


def holder(db_path: str) -> Optional[dict]:
    """What the lock file says (``pid``, ``command``, ``since``), or None."""
    try:
        with open(lock_path(db_path)) as f:
            info = json.loads(f.read() or "null")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


class StoreLock:
    """An exclusive lock on a store, taken at once or refused with the holder named."""

    def __init__(self, db_path: str, owner: str):
        self.path = lock_path(db_path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: someone holds it
            os.close(fd)
            info = holder(db_path) or {}
            raise StoreLocked(
                "%s is in use by pid %s (%s) since %s: one store, one service; stop it or use another --db"
                % (db_path, info.get("pid", "?"), info.get("command", "unknown command"),
                   time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"])) if "since" in info else "?"),
                info.get("pid"), info.get("command"),
            )
        record = {"pid": os.getpid(), "command": owner or " ".join(sys.argv), "since": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(record).encode())
        except OSError:  # e.g. a full disk: let go, or the retry finds its own lock held
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self.fd = fd

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def guarded(method):
    """Turn sqlite3 and OS errors of a Store method into the StoreError they mean."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            raise store_error(self.path, exc) from exc

    return wrapper


def create_private(path: str):
    """Create the file 0600 whatever the umask; SQLite gives -wal and -shm the same mode."""
    if path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


class Transaction:
    """BEGIN IMMEDIATE on enter; COMMIT, or ROLLBACK on an exception."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")  # on SQLITE_FULL here the transaction stays open: roll back
            return False
        if self.conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the original error says more
        return False
