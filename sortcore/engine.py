"""The de-ghosting, sock-counting engine. Pure: no I/O, no wall clock.

Frames carry their event time; :meth:`Engine.tick` moves the clock forward
when no frame comes. A *run* is the frames of one design from one camera that
belong together; a run that gathers enough frames is a confirmed sock (a
*sighting*), one that closes before that was a ghost.

Two modes:

``sighting`` (default)
    A run goes on while the design's successive frames are at most ``gap``
    seconds apart; it becomes one sock the moment ``min_frames`` of its frames
    fall within ``window`` seconds (a ring buffer of its last ``min_frames``
    frame times), however long it lasts and whatever window edges it crosses.
    Frames of other designs in between neither end a run nor count.

``tumbling``
    The original ksqlDB query: epoch-aligned windows of ``window`` seconds and
    per (design, window) a frame count; the frame that brings a count to
    ``min_frames`` (``HAVING count(*) > 3``) counts one sock.
"""

import collections
import math
from dataclasses import asdict, dataclass
from typing import Dict, List, NamedTuple, Optional, Tuple

from .errors import ConfigError

MODES = ("sighting", "tumbling")
STATE_VERSION = 1


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
    """A run became a sock; ``row`` is the design's updated pairs row."""

    sighting: int
    image: str
    camera: str
    first_seen: float
    confirmed_at: float
    frames: int
    mean_probability: float
    row: PairsRow


class SightingClosed(NamedTuple):
    """A run ended. ``sighting`` is None for a ghost (a run never confirmed).

    ``reason``: ``gap`` (the design came back after a gap), ``window`` (tumbling:
    the design's next frame fell in a later window), ``idle`` (the clock moved
    past the run) or ``end`` (:meth:`Engine.close_all`).
    """

    sighting: Optional[int]
    image: str
    camera: str
    first_seen: float
    last_seen: float
    frames: int
    mean_probability: float
    reason: str


class _Run:
    """The open run of one (camera, design)."""

    __slots__ = ("first", "last", "frames", "prob_sum", "ring", "sighting", "window")

    def __init__(self, first, min_frames, window):
        self.first = first
        self.last = first
        self.frames = 0
        self.prob_sum = 0.0
        self.ring = collections.deque(maxlen=min_frames)
        self.sighting = None
        self.window = window

    def to_list(self) -> list:
        return [self.first, self.last, self.frames, self.prob_sum, list(self.ring), self.sighting, self.window]


class Engine:
    """Turns frames into confirmed socks and pairs; see the module docstring."""

    def __init__(self, config: EngineConfig = EngineConfig(), state: Optional[dict] = None):
        self.config = config
        self._ignore = frozenset(label.lower() for label in config.ignore)
        self._tumbling = config.mode == "tumbling"
        # The config's numbers as plain attributes: feed() reads them per frame.
        self._window, self._gap = config.window, config.gap
        self._min_frames, self._min_probability = config.min_frames, config.min_probability
        self.now: Optional[float] = None
        self.next_sighting = 1
        self.frames = 0  # frames fed, ignored ones included
        self.counts: Dict[str, int] = {}
        self._runs: Dict[Tuple[str, str], _Run] = {}
        self._next_expiry = math.inf
        if state is not None:
            self._restore(state)

    # --- feeding -----------------------------------------------------------

    def feed(self, frame) -> list:
        """Process one frame (its ``ts`` must be set); return the events it caused."""
        t = frame.ts
        if t is None:
            raise ValueError("frame has no event time; set ts before feeding")
        self.frames += 1
        if self.now is None or t > self.now:
            self.now = t
        events = []
        label = frame.image
        if label.lower() in self._ignore or frame.probability < self._min_probability:
            if self.now > self._next_expiry:
                self._expire(self.now, events)
            return events
        key = (frame.camera, label)
        run = self._runs.get(key)
        if run is not None:
            if t < run.last:  # a late frame joins its run at the run's time
                t = run.last
            if self._ends(run, t):
                del self._runs[key]
                events.append(self._closed(key, run, "window" if self._tumbling else "gap"))
                run = None
        if self.now > self._next_expiry:
            self._expire(self.now, events)
        if run is None:
            run = _Run(t, self._min_frames, self._window_of(t))
            self._runs[key] = run
            # Feeding a run only moves its expiry later, so only a new run can
            # bring the next expiry forward.
            self._next_expiry = min(self._next_expiry, self._expiry(run))
        run.last = t
        run.frames += 1
        run.prob_sum += frame.probability
        if run.sighting is None:
            if self._tumbling:
                confirmed = run.frames >= self._min_frames
            else:
                ring = run.ring
                ring.append(t)
                confirmed = len(ring) == self._min_frames and t - ring[0] <= self._window
            if confirmed:
                events.append(self._confirm(key, run, t))
        return events

    def tick(self, now: float) -> list:
        """Move the clock to ``now`` (never backwards); close runs it leaves behind."""
        events = []
        if self.now is None or now > self.now:
            self.now = now
            if now > self._next_expiry:
                self._expire(now, events)
        return events

    def close_all(self) -> list:
        """Close every open run (reason ``end``), e.g. at the end of a log."""
        events = [self._closed(key, run, "end") for key, run in self._runs.items()]
        self._runs.clear()
        self._next_expiry = math.inf
        return events

    # --- the answer --------------------------------------------------------

    def table(self) -> List[PairsRow]:
        """The pairs table, one row per design with at least one sock."""
        return [pairs_row(image, n) for image, n in sorted(self.counts.items())]

    def odd(self) -> List[str]:
        """Designs with an odd sock left over."""
        return [image for image, n in sorted(self.counts.items()) if n % 2]

    @property
    def open_runs(self) -> int:
        return len(self._runs)

    # --- state -------------------------------------------------------------

    def snapshot(self) -> dict:
        """A JSON-ready copy of the state; ``Engine(config, state)`` resumes it."""
        return {
            "version": STATE_VERSION,
            "now": self.now,
            "next_sighting": self.next_sighting,
            "frames": self.frames,
            "counts": dict(self.counts),
            "runs": [[camera, image] + run.to_list() for (camera, image), run in self._runs.items()],
        }

    def _restore(self, state: dict):
        if state.get("version") != STATE_VERSION:
            raise ConfigError("engine state version %r is not %d" % (state.get("version"), STATE_VERSION))
        self.now = state["now"]
        self.next_sighting = state["next_sighting"]
        self.frames = state["frames"]
        self.counts = dict(state["counts"])
        for camera, image, first, last, frames, prob_sum, ring, sighting, window in state["runs"]:
            run = _Run(first, self.config.min_frames, window)
            run.last, run.frames, run.prob_sum, run.sighting = last, frames, prob_sum, sighting
            run.ring.extend(ring)
            self._runs[(camera, image)] = run
            self._next_expiry = min(self._next_expiry, self._expiry(run))

    # --- internals ---------------------------------------------------------

    def _window_of(self, t: float) -> int:
        return int(math.floor(t / self._window))

    def _ends(self, run: _Run, t: float) -> bool:
        if self._tumbling:
            return self._window_of(t) != run.window
        return t - run.last > self._gap

    def _expiry(self, run: _Run) -> float:
        """The clock time after which nothing can extend ``run``."""
        if self._tumbling:
            return (run.window + 1) * self._window  # the window's end
        return run.last + self._gap

    def _expire(self, now: float, events: list):
        nearest = math.inf
        for key in list(self._runs):
            run = self._runs[key]
            expiry = self._expiry(run)
            if now > expiry:
                del self._runs[key]
                events.append(self._closed(key, run, "idle"))
            elif expiry < nearest:
                nearest = expiry
        self._next_expiry = nearest

    def _confirm(self, key, run: _Run, t: float) -> SockConfirmed:
        camera, image = key
        run.sighting = self.next_sighting
        self.next_sighting += 1
        count = self.counts.get(image, 0) + 1
        self.counts[image] = count
        return SockConfirmed(
            run.sighting, image, camera, run.first, t, run.frames,
            run.prob_sum / run.frames, pairs_row(image, count),
        )

    @staticmethod
    def _closed(key, run: _Run, reason: str) -> SightingClosed:
        camera, image = key
        return SightingClosed(
            run.sighting, image, camera, run.first, run.last, run.frames,
            run.prob_sum / run.frames, reason,
        )
