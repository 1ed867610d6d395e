"""Recorded frame logs: opening a log path (refusing FIFOs, sockets, folders and devices),
reading its lines and decoding them line by line (the validating path), and a labels
allow-list. Python 3.7 compatible.

Log formats (detected per file, see ``../shared/frame-logs/README.md``):

- ``stamped``: ``mosquitto_sub -F '%U %p'`` -- unix seconds, a space, the payload;
- ``json``: ``mosquitto_sub -F '%J'`` -- one JSON object a line with ``tst``
  (ISO 8601 receive time) and ``payload`` (a JSON value or a string);
- ``plain``: bare payloads; times come from a frame rate (``fps``).
"""

import datetime
import io
import itertools
import math
import os
import re
import stat
import sys
from typing import Iterator, List, Optional, Tuple, Union

from ..core.errors import BadFrame, BadLog
from ..core.frames import MAX_LINE, DeadLetter, Frame, decode_payload, frame_from_obj, loads_strict, raw_text

FORMATS = ("stamped", "json", "plain")

_STAMPED = re.compile(rb"^(\d{1,12}(?:\.\d*)?) (.*)$", re.S)


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


_TST_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z")


def parse_tst(text: str) -> float:
    """mosquitto's ``%J`` time, e.g. ``2020-06-13T08:10:48.265763Z+0000``."""
    if text.endswith("Z+0000"):
        text = text[:-6] + "+0000"
    elif text.endswith("Z"):
        text = text[:-1] + "+0000"
    for fmt in _TST_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).timestamp()
        except ValueError:
            continue
    raise BadFrame("'tst' %r is not an ISO 8601 time" % text[:40])


def _line_format(line: bytes) -> Optional[str]:
    """Which format one line looks like, or None if it says nothing."""
    line = line.strip()
    if not line:
        return None
    if _STAMPED.match(line):
        return "stamped"
    if line.startswith(b"{"):
        try:
            obj = loads_strict(line)
        except ValueError:
            return None
        if isinstance(obj, dict) and "tst" in obj and "payload" in obj:
            return "json"
        if isinstance(obj, dict) and "image" in obj:
            return "plain"
    return None


def detect_format(lines: List[bytes]) -> str:
    """The format most of the sample lines have (``plain`` if none says)."""
    votes = {name: 0 for name in FORMATS}
    for line in lines:
        kind = _line_format(line)
        if kind:
            votes[kind] += 1
    best = max(FORMATS, key=lambda name: votes[name])
    return best if votes[best] else "plain"


def split_stamped(line):
    """``(unix seconds, payload)`` of a ``%U %p`` line (bytes or str; ``mosquitto_sub -F '%U %p'``,
    ``sortcore simulate``), the one parser of that format; :class:`BadFrame` if it is not one."""
    stamp, _, payload = line.partition(b" " if isinstance(line, bytes) else " ")
    try:
        ts = float(stamp)
    except ValueError:
        ts = math.nan
    if not payload or not math.isfinite(ts) or not stamp[:1].isdigit():
        raise BadFrame("line is not '<unix seconds> <payload>'")
    return ts, payload


def _stamped_line(line: bytes, index: int, fps: float, start: float, labels=None) -> Frame:
    """``%U %p``: unix seconds, a space, the payload."""
    ts, payload = split_stamped(line)
    return decode_payload(payload, "", ts, labels)


def _json_line(line: bytes, index: int, fps: float, start: float, labels=None) -> Frame:
    """``%J``: a JSON record with ``tst`` and ``payload``."""
    try:
        record = loads_strict(line)
    except ValueError as exc:
        raise BadFrame("line is not a JSON record: %s" % str(exc)[:80])
    if type(record) is not dict or "payload" not in record:
        raise BadFrame("JSON record has no 'payload'")
    tst = record.get("tst")
    if not isinstance(tst, str):
        raise BadFrame("JSON record has no 'tst' time")
    ts = parse_tst(tst)
    payload = record["payload"]
    if isinstance(payload, str):
        return decode_payload(payload, default_ts=ts, labels=labels)
    return frame_from_obj(payload, default_ts=ts, labels=labels)


def _plain_line(line: bytes, index: int, fps: float, start: float, labels=None) -> Frame:
    """A bare payload: line ``index`` (0-based) is at ``start + index / fps``."""
    return decode_payload(line, "", start + index / fps, labels)


_LINE_DECODERS = {"stamped": _stamped_line, "json": _json_line, "plain": _plain_line}


BLOCK = 1 << 20  # bytes read at a time


def line_blocks(stream, size: int = BLOCK) -> Iterator[List[bytes]]:
    """The lines of a binary stream without their newlines, a list per ``size`` bytes read.
    A line longer than MAX_LINE bytes is cut to MAX_LINE + 1 (a dead letter, not a memory spike);
    the rest of it is dropped."""
    rest, dropping = b"", False
    while True:
        block = stream.read(size)
        if not block:
            if rest:
                yield [rest]
            return
        lines = block.split(b"\n")
        if dropping:  # the rest of a cut line
            if len(lines) == 1:
                continue
            del lines[0]
            dropping = False
        else:
            lines[0] = rest + lines[0]
        rest = lines.pop()
        if len(rest) > MAX_LINE:
            lines.append(rest)
            rest, dropping = b"", True
        if lines and max(map(len, lines)) > MAX_LINE:
            lines = [line[:MAX_LINE + 1] for line in lines]
        if lines:
            yield lines


# Magic numbers of what is no text log: gzip, bzip2, xz, zip, zstd, UTF-16/32 BOMs.
_NOT_TEXT = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"PK\x03\x04", b"\x28\xb5\x2f\xfd", b"\xff\xfe", b"\xfe\xff")


def _is_text(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in line


def check_head(head: List[bytes], source: str):
    """Raise :class:`BadLog` if the first lines are no log: empty, binary or compressed."""
    if not any(line.strip() for line in head):
        raise BadLog("%s is an empty file: no frames to replay" % source)
    if head[0].startswith(_NOT_TEXT) or not any(_is_text(line) for line in head if line.strip()):
        raise BadLog("%s is a binary or compressed file, not a frame log (gunzip it first if compressed)"
                     % source)


def open_lines(stream, source: str, fps: Optional[float]) -> Tuple[str, Iterator[List[bytes]]]:
    """``stream``'s format and its :func:`line_blocks`, once its first lines are checked;
    raise :class:`BadLog` (no log) or :class:`BadFrame` (bare payloads and no ``fps``)."""
    blocks, head = line_blocks(stream), []
    for lines in blocks:
        head.append(lines)
        if sum(map(len, head)) >= 50:
            break
    first = [line for lines in head for line in lines][:50]
    check_head(first or [b""], source)
    fmt = detect_format([line for line in first if len(line) <= MAX_LINE])
    if fmt == "plain" and not fps:
        raise BadFrame("%s has bare payloads with no times: give a frame rate (--fps)" % source)
    return fmt, itertools.chain(head, blocks)


def decode_line(fmt: str, line: bytes, number: int, rate: float, start: float, labels, source: str):
    """Line ``number`` (1-based) of a log as a Frame or DeadLetter; None if blank."""
    text = line.strip()
    if not text:
        return None
    if len(line) > MAX_LINE:
        return DeadLetter(source, number, "line longer than %d bytes" % MAX_LINE, raw_text(line))
    try:
        return _LINE_DECODERS[fmt](text, number - 1, rate, start, labels)
    except BadFrame as exc:
        return DeadLetter(source, number, exc.reason, raw_text(line.rstrip(b"\r\n")))


def read_frames(
    stream, source: str = "-", fps: Optional[float] = None, start: float = 0.0, skip: int = 0,
    labels: Optional[frozenset] = None,
) -> Iterator[Tuple[int, Union[Frame, DeadLetter]]]:
    """Yield ``(line_number, Frame or DeadLetter)`` for each non-blank line.

    ``stream`` is a binary file. The format is detected from the first lines.
    ``plain`` logs need ``fps``; line ``n`` (0-based) gets time ``start + n/fps``.
    Lines up to ``skip`` are read but not yielded (to resume a replay).
    ``labels`` (see :func:`label_set`): other images are dead letters.
    Raises :class:`BadLog` for an empty, binary or compressed file.
    """
    fmt, blocks = open_lines(stream, source, fps)
    rate, number = fps or 1.0, 0
    for lines in blocks:
        for line in lines:
            number += 1
            if number > skip:
                item = decode_line(fmt, line, number, rate, start, labels, source)
                if item is not None:
                    yield number, item
