"""Decoding a log a block of lines at a time: the replay hot path.

With msgspec (Python >= 3.8) each payload of a block is decoded in C and the
block's frames are checked a column at a time (each distinct image and camera
once), with the typed decoder and the checks :func:`sortcore.core.frames.decode_payload`
takes a plainly valid frame with. A block with any line that is not one is cut
in halves until the lines at fault are decoded one by one by the validating path
(:func:`sortcore.offline.logfiles.decode_line`), so the frames, dead letters and their
reasons are those of :func:`sortcore.offline.logfiles.read_frames`. Without msgspec
(Python 3.7) every line takes that path. Python 3.7 compatible.
"""

from operator import itemgetter
from typing import Iterator, List, NamedTuple, Optional, Tuple

from ..core.frames import MAX_LINE, MAX_TS, Frame, numbers_decoder, plain_camera, plain_image, typed_decoder
from .logfiles import decode_line, open_lines

SMALL = 64  # lines a failing block is cut down to before they are decoded one by one
_IMAGE, _PROBABILITY, _TS, _CAMERA, _SEQ = (itemgetter(i) for i in range(5))


class Batch(NamedTuple):
    """Lines of a log up to line ``end``: their frames and, in line order, their dead
    letters as ``(index in frames, DeadLetter)`` (the letter came before that frame)."""

    end: int  # the number of its last line (where a resumed replay starts after)
    lines: int  # how many lines it read, blank ones too
    frames: List[Frame]
    dead: list


def read_batches(stream, source: str = "-", fps: Optional[float] = None, start: float = 0.0, skip: int = 0,
                 labels: Optional[frozenset] = None, size: int = 5000) -> Iterator[Batch]:
    """:func:`sortcore.offline.logfiles.read_frames` (same arguments, same errors) as a :class:`Batch`
    per ``size`` lines."""
    fmt, blocks = open_lines(stream, source, fps)
    rate, number = fps or 1.0, 0
    for lines in _chunks(blocks, size):
        first, number = number + 1, number + len(lines)
        if number <= skip:
            continue
        if first <= skip:
            lines, first = lines[skip - first + 1:], skip + 1
        frames, dead = decode_block(fmt, lines, first, rate, start, labels, source)
        yield Batch(number, len(lines), frames, dead)


def _chunks(blocks, size: int) -> Iterator[List[bytes]]:
    pending = []  # type: List[bytes]
    for lines in blocks:
        pending += lines
        while len(pending) >= size:
            yield pending[:size]
            del pending[:size]
    if pending:
        yield pending


def decode_block(fmt: str, lines: List[bytes], first: int, rate: float, start: float, labels,
                 source: str) -> Tuple[List[Frame], list]:
    """The frames and dead letters (as in :class:`Batch`) of ``lines``, numbered from ``first``."""
    frames = _typed_block(fmt, lines, first, rate, start, labels)
    if frames is not None:
        return frames, []
    if len(lines) > SMALL:
        half = len(lines) // 2
        frames, dead = decode_block(fmt, lines[:half], first, rate, start, labels, source)
        more, later = decode_block(fmt, lines[half:], first + half, rate, start, labels, source)
        return frames + more, dead + [(len(frames) + index, letter) for index, letter in later]
    frames, dead = [], []
    for number, line in enumerate(lines, first):
        item = decode_line(fmt, line, number, rate, start, labels, source)
        if type(item) is Frame:
            frames.append(item)
        elif item is not None:
            dead.append((len(frames), item))
    return frames, dead


def _typed_block(fmt: str, lines: List[bytes], first: int, rate: float, start: float, labels) -> Optional[list]:
    """The frames of ``lines`` if each is a plainly valid frame, else None."""
    decode, error = typed_decoder()
    if decode is None or fmt == "json" or not lines or max(map(len, lines)) > MAX_LINE:
        return None
    try:
        if fmt == "stamped":
            stamps, payloads = _stamped_parts(lines)
            if stamps is None:
                return None
            times = numbers_decoder()(b"[" + b",".join(stamps) + b"]")  # JSON: finite, else an error
            if len(times) != len(lines):  # a stamp with a comma
                return None
        else:  # plain: line n (0-based) at start + n / rate
            times = [start + n / rate for n in range(first - 1, first - 1 + len(lines))]
            payloads = lines
        decoded = list(map(decode, payloads))
    except (ValueError, RecursionError, error):
        return None
    make = tuple.__new__  # what frames.new_frame calls, without its partial's cost per frame
    frames = [make(Frame, (p.image, p.probability, ts if p.ts is None else p.ts, p.camera or "", p.frame))
              for p, ts in zip(decoded, times)]
    return frames if _plain(frames, labels) else None


def _stamped_parts(lines: List[bytes]):
    """The stamps and payloads of '<unix seconds> <payload>' lines, split in C at ' {'; (None, None)
    unless each line has exactly one ' {' with a stamp before it that starts with a digit.

    Why that is enough: ``parts`` alternates stamp, payload only if every even part starts with a
    digit. A line's parts after its first start with '{', so they must all be odd: a line has at
    most two parts, and 2 * len(lines) parts means each has exactly two."""
    parts = b"\n".join(lines).replace(b" {", b"\n{").split(b"\n")
    stamps = parts[0::2]
    if len(parts) != 2 * len(lines) or min(stamps)[:1] < b"0" or max(stamps)[:1] > b"9":
        return None, None
    return stamps, parts[1::2]


def _plain(frames: List[Frame], labels) -> bool:
    """Whether every frame passes the checks decode_payload's typed path makes."""
    probabilities = list(map(_PROBABILITY, frames))
    times = list(map(_TS, frames))  # never None here: a block's frames all have a stamp or a rate
    seqs = set(map(_SEQ, frames))
    seqs.discard(None)
    return (min(probabilities) >= 0 and max(probabilities) <= 100 and (not seqs or min(seqs) >= 0)
            and -MAX_TS <= min(times) and max(times) <= MAX_TS
            and all(plain_image(image, labels) for image in set(map(_IMAGE, frames)))
            and all(map(plain_camera, set(map(_CAMERA, frames)))))
