"""The de-ghosting, sock-counting engine. Pure: no I/O, no wall clock.

A *run* is the frames of one design from one camera that belong together; a
run that gathers enough frames is a confirmed sock (a *sighting*), one that
closes before that was a ghost. Modes: ``sighting`` (default): a run goes on
while the design's frames are at most ``gap`` s apart in event time and is one
sock the moment ``min_frames`` of them fall within ``window`` s (frames of
other designs neither end nor count); ``tumbling``: the original ksqlDB query,
one sock per (design, epoch-aligned ``window``) that reaches ``min_frames``.

Time (docs/time.md): each camera's clock is the ``min_frames``-th latest ``ts``
it sent, and only it finalises that camera's runs; a frame stamped before it is
:class:`FrameLate`, not counted. :meth:`Engine.tick` only reports idle socks.
Counts equal those of the stream sorted by ``ts`` whenever no frame is
overtaken by ``min_frames`` later-stamped frames of its camera.
:data:`UNKNOWN` runs confirm as unrecognised socks (:attr:`Engine.unknown`),
never pairs rows.
"""

import bisect
import math
from heapq import heapreplace
from typing import Dict, List, Optional

from .errors import ConfigError
from .events import (  # noqa: F401 - re-exported: the engine's public names stay importable from here
    MODES, UNKNOWN, UNRECOGNISED, EngineConfig, FrameLate, PairsRow, SightingClosed, SockConfirmed, pairs_row,
)

STATE_VERSION = 2
_INF = math.inf


class _Run:
    """One open run of one (camera, design). ``times``: the sorted times that may
    still complete ``min_frames`` within ``window`` (unconfirmed sighting runs,
    else None); ``reported``: the frame count :meth:`Engine.tick` last reported."""

    __slots__ = ("first", "last", "frames", "prob_sum", "times", "sighting", "window", "reported")

    def __init__(self, first, window, times):
        self.first = self.last = first
        self.frames, self.prob_sum, self.times, self.window = 0, 0.0, times, window
        self.sighting = self.reported = None

    def to_list(self) -> list:
        return [getattr(self, name) for name in self.__slots__]

    @classmethod
    def from_list(cls, items) -> "_Run":
        run = cls.__new__(cls)
        for name, value in zip(cls.__slots__, items):
            setattr(run, name, value)
        return run


class _Camera:
    """A camera's clock (min-heap of its ``min_frames`` latest ts), open runs, and their expiry's lower bound."""

    __slots__ = ("latest", "designs", "expiry")

    def __init__(self, latest):
        self.latest, self.designs, self.expiry = latest, {}, _INF


class Engine:
    """Turns frames into confirmed socks and pairs; see the module docstring."""

    def __init__(self, config: EngineConfig = EngineConfig(), state: Optional[dict] = None):
        self.config = config
        self._ignore = frozenset(label.lower() for label in config.ignore)
        self._tumbling = config.mode == "tumbling"
        # The config's numbers as plain attributes: feed_many() reads them per batch.
        self._window, self._gap = config.window, config.gap
        self._min_frames, self._min_probability = config.min_frames, config.min_probability
        self.next_sighting = 1
        self.frames = 0  # frames fed and taken, ignored ones included (late ones not)
        self.counts: Dict[str, int] = {}
        self.unknown = 0  # unrecognised socks
        self._cameras: Dict[str, _Camera] = {}
        if state is not None:
            self._restore(state)


    def clock(self, camera: str) -> float:
        """``camera``'s event-time clock (-inf until it sent ``min_frames`` frames)."""
        cam = self._cameras.get(camera)
        return cam.latest[0] if cam else -_INF

    def feed(self, frame) -> list:
        """Process one frame (its ``ts`` must be set); return the events it caused."""
        return self.feed_many((frame,))

    def feed_many(self, frames) -> list:
        """Process :class:`~sortcore.frames.Frame` tuples in order (each with ``ts`` set);
        return the events they caused, in order. The hot path: one call per batch."""
        events = []
        cameras, ignore, min_p, m = self._cameras, self._ignore, self._min_probability, self._min_frames
        tumbling, window, gap, taken = self._tumbling, self._window, self._gap, 0
        try:
            for frame in frames:
                label, probability, t, camera, _ = frame
                if t is None:
                    raise ValueError("frame has no event time; set ts before feeding")
                cam = cameras.get(camera)
                if cam is None:
                    cam = cameras[camera] = _Camera([-_INF] * m)
                latest = cam.latest
                clock = latest[0]
                if t > clock:
                    heapreplace(latest, t)
                    clock = latest[0]
                elif t < clock:  # late, unless it is ignored anyway
                    if label.lower() in ignore or probability < min_p:
                        taken += 1
                    else:
                        events.append(FrameLate(frame, clock))
                    continue
                taken += 1
                if clock > cam.expiry:
                    self._expire(camera, cam, clock, events)
                if label.lower() in ignore or probability < min_p:
                    continue
                runs = cam.designs.get(label)
                if runs is not None:  # the common case: the design's latest run, in time order
                    run = runs[-1]
                    if tumbling:
                        w = run.window
                        if w <= t / window < w + 1:  # floor(t / window) == w, exactly
                            if t > run.last:
                                run.last = t
                            elif t < run.first:
                                run.first = t
                            run.frames += 1
                            run.prob_sum += probability
                            if run.sighting is None and run.frames >= m:
                                events.append(self._confirm(camera, label, run, t))
                            continue
                    elif 0 <= t - run.last <= gap and (run.times is None or len(run.times) < m):
                        run.last = t
                        run.frames += 1
                        run.prob_sum += probability
                        times = run.times
                        if times is not None:
                            times.append(t)
                            if len(times) == m and t - times[0] <= window:
                                events.append(self._confirm(camera, label, run, t))
                        continue
                self._add(camera, cam, label, t, probability, clock, events)
        finally:
            self.frames += taken
        return events

    def _add(self, camera, cam, label, t, probability, clock, events):
        """The general case: a new run, a later window, or a frame out of order."""
        runs = cam.designs.get(label)
        if runs is None:
            cam.designs[label] = runs = []
        if self._tumbling:
            w = math.floor(t / self._window)
            if runs and runs[-1].window >= w:  # not a later window: it may have its run
                run = next((r for r in runs if r.window == w), None) or self._new_run(cam, runs, t, w)
            else:
                run = self._new_run(cam, runs, t, w)
            self._join(camera, label, run, t, probability, clock, events)
            if run.sighting is None and run.frames >= self._min_frames:
                events.append(self._confirm(camera, label, run, t))
        elif not runs or runs[-1].last <= t:
            run = runs[-1] if runs and t - runs[-1].last <= self._gap else self._new_run(cam, runs, t, None)
            self._join(camera, label, run, t, probability, clock, events)
        else:
            self._insert(camera, cam, label, runs, t, probability, clock, events)

    def _new_run(self, cam, runs, t, window) -> _Run:
        run = _Run(t, window, None if self._tumbling else [])
        if not runs or (runs[-1].first <= t if window is None else runs[-1].window <= window):
            runs.append(run)
        else:  # out of order: keep the runs in time order
            keys = [r.first for r in runs] if window is None else [r.window for r in runs]
            runs.insert(bisect.bisect(keys, t if window is None else window), run)
        # Feeding a run only moves its expiry later: only a new run brings it forward.
        expiry = self._expiry_of(run)
        if expiry < cam.expiry:
            cam.expiry = expiry
        return run

    def _join(self, camera, label, run, t, probability, clock, events):
        """Add a frame to ``run`` in any order; in sighting mode, confirm it if a group of
        ``min_frames`` times around it (the only new ones, after a bridge too) fits in
        ``window``. Times before ``clock - window`` can join no later group: dropped."""
        run.first, run.last = min(run.first, t), max(run.last, t)
        run.frames += 1
        run.prob_sum += probability
        times = run.times
        if times is None:
            return
        i = bisect.bisect(times, t)
        times.insert(i, t)
        m = self._min_frames
        for j in range(max(0, i - m + 1), min(i, len(times) - m) + 1):
            if times[j + m - 1] - times[j] <= self._window:
                events.append(self._confirm(camera, label, run, times[j + m - 1]))
                return
        if len(times) > 2 * m:
            del times[:bisect.bisect_left(times, clock - self._window)]

    def _insert(self, camera, cam, label, runs, t, probability, clock, events):
        """A frame stamped before its design's latest run: join, bridge or start a run."""
        gap = self._gap
        near = [r for r in runs if r.first - t <= gap and t - r.last <= gap]
        if not near:
            run = self._new_run(cam, runs, t, None)
        elif sum(1 for r in near if r.sighting is not None) > 1:  # cannot happen when t >= clock
            run = near[0]
        else:  # the frame bridges runs: one run, as in time order
            run = near[0]
            for other in near[1:]:
                run.last = other.last
                run.frames += other.frames
                run.prob_sum += other.prob_sum
                if other.sighting is not None:
                    run.sighting, run.reported = other.sighting, other.reported
                run.times = None if run.sighting is not None else sorted(run.times + other.times)
                runs.remove(other)
        self._join(camera, label, run, t, probability, clock, events)

    def tick(self, now: float) -> list:
        """Report socks idle at ``now`` (e.g. wall-derived) for display; close nothing:
        a later frame still joins the run, which is reported again when it closes.
        Ghosts are only reported when final."""
        events = []
        for camera, cam in self._cameras.items():
            for label, runs in cam.designs.items():
                for run in runs:
                    if run.sighting is not None and run.reported != run.frames and now > self._expiry_of(run):
                        run.reported = run.frames
                        events.append(self._closed(camera, label, run, "idle"))
        return events

    def close_all(self) -> list:
        """Close every open run (reason ``end``), e.g. at the end of a log."""
        events = [self._closed(camera, label, run, "end") for camera, cam in self._cameras.items()
                  for label, runs in cam.designs.items() for run in runs]
        for cam in self._cameras.values():
            cam.designs, cam.expiry = {}, _INF
        return events


    def relabel(self, old: str, new: str):
        """Count ``old``'s socks and open runs as ``new`` from now on (a design found in the
        session named, or merged into another): the socks add up, the runs go on."""
        if UNKNOWN in (old, new) or old == new:
            raise ConfigError("cannot relabel %r as %r" % (old, new))
        count = self.counts.pop(old, 0)
        if count:
            self.counts[new] = self.counts.get(new, 0) + count
        for cam in self._cameras.values():
            runs = cam.designs.pop(old, None)
            if runs:
                into = cam.designs.setdefault(new, [])
                into.extend(runs)
                into.sort(key=lambda run: run.first if run.window is None else run.window)

    def table(self) -> List[PairsRow]:
        """The pairs table, one row per design with at least one sock (never :data:`UNKNOWN`)."""
        return [pairs_row(image, n) for image, n in sorted(self.counts.items())]


    def snapshot(self) -> dict:
        """A JSON-ready copy of the state; ``Engine(config, state)`` resumes it."""
        return {
            "version": STATE_VERSION, "next_sighting": self.next_sighting, "frames": self.frames,
            "counts": dict(self.counts), "unknown": self.unknown,
            "clocks": {camera: [None if x == -_INF else x for x in cam.latest] for camera, cam in self._cameras.items()},
            "runs": [[camera, label] + run.to_list() for camera, cam in self._cameras.items()
                     for label, runs in cam.designs.items() for run in runs],
        }

    def _restore(self, state: dict):
        version = state.get("version")
        if version == 1:
            state = _upgrade_v1(state, self._tumbling)
        elif version != STATE_VERSION:
            raise ConfigError("engine state version %r is not %d (nor 1)" % (version, STATE_VERSION))
        self.next_sighting, self.frames, self.unknown = state["next_sighting"], state["frames"], state["unknown"]
        self.counts = dict(state["counts"])
        self._cameras = {camera: _Camera([-_INF if x is None else x for x in latest])
                         for camera, latest in state["clocks"].items()}
        for item in state["runs"]:
            camera, label, run = item[0], item[1], _Run.from_list(item[2:])
            cam = self._cameras.get(camera) or self._cameras.setdefault(camera, _Camera([-_INF] * self._min_frames))
            cam.designs.setdefault(label, []).append(run)
            cam.expiry = min(cam.expiry, self._expiry_of(run))

    def _expiry_of(self, run: _Run) -> float:
        """The camera-clock time after which no frame can extend ``run``."""
        return (run.window + 1) * self._window if self._tumbling else run.last + self._gap

    def _expire(self, camera: str, cam: _Camera, clock: float, events: list):
        """Close the runs of ``camera`` its clock has passed."""
        tumbling, window, gap = self._tumbling, self._window, self._gap
        nearest, done = _INF, []
        for label, runs in cam.designs.items():
            for i, run in enumerate(runs):
                expiry = (run.window + 1) * window if tumbling else run.last + gap
                if clock > expiry:
                    reason = ("window" if tumbling else "gap") if i < len(runs) - 1 else "idle"
                    events.append(self._closed(camera, label, run, reason))
                    done.append((label, run))
                elif expiry < nearest:
                    nearest = expiry
        for label, run in done:
            runs = cam.designs[label]
            runs.remove(run)
            if not runs:
                del cam.designs[label]
        cam.expiry = nearest

    def _confirm(self, camera: str, label: str, run: _Run, t: float) -> SockConfirmed:
        run.sighting = self.next_sighting
        run.times = None
        self.next_sighting += 1
        if label == UNKNOWN:
            self.unknown += 1
            row = PairsRow(UNKNOWN, self.unknown, UNRECOGNISED, 0)
        else:
            count = self.counts.get(label, 0) + 1
            self.counts[label] = count
            row = pairs_row(label, count)
        return SockConfirmed(run.sighting, label, camera, run.first, t, run.frames, run.prob_sum / run.frames, row)

    @staticmethod
    def _closed(camera: str, label: str, run: _Run, reason: str) -> SightingClosed:
        return SightingClosed(run.sighting, label, camera, run.first, run.last, run.frames,
                              run.prob_sum / run.frames, reason)


def _upgrade_v1(state: dict, tumbling: bool) -> dict:
    """A version-1 state (one engine clock) as version 2: the cameras' clocks
    start empty (they fill again after ``min_frames`` frames each)."""
    runs = [[camera, label, first, last, frames, prob_sum, None if tumbling or sighting else sorted(ring),
             sighting, window, None]
            for camera, label, first, last, frames, prob_sum, ring, sighting, window in state["runs"]]
    return {"next_sighting": state["next_sighting"], "frames": state["frames"], "counts": state["counts"],
            "unknown": 0, "clocks": {}, "runs": runs}
