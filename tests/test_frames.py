"""Frame decoding and log reading: bad input becomes a dead letter, never a crash."""

import io
import json

import pytest

from sortcore.core.errors import BadFrame
from sortcore.core.frames import MAX_LINE, DeadLetter, Frame, decode_payload
from sortcore.offline.logfiles import detect_format, parse_tst, read_frames

from .shared import FRAME_LOGS

pytestmark = pytest.mark.compat


def test_decode_full_payload():
    frame = decode_payload(b'{"image": "Google", "probability": 97.3, "ts": 12.5, "camera": "c1", "frame": 7}')
    assert frame == Frame("Google", 97.3, 12.5, "c1", 7)


def test_decode_minimal_payload_and_integer_probability():
    assert decode_payload('{"image": "Mongo", "probability": 50}') == Frame("Mongo", 50.0)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"Google"', "not a JSON object"),
        (b'{"probability": 50}', "'image'"),
        (b'{"image": "", "probability": 50}', "'image'"),
        (b'{"image": 7, "probability": 50}', "'image'"),
        (json.dumps({"image": "x" * 65, "probability": 50}).encode(), "longer than 64"),
        (b'{"image": "Google"}', "'probability'"),
        (b'{"image": "Google", "probability": "97"}', "'probability'"),
        (b'{"image": "Google", "probability": true}', "'probability'"),
        (b'{"image": "Google", "probability": NaN}', "not JSON"),
        (b'{"image": "Google", "probability": Infinity}', "not JSON"),
        (b'{"image": "Google", "probability": 100.5}', "outside [0, 100]"),
        (b'{"image": "Google", "probability": -1}', "outside [0, 100]"),
        (b'{"image": "Google", "probability": 50, "ts": "now"}', "'ts'"),
        (b'{"image": "Google", "probability": 50, "ts": 1e999}', ("'ts'", "not JSON")),  # orjson: overflow
        (b'{"image": "Google", "probability": 50, "frame": -1}', "'frame'"),
        (b'{"image": "Google", "probability": 50, "camera": 5}', "'camera'"),
        (b"\xff\xfe\x00binary", "UTF-8"),
        (b"x" * (MAX_LINE + 1), "larger than"),
        (b"[" * 50000, "not JSON"),
        (b'{"image": "Google", "probability": 50, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
         ("not JSON", "nested")),  # past msgspec's depth limit too
    ],
)
def test_bad_payloads_raise_badframe_with_reason(payload, reason):
    with pytest.raises(BadFrame) as info:
        decode_payload(payload)
    reasons = reason if isinstance(reason, tuple) else (reason,)
    assert any(r in info.value.reason for r in reasons), info.value.reason


def test_parse_tst_as_mosquitto_prints_it():
    assert parse_tst("2020-06-13T08:10:48.265763Z+0000") == pytest.approx(1592035848.265763)
    assert parse_tst("2020-06-13T08:10:48Z") == 1592035848.0
    with pytest.raises(BadFrame):
        parse_tst("yesterday")


@pytest.mark.parametrize("name, fmt", [("session-1.log", "stamped"), ("blog-screenshot.json.log", "json"),
                                       ("blog-screenshot.plain.log", "plain")])
def test_detects_each_recorded_format(name, fmt):
    lines = (FRAME_LOGS / name).read_bytes().splitlines()[:50]
    assert detect_format(lines) == fmt


def test_three_formats_of_one_log_give_the_same_frames():
    def frames(name, fps=None):
        with open(str(FRAME_LOGS / name), "rb") as f:
            return [item for _, item in read_frames(f, name, fps=fps)]

    stamped, jsonl = frames("blog-screenshot.log"), frames("blog-screenshot.json.log")
    plain = frames("blog-screenshot.plain.log", fps=3.5)
    assert [f.label for f in stamped] == [f.label for f in jsonl] == [f.label for f in plain]
    assert [f.ts for f in stamped] == pytest.approx([f.ts for f in jsonl], abs=1e-6)
    assert plain[7].ts == pytest.approx(2.0)


def test_plain_log_without_fps_is_a_clear_error():
    with pytest.raises(BadFrame, match="--fps"):
        list(read_frames(io.BytesIO(b'{"image": "Google", "probability": 50}\n'), "x.log"))


def test_bad_lines_are_dead_letters_with_line_numbers_and_good_lines_survive():
    log = (b'1.0 {"image": "Google", "probability": 90}\n'
           b"garbage\n"
           b"\n"
           b'2.0 {"image": "Google", "probability": 190}\n'
           + b"3.0 " + b"y" * (MAX_LINE * 3) + b"\n"
           + b'4.0 {"image": "Google", "probability": 90}\n')
    items = list(read_frames(io.BytesIO(log), "t.log"))
    numbers = [n for n, _ in items]
    assert numbers == [1, 2, 4, 5, 6]
    kinds = [type(item) for _, item in items]
    assert kinds == [Frame, DeadLetter, DeadLetter, DeadLetter, Frame]
    assert items[1][1].reason.startswith("line is not")
    assert "outside" in items[2][1].reason
    assert "longer than" in items[3][1].reason
    assert len(items[3][1].raw) < 2000  # a bounded copy, not the whole line
    assert items[4][1] == Frame("Google", 90.0, 4.0)


def test_skip_resumes_after_a_line():
    log = b"".join(b'%d.0 {"image": "Google", "probability": 90}\n' % i for i in range(10))
    items = list(read_frames(io.BytesIO(log), "t.log", skip=6))
    assert [n for n, _ in items] == [7, 8, 9, 10]


EDGE_PAYLOADS = [
    b'{"image": "Google", "probability": 50}', b'{"image": " Google ", "probability": 50}',
    b'{"image": "Google", "probability": 100, "ts": 5, "camera": null, "frame": 0, "extra": [1]}',
    b'{"image": "Google", "probability": 0.0, "ts": null, "frame": null}',
    b'{"image": "G\xc3\xb6ogle \xe2\x9c\x93", "probability": 1e-300}',
    b'{"image": "Google", "image": "Mongo", "probability": 50}',
    b'{"image": "\\u0047oogle", "probability": 50, "camera": ""}',
    b'{"image": "Google", "probability": 50, "frame": true}', b'{"image": "Google", "probability": 50, "ts": true}',
    b'{"image": "Google", "probability": 5e1, "frame": 1.0}', b'{"image": "\\t", "probability": 50}',
    b'{"image": "Google", "probability": 50, "camera": "' + b"c" * 65 + b'"}',
    b'{"image": "Unknown", "probability": 50}', b'{"image": "Gogle", "probability": 50}',
]


@pytest.mark.parametrize("payload", EDGE_PAYLOADS)
def test_the_fast_decoder_agrees_with_the_full_checks(payload):
    """With msgspec installed decode_payload takes a fast path; frame_from_obj is the authority."""
    from sortcore.core.frames import frame_from_obj, label_set, loads_strict

    labels = label_set(["Google", "Mongo"])

    def outcome(func):
        try:
            return func()
        except BadFrame as exc:
            return "BadFrame: " + exc.reason

    for kwargs in ({}, {"labels": labels}, {"default_camera": "cam", "default_ts": 9.0}):
        assert outcome(lambda: decode_payload(payload, **kwargs)) == outcome(
            lambda: frame_from_obj(loads_strict(payload), kwargs.get("default_camera", ""),
                                   kwargs.get("default_ts"), kwargs.get("labels")))


def test_raw_text_is_bounded_in_bytes_after_escaping():
    from sortcore.core.frames import MAX_RAW_KEPT, raw_text

    for raw in (b"\xff" * 5000, "\u00e9".encode() * 3000, b"\x1b[31m" * 1000, b"\xff" * 300):
        text = raw_text(raw)
        assert len(text.encode("utf-8")) <= MAX_RAW_KEPT and text.isprintable()
    assert raw_text(b"ZZ\x00\x07\x1b[31m") == "ZZ\\x00\\x07\\x1b[31m"
    assert raw_text(b"\xff" * 5000).endswith("\\xff... (5000 bytes)")
