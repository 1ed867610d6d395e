"""The de-ghosting, sock-counting engine. Pure: no I/O, no wall clock.

Frames carry their event time. A *run* is the frames of one design from one
camera that belong together; a run that gathers enough frames is a confirmed
sock (a *sighting*), one that closes before that was a ghost.

Two modes:

``sighting`` (default)
    A run goes on while the design's successive frames (in event time) are at
    most ``gap`` seconds apart; it becomes one sock the moment ``min_frames``
    of its frames fall within ``window`` seconds, however long it lasts and
    whatever window edges it crosses. Frames of other designs in between
    neither end a run nor count.

``tumbling``
    The original ksqlDB query: epoch-aligned windows of ``window`` seconds and
    per (design, window) a frame count; the frame that brings a count to
    ``min_frames`` (``HAVING count(*) > 3``) counts one sock.

Time (docs/time.md): each camera has its own event-time clock, the
``min_frames``-th latest ``ts`` it sent. Only it finalises that camera's runs;
a frame stamped before it is returned as :class:`FrameLate`, not counted.
:meth:`Engine.tick` only reports idle socks for display and finalises nothing.
Counts equal those of the stream sorted by ``ts`` whenever no frame is
overtaken by ``min_frames`` later-stamped frames of its camera.

The label :data:`UNKNOWN` (the classifier's open-set answer) makes runs like a
design, but a confirmed one is an *unrecognised sock*: counted in
:attr:`Engine.unknown`, never in the pairs table.
"""

import bisect
import heapq
import math
from dataclasses import asdict, dataclass
from typing import Dict, List, NamedTuple, Optional, Tuple

from .errors import ConfigError

MODES = ("sighting", "tumbling")
STATE_VERSION = 2
UNKNOWN = "Unknown"  # the classifier's open-set label, matched exactly
UNRECOGNISED = "Unrecognised"  # ``pair_seen`` of an unrecognised sock: never a pair, never odd


@dataclass(frozen=True)
class EngineConfig:
    """Engine parameters, validated on creation."""

    mode: str = "sighting"
    window: float = 5.0
    min_frames: int = 4
    gap: float = 1.5
    min_probability: float = 0.0
    ignore: Tuple[str, ...] = ("Blank",)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError("mode must be one of %s, not %r" % (", ".join(MODES), self.mode))
        for name in ("window", "gap"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError("%s must be a positive number of seconds, not %r" % (name, value))
        if not isinstance(self.min_frames, int) or self.min_frames < 1:
            raise ConfigError("min_frames must be an integer >= 1, not %r" % (self.min_frames,))
        if not 0 <= self.min_probability <= 100:
            raise ConfigError("min_probability must be in [0, 100], not %r" % (self.min_probability,))
        object.__setattr__(self, "ignore", tuple(self.ignore))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EngineConfig":
        return cls(**data)


class PairsRow(NamedTuple):
    """One design's line of the answer (the seed's ksqlDB columns)."""

    image: str
    number_socks_seen: int
    pair_seen: str
    pairs: int


def pairs_row(image: str, count: int) -> PairsRow:
    return PairsRow(image, count, "Pair" if count % 2 == 0 else "Un-matched", count // 2)


class SockConfirmed(NamedTuple):
    """A run became a sock; ``row`` is the design's updated pairs row (for
    :data:`UNKNOWN`: ``(UNKNOWN, unrecognised socks so far, UNRECOGNISED, 0)``)."""

    sighting: int
    label: str
    camera: str
    first_seen: float
    confirmed_at: float
    frames: int
    mean_probability: float
    row: PairsRow


class SightingClosed(NamedTuple):
    """A run ended. ``sighting`` is None for a ghost (a run never confirmed). ``reason``:
    ``gap`` (the design came back after a gap), ``window`` (tumbling: in a later window),
    ``idle`` (the camera's clock moved past the run; from :meth:`Engine.tick`: a report
    for display, the run stays open) or ``end`` (:meth:`Engine.close_all`)."""

    sighting: Optional[int]
    label: str
    camera: str
    first_seen: float
    last_seen: float
    frames: int
    mean_probability: float
    reason: str


class FrameLate(NamedTuple):
    """A frame stamped before its camera's clock: not counted (see the module doc)."""

    frame: tuple
    clock: float


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
        return [self.first, self.last, self.frames, self.prob_sum, self.times, self.sighting, self.window,
                self.reported]

    @classmethod
    def from_list(cls, items) -> "_Run":
        first, last, frames, prob_sum, times, sighting, window, reported = items
        run = cls(first, window, times)
        run.last, run.frames, run.prob_sum, run.sighting, run.reported = last, frames, prob_sum, sighting, reported
        return run


class Engine:
    """Turns frames into confirmed socks and pairs; see the module docstring."""

    def __init__(self, config: EngineConfig = EngineConfig(), state: Optional[dict] = None):
        self.config = config
        self._ignore = frozenset(label.lower() for label in config.ignore)
        self._tumbling = config.mode == "tumbling"
        # The config's numbers as plain attributes: feed() reads them per frame.
        self._window, self._gap = config.window, config.gap
        self._min_frames, self._min_probability = config.min_frames, config.min_probability
        self.next_sighting = 1
        self.frames = 0  # frames fed and taken, ignored ones included (late ones not)
        self.counts: Dict[str, int] = {}
        self.unknown = 0  # unrecognised socks
        self._latest: Dict[str, List[float]] = {}  # camera -> min-heap of its min_frames latest times
        self._runs: Dict[str, Dict[str, List[_Run]]] = {}  # camera -> design -> open runs in time order
        self._expiry: Dict[str, float] = {}  # camera -> a lower bound of its runs' expiries
        if state is not None:
            self._restore(state)

    # --- feeding -----------------------------------------------------------

    def clock(self, camera: str) -> float:
        """``camera``'s event-time clock (-inf until it sent ``min_frames`` frames)."""
        latest = self._latest.get(camera)
        return latest[0] if latest and len(latest) == self._min_frames else -math.inf

    def feed(self, frame) -> list:
        """Process one frame (its ``ts`` must be set); return the events it caused."""
        t = frame.ts
        if t is None:
            raise ValueError("frame has no event time; set ts before feeding")
        label, camera = frame.label, frame.camera
        ignored = label.lower() in self._ignore or frame.probability < self._min_probability
        latest = self._latest.get(camera)
        if latest is None:
            latest = self._latest[camera] = []
        if len(latest) < self._min_frames:
            heapq.heappush(latest, t)
            clock = latest[0] if len(latest) == self._min_frames else -math.inf
        else:
            clock = latest[0]
            if t < clock:
                if ignored:
                    self.frames += 1
                    return []
                return [FrameLate(frame, clock)]
            if t > clock:
                heapq.heapreplace(latest, t)
                clock = latest[0]
        self.frames += 1
        events = []
        if clock > self._expiry.get(camera, math.inf):
            self._expire(camera, clock, events)
        if not ignored:
            self._add(camera, label, t, frame.probability, clock, events)
        return events

    def _add(self, camera, label, t, probability, clock, events):
        runs = self._runs.setdefault(camera, {}).get(label)
        if runs is None:
            self._runs[camera][label] = runs = []
            run = None
        else:
            run = runs[-1]
        if self._tumbling:
            w = int(math.floor(t / self._window))
            if run is not None and w < run.window:  # out of order: an earlier window's run
                run = next((r for r in runs if r.window == w), None)
            if run is None or w != run.window:
                run = self._new_run(camera, runs, t, w)
            run.first, run.last = min(run.first, t), max(run.last, t)
            run.frames += 1
            run.prob_sum += probability
            if run.sighting is None and run.frames >= self._min_frames:
                events.append(self._confirm(camera, label, run, t))
        elif run is not None and t >= run.last and t - run.last <= self._gap:
            run.last = t
            run.frames += 1
            run.prob_sum += probability
            times = run.times
            if times is not None:
                times.append(t)
                m = self._min_frames
                if len(times) >= m and t - times[-m] <= self._window:
                    events.append(self._confirm(camera, label, run, t))
                elif len(times) > 2 * m:
                    del times[:bisect.bisect_left(times, clock - self._window)]
        elif run is None or t > run.last:
            run = self._new_run(camera, runs, t, None)
            self._join(camera, label, run, t, probability, events)
        else:
            self._insert(camera, label, runs, t, probability, events)

    def _new_run(self, camera, runs, t, window) -> _Run:
        run = _Run(t, window, None if self._tumbling else [])
        at = (lambda r: r.first) if window is None else (lambda r: r.window)
        if runs and at(run) < at(runs[-1]):  # out of order: keep the runs in time order
            runs.insert(bisect.bisect([at(r) for r in runs], at(run)), run)
        else:
            runs.append(run)
        # Feeding a run only moves its expiry later, so only a new run can
        # bring the camera's next expiry forward.
        self._expiry[camera] = min(self._expiry.get(camera, math.inf), self._expiry_of(run))
        return run

    def _join(self, camera, label, run, t, probability, events):
        """Add a frame to ``run`` in any order (sighting mode) and confirm it if it now holds."""
        run.first, run.last = min(run.first, t), max(run.last, t)
        run.frames += 1
        run.prob_sum += probability
        times = run.times
        if times is None:
            return
        bisect.insort(times, t)
        m, window = self._min_frames, self._window
        for j in range(len(times) - m + 1):
            if times[j + m - 1] - times[j] <= window:
                events.append(self._confirm(camera, label, run, times[j + m - 1]))
                return

    def _insert(self, camera, label, runs, t, probability, events):
        """A frame stamped before its design's latest run: join, bridge or start a run."""
        gap = self._gap
        near = [r for r in runs if r.first - t <= gap and t - r.last <= gap]
        if not near:
            run = self._new_run(camera, runs, t, None)
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
        self._join(camera, label, run, t, probability, events)

    def tick(self, now: float) -> list:
        """Report socks idle at ``now`` (e.g. wall-derived) for display; close nothing:
        a later frame still joins the run, which is reported again when it closes.
        Ghosts are only reported when final."""
        events = []
        for camera, designs in self._runs.items():
            for label, runs in designs.items():
                for run in runs:
                    if run.sighting is not None and run.reported != run.frames and now > self._expiry_of(run):
                        run.reported = run.frames
                        events.append(self._closed(camera, label, run, "idle"))
        return events

    def close_all(self) -> list:
        """Close every open run (reason ``end``), e.g. at the end of a log."""
        events = [self._closed(camera, label, run, "end")
                  for camera, designs in self._runs.items() for label, runs in designs.items() for run in runs]
        self._runs.clear()
        self._expiry.clear()
        return events

    # --- the answer --------------------------------------------------------

    def table(self) -> List[PairsRow]:
        """The pairs table, one row per design with at least one sock (never :data:`UNKNOWN`)."""
        return [pairs_row(image, n) for image, n in sorted(self.counts.items())]

    # --- state -------------------------------------------------------------

    def snapshot(self) -> dict:
        """A JSON-ready copy of the state; ``Engine(config, state)`` resumes it."""
        return {
            "version": STATE_VERSION, "next_sighting": self.next_sighting, "frames": self.frames,
            "counts": dict(self.counts), "unknown": self.unknown,
            "clocks": {camera: list(latest) for camera, latest in self._latest.items()},
            "runs": [[camera, label] + run.to_list() for camera, designs in self._runs.items()
                     for label, runs in designs.items() for run in runs],
        }

    def _restore(self, state: dict):
        version = state.get("version")
        if version == 1:
            state = _upgrade_v1(state, self._tumbling)
        elif version != STATE_VERSION:
            raise ConfigError("engine state version %r is not %d (nor 1)" % (version, STATE_VERSION))
        self.next_sighting, self.frames, self.unknown = state["next_sighting"], state["frames"], state["unknown"]
        self.counts = dict(state["counts"])
        self._latest = {camera: list(latest) for camera, latest in state["clocks"].items()}
        for item in state["runs"]:
            camera, label, run = item[0], item[1], _Run.from_list(item[2:])
            self._runs.setdefault(camera, {}).setdefault(label, []).append(run)
            self._expiry[camera] = min(self._expiry.get(camera, math.inf), self._expiry_of(run))

    def _expiry_of(self, run: _Run) -> float:
        """The camera-clock time after which no frame can extend ``run``."""
        return (run.window + 1) * self._window if self._tumbling else run.last + self._gap

    def _expire(self, camera: str, clock: float, events: list):
        """Close the runs of ``camera`` its clock has passed."""
        designs = self._runs.get(camera, {})
        nearest = math.inf
        for label in list(designs):
            runs = designs[label]
            keep = []
            for i, run in enumerate(runs):
                expiry = self._expiry_of(run)
                if clock > expiry:
                    reason = ("window" if self._tumbling else "gap") if i < len(runs) - 1 else "idle"
                    events.append(self._closed(camera, label, run, reason))
                else:
                    keep.append(run)
                    nearest = min(nearest, expiry)
            if not keep:
                del designs[label]
            elif len(keep) < len(runs):
                designs[label] = keep
        self._expiry[camera] = nearest

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
    runs = []
    for camera, label, first, last, frames, prob_sum, ring, sighting, window in state["runs"]:
        times = None if tumbling or sighting is not None else sorted(ring)
        runs.append([camera, label, first, last, frames, prob_sum, times, sighting, window, None])
    return {"next_sighting": state["next_sighting"], "frames": state["frames"], "counts": state["counts"],
            "unknown": 0, "clocks": {}, "runs": runs}
