"""Frames: decoding ``sockfound`` payloads and reading recorded frame logs.

A frame is one classifier output. Anything that is not a valid frame becomes a
:class:`DeadLetter` with a reason; nothing here raises on bad input.

Log formats (detected per file, see ``../shared/frame-logs/README.md``):

- ``stamped``: ``mosquitto_sub -F '%U %p'`` -- unix seconds, a space, the payload;
- ``json``: ``mosquitto_sub -F '%J'`` -- one JSON object a line with ``tst``
  (ISO 8601 receive time) and ``payload`` (a JSON value or a string);
- ``plain``: bare payloads; times come from a frame rate (``fps``).
"""

import datetime
import functools
import itertools
import json
import math
import re
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

from .errors import BadFrame, BadLog

MAX_IMAGE_LEN = 64
MAX_CAMERA_LEN = 64
MAX_LINE = 64 * 1024  # bytes; a longer line is a dead letter, not a memory spike
MAX_RAW_KEPT = 1024  # bytes of a bad payload kept in its dead letter, once escaped
ALWAYS_LABELS = ("Blank", "Unknown")  # legal with any allow-list: no sock, the open-set output
FORMATS = ("stamped", "json", "plain")

_STAMPED = re.compile(rb"^(\d{1,12}(?:\.\d*)?) (.*)$", re.S)


class Frame(NamedTuple):
    """One classifier output: design label, probability in percent, event time.

    The wire (``sockfound``) calls the label ``image``, as the seed did."""

    label: str
    probability: float
    ts: Optional[float] = None
    camera: str = ""
    frame: Optional[int] = None


# Frame(...) goes through a Python-level __new__; validated values skip it.
_new_frame = functools.partial(tuple.__new__, Frame)


class DeadLetter(NamedTuple):
    """Input that is not a frame: where it came from, why, and the raw bytes."""

    source: str
    line: Optional[int]
    reason: str
    raw: str


_NUMBER = (int, float)  # checked with type(), so bool (an int) is refused


def _no_constants(name):
    raise ValueError("%s is not valid JSON" % name)


# Refuses NaN and Infinity (Python's JSON accepts them by default); built once.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)

try:  # orjson is strict JSON too and ~5x faster; the lambda zip goes without it
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - exercised by the compat suite

    def _loads(data):
        if not isinstance(data, str):
            data = bytes(data).decode("utf-8")  # UnicodeDecodeError is a ValueError
        return _DECODER.decode(data)


class _NotYet(Exception):
    pass


def _first_typed(payload):
    """Build the msgspec decoder on first use (importing msgspec costs start-up time)."""
    global _typed, _TypedError
    try:  # msgspec (Python >= 3.8) checks a valid frame's types in C; frame_from_obj
        import msgspec  # stays the authority: anything it does not pass goes there for its reason
    except ImportError:  # pragma: no cover - exercised by the compat suite
        _typed = None
        return None

    class _Payload(msgspec.Struct):
        image: str
        probability: float
        ts: Optional[float] = None
        camera: Optional[str] = None
        frame: Optional[int] = None

    _typed, _TypedError = msgspec.json.Decoder(_Payload).decode, msgspec.MsgspecError
    return _typed(payload)


_typed, _TypedError = _first_typed, _NotYet


def loads_strict(data):
    """Parse JSON text or UTF-8 bytes strictly; raise ValueError on anything else."""
    try:
        return _loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply")


def label_set(labels) -> Optional[frozenset]:
    """The allow-list ``labels`` (an iterable of names) plus ``Blank`` and ``Unknown``."""
    return None if labels is None else frozenset(labels).union(ALWAYS_LABELS)


def frame_from_obj(obj, default_camera: str = "", default_ts: Optional[float] = None,
                   labels: Optional[frozenset] = None) -> Frame:
    """Validate a decoded JSON value as a frame; raise :class:`BadFrame` if not.

    ``default_ts`` is the time to use when the payload has no ``ts``;
    ``labels``, if given (see :func:`label_set`), the only legal images.
    """
    if type(obj) is not dict:
        raise BadFrame("payload is not a JSON object but %s" % type(obj).__name__)
    image = obj.get("image")
    if type(image) is not str or not image or image.isspace():
        raise BadFrame("'image' must be a non-empty string")
    if len(image) > MAX_IMAGE_LEN:
        raise BadFrame("'image' is longer than %d characters" % MAX_IMAGE_LEN)
    if not image.isprintable():
        image = image.strip()
        if not image.isprintable():
            raise BadFrame("'image' has control characters or terminal escapes")
    prob = obj.get("probability")
    if type(prob) not in _NUMBER or not math.isfinite(prob):
        raise BadFrame("'probability' must be a finite number")
    if not 0 <= prob <= 100:
        raise BadFrame("'probability' %r is outside [0, 100]" % prob)
    ts = obj.get("ts")
    if ts is None:
        ts = default_ts
    elif type(ts) not in _NUMBER or not math.isfinite(ts):
        raise BadFrame("'ts' must be a finite number of unix seconds")
    camera = obj.get("camera")
    if camera is None:
        camera = default_camera
    elif type(camera) is not str or len(camera) > MAX_CAMERA_LEN or not camera.isprintable():
        raise BadFrame("'camera' must be a printable string of at most %d characters" % MAX_CAMERA_LEN)
    seq = obj.get("frame")
    if seq is not None and (type(seq) is not int or seq < 0):
        raise BadFrame("'frame' must be a non-negative integer")
    if image[0].isspace() or image[-1].isspace():
        image = image.strip()
    if labels is not None and image not in labels:
        raise BadFrame("'image' %r is not one of the model's labels" % image)
    return _new_frame((image, float(prob), None if ts is None else float(ts), camera, seq))


def decode_payload(payload: Union[bytes, str], default_camera: str = "",
                   default_ts: Optional[float] = None, labels: Optional[frozenset] = None) -> Frame:
    """Decode one ``sockfound`` message; raise :class:`BadFrame` with a reason.

    ``default_camera`` is the camera the topic names (``sockfound/<camera>``).
    """
    if len(default_camera) > MAX_CAMERA_LEN or not default_camera.isprintable():
        raise BadFrame("the topic's camera name is not printable or longer than %d characters" % MAX_CAMERA_LEN)
    if len(payload) > MAX_LINE:
        raise BadFrame("payload is larger than %d bytes" % MAX_LINE)
    if _typed is not None:  # a plainly valid frame, checked in C; else the full checks say why
        try:
            p = _typed(payload)
        except _TypedError:
            p = None
        if p is not None:
            image, prob, camera, seq = p.image, p.probability, p.camera, p.frame
            if (0 < len(image) <= MAX_IMAGE_LEN and image.isprintable() and not image[0].isspace()
                    and not image[-1].isspace() and 0 <= prob <= 100 and (seq is None or seq >= 0)
                    and (camera is None or (len(camera) <= MAX_CAMERA_LEN and camera.isprintable()))
                    and (labels is None or image in labels)):
                return _new_frame((image, prob, default_ts if p.ts is None else p.ts,
                                   default_camera if camera is None else camera, seq))
    try:
        obj = _loads(payload)
    except UnicodeDecodeError:
        raise BadFrame("payload is not UTF-8 text")
    except (ValueError, RecursionError) as exc:
        raise BadFrame("payload is not JSON: %s" % (str(exc)[:80] or "nested too deeply"))
    return frame_from_obj(obj, default_camera, default_ts, labels)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_PARTIAL_ESCAPE = re.compile(r"\\(x[0-9a-f]?)?$")


def raw_text(raw: Union[bytes, str]) -> str:
    """A printable copy of bad input for its dead letter, at most MAX_RAW_KEPT UTF-8
    bytes once invalid bytes and control characters are escaped."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "backslashreplace")  # lone surrogates
    text = raw[:MAX_RAW_KEPT].decode("utf-8", "backslashreplace")
    text = _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), text)
    kept = text.encode("utf-8")
    if len(kept) > MAX_RAW_KEPT or len(raw) > MAX_RAW_KEPT:
        suffix = "... (%d bytes)" % len(raw)
        text = kept[:MAX_RAW_KEPT - len(suffix)].decode("utf-8", "ignore")
        text = _PARTIAL_ESCAPE.sub("", text) + suffix
    return text


# --- log files -------------------------------------------------------------

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


def _stamped_line(line: bytes, index: int, fps: float, start: float, labels=None) -> Frame:
    """``%U %p``: unix seconds, a space, the payload."""
    stamp, _, payload = line.partition(b" ")
    try:
        ts = float(stamp)
    except ValueError:
        ts = math.nan
    if not payload or not math.isfinite(ts) or not stamp[:1].isdigit():
        raise BadFrame("line is not '<unix seconds> <payload>'")
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


def _bounded_lines(stream) -> Iterator[Tuple[bytes, bool]]:
    """Lines of a binary stream, each at most MAX_LINE bytes; flag the cut ones."""
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            head = line
            while line and not line.endswith(b"\n"):  # drop the rest of the line
                line = stream.readline(MAX_LINE)
            yield head, True
        else:
            yield line, False


# Magic numbers of what is no text log: gzip, bzip2, xz, zip, zstd, UTF-16/32 BOMs.
_NOT_TEXT = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"PK\x03\x04", b"\x28\xb5\x2f\xfd", b"\xff\xfe", b"\xfe\xff")


def _is_text(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in line


def check_head(head: List[Tuple[bytes, bool]], source: str):
    """Raise :class:`BadLog` if the first lines are no log: empty, binary or compressed."""
    if not any(line.strip() for line, _ in head):
        raise BadLog("%s is an empty file: no frames to replay" % source)
    first = head[0][0]
    if first.startswith(_NOT_TEXT) or not any(_is_text(line) for line, _ in head if line.strip()):
        raise BadLog("%s is a binary or compressed file, not a frame log (gunzip it first if compressed)"
                     % source)


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
    lines = _bounded_lines(stream)
    head = []
    for item in lines:
        head.append(item)
        if len(head) >= 50:
            break
    check_head(head, source)
    fmt = detect_format([line for line, cut in head if not cut])
    if fmt == "plain" and not fps:
        raise BadFrame("%s has bare payloads with no times: give a frame rate (--fps)" % source)

    too_long = "line longer than %d bytes" % MAX_LINE
    rate = fps or 1.0
    decode = _LINE_DECODERS[fmt]
    for number, (line, cut) in enumerate(itertools.chain(head, lines), 1):
        if number <= skip:
            continue
        text = line.strip()
        if not text:
            continue
        if cut:
            yield number, DeadLetter(source, number, too_long, raw_text(line))
            continue
        try:
            yield number, decode(text, number - 1, rate, start, labels)
        except BadFrame as exc:
            yield number, DeadLetter(source, number, exc.reason, raw_text(line.rstrip(b"\r\n")))
