"""The engine: both modes against every truth file, de-ghosting properties, state."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sortcore.core.engine import UNKNOWN, UNRECOGNISED, Engine, EngineConfig, SightingClosed, SockConfirmed
from sortcore.core.errors import ConfigError
from sortcore.core.frames import Frame
from sortcore.offline.logfiles import read_frames

from .shared import truth_cases

pytestmark = pytest.mark.compat


def run(frames, config=EngineConfig()):
    engine = Engine(config)
    events = []
    for frame in frames:
        events.extend(engine.feed(frame))
    return engine, events


def frames_at(image, times, camera=""):
    return [Frame(image, 90.0, t, camera) for t in times]


@pytest.mark.parametrize("log, truth, fps", truth_cases(), ids=lambda v: getattr(v, "name", str(v)))
@pytest.mark.parametrize("mode", ["sighting", "tumbling"])
def test_counts_match_every_truth_file(log, truth, fps, mode):
    expected = json.loads(truth.read_text())
    with open(str(log), "rb") as f:
        frames = [item for _, item in read_frames(f, log.name, fps=fps)]
    assert all(isinstance(f, Frame) for f in frames)
    engine, _ = run(frames, EngineConfig(mode=mode))
    engine.close_all()  # the end of the log: a sock still waiting is published (docs/time.md)
    assert engine.counts == expected[mode]
    assert engine.frames == expected["frames"]


def test_sock_is_confirmed_at_its_min_frames_th_frame_not_at_window_close():
    engine, events = run(frames_at("Google", [10.0, 10.3, 10.6, 10.9, 11.2]))
    confirmed = [e for e in events if isinstance(e, SockConfirmed)]
    assert len(confirmed) == 1
    sock = confirmed[0]
    assert (sock.confirmed_at, sock.first_seen, sock.frames) == (10.9, 10.0, 4)
    assert sock.row == ("Google", 1, "Un-matched", 0)


def test_a_sock_across_a_window_edge_counts_once_in_sighting_and_twice_in_tumbling():
    times = [3.0 + 0.3 * i for i in range(14)]  # 3.0 .. 6.9, across the edge at 5
    assert run(frames_at("Google", times))[0].counts == {"Google": 1}
    assert run(frames_at("Google", times), EngineConfig(mode="tumbling"))[0].counts == {"Google": 2}


def test_ghosts_of_other_designs_do_not_break_a_run():
    frames = []
    for i in range(12):
        frames.append(Frame("Google", 90.0, i * 0.3))
        if i % 4 == 0:  # three stray Mongo frames: fewer than min_frames
            frames.append(Frame("Mongo", 40.0, i * 0.3 + 0.1))
    engine, events = run(frames)
    assert engine.counts == {"Google": 1}
    events += engine.close_all()
    ghosts = [e for e in events if isinstance(e, SightingClosed) and e.sighting is None]
    assert ghosts and all(g.label == "Mongo" for g in ghosts)


def test_a_gap_splits_two_socks_of_one_design():
    # lateness 0: frames in order, as run and the lambda take them, publish each sock at once
    engine, events = run(frames_at("Google", [0, 0.3, 0.6, 0.9, 3.0, 3.3, 3.6, 3.9]), EngineConfig(lateness=0))
    assert engine.counts == {"Google": 2}
    assert engine.table()[0].pair_seen == "Pair"
    closed = [e for e in events if isinstance(e, SightingClosed)]
    assert [(c.sighting, c.reason, c.frames) for c in closed] == [(1, "gap", 4)]


def test_slow_frames_spread_over_more_than_window_do_not_confirm():
    # 4 frames 1.4 s apart: one run (gap 1.5), but never 4 within 5 s... 4.2 s does confirm;
    # 1.45 s apart with window 4: 4 frames span 4.35 s > 4, so no sock until a 5th closer one.
    engine, _ = run(frames_at("Google", [0, 1.45, 2.9, 4.35]), EngineConfig(window=4.0))
    assert engine.counts == {}
    engine.feed(Frame("Google", 90.0, 5.0))
    assert engine.counts == {"Google": 1}


def test_blank_and_low_probability_frames_are_not_counted():
    config = EngineConfig(min_probability=50)
    frames = frames_at("blank", [0, 0.3, 0.6, 0.9]) + [Frame("Google", 40.0, 1 + i * 0.3) for i in range(5)]
    assert run(frames, config)[0].counts == {}


def test_tick_reports_idle_socks_but_a_later_frame_still_joins_the_run():
    engine, _ = run(frames_at("Google", [0, 0.3, 0.6, 0.9]))
    assert engine.tick(1.0) == []
    reported = engine.tick(5.0)
    assert [(c.sighting, c.reason, c.frames) for c in reported] == [(1, "idle", 4)]
    assert engine.tick(6.0) == []  # reported once until it changes
    assert engine.feed(Frame("Google", 90.0, 1.2)) == []  # within gap: the same sock, no new one
    assert engine.counts == {"Google": 1}
    assert [(c.sighting, c.frames) for c in engine.tick(7.0)] == [(1, 5)]
    assert [(c.sighting, c.reason, c.frames) for c in engine.close_all()] == [(1, "end", 5)]


def test_tick_never_reports_a_ghost_that_may_still_confirm():
    engine, _ = run(frames_at("Google", [0, 0.3]))
    assert engine.tick(100.0) == []
    engine.feed(Frame("Google", 90.0, 0.6))
    assert [e.sighting for e in engine.feed(Frame("Google", 90.0, 0.9))] == [1]


def test_cameras_are_separate_runs():
    frames = []
    for i in range(4):
        frames += [Frame("Google", 90.0, i * 0.3, "left"), Frame("Google", 90.0, i * 0.3, "right")]
    assert run(frames)[0].counts == {"Google": 2}


@pytest.mark.parametrize("kwargs", [{"mode": "hopping"}, {"window": 0}, {"gap": -1}, {"min_frames": 0},
                                    {"min_probability": 101}, {"window": float("nan")}])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ConfigError):
        EngineConfig(**kwargs)


def test_feeding_a_frame_without_time_is_a_caller_error():
    with pytest.raises(ValueError):
        Engine().feed(Frame("Google", 90.0))


def test_a_run_of_unknown_frames_is_an_unrecognised_sock_never_a_pair():
    frames = []
    for start in (0.0, 40.0):  # two unrecognised socks: even, yet never a "Pair"
        frames += frames_at(UNKNOWN, [start + 0.3 * i for i in range(5)])
    frames += frames_at("Google", [80.0, 80.3, 80.6, 80.9])
    engine, events = run(frames)
    confirmed = [e for e in events if isinstance(e, SockConfirmed)]
    assert [(e.label, e.row) for e in confirmed] == [
        (UNKNOWN, (UNKNOWN, 1, UNRECOGNISED, 0)), (UNKNOWN, (UNKNOWN, 2, UNRECOGNISED, 0)),
        ("Google", ("Google", 1, "Un-matched", 0)),
    ]
    assert [e.sighting for e in confirmed] == [1, 2, 3]
    assert engine.unknown == 2
    assert engine.counts == {"Google": 1}
    assert engine.table() == [("Google", 1, "Un-matched", 0)]
    assert Engine(EngineConfig(), json.loads(json.dumps(engine.snapshot()))).unknown == 2


def test_unknown_is_matched_exactly_and_a_short_unknown_burst_is_a_ghost():
    engine, events = run(frames_at("unknown", [0, 0.3, 0.6, 0.9]) + frames_at(UNKNOWN, [5.0, 5.3, 5.6]))
    assert engine.counts == {"unknown": 1}  # another label, not the open-set one
    assert engine.unknown == 0
    closed = [e for e in engine.close_all() if e.label == UNKNOWN]
    assert [(e.sighting, e.frames) for e in closed] == [(None, 3)]


def test_blank_stays_ignored_next_to_unknown():
    engine, _ = run(frames_at("Blank", [0, 0.3, 0.6, 0.9]) + frames_at(UNKNOWN, [1.0, 1.3, 1.6, 1.9]))
    assert (engine.counts, engine.unknown) == ({}, 1)


def test_forget_drops_a_design_s_socks_open_runs_and_waiting_socks_in_every_camera():
    """The person says a design found in the session is not a sock: its counted socks, its
    waiting sock and its open runs go, on every camera; the other designs stay as they were."""
    frames = (frames_at("New 1", [0, 0.25, 0.5, 0.75], "a") + frames_at("Github", [0.1, 0.35, 0.6, 0.85], "a")
              + frames_at("New 1", [3.0, 3.25, 3.5, 3.75], "a")  # waits: a frame at 1.5-2.25 could merge it
              + frames_at("New 1", [0.2, 0.45], "b"))  # an open run, no sock yet
    engine, _ = run(frames)
    assert (engine.counts, engine.pending) == ({"New 1": 1, "Github": 1}, 1)
    engine.changes()
    assert engine.forget("New 1") == 2  # the counted one and the waiting one
    assert (engine.counts, engine.pending, engine.labels()) == ({"Github": 1}, 0, {"Github"})
    assert set(engine.changes()[1]) == {"a", "b"}  # both cameras are written again
    restored = Engine(EngineConfig(), json.loads(json.dumps(engine.snapshot())))
    assert restored.snapshot() == engine.snapshot() and restored.pending == 0
    assert engine.forget("New 1") == 0  # nothing left of it
    for frame in frames_at("New 1", [9.0, 9.25, 9.5, 9.75], "a"):  # the label may come back: from zero
        engine.feed(frame)
    assert engine.counts == {"Github": 1, "New 1": 1}
    with pytest.raises(ConfigError):
        engine.forget(UNKNOWN)


def test_forget_in_tumbling_mode_drops_the_window_s_run():
    engine, _ = run(frames_at("New 2", [0, 0.5, 1.0, 1.5, 2.0]), EngineConfig(mode="tumbling"))
    assert engine.forget("New 2") == 1
    assert engine.counts == {} and [e for e in engine.close_all() if e.label == "New 2"] == []


def test_move_counts_one_sock_of_a_design_as_another_and_its_open_run_stays():
    """A false pair: one of New 1's two socks is another design. One sock moves, a label left
    with none goes, the open run keeps its label, and the state round-trips."""
    config = EngineConfig(lateness=0)  # no sock waits
    engine, _ = run(frames_at("New 1", [0, 0.25, 0.5, 0.75]) + frames_at("New 1", [5.0, 5.25, 5.5, 5.75]), config)
    assert engine.counts == {"New 1": 2}
    engine.move("New 1", "New 2")
    assert engine.counts == {"New 1": 1, "New 2": 1} and engine.labels() == {"New 1", "New 2"}
    restored = Engine(config, json.loads(json.dumps(engine.snapshot())))
    assert restored.snapshot() == engine.snapshot()
    engine.move("New 1", "New 2")
    assert engine.counts == {"New 2": 2}
    for frame in frames_at("New 1", [6.0]):  # the open run (5.0-5.75) is still New 1's and goes on
        engine.feed(frame)
    assert engine.counts == {"New 2": 2} and engine.labels() == {"New 1", "New 2"}
    for old, new in (("New 1", "New 3"), (UNKNOWN, "New 3"), ("New 2", UNKNOWN), ("New 2", "New 2")):
        with pytest.raises(ConfigError, match="cannot count a sock"):
            engine.move(old, new)
    assert engine.counts == {"New 2": 2}


# --- properties ------------------------------------------------------------

DESIGNS = ["Google", "Mongo", "Github", "Blank", UNKNOWN]


@st.composite
def streams(draw):
    """A frame stream with increasing times and random designs (ghost-heavy)."""
    steps = draw(st.lists(st.tuples(st.sampled_from(DESIGNS), st.floats(0.0, 2.5),
                                    st.floats(0, 100)), max_size=120))
    t, frames = 1000.0, []
    for image, dt, prob in steps:
        t += dt
        frames.append(Frame(image, prob, round(t, 3)))
    return frames


@settings(max_examples=150, deadline=None)
@given(frames=streams(), cut=st.integers(0, 120), mode=st.sampled_from(["sighting", "tumbling"]))
def test_chunked_replay_with_snapshot_restore_equals_one_pass(frames, cut, mode):
    config = EngineConfig(mode=mode)
    whole, whole_events = run(frames, config)
    first, events = run(frames[:cut], config)
    state = json.loads(json.dumps(first.snapshot()))  # it must survive JSON, as in the store
    second = Engine(config, state)
    for frame in frames[cut:]:
        events.extend(second.feed(frame))
    assert second.snapshot() == whole.snapshot()
    assert events == whole_events


@settings(max_examples=150, deadline=None)
@given(base=streams(), burst=st.integers(1, 3), at=st.floats(0, 200), spacing=st.floats(0.01, 0.5),
       mode=st.sampled_from(["sighting", "tumbling"]))
def test_a_ghost_burst_shorter_than_min_frames_never_creates_a_sock(base, burst, at, spacing, mode):
    """A burst of < min_frames frames of a design nobody shows adds no sock."""
    config = EngineConfig(mode=mode)
    ghosts = [Frame("Phantom", 80.0, round(1000.0 + at + i * spacing, 3)) for i in range(burst)]
    frames = sorted(base + ghosts, key=lambda f: f.ts)
    engine, _ = run(frames, config)
    assert "Phantom" not in engine.counts
    assert engine.counts == run(base, config)[0].counts


@settings(max_examples=100, deadline=None)
@given(frames=streams())
def test_every_fed_frame_lands_in_exactly_one_closed_run(frames):
    engine, events = run(frames)
    events += engine.close_all()
    counted = [f for f in frames if f.label != "Blank"]
    assert sum(e.frames for e in events if isinstance(e, SightingClosed)) == len(counted)
    ids = [e.sighting for e in events if isinstance(e, SockConfirmed)]
    assert ids == list(range(1, len(ids) + 1))
    assert sum(engine.counts.values()) + engine.unknown == len(ids)
    assert UNKNOWN not in engine.counts
