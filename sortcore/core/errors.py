"""The few exceptions sortcore raises, each carrying the useful detail."""

import errno


class SortcoreError(Exception):
    """Base class of every sortcore error."""


class BadFrame(SortcoreError):
    """A payload is not a valid frame; ``reason`` says why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class ConfigError(SortcoreError, ValueError):
    """An engine, store or service option is out of range."""


class StoreError(SortcoreError):
    """The SQLite store is unusable (wrong schema version, locked, corrupt)."""


class StoreCorrupt(StoreError):
    """The SQLite file is damaged or not a database; ``sortcore doctor`` looks closer."""


class StoreFull(StoreError):
    """The disk under the store is full; the batch was not committed and can be retried."""


class StoreBusy(StoreError):
    """Another connection kept the database locked for longer than the busy timeout."""


class StoreLocked(StoreError):
    """Another long-running writer holds the store's lock file; ``pid`` and ``command`` say who."""

    def __init__(self, message, pid=None, command=None):
        super().__init__(message)
        self.pid = pid
        self.command = command


class BadLog(SortcoreError):
    """A path given as a frame log is not one (a FIFO, a device, binary, compressed, empty)."""


class ModelError(SortcoreError):
    """A model cannot be loaded, or an image cannot be classified."""


class SourceError(SortcoreError):
    """A frame source cannot be opened or stopped delivering frames."""


class MqttError(SortcoreError):
    """The broker cannot be reached or refused us; ``reason`` is paho's text."""

    def __init__(self, reason, code=None):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class PublishDenied(MqttError):
    """The broker received a publish and refused it (an MQTT 5 PUBACK reason code, e.g. its ACL)."""


class DemoError(SortcoreError):
    """The demo cannot run (log unreadable, service did not keep up)."""


class PackageError(SortcoreError):
    """A deployable package cannot be built (a file missing, a clash, pip failed)."""


class GreengrassUnavailable(MqttError):
    """The Greengrass SDK cannot make a client: not running inside a Greengrass core."""


class SourceMissing(SourceError):
    """A file or folder named as a frame source is missing or unreadable: retrying cannot mend it."""


class SourceEnded(SourceError):
    """The frame source ran out of frames (a video or folder); the device loop reopens it."""


_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_CORRUPT_TEXT = ("malformed", "not a database", "corrupt")


def store_error(path: str, exc: Exception) -> "StoreError":
    """The StoreError that says what a sqlite3 or OS error means for the store at ``path``."""
    text = str(exc)
    name = getattr(exc, "sqlite_errorname", "")  # Python >= 3.11; the text otherwise
    if name == "SQLITE_FULL" or getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in text:
        return StoreFull("the disk under the store %s is full: nothing of this batch was written;"
                         " free some space and it is retried" % path)
    if name in _CORRUPT or any(word in text for word in _CORRUPT_TEXT):
        return StoreCorrupt("the store %s is damaged (%s): run 'sortcore doctor --db %s'" % (path, text, path))
    if name.startswith("SQLITE_BUSY") or "database is locked" in text:
        return StoreBusy("the store %s stayed locked by another writer (%s): try again" % (path, text))
    return StoreError("store %s: %s" % (path, text))
