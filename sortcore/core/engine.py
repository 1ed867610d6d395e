"""The de-ghosting, sock-counting engine. Pure: no I/O, no wall clock.

A *run* is the frames of one design from one camera that belong together; a
run that gathers enough frames is a confirmed sock (a *sighting*), one that
closes before that was a ghost. Modes: ``sighting`` (default): a run goes on
while the design's frames are at most ``gap`` s apart in event time and is one
sock once ``min_frames`` of them fall within ``window`` s (frames of other
designs neither end nor count); ``tumbling``: the original ksqlDB query, one sock
per (design, epoch-aligned ``window``) that reaches ``min_frames``.

Time (docs/time.md): each camera's clock is the ``min_frames``-th latest ``ts`` it sent (with
receive times, each held back to :func:`sortcore.core.clocks.ceiling`), its *watermark* that clock
less ``lateness``. A frame stamped before the watermark is :class:`FrameLate`; every other frame
counts where its ``ts`` puts it, so counts equal those of the stream sorted by ``ts``. Only the
watermark finalises a camera's runs. A sock is published (:class:`SockConfirmed`) as soon as no
frame in bound could still merge it with another published sock of its design; until then it *waits*
(counted in :attr:`Engine.pending`). :meth:`Engine.tick` only reports idle socks;
:meth:`Engine.release` and :meth:`Engine.evict_idle` act on cameras that fell silent.
:data:`UNKNOWN` runs confirm as unrecognised socks (:attr:`Engine.unknown`), never pairs rows.
The person's word on a design found in the session: :meth:`Engine.relabel`, :meth:`Engine.forget`,
:meth:`Engine.move`.
"""

import bisect
import math
from heapq import heapreplace
from typing import Dict, List, Optional

from . import clocks
from .errors import ConfigError
from .events import (  # noqa: F401 - re-exported: the engine's public names stay importable from here
    BLANK, MODES, UNKNOWN, UNRECOGNISED, EngineConfig, FrameLate, FrameRefused, PairsRow, SightingClosed, SockConfirmed,
    pairs_row,
)
from .runs import INF as _INF, STATE_VERSION, Camera, Run, camera_from_state, camera_state, upgrade
from .runs import closed as _closed, merge as _merge, waiting as _waiting


class Engine(clocks.CameraLife):
    """Turns frames into confirmed socks and pairs; see the module docstring."""

    def __init__(self, config: EngineConfig = EngineConfig(), state: Optional[dict] = None):
        self.config = config
        self._ignore = frozenset(label.lower() for label in config.ignore)
        self._tumbling = config.mode == "tumbling"
        # The config's numbers as plain attributes: feed_many() reads them per batch.
        self._window, self._gap, self._lateness = config.window, config.gap, config.lateness
        self._min_frames, self._min_probability = config.min_frames, config.min_probability
        self.next_sighting = 1
        self.frames = 0  # frames fed and taken, ignored ones included (late ones not)
        self.counts: Dict[str, int] = {}
        self.unknown = 0  # unrecognised socks
        self.pending = 0  # socks confirmed but waiting to be published (docs/time.md)
        self._cameras: Dict[str, Camera] = {}
        self._floors: Dict[str, float] = {}  # evicted camera -> its watermark (bounded: clocks.FLOORS)
        self._touched = set()  # cameras whose state changed since changes()
        self._now = -_INF  # the latest receive time fed
        self._sweep_after = -_INF  # with max_cameras live: no look for idle ones before this time
        if state is not None:
            self._restore(state)
        self._hot = (self._cameras, self._ignore, self._min_probability, self._min_frames, self._tumbling,
                     self._window, self._gap, self._lateness)  # what feed_many() reads per batch

    def feed(self, frame, received_at: Optional[float] = None) -> list:
        """Process one frame (its ``ts`` must be set); return the events it caused.
        ``received_at``: when it arrived (serve); it bounds how far the frame moves its
        camera's clock (:func:`sortcore.core.clocks.ceiling`) and when the camera counts as idle."""
        if received_at is None or frame[2] is None:
            return self._feed((frame,), _INF)
        events = []
        camera = frame[3]
        if received_at > self._now:
            self._now = received_at
        cam = self._cameras.get(camera) or self._admit(camera, frame, events)
        if cam is None:
            return events
        cam.seen = received_at
        return events + self._feed((frame,), clocks.ceiling(cam, frame[2], received_at))

    def feed_many(self, frames) -> list:
        """Process :class:`~sortcore.core.frames.Frame` tuples in order (each with ``ts`` set);
        return the events they caused, in order. The hot path: one call per batch."""
        return self._feed(frames, _INF)

    def _feed(self, frames, ceiling: float) -> list:
        """:meth:`feed_many`, each frame moving its camera's clock at most to ``ceiling``."""
        events, touched, taken, name, cam = [], self._touched, 0, None, None
        cameras, ignore, min_p, m, tumbling, window, gap, lateness = self._hot
        try:
            for frame in frames:
                label, probability, t, camera, _ = frame
                if t is None:
                    raise ValueError("frame has no event time; set ts before feeding")
                if camera != name:  # frames of one camera mostly come together
                    cam = cameras.get(camera) or self._admit(camera, frame, events)
                    if cam is None:
                        continue
                    name = camera
                    touched.add(camera)
                latest, a = cam.latest, (t if t <= ceiling else ceiling)
                if a > latest[0]:  # then t >= the watermark: in bound
                    heapreplace(latest, a)
                    mark = latest[0] - lateness
                else:
                    mark = latest[0] - lateness
                    if t < mark and not (label.lower() in ignore or probability < min_p):
                        events.append(FrameLate(frame, mark))
                        continue
                taken += 1
                if mark > cam.expiry:
                    self._expire(camera, cam, mark, events)
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
                                self._confirm(camera, label, runs, run, t, events)
                            continue
                    elif 0 <= t - run.last <= gap and (run.times is None or len(run.times) < m):
                        run.last = t
                        run.frames += 1
                        run.prob_sum += probability
                        times = run.times
                        if times is not None:
                            times.append(t)
                            if len(times) == m and t - times[0] <= window:
                                self._confirm(camera, label, runs, run, t, events)
                        continue
                if self._add(frame, cam, mark, events):
                    taken -= 1
        finally:
            self.frames += taken
        return events

    def _add(self, frame, cam, mark, events) -> bool:
        """The general case: a new run, a later window, or a frame out of order.
        True when the frame was refused (:meth:`_insert`)."""
        label, probability, t, camera, _ = frame
        runs = cam.designs.get(label)
        if runs is None:
            cam.designs[label] = runs = []
        if self._tumbling:
            w = math.floor(t / self._window)
            if runs and runs[-1].window >= w:  # not a later window: it may have its run
                run = next((r for r in runs if r.window == w), None) or self._new_run(cam, runs, t, w)
            else:
                run = self._new_run(cam, runs, t, w)
            self._join(camera, label, runs, run, t, probability, mark, events)
            if run.sighting is None and run.frames >= self._min_frames:
                self._confirm(camera, label, runs, run, t, events)
        elif not runs or runs[-1].last <= t:
            run = runs[-1] if runs and t - runs[-1].last <= self._gap else self._new_run(cam, runs, t, None)
            self._join(camera, label, runs, run, t, probability, mark, events)
        else:
            return self._insert(frame, cam, runs, mark, events)
        return False

    def _new_run(self, cam, runs, t, window) -> Run:
        run = Run(t, window, None if self._tumbling else [])
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

    def _join(self, camera, label, runs, run, t, probability, mark, events):
        """Add a frame to ``run`` in any order; in sighting mode, confirm it if a group of
        ``min_frames`` times around it (the only new ones, after a bridge too) fits in
        ``window``. Times before ``mark - window`` can join no later group: dropped."""
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
                self._confirm(camera, label, runs, run, times[j + m - 1], events)
                return
        if len(times) > 2 * m:
            del times[:bisect.bisect_left(times, mark - self._window)]

    def _insert(self, frame, cam, runs, mark, events) -> bool:
        """A frame stamped before its design's latest run: join, bridge or start a run.
        A frame that would join two published socks is refused (True): only possible
        after :meth:`release` published a waiting sock early."""
        label, probability, t, camera, _ = frame
        gap = self._gap
        near = [r for r in runs if r.first - t <= gap and t - r.last <= gap]
        if not near:
            run = self._new_run(cam, runs, t, None)
        elif sum(1 for r in near if r.sighting) > 1:
            ids = ", ".join(str(r.sighting) for r in near if r.sighting)
            events.append(FrameRefused(frame, "it would join socks %s, already published apart" % ids))
            return True
        else:  # the frame bridges runs: one run, as in time order
            run, waiting = near[0], _waiting(near)
            for other in near[1:]:
                _merge(run, other)
                runs.remove(other)
            self.pending -= waiting - (run.sighting == 0)
        self._join(camera, label, runs, run, t, probability, mark, events)
        if len(near) > 1:
            self._settle(camera, label, runs, events)
        return False

    def _confirm(self, camera: str, label: str, runs: list, run: Run, t: float, events: list):
        """``run`` became a sock at ``t``: publish it, or let it wait while another sock of
        its design is published and open (a frame in bound could still merge the two)."""
        run.times, run.at = None, t
        if not self._tumbling:
            for other in runs:
                if other.sighting and other is not run:
                    run.sighting = 0
                    self.pending += 1
                    return
        self._publish(camera, label, run, events)

    def _settle(self, camera: str, label: str, runs: list, events: list):
        """Publish the earliest waiting sock of ``runs`` once none of them is published."""
        if not any(r.sighting for r in runs):
            waiting = next((r for r in runs if r.sighting == 0), None)
            if waiting is not None:
                self._publish(camera, label, waiting, events)

    def _publish(self, camera: str, label: str, run: Run, events: list):
        if run.sighting == 0:
            self.pending -= 1
        run.sighting = self.next_sighting
        self.next_sighting += 1
        if label == UNKNOWN:
            self.unknown += 1
            row = PairsRow(UNKNOWN, self.unknown, UNRECOGNISED, 0)
        else:
            count = self.counts.get(label, 0) + 1
            self.counts[label] = count
            row = pairs_row(label, count)
        events.append(SockConfirmed(run.sighting, label, camera, run.first, run.at, run.frames,
                                    run.prob_sum / run.frames, row))

    def _expire(self, camera: str, cam: Camera, mark: float, events: list):
        """Close the runs of ``camera`` its watermark has passed; publish what no longer waits.
        A design's runs end in time order, so only a prefix of them can be final."""
        tumbling, window, gap, nearest, emptied = self._tumbling, self._window, self._gap, _INF, []
        for label, runs in cam.designs.items():
            run = runs[0]
            expiry = (run.window + 1) * window if tumbling else run.last + gap
            if mark > expiry:
                expiry = self._close_final(camera, label, runs, mark, events)
                if not runs:
                    emptied.append(label)
            if expiry < nearest:
                nearest = expiry
        for label in emptied:
            del cam.designs[label]
        cam.expiry = nearest

    def _close_final(self, camera: str, label: str, runs: list, mark: float, events: list) -> float:
        """Close the runs of ``runs`` final at ``mark`` (a prefix); return the next expiry."""
        n, last, freed, expiry, tumbling = 0, len(runs) - 1, False, _INF, self._tumbling
        for run in runs:
            expiry = (run.window + 1) * self._window if tumbling else run.last + self._gap
            if mark <= expiry:
                break
            if run.sighting == 0:  # final: it can merge with nothing any more
                self._publish(camera, label, run, events)
            reason = ("window" if tumbling else "gap") if n < last else "idle"
            events.append(_closed(camera, label, run, reason))
            freed = freed or run.sighting is not None
            n += 1
        else:
            expiry = _INF
        del runs[:n]
        if freed and runs and not tumbling:
            self._settle(camera, label, runs, events)
        return expiry

    def _expiry_of(self, run: Run) -> float:
        """The watermark after which no frame can extend ``run``."""
        return (run.window + 1) * self._window if self._tumbling else run.last + self._gap

    # --- reports, the end, state --------------------------------------------

    def close_all(self) -> list:
        """Close every open run (reason ``end``; waiting socks are published first), e.g.
        at the end of a log."""
        events = []
        for camera, cam in self._cameras.items():
            for label, runs in cam.designs.items():
                for run in runs:
                    if run.sighting == 0:
                        self._publish(camera, label, run, events)
                    events.append(_closed(camera, label, run, "end"))
            cam.designs, cam.expiry = {}, _INF
            self._touched.add(camera)
        return events

    def relabel(self, old: str, new: str):
        """Count ``old``'s socks and open runs as ``new`` from now on (a design found in the
        session named, or merged into another): the socks add up, the runs go on."""
        if UNKNOWN in (old, new) or old == new:
            raise ConfigError("cannot relabel %r as %r" % (old, new))
        if old in self.counts:
            self.counts[new] = self.counts.get(new, 0) + self.counts.pop(old)
        for camera, cam in self._cameras.items():
            if old in cam.designs:
                into = cam.designs.setdefault(new, []) + cam.designs.pop(old)
                cam.designs[new] = sorted(into, key=lambda run: run.first if run.window is None else run.window)
                self._touched.add(camera)

    def forget(self, label: str) -> int:
        """Drop ``label``'s socks and open runs, waiting ones too (a thing the person says is
        not a sock); returns how many socks went (counted and waiting)."""
        if label == UNKNOWN:
            raise ConfigError("cannot forget %r" % label)
        socks, pending = self.counts.pop(label, 0), self.pending
        for camera, cam in self._cameras.items():
            runs = cam.designs.pop(label, None)
            if runs is not None:
                self.pending -= _waiting(runs)
                self._touched.add(camera)
        return socks + pending - self.pending

    def move(self, old: str, new: str):
        """Count one of ``old``'s socks as ``new`` (the person says a sock is not of its design);
        its open runs stay as they are."""
        if UNKNOWN in (old, new) or old == new or self.counts.get(old, 0) < 1:
            raise ConfigError("cannot count a sock of %r as %r" % (old, new))
        self.counts[old] -= 1
        if not self.counts[old]:
            del self.counts[old]
        self.counts[new] = self.counts.get(new, 0) + 1

    def labels(self) -> set:
        """Every design with a sock counted or a run open."""
        return set(self.counts) | {label for cam in self._cameras.values() for label in cam.designs}

    def table(self) -> List[PairsRow]:
        """The pairs table, one row per design with at least one sock (never :data:`UNKNOWN`)."""
        return [pairs_row(image, n) for image, n in sorted(self.counts.items())]

    def _head(self) -> dict:
        return {"version": STATE_VERSION, "next_sighting": self.next_sighting, "frames": self.frames,
                "counts": dict(self.counts), "unknown": self.unknown}

    def snapshot(self) -> dict:
        """A JSON-ready copy of the whole state; ``Engine(config, state)`` resumes it."""
        state = self._head()
        state["cameras"] = {camera: camera_state(cam, self._lateness) for camera, cam in self._cameras.items()}
        state["floors"] = dict(self._floors)
        return state

    def changes(self):
        """``(head, cameras)``: the state without its cameras, and each camera changed since
        the last call as its state (``{"floor": mark}`` once evicted, None once forgotten).
        The store writes only these (:meth:`sortcore.store.database.Store.commit`)."""
        rows = {}
        for camera in self._touched:
            cam = self._cameras.get(camera)
            if cam is not None:
                rows[camera] = camera_state(cam, self._lateness)
            else:
                floor = self._floors.get(camera)
                rows[camera] = None if floor is None else {"floor": floor}
        self._touched = set()
        return self._head(), rows

    def touch(self, cameras):
        """Have the next :meth:`changes` give ``cameras`` again (their write failed)."""
        self._touched.update(cameras)

    def _restore(self, state: dict):
        state = upgrade(state, self._tumbling, self._min_frames)
        self.next_sighting, self.frames, self.unknown = state["next_sighting"], state["frames"], state["unknown"]
        self.counts = dict(state["counts"])
        self._cameras = {camera: camera_from_state(data, self._min_frames, self._lateness, self._expiry_of)
                         for camera, data in state["cameras"].items()}
        self._floors = dict(state.get("floors") or {})
        self.pending = sum(_waiting(runs) for cam in self._cameras.values() for runs in cam.designs.values())

