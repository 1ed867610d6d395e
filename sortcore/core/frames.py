"""Frames: decoding ``sockfound`` payloads (recorded logs: :mod:`sortcore.offline.logfiles`).

A frame is one classifier output. Anything that is not a valid frame becomes a
:class:`DeadLetter` with a reason; nothing here raises on bad input.
"""

import functools
import json
import math
import re
from typing import List, NamedTuple, Optional, Union

from .errors import BadFrame, ConfigError
from .events import BLANK, UNKNOWN

MAX_IMAGE_LEN = 64
MAX_CAMERA_LEN = 64
MAX_LINE = 64 * 1024  # bytes; a longer line is a dead letter, not a memory spike
MAX_RAW_KEPT = 1024  # bytes of a bad payload kept in its dead letter, once escaped
MAX_TS = 1e11  # unix seconds (the year 5138): beyond it, window numbers outgrow the store's 64-bit integers
ALWAYS_LABELS = (BLANK, UNKNOWN)  # legal with any allow-list: no sock, the open-set output


class Frame(NamedTuple):
    """One classifier output: design label, probability in percent, event time.

    The wire (``sockfound``) calls the label ``image``, as the seed did."""

    label: str
    probability: float
    ts: Optional[float] = None
    camera: str = ""
    frame: Optional[int] = None


# Frame(...) goes through a Python-level __new__; validated values skip it.
new_frame = functools.partial(tuple.__new__, Frame)


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


def typed_decoder():
    """msgspec's decoder of plainly typed payloads and its error class, built on first use
    (importing msgspec costs start-up time); ``(None, _NotYet)`` without msgspec."""
    global _typed, _TypedError
    if _typed is _first_typed:
        try:  # msgspec (Python >= 3.8) checks a valid frame's types in C; frame_from_obj
            import msgspec  # stays the authority: anything it does not pass goes there for its reason
        except ImportError:  # pragma: no cover - exercised by the compat suite
            _typed = None
            return _typed, _TypedError

        class _Payload(msgspec.Struct, gc=False):  # no cycles: the GC need not track it
            image: str
            probability: float
            ts: Optional[float] = None
            camera: Optional[str] = None
            frame: Optional[int] = None

        _typed, _TypedError = msgspec.json.Decoder(_Payload).decode, msgspec.MsgspecError
        _numbers.append(msgspec.json.Decoder(List[float]).decode)
    return _typed, _TypedError


def numbers_decoder():
    """msgspec's decoder of a JSON array of numbers as floats (None without msgspec)."""
    typed_decoder()
    return _numbers[0] if _numbers else None


def _first_typed(payload):
    decode = typed_decoder()[0]
    return None if decode is None else decode(payload)


_typed, _TypedError = _first_typed, _NotYet
_numbers = []  # type: list


def plain_image(image: str, labels: Optional[frozenset]) -> bool:
    """Whether the typed path takes a decoded ``image`` as it is (else frame_from_obj says why)."""
    return (0 < len(image) <= MAX_IMAGE_LEN and image.isprintable() and not image[0].isspace()
            and not image[-1].isspace() and (labels is None or image in labels or _new_design(image)))


def plain_camera(camera: str) -> bool:
    return len(camera) <= MAX_CAMERA_LEN and camera.isprintable()


def loads_strict(data):
    """Parse JSON text or UTF-8 bytes strictly; raise ValueError on anything else."""
    try:
        return _loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply")


def _new_design(image: str) -> bool:
    """A camera's design found in the session (``New 3``): every allow-list takes it."""
    from .messages import NEW_DESIGN
    return NEW_DESIGN.match(image) is not None


def read_labels(path, error=ConfigError) -> List[str]:
    """The labels of a ``labels.txt`` (a model folder's, or an allow-list): one a line, blank
    lines ignored; ``error`` (a :class:`SortcoreError` class) if unreadable or empty."""
    try:
        with open(str(path), encoding="utf-8") as fh:
            labels = [line.strip() for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise error("cannot read labels %s: %s" % (path, getattr(exc, "strerror", None) or exc))
    if not labels:
        raise error("labels file %s is empty" % path)
    return labels


def label_set(labels) -> Optional[frozenset]:
    """The allow-list ``labels`` (an iterable of names) plus ``Blank`` and ``Unknown``; labels
    of designs a camera found in the session (``New k``) always pass too."""
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
    if ts is not None and not -MAX_TS <= ts <= MAX_TS:  # its own ts, or the log's time for it
        raise BadFrame("the frame's time %r is beyond %g unix seconds" % (ts, MAX_TS))
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
    if labels is not None and image not in labels and not _new_design(image):
        raise BadFrame("'image' %r is not one of the model's labels (nor a design found in the session,"
                       " New k)" % image)
    return new_frame((image, float(prob), None if ts is None else float(ts), camera, seq))


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
        except (_TypedError, RecursionError):  # msgspec's depth limit: the full checks say why
            p = None
        if p is not None:
            image, prob, camera, seq = p.image, p.probability, p.camera, p.frame
            ts = default_ts if p.ts is None else p.ts
            if (plain_image(image, labels) and 0 <= prob <= 100 and (seq is None or seq >= 0)
                    and (camera is None or plain_camera(camera))
                    and (ts is None or -MAX_TS <= ts <= MAX_TS)):
                return new_frame((image, prob, ts, default_camera if camera is None else camera, seq))
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
