"""Event time per camera (docs/time.md): stray future frames, skewed cameras,
outages and reordering give the counts of the stream sorted by ``ts``."""

import json
import math
import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sortcore.core.engine import UNKNOWN, Engine, EngineConfig, FrameLate, FrameRefused, SightingClosed, SockConfirmed
from sortcore.core.errors import ConfigError
from sortcore.core.frames import Frame
from sortcore.store.pipeline import Pipeline
from sortcore.store.database import Store

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


def counted(engine, frames, received=None):
    """Feed ``frames`` (with ``received(frame)`` as receive time, if given), then end the
    session: every sock, a waiting one too, is published by then."""
    events = []
    for frame in frames:
        events.extend(engine.feed(frame, None if received is None else received(frame)))
    return events + engine.close_all()


# --- the measurements of issues 20 and 25, at engine level ---------------------


def test_one_future_frame_does_not_make_a_session_late():
    events = counted(Engine(), [Frame("Google", 90.0, T0 + 290.0)] + session())
    assert socks_by_camera(events) == {"": 20}
    assert not [e for e in events if isinstance(e, FrameLate)]


@pytest.mark.parametrize("ahead", ["left", "right"])
def test_a_camera_3_s_behind_another_counts_all_its_socks(ahead):
    behind = "right" if ahead == "left" else "left"
    frames = session(camera=ahead) + session(camera=behind, skew=-3.0)
    frames.sort(key=lambda f: f.ts + (3.0 if f.camera == behind else 0.0))  # arrival: true time
    assert socks_by_camera(counted(Engine(), frames)) == {"left": 20, "right": 20}


def test_idle_ticks_during_an_outage_lose_no_delayed_frame():
    frames = session()
    engine = Engine()
    events = feed_all(engine, frames[:40])
    now = frames[39].ts
    for _ in range(120):  # 60 s of wall-clock ticks while the broker is down
        now += 0.5
        events += engine.tick(now)
    events += feed_all(engine, frames[40:])  # the buffered frames arrive, stamped in the past
    reported = [e for e in events if isinstance(e, SightingClosed)]
    assert reported and all(e.sighting is not None for e in reported)
    assert socks_by_camera(events + engine.close_all()) == {"": 20}


def test_frames_sent_at_reconnect_before_a_backlog_of_25_s_count_exactly():
    """Issue 25: paho sends the frames published while CONNACK is awaited before its
    buffered backlog; with them up to 28 s ahead of the backlog, every frame counts."""
    frames = session()
    backlog, window = frames[:-8], frames[-8:]  # the last two socks overtake the 24 s before them
    events = counted(Engine(), frames[:-40] + window + backlog[-32:])
    assert not [e for e in events if isinstance(e, (FrameLate, FrameRefused))]
    assert socks_by_camera(events) == {"": 20}


def test_ten_frames_stamped_290_s_ahead_of_their_receive_time_leave_the_next_session_exact():
    now = T0
    strays = [Frame("Blank", 90.0, now + 290.0 + 0.1 * k) for k in range(10)]
    engine = Engine()
    events = [e for f in strays for e in engine.feed(f, received_at=now)]
    assert engine.clock("") <= now  # held at the receive time: they count, they do not push
    events += counted(engine, session(base=now + 1.0), received=lambda f: f.ts + 0.05)
    assert not [e for e in events if isinstance(e, FrameLate)]
    assert socks_by_camera(events) == {"": 20}


def test_a_camera_an_hour_behind_keeps_its_measured_lag_against_frames_stamped_ahead():
    """Ten frames stamped 290 s ahead of their receive time among a camera's own, which
    are an hour behind: its clock stays its own (its lag is measured), nothing is late."""
    engine, events = Engine(), []
    for i, frame in enumerate(session(base=T0 - 3600.0)):
        received = frame.ts + 3600.05
        events += engine.feed(frame, received_at=received)
        if i % 3 == 2 and i < 30:  # a publisher sharing its topic, stamping ahead
            events += engine.feed(Frame("Blank", 90.0, received + 290.0), received_at=received)
            assert engine.clock("") <= frame.ts
    events += engine.close_all()
    assert not [e for e in events if isinstance(e, FrameLate)]
    assert socks_by_camera(events) == {"": 20}


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


def test_a_frame_within_the_allowance_joins_its_sock_and_one_beyond_it_is_late():
    engine = Engine(EngineConfig(lateness=20.0))
    events = feed_all(engine, [Frame("Google", 90.0, t) for t in (10.3, 10.6, 10.9, 10.0)])
    (sock,) = [e for e in events if isinstance(e, SockConfirmed)]
    assert (sock.first_seen, sock.frames) == (10.0, 4)
    feed_all(engine, [Frame("Blank", 90.0, 40.0 + 0.25 * k) for k in range(4)])
    assert (engine.clock(""), engine.watermark("")) == (40.0, 20.0)
    assert engine.feed(Frame("Mongo", 90.0, 20.0)) == []  # 20 s behind the clock: in bound
    assert engine.feed(Frame("Mongo", 90.0, 19.9)) == [FrameLate(Frame("Mongo", 90.0, 19.9), 20.0)]


def test_the_watermark_never_moves_back():
    engine = Engine(EngineConfig(lateness=10.0))
    feed_all(engine, [Frame("Blank", 90.0, 100.0 + k) for k in range(4)])
    assert engine.watermark("") == 90.0
    state = engine.snapshot()
    wider = Engine(EngineConfig(lateness=60.0), state)  # a restart with a wider allowance
    feed_all(wider, [Frame("Blank", 90.0, 104.0 + k) for k in range(4)])
    assert wider.watermark("") == 90.0  # its runs were closed at 90: what came before stays late
    assert isinstance(wider.feed(Frame("Google", 90.0, 89.0))[0], FrameLate)


def test_a_late_frame_bridges_two_runs_into_one_sock():
    first = [Frame("Google", 90.0, t) for t in (0.0, 0.3)]
    second = [Frame("Google", 90.0, t) for t in (2.2, 2.5)]
    engine = Engine()
    events = feed_all(engine, first + second + [Frame("Google", 90.0, 1.2)])
    assert [e.frames for e in events if isinstance(e, SockConfirmed)] == [5]
    closed = engine.close_all()
    assert [(c.first_seen, c.last_seen, c.frames) for c in closed] == [(0.0, 2.5, 5)]


def sock_at(start, design="Google", camera=""):
    return [Frame(design, 90.0, start + 0.25 * k, camera) for k in range(4)]


def test_a_sock_waits_while_a_frame_in_bound_could_merge_it_into_a_published_one():
    engine = Engine()
    (first,) = feed_all(engine, sock_at(0.0))
    assert first.sighting == 1
    assert feed_all(engine, sock_at(3.0)) == []  # a frame at 1.5-2.25 could still join the two
    assert (engine.counts, engine.pending) == ({"Google": 1}, 1)
    # the frame comes: one sock, as in time order, and nothing more is published
    assert feed_all(engine, [Frame("Google", 90.0, 1.9)]) == []
    assert (engine.counts, engine.pending) == ({"Google": 1}, 0)
    assert [(c.sighting, c.frames) for c in engine.close_all()] == [(1, 9)]


def test_a_waiting_sock_is_published_once_the_watermark_passes_the_sock_before_it():
    engine = Engine(EngineConfig(lateness=10.0))
    feed_all(engine, sock_at(0.0) + sock_at(3.0))
    events = feed_all(engine, [Frame("Blank", 90.0, 12.0 + 0.25 * k) for k in range(4)])
    assert events == []  # watermark 2.0: the first sock (0 .. 0.75) may still grow to 2.25
    assert feed_all(engine, [Frame("Blank", 90.0, 13.0)]) == []  # watermark 2.25: not past it yet
    events = feed_all(engine, [Frame("Blank", 90.0, 13.25)])
    confirmed = [e for e in events if isinstance(e, SockConfirmed)]
    assert [(e.sighting, e.first_seen, e.confirmed_at, e.row.number_socks_seen) for e in confirmed] == [
        (2, 3.0, 3.75, 2)]
    assert [(e.sighting, e.reason) for e in events if isinstance(e, SightingClosed)] == [(1, "gap")]


def test_tumbling_never_waits():
    engine = Engine(EngineConfig(mode="tumbling"))
    assert [e.sighting for e in feed_all(engine, sock_at(0.0) + sock_at(1.5))] == [1]  # one window
    assert [e.sighting for e in feed_all(engine, sock_at(5.0))] == [2]


def test_a_camera_silent_for_silence_s_publishes_its_waiting_sock_and_never_counts_it_twice():
    engine = Engine(EngineConfig(silence=5.0))
    for frame in sock_at(0.0) + sock_at(3.0):
        engine.feed(frame, received_at=frame.ts + 0.1)
    assert engine.release(8.0) == [] and engine.pending == 1  # silent 4.15 s
    (sock,) = engine.release(9.0)
    assert (sock.sighting, sock.first_seen, engine.counts) == (2, 3.0, {"Google": 2})
    # a frame that would join the two published socks is refused, not counted twice
    bridge = Frame("Google", 90.0, 1.9)
    (refused,) = engine.feed(bridge, received_at=60.0)
    assert isinstance(refused, FrameRefused) and "socks 1, 2" in refused.reason
    assert engine.feed(Frame("Google", 90.0, 3.9), received_at=60.0) == []  # the second goes on
    assert engine.frames == 9 and engine.counts == {"Google": 2}


def test_at_most_max_cameras_live_and_an_idle_one_is_evicted_keeping_its_watermark():
    engine = Engine(EngineConfig(max_cameras=2, camera_idle=60.0, lateness=10.0))
    for camera, at in (("a", 0.0), ("b", 50.0)):
        for frame in sock_at(at, camera=camera) + sock_at(at + 3.0, camera=camera):
            engine.feed(frame, received_at=frame.ts)
    assert engine.pending == 2
    (refused,) = engine.feed(Frame("Blank", 90.0, 55.0, "c"), received_at=55.0)
    assert isinstance(refused, FrameRefused) and "max_cameras" in refused.reason
    events = engine.feed(Frame("Google", 90.0, 70.0, "c"), received_at=70.0)  # "a" idle for 66.75 s
    assert [(e.sighting, e.camera) for e in events if isinstance(e, SockConfirmed)] == [(3, "a")]
    assert [(e.camera, e.reason) for e in events if isinstance(e, SightingClosed)] == [("a", "idle")] * 2
    assert sorted(engine.snapshot()["cameras"]) == ["b", "c"]
    assert engine.watermark("a") == 3.75 + 1.5 + 0.001
    refused = engine.feed(Frame("Google", 90.0, 5.0, "a"), received_at=71.0)  # back: no room
    assert [type(e) for e in refused] == [FrameRefused]
    events = engine.feed(Frame("Google", 90.0, 5.0, "a"), received_at=120.0)  # "b" is idle now
    assert [e.camera for e in events if isinstance(e, SockConfirmed)] == ["b"]
    assert isinstance(events[-1], FrameLate)  # it could have joined a sock counted already
    assert engine.feed(Frame("Google", 90.0, 6.0, "a"), received_at=120.0) == []
    assert engine.counts == {"Google": 4}


def test_evict_idle_forgets_cameras_silent_for_camera_idle_s():
    engine = Engine(EngineConfig(camera_idle=60.0))
    for frame in sock_at(0.0, camera="a") + sock_at(30.0, camera="b"):
        engine.feed(frame, received_at=frame.ts)
    assert engine.evict_idle(60.0) == []
    closed = engine.evict_idle(61.0)
    assert [(e.camera, e.sighting, e.reason) for e in closed] == [("a", 1, "idle")]
    assert sorted(engine.snapshot()["cameras"]) == ["b"]


def test_only_changed_cameras_are_written_and_they_rebuild_the_state():
    engine = Engine()
    feed_all(engine, sock_at(0.0, camera="a") + sock_at(0.0, camera="b"))
    head, rows = engine.changes()
    assert sorted(rows) == ["a", "b"] and "cameras" not in head
    feed_all(engine, [Frame("Mongo", 90.0, 1.0, "b")])
    head, more = engine.changes()
    assert sorted(more) == ["b"]
    rows.update(more)
    rebuilt = Engine(EngineConfig(), dict(head, cameras=rows, floors={}))
    assert rebuilt.snapshot() == engine.snapshot()


def test_older_states_resume_and_an_unknown_version_is_refused():
    v1 = {"version": 1, "now": 0.9, "next_sighting": 7, "frames": 3, "counts": {"Mongo": 1},
          "runs": [["", "Google", 0.3, 0.9, 3, 270.0, [0.3, 0.6, 0.9], None, 0]]}
    engine = Engine(EngineConfig(), v1)
    (sock,) = engine.feed(Frame("Google", 90.0, 1.2))
    assert (sock.sighting, sock.first_seen, sock.frames, sock.row.number_socks_seen) == (7, 0.3, 4, 1)
    assert engine.snapshot()["version"] == 3
    v2 = {"version": 2, "next_sighting": 2, "frames": 4, "counts": {"Google": 1}, "unknown": 0,
          "clocks": {"": [0.0, 0.25, 0.5, 0.75]}, "runs": [["", "Google", 0.0, 0.75, 4, 360.0, None, 1, None, None]]}
    engine = Engine(EngineConfig(), v2)
    assert engine.watermark("") == 0.0  # version 2 had no allowance: its clock was its watermark
    assert isinstance(engine.feed(Frame("Google", 90.0, -1.0))[0], FrameLate)
    assert engine.feed_many(sock_at(1.0)) == []  # joins the sock it resumed
    with pytest.raises(ConfigError, match="version 4"):
        Engine(EngineConfig(), dict(engine.snapshot(), version=4))


# --- properties ---------------------------------------------------------------

LABELS = DESIGNS[:3] + ["Blank", UNKNOWN]


@st.composite
def camera_streams(draw):
    """Per camera, frames in ``ts`` order, each camera with its own skew: either
    ghost-heavy noise, or socks (bursts of one design, few designs, pauses around
    ``gap``) so that socks of a design follow each other closely, wait and bridge."""
    cameras = {}
    for camera in draw(st.lists(st.sampled_from(["", "left", "right"]), min_size=1, max_size=3, unique=True)):
        skew = draw(st.floats(-400, 400))
        if draw(st.booleans()):
            steps = draw(st.lists(st.tuples(st.sampled_from(LABELS), st.floats(0.0, 2.5), st.floats(0, 100)),
                                  max_size=80))
        else:
            steps = []
            for image, n, dt, pause in draw(st.lists(st.tuples(
                    st.sampled_from(["Google", "Mongo", "Blank"]), st.integers(1, 6), st.floats(0.05, 0.6),
                    st.floats(0.5, 4.0)), max_size=14)):
                steps += [(image, pause if k == 0 else dt, 90.0) for k in range(n)]
        t, frames = 1000.0 + skew, []
        for image, dt, prob in steps:
            t += dt
            frames.append(Frame(image, prob, round(t, 3), camera))
        cameras[camera] = frames
    return cameras


def arrival(cameras, rnd, lateness, outliers):
    """One arrival order within the allowance: each camera's frames arrive in the order
    of ``ts`` plus a delay in [0, ``lateness``] (so none arrives after a frame of its
    camera stamped more than ``lateness`` later), up to ``outliers`` (< min_frames)
    stray frames stamped far ahead arrive anywhere, and the cameras interleave at random."""
    queues = []
    for frames in cameras.values():
        n_out = min(outliers, len(frames))
        end = frames[-1].ts if frames else 0.0
        strays = [f._replace(ts=round(end + 290.0 + i, 3)) for i, f in enumerate(rnd.sample(frames, n_out))]
        order = sorted(frames, key=lambda f: f.ts + rnd.uniform(0.0, lateness))
        for stray in strays:
            order.insert(rnd.randint(0, len(order)), stray)
        queues.append(order)
    out = []
    while any(queues):
        q = rnd.choice([q for q in queues if q])
        out.append(q.pop(0))
    return out


def published(events):
    return [e for e in events if isinstance(e, SockConfirmed)]


@settings(max_examples=200, deadline=None)
@given(cameras=camera_streams(), seed=st.integers(0, 2 ** 32), outliers=st.integers(0, 3),
       lateness=st.sampled_from([0.0, 3.0, 30.0]), mode=st.sampled_from(["sighting", "tumbling"]))
def test_any_permutation_within_the_allowance_counts_as_the_sorted_stream(cameras, seed, outliers, lateness, mode):
    """Issue 25: reordering within ``lateness`` is harmless. Whatever the interleaving, the
    skew between cameras and the delays within the allowance, no frame is late, every sock
    is published once, none is undone, and the counts are those of the stream sorted by ts."""
    config = EngineConfig(mode=mode, lateness=lateness)
    frames = arrival(cameras, random.Random(seed), lateness, outliers)
    engine = Engine(config)
    events = feed_all(engine, frames)
    assert not [e for e in events if isinstance(e, (FrameLate, FrameRefused))]
    early = engine_counts(engine)
    assert engine.pending == Engine(config, engine.snapshot()).pending  # kept as counted from the runs
    events += engine.close_all()
    assert engine.pending == 0
    assert engine_counts(engine) == ordered_counts(frames, config)
    assert all(n <= engine_counts(engine)[image] for image, n in early.items())
    ordered = Engine(config)
    counted(ordered, sorted(frames, key=lambda f: f.ts))
    assert engine_counts(ordered) == engine_counts(engine)
    # every frame lands in exactly one run; every sock is published exactly once
    counted_frames = [f for f in frames if f.label != "Blank"]
    assert sum(e.frames for e in events if isinstance(e, SightingClosed)) == len(counted_frames)
    ids = [e.sighting for e in published(events)]
    assert sorted(ids) == list(range(1, len(ids) + 1))
    closed = {e.sighting for e in events if isinstance(e, SightingClosed) and e.sighting}
    assert closed == set(ids)


@settings(max_examples=150, deadline=None)
@given(cameras=camera_streams(), seed=st.integers(0, 2 ** 32), cuts=st.lists(st.integers(0, 250), max_size=4),
       mode=st.sampled_from(["sighting", "tumbling"]))
def test_disordered_replay_restored_from_its_changed_cameras_equals_one_pass(cameras, seed, cuts, mode):
    """The state as the store keeps it (a head and a row per camera, rows written only
    when they changed) resumes exactly, at any cuts."""
    config = EngineConfig(mode=mode)
    frames = arrival(cameras, random.Random(seed), config.lateness, 1)
    whole = Engine(config)
    whole_events = feed_all(whole, frames)
    engine, rows, events, at = Engine(config), {}, [], 0
    for cut in sorted(cuts) + [len(frames)]:
        events += feed_all(engine, frames[at:cut])
        at = max(at, cut)
        head, changed = engine.changes()
        rows.update(changed)
        state = dict(head, cameras={c: r for c, r in rows.items() if r and "floor" not in r}, floors={})
        engine = Engine(config, json.loads(json.dumps(state)))
    assert engine.snapshot() == whole.snapshot()
    assert events == whole_events


@settings(max_examples=100, deadline=None)
@given(cameras=camera_streams(), seed=st.integers(0, 2 ** 32), ticks=st.lists(st.floats(0, 3000), max_size=20))
def test_wall_clock_ticks_never_change_a_count(cameras, seed, ticks):
    frames = arrival(cameras, random.Random(seed), EngineConfig().lateness, 1)
    plain, ticked = Engine(), Engine()
    feed_all(plain, frames)
    rnd = random.Random(seed)
    for frame in frames:
        ticked.feed(frame)
        if ticks and rnd.random() < 0.1:
            ticked.tick(1000.0 + ticks[rnd.randrange(len(ticks))])
    assert engine_counts(ticked) == engine_counts(plain)


@settings(max_examples=200, deadline=None)
@given(cameras=camera_streams(), seed=st.integers(0, 2 ** 32), mode=st.sampled_from(["sighting", "tumbling"]),
       lateness=st.sampled_from([0.0, 30.0]))
def test_in_any_order_whatever_is_not_late_counts_exactly(cameras, seed, mode, lateness):
    """Never confidently wrong: past the allowance frames come back as FrameLate
    (dead letters), and the counts are those of the frames taken, in order."""
    config = EngineConfig(mode=mode, lateness=lateness)
    frames = [f for frames in cameras.values() for f in frames]
    random.Random(seed).shuffle(frames)
    engine = Engine(config)
    late = {id(e.frame) for e in counted(engine, frames) if isinstance(e, FrameLate)}
    taken = [f for f in frames if id(f) not in late]
    assert engine_counts(engine) == ordered_counts(taken, config)


@settings(max_examples=150, deadline=None)
@given(cameras=camera_streams(), seed=st.integers(0, 2 ** 32), max_cameras=st.integers(1, 3),
       mode=st.sampled_from(["sighting", "tumbling"]))
def test_silences_and_evictions_never_count_a_sock_twice(cameras, seed, max_cameras, mode):
    """With receive times, cameras falling silent (waiting socks published early) and
    evicted (idle, or to make room): whatever is taken counts exactly as in time order,
    and each sock is published once; the rest is late or refused, never silent."""
    config = EngineConfig(mode=mode, max_cameras=max_cameras, camera_idle=20.0, silence=2.0)
    rnd = random.Random(seed)
    frames = arrival(cameras, rnd, config.lateness, 0)
    engine, events, now = Engine(config), [], 0.0
    for frame in frames:
        now += rnd.choice([0.05, 0.25, 3.0, 30.0])
        events += engine.feed(frame, received_at=now)
        if rnd.random() < 0.2:
            events += engine.release(now + rnd.uniform(0, 5)) + engine.evict_idle(now + rnd.uniform(0, 40))
    events += engine.close_all()
    dropped = {id(e.frame) for e in events if isinstance(e, (FrameLate, FrameRefused))}
    taken = [f for f in frames if id(f) not in dropped]
    assert engine_counts(engine) == ordered_counts(taken, config)
    ids = [e.sighting for e in published(events)]
    assert sorted(ids) == list(range(1, len(ids) + 1))
