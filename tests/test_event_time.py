"""Event time per camera (docs/time.md): stray future frames, skewed cameras,
outages and reordering give the counts of the stream sorted by ``ts``."""

import json
import math
import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sortcore.engine import UNKNOWN, Engine, EngineConfig, FrameLate, SightingClosed, SockConfirmed
from sortcore.errors import ConfigError
from sortcore.frames import Frame
from sortcore.pipeline import Pipeline
from sortcore.store import Store

pytestmark = pytest.mark.compat

DESIGNS = ["Google", "Mongo", "Github", "Confluent"]
T0 = 1790000000.0


def session(n=20, camera="", base=T0, skew=0.0):
    """``n`` socks, 3 s apart, four frames each 0.25 s apart (as the service tests)."""
    return [Frame(DESIGNS[i % len(DESIGNS)], 90.0, base + skew + 3.0 * i + 0.25 * k, camera)
            for i in range(n) for k in range(4)]


def feed_all(engine, frames):
    events = []
    for frame in frames:
        events.extend(engine.feed(frame))
    return events


def socks_by_camera(events):
    out = defaultdict(int)
    for e in events:
        if isinstance(e, SockConfirmed):
            out[e.camera] += 1
    return dict(out)


def ordered_counts(frames, config=EngineConfig()):
    """The oracle: counts from each (camera, design)'s frame times sorted, by the definitions."""
    ignore = {label.lower() for label in config.ignore}
    times = defaultdict(list)
    for f in frames:
        if f.label.lower() not in ignore and f.probability >= config.min_probability:
            times[(f.camera, f.label)].append(f.ts)
    counts = defaultdict(int)
    m = config.min_frames
    for (camera, image), ts in times.items():
        ts.sort()
        if config.mode == "tumbling":
            per_window = defaultdict(int)
            for t in ts:
                per_window[math.floor(t / config.window)] += 1
            counts[image] += sum(1 for n in per_window.values() if n >= m)
            continue
        runs, run = [], [ts[0]]
        for t in ts[1:]:
            if t - run[-1] > config.gap:
                runs.append(run)
                run = []
            run.append(t)
        runs.append(run)
        counts[image] += sum(1 for r in runs if any(r[j + m - 1] - r[j] <= config.window
                                                     for j in range(len(r) - m + 1)))
    return {image: n for image, n in counts.items() if n}


def engine_counts(engine):
    counts = dict(engine.counts)
    if engine.unknown:
        counts[UNKNOWN] = engine.unknown
    return counts


# --- the three measurements, at engine level ------------------------


def test_one_future_frame_does_not_make_a_session_late():
    engine = Engine()
    events = feed_all(engine, [Frame("Google", 90.0, T0 + 290.0)] + session())
    assert socks_by_camera(events) == {"": 20}
    assert not [e for e in events if isinstance(e, FrameLate)]


@pytest.mark.parametrize("ahead", ["left", "right"])
def test_a_camera_3_s_behind_another_counts_all_its_socks(ahead):
    behind = "right" if ahead == "left" else "left"
    frames = session(camera=ahead) + session(camera=behind, skew=-3.0)
    frames.sort(key=lambda f: f.ts + (3.0 if f.camera == behind else 0.0))  # arrival: true time
    events = feed_all(Engine(), frames)
    assert socks_by_camera(events) == {"left": 20, "right": 20}


def test_idle_ticks_during_an_outage_lose_no_delayed_frame():
    frames = session()
    engine = Engine()
    events = feed_all(engine, frames[:40])
    now = frames[39].ts
    for _ in range(120):  # 60 s of wall-clock ticks while the broker is down
        now += 0.5
        events += engine.tick(now)
    events += feed_all(engine, frames[40:])  # the buffered frames arrive, stamped in the past
    assert socks_by_camera(events) == {"": 20}
    reported = [e for e in events if isinstance(e, SightingClosed)]
    assert reported and all(e.sighting is not None for e in reported)


def test_min_frames_future_frames_move_the_clock_and_later_frames_are_late_not_lost(tmp_path):
    store = Store(str(tmp_path / "late.db"))
    try:
        pipe = Pipeline(store, EngineConfig(), outbox_topic=None)
        for k in range(4):  # a wrong camera clock for a moment: as many frames as a sock needs
            pipe.feed(Frame("Mongo", 90.0, T0 + 290.0 + 0.25 * k))
        assert pipe.engine.clock("") == T0 + 290.0
        late = [e for f in session(2) for e in pipe.feed(f) if isinstance(e, FrameLate)]
        assert len(late) == 8
        pipe.commit()
        letters = store.dead_letters(pipe.session)
        assert len(letters) == 8 and all(d["reason"].startswith("late: ") for d in letters)
        assert json.loads(letters[0]["raw"])["ts"] == T0
        assert pipe.engine.frames == 4
    finally:
        store.close()


def test_a_frame_overtaken_by_fewer_than_min_frames_joins_its_sock():
    engine = Engine()
    events = feed_all(engine, [Frame("Google", 90.0, t) for t in (10.3, 10.6, 10.9, 10.0)])
    (sock,) = [e for e in events if isinstance(e, SockConfirmed)]
    assert (sock.first_seen, sock.frames) == (10.0, 4)
    assert engine.clock("") == 10.0
    assert engine.feed(Frame("Google", 90.0, 9.9)) == [FrameLate(Frame("Google", 90.0, 9.9), 10.0)]


def test_a_late_frame_bridges_two_runs_into_one_sock():
    first = [Frame("Google", 90.0, t) for t in (0.0, 0.3)]
    second = [Frame("Google", 90.0, t) for t in (2.2, 2.5)]
    engine = Engine()
    events = feed_all(engine, first + second + [Frame("Google", 90.0, 1.2)])
    assert [e.frames for e in events if isinstance(e, SockConfirmed)] == [5]
    closed = engine.close_all()
    assert [(c.first_seen, c.last_seen, c.frames) for c in closed] == [(0.0, 2.5, 5)]


def test_a_version_1_state_resumes_and_an_unknown_version_is_refused():
    v1 = {"version": 1, "now": 0.9, "next_sighting": 7, "frames": 3, "counts": {"Mongo": 1},
          "runs": [["", "Google", 0.3, 0.9, 3, 270.0, [0.3, 0.6, 0.9], None, 0]]}
    engine = Engine(EngineConfig(), v1)
    (sock,) = engine.feed(Frame("Google", 90.0, 1.2))
    assert (sock.sighting, sock.first_seen, sock.frames, sock.row.number_socks_seen) == (7, 0.3, 4, 1)
    assert engine.snapshot()["version"] == 2
    with pytest.raises(ConfigError, match="version 3"):
        Engine(EngineConfig(), dict(engine.snapshot(), version=3))


# --- properties ---------------------------------------------------------------

LABELS = DESIGNS[:3] + ["Blank", UNKNOWN]


@st.composite
def camera_streams(draw):
    """Per camera, frames in ``ts`` order (ghost-heavy), each camera with its own skew."""
    cameras = {}
    for camera in draw(st.lists(st.sampled_from(["", "left", "right"]), min_size=1, max_size=3, unique=True)):
        skew = draw(st.floats(-400, 400))
        steps = draw(st.lists(st.tuples(st.sampled_from(LABELS), st.floats(0.0, 2.5), st.floats(0, 100)),
                              max_size=80))
        t, frames = 1000.0 + skew, []
        for image, dt, prob in steps:
            t += dt
            frames.append(Frame(image, prob, round(t, 3), camera))
        cameras[camera] = frames
    return cameras


def arrival(cameras, rnd, m, outliers):
    """One arrival order: each camera's frames reordered so that no frame is
    overtaken by ``m`` or more later-stamped frames of its camera (up to
    ``outliers`` stray frames stamped far ahead arrive early, the rest move
    less), and the cameras interleaved at random."""
    queues = []
    for frames in cameras.values():
        frames = list(frames)
        n_out = min(outliers, len(frames))
        if n_out:
            end = frames[-1].ts
            strays = [f._replace(ts=round(end + 290.0 + i, 3)) for i, f in enumerate(rnd.sample(frames, n_out))]
        else:
            strays = []
        shift = m - n_out  # displacement by positions: overtaken by at most shift - 1 frames
        keyed = sorted(range(len(frames)), key=lambda i: (i + rnd.randint(0, shift), i))
        order = [frames[i] for i in keyed]
        for stray in strays:
            order.insert(rnd.randint(0, len(order)), stray)
        queues.append(order)
    out = []
    while any(queues):
        q = rnd.choice([q for q in queues if q])
        out.append(q.pop(0))
    return out


@settings(max_examples=200, deadline=None)
@given(cameras=camera_streams(), seed=st.integers(0, 2 ** 32), outliers=st.integers(0, 3),
       mode=st.sampled_from(["sighting", "tumbling"]))
def test_any_interleaving_skew_and_bounded_delay_counts_as_the_ordered_stream(cameras, seed, outliers, mode):
    config = EngineConfig(mode=mode)
    frames = arrival(cameras, random.Random(seed), config.min_frames, outliers)
    engine = Engine(config)
    events = feed_all(engine, frames)
    assert not [e for e in events if isinstance(e, FrameLate)]
    assert engine_counts(engine) == ordered_counts(frames, config)
    ordered = Engine(config)
    feed_all(ordered, sorted(frames, key=lambda f: f.ts))
    assert engine_counts(ordered) == engine_counts(engine)
    # every frame lands in exactly one run
    events += engine.close_all()
    counted = [f for f in frames if f.label != "Blank"]
    assert sum(e.frames for e in events if isinstance(e, SightingClosed)) == len(counted)
    ids = [e.sighting for e in events if isinstance(e, SockConfirmed)]
    assert sorted(ids) == list(range(1, len(ids) + 1))


@settings(max_examples=150, deadline=None)
@given(cameras=camera_streams(), seed=st.integers(0, 2 ** 32), cut=st.integers(0, 250),
       mode=st.sampled_from(["sighting", "tumbling"]))
def test_disordered_chunked_replay_with_snapshot_restore_equals_one_pass(cameras, seed, cut, mode):
    config = EngineConfig(mode=mode)
    frames = arrival(cameras, random.Random(seed), config.min_frames, 1)
    whole = Engine(config)
    whole_events = feed_all(whole, frames)
    first = Engine(config)
    events = feed_all(first, frames[:cut])
    second = Engine(config, json.loads(json.dumps(first.snapshot())))
    events += feed_all(second, frames[cut:])
    assert second.snapshot() == whole.snapshot()
    assert events == whole_events


@settings(max_examples=100, deadline=None)
@given(cameras=camera_streams(), seed=st.integers(0, 2 ** 32), ticks=st.lists(st.floats(0, 3000), max_size=20))
def test_wall_clock_ticks_never_change_a_count(cameras, seed, ticks):
    frames = arrival(cameras, random.Random(seed), EngineConfig().min_frames, 1)
    plain, ticked = Engine(), Engine()
    feed_all(plain, frames)
    rnd = random.Random(seed)
    for frame in frames:
        ticked.feed(frame)
        if ticks and rnd.random() < 0.1:
            ticked.tick(1000.0 + ticks[rnd.randrange(len(ticks))])
    assert engine_counts(ticked) == engine_counts(plain)


@settings(max_examples=200, deadline=None)
@given(cameras=camera_streams(), seed=st.integers(0, 2 ** 32), mode=st.sampled_from(["sighting", "tumbling"]))
def test_in_any_order_whatever_is_not_late_counts_exactly(cameras, seed, mode):
    """Never confidently wrong: past the bound frames come back as FrameLate
    (dead letters), and the counts are those of the frames taken, in order."""
    config = EngineConfig(mode=mode)
    frames = [f for frames in cameras.values() for f in frames]
    random.Random(seed).shuffle(frames)
    engine = Engine(config)
    late = {id(e.frame) for e in feed_all(engine, frames) if isinstance(e, FrameLate)}
    taken = [f for f in frames if id(f) not in late]
    assert engine_counts(engine) == ordered_counts(taken, config)
