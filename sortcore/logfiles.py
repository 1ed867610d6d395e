"""Opening what replay reads: a log path (refusing FIFOs, sockets, folders and devices) and a
labels allow-list. Python 3.7 compatible.
"""

import io
import os
import stat
import sys

from .errors import BadLog
from .frames import label_set


def open_log(path: str):
    """A binary stream for a log path, ``-`` meaning standard input."""
    if path == "-":
        return getattr(sys.stdin, "buffer", None) or io.BytesIO(sys.stdin.read().encode())
    mode = os.stat(path).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise BadLog("%s is a FIFO or socket, not a log file: to read a stream, pipe it in as '-'" % path)
    if stat.S_ISDIR(mode):
        raise BadLog("%s is a folder, not a log file" % path)
    if not stat.S_ISREG(mode):
        raise BadLog("%s is a device, not a log file" % path)
    return open(path, "rb")


def read_labels(path: str) -> frozenset:
    """An allow-list from a ``labels.txt`` (one label a line), with Blank and Unknown."""
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise BadLog("cannot read labels %s: %s" % (path, getattr(exc, "strerror", None) or exc))
    if not names:
        raise BadLog("labels file %s is empty" % path)
    return label_set(names)
