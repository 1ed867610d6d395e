"""Batched decoding (``sortcore.offline.logbatch``): the same frames and dead letters, reasons and line
numbers as the line-by-line path (``read_frames``) on every kind of line, in every format."""

import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sortcore.offline import logbatch
from sortcore.core.errors import BadFrame, BadLog
from sortcore.core.frames import MAX_LINE, DeadLetter, Frame, label_set, typed_decoder
from sortcore.offline.logfiles import read_frames

from .shared import BAD_LINES, FRAME_LOGS

pytestmark = pytest.mark.compat  # on Python 3.7 (no msgspec) every line takes the validating path

GOOD = b'1790000000.25 {"image": "Google", "probability": 90.5}'
HAS_MSGSPEC = typed_decoder()[0] is not None


class Trickle:
    """A stream that returns at most ``step`` bytes a read: lines cross block edges."""

    def __init__(self, data: bytes, step: int):
        self.stream, self.step = io.BytesIO(data), step

    def read(self, size=-1):
        return self.stream.read(self.step if size < 0 else min(size, self.step))


def per_line(data, step=None, **kw):
    stream = Trickle(data, step) if step else io.BytesIO(data)
    return list(read_frames(stream, "t.log", **kw))


def batched(data, step=None, size=5000, **kw):
    """Batches flattened to read_frames' items (frames get the number of their line, found
    through the batches' ends and the dead letters' numbers)."""
    stream = Trickle(data, step) if step else io.BytesIO(data)
    items = []
    for batch in logbatch.read_batches(stream, "t.log", size=size, **kw):
        at = 0
        for index, letter in batch.dead + [(len(batch.frames), None)]:
            items += [(None, frame) for frame in batch.frames[at:index]]
            if letter is not None:
                items.append((letter.line, letter))
            at = index
    return items


def same(data, **kw):
    """Assert both paths agree (in blocks of 1 MB and in ones of a few bytes); return the items."""
    expected = per_line(data, **kw)
    for step, size in ((None, 5000), (7, 3), (1, 64)):
        assert batched(data, step=step, size=size, **kw) == [(None if type(i) is Frame else n, i)
                                                              for n, i in expected]
        assert per_line(data, step=step, **kw) == expected
    return [item for _, item in expected]


def lines(*items):
    return b"\n".join(items) + b"\n"


@pytest.mark.parametrize("path", sorted(FRAME_LOGS.glob("*.log")), ids=lambda p: p.name)
def test_every_recorded_log_gives_the_same_frames(path):
    fps = 3.5 if path.name.endswith(".plain.log") else None
    items = same(path.read_bytes(), fps=fps)
    assert items and all(type(item) is Frame for item in items)


@pytest.mark.skipif(not HAS_MSGSPEC, reason="the typed path needs msgspec (Python >= 3.8)")
@pytest.mark.parametrize("name, fps", [("session-1.log", None), ("blog-screenshot.plain.log", 3.5)])
def test_good_blocks_take_the_typed_path(name, fps):
    """Not only the same answer: the fast path is the one that gives it."""
    raw = (FRAME_LOGS / name).read_bytes().splitlines()
    fmt = "stamped" if fps is None else "plain"
    frames = logbatch._typed_block(fmt, raw, 1, fps or 1.0, 0.0, None)
    assert frames == [item for _, item in read_frames(io.BytesIO(b"\n".join(raw)), name, fps=fps)]


BAD = BAD_LINES + [
    b'1790011615.0 {"image": "Go\xffgle", "probability": 50}',
    b'1790011615.0 {"image": "\\u001b[31mGoogle", "probability": 50}',
    b'1790011615.0 {"image": "Google", "probability": true}',
    b'1790011615.0 {"image": "Google", "probability": 50, "ts": 1e400}',
    b'1790011615.0 {"image": "Google", "probability": 50, "frame": -1}',
    b'1790011615.0 {"image": "Google", "probability": 50, "camera": "' + b"c" * 65 + b'"}',
    b'1790011615.0 {"image": "Google", "probability": 50, "camera": "cam\\u0007"}',
    b'1790011615.0 {"image": "", "probability": 50}',
    b'1790011615.0 {"image": "   ", "probability": 50}',
    b'1790011615.0 {"image": "Google", "probability": 50}{"image": "Google", "probability": 50}',
    b'1790011615.0 ' + b'[' * 5000 + b']' * 5000,
    b'1790011615.0 {"image": "Google", "probability": 50, "x": ' + b'[' * 5000 + b']' * 5000 + b'}',
]


def test_bad_lines_are_the_same_dead_letters_with_the_same_reasons():
    items = same(lines(*BAD))
    assert [type(item) for item in items] == [DeadLetter] * len(BAD)


@pytest.mark.parametrize("seed", range(4))
def test_bad_lines_among_good_ones_keep_their_place(seed):
    rng = random.Random(seed)
    good = (FRAME_LOGS / "session-2.log").read_bytes().splitlines()
    mixed = list(good)
    for line in BAD * 3:
        mixed.insert(rng.randrange(len(mixed) + 1), line)
    items = same(lines(*mixed))
    assert sum(type(item) is DeadLetter for item in items) == 3 * len(BAD)
    assert sum(type(item) is Frame for item in items) == len(good)


ODD_BUT_VALID = [
    b'1790000000.5 {"image": " Google ", "probability": 50}',  # stripped by the validating path
    b'1790000000.5 {"image": "Caf\xc3\xa9", "probability": 50}',
    b'1790000000.5 {"image": "a {b", "probability": 50}',  # ' {' inside a string
    b'1790000000.5 {"image": "Google", "meta": {"x": 1}, "probability": 50}',
    b'1790000000.5 {"image": "Google", "probability": 50, "image": "Mongo"}',
    b'1790000000.5 {"image": "Google", "probability": 50, "ts": null}',
    b'1790000000.5 {"image": "Google", "probability": 50, "ts": 1790000003}',
    b'179001161512345678901234 {"image": "Google", "probability": 50, "ts": 1790000003}',  # its own ts
    b'1790000000.5 {"image": "Google", "probability": 7, "camera": "left", "frame": 3}',
    b'1790000000.5 {"image": "Google", "probability": 50, "camera": ""}',
    b'1790000000.5 {"image": "Google", "probability": 50, "frame": 1.0}',
    b'1790000000.5 {"image": "Google", "probability": 100, "camera": " left "}',
    b'1790000000.5 {"image": "Google", "probability": -0.0}',
    b'1790000000.5  {"image": "Google", "probability": 50}',  # two spaces
    b'   1790000000.5 {"image": "Google", "probability": 50}   ',
    b'1790000000.5 {"image": "Google", "probability": 50}\r',
    b'1790000000.5\t{"image": "Google", "probability": 50}',
    b'1790000000.5 {"image": "Google", "probability": 50}\x0c',
    b'1790000000.5 {"image": "' + b"G" * 64 + b'", "probability": 50}',
]


def test_unusual_lines_are_decoded_as_the_validating_path_does():
    items = same(lines(*(ODD_BUT_VALID + [GOOD] * 100)))
    assert sum(type(item) is Frame for item in items) >= len(ODD_BUT_VALID) - 3 + 100


STAMPS = [b"1790000000", b"1790000000.", b"01790000000.5", b"1e9", b"1E+9", b"1_790_000_000", b"-1790000000",
          b"+1790000000", b"inf", b"nan", b"1e400", b"1,2", b"1 2", b"0", b"0.000001", b".5",
          b"179000000012345678901234", b"9007199254740993", b"1790000000.1234567890123456789"]


def test_stamps_are_read_as_float_reads_them():
    same(lines(GOOD, *[stamp + b' {"image": "Google", "probability": 50}' for stamp in STAMPS]))


@given(st.lists(st.floats(min_value=0, max_value=4e9), min_size=1, max_size=50),
       st.sampled_from(["%r", "%.6f", "%.3f", "%.17g", "%.9e"]))
@settings(max_examples=60, deadline=None)
def test_any_number_of_seconds_gets_the_same_time(times, fmt):
    stamped = [(fmt % t).encode() + b' {"image": "Google", "probability": 50}' for t in times]
    same(lines(GOOD, *stamped))
    if HAS_MSGSPEC:  # as JSON numbers, msgspec reads them: the same times, from the typed path
        assert [f.ts for f in logbatch._typed_block("stamped", stamped, 1, 1.0, 0.0, None)] == [
            float(line.split(b" ")[0]) for line in stamped]


def test_lines_that_only_make_frames_together_stay_dead_letters():
    """Joined, these three lines would be three frames; one by one, each is a dead letter."""
    value = b'{"image": "Google", "probability": 50}'
    items = same(lines(b'1790000000.5 {"image": "Google", "probability": 50, "x": [[1',
                       b'2]]}',
                       b"1790000000.5 " + value + b"," + value,
                       b'1790000000.5 {"image": "Google", "probability": 50, "x": "',
                       b'"}'))
    assert [type(item) for item in items] == [DeadLetter] * 5


def test_blank_lines_count_in_line_numbers():
    items = same(b"\n\n" + GOOD + b"\n\n   \n\r\n" + GOOD + b"\n\n")
    assert len(items) == 2


@pytest.mark.parametrize("length", [MAX_LINE - 1, MAX_LINE, MAX_LINE + 1, MAX_LINE + 2, 3 * MAX_LINE])
def test_lines_around_the_length_limit(length):
    head = b'1790000000.5 {"image": "Google", "probability": 50}'
    line = head + b" " * (length - len(head))
    for data in (lines(GOOD, line, GOOD), GOOD + b"\n" + line):  # the long one last, with no newline
        items = same(data)
        assert (type(items[1]) is DeadLetter) == (length > MAX_LINE)


def test_a_long_line_of_spaces_is_blank_and_a_huge_one_is_bounded():
    items = same(lines(GOOD, b" " * (3 * MAX_LINE), b"1.0 " + b"y" * (40 * MAX_LINE), GOOD))
    assert [type(item) for item in items] == [Frame, DeadLetter, Frame]
    assert "longer than" in items[1].reason and len(items[1].raw) < 2000


def test_no_newline_at_the_end_and_crlf_line_ends():
    same(GOOD)
    same(b"\r\n".join([GOOD] * 20))


def test_labels_allow_list_gives_the_same_dead_letters():
    data = lines(GOOD, GOOD.replace(b"Google", b"Googel"), GOOD.replace(b"Google", b"Blank"))
    items = same(data, labels=label_set(["Google"]))
    assert [type(item) for item in items] == [Frame, DeadLetter, Frame]


def test_json_records_and_plain_payloads():
    record = b'{"tst": "2020-06-13T08:10:48.265763Z+0000", "topic": "sockfound", "payload": %s}'
    same(lines(record % b'{"image": "Google", "probability": 50}',
               record % b'"{\\"image\\": \\"Google\\", \\"probability\\": 50}"', record % b"42", b"nope"))
    payload = b'{"image": "Google", "probability": 50}'
    items = same(lines(payload, b"", payload, b"junk", b"  " + payload), fps=2.0, start=10.0)
    assert [item.ts for item in items if type(item) is Frame] == [10.0, 11.0, 12.0]


@pytest.mark.parametrize("skip", [0, 1, 5, 7, 30, 100])
def test_skip_resumes_after_the_same_line(skip):
    data = lines(*[b'%d.0 {"image": "Google", "probability": 90}' % i for i in range(30)] + [b"bad"])
    same(data, skip=skip)
    ends = [batch.end for batch in logbatch.read_batches(io.BytesIO(data), "t.log", skip=skip, size=4)]
    assert ends == [n for n in range(4, 32, 4) if n > skip] + ([31] if skip < 31 else [])


def test_batches_are_size_lines_and_say_where_they_end():
    data = lines(*[GOOD] * 23)
    batches = list(logbatch.read_batches(Trickle(data, 100), "t.log", size=10))
    assert [(b.end, b.lines, len(b.frames)) for b in batches] == [(10, 10, 10), (20, 10, 10), (23, 3, 3)]


@pytest.mark.parametrize("data, error", [(b"", BadLog), (b"\n\n", BadLog), (b"\x1f\x8b\x08binary", BadLog),
                                         (b'{"image": "Google", "probability": 50}\n', BadFrame)])
def test_what_is_no_log_fails_as_read_frames_does(data, error):
    for read in (per_line, batched):
        with pytest.raises(error):
            read(data)


def test_without_msgspec_every_line_takes_the_validating_path(monkeypatch):
    data = lines(*(BAD + ODD_BUT_VALID + [GOOD] * 50))
    with_typed = batched(data)
    monkeypatch.setattr(logbatch, "typed_decoder", lambda: (None, None))
    assert logbatch._typed_block("stamped", [GOOD], 1, 1.0, 0.0, None) is None
    assert batched(data) == with_typed


FRAGMENTS = [b"1790000000.5", b" ", b"{", b"}", b'"image"', b'"probability"', b":", b",", b'"Google"',
             b"50", b"[", b"]", b"\t", b'"ts"', b"null", b'"', b"\xff", b"-", b"1e400", b"\r"]


@given(st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=14), min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_lines_of_json_fragments_decode_the_same(fragment_lines):
    data = lines(GOOD, *[b"".join(parts) for parts in fragment_lines])
    same(data)
