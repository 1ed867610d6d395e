"""The engine's state: runs, cameras, and their JSON form (versions 1 to 3). Pure, Python 3.7.

A *run* (:class:`Run`) is the frames of one design from one camera that belong
together. Its ``sighting`` says where it is: ``None`` not (yet) a sock, ``0`` a
sock *waiting* to be published (it could still merge into a published one, see
docs/time.md), ``n > 0`` published as sighting ``n``.

A camera (:class:`Camera`) holds its clock (a min-heap of the ``min_frames``
latest times it moved to; its watermark is the heap's least less ``lateness``), the
receive time it last sent at (``seen``, only where receive times are given) and the
lags its clock bound is measured over (:mod:`sortcore.core.clocks`; not kept in the
state: they start again at zero). The state keeps each camera's watermark
(``mark``): resumed, even with another ``lateness``, the heap is raised to it plus
the allowance, so a watermark never moves back.
"""

import math
from typing import Dict, Optional

from .errors import ConfigError
from .events import SightingClosed

STATE_VERSION = 3
INF = math.inf


class Run:
    """One open run of one (camera, design). ``times``: the sorted times that may
    still complete ``min_frames`` within ``window`` (unconfirmed sighting runs,
    else None); ``reported``: the frame count :meth:`Engine.tick` last reported;
    ``at``: the event time it became a sock."""

    __slots__ = ("first", "last", "frames", "prob_sum", "times", "sighting", "window", "reported", "at")

    def __init__(self, first, window, times):
        self.first = self.last = first
        self.frames, self.prob_sum, self.times, self.window = 0, 0.0, times, window
        self.sighting = self.reported = self.at = None

    def to_list(self) -> list:
        return [getattr(self, name) for name in self.__slots__]

    @classmethod
    def from_list(cls, items) -> "Run":
        run = cls.__new__(cls)
        for name, value in zip(cls.__slots__, items):
            setattr(run, name, value)
        for name in cls.__slots__[len(items):]:  # a version-2 run has no ``at``
            setattr(run, name, None)
        return run


class Camera:
    """One camera's clock and open runs (``designs``: label -> runs in time order);
    ``expiry``: a lower bound of when its earliest open run becomes final. ``low``: the
    clock it starts at (its watermark plus ``lateness``, when it had one)."""

    __slots__ = ("latest", "designs", "expiry", "seen", "lags", "lag_at")

    def __init__(self, size: int, low: float = -INF):
        self.latest = [low] * size
        self.designs = {}  # type: Dict[str, list]
        self.expiry = INF
        self.seen = None  # type: Optional[float]
        self.lags = None  # type: Optional[list]
        self.lag_at = 0


def _num(x):
    return None if x == -INF else x


def _inf(x):
    return -INF if x is None else x


def camera_state(cam: Camera, lateness: float) -> dict:
    """One camera as JSON-ready data (a row of its own in the store)."""
    return {"clock": [_num(x) for x in cam.latest], "mark": _num(cam.latest[0] - lateness), "seen": cam.seen,
            "runs": [[label] + run.to_list() for label, runs in cam.designs.items() for run in runs]}


def camera_from_state(data: dict, size: int, lateness: float, expiry_of) -> Camera:
    cam = Camera(size)
    low = _inf(data.get("mark")) + lateness
    cam.latest = [max(_inf(x), low) for x in data["clock"]]  # still a heap: the order is kept
    cam.seen = data.get("seen")
    for item in data["runs"]:
        run = Run.from_list(item[1:])
        cam.designs.setdefault(item[0], []).append(run)
        cam.expiry = min(cam.expiry, expiry_of(run))
    return cam


def upgrade(state: dict, tumbling: bool, size: int) -> dict:
    """A state of any known version as version 3; ConfigError for any other."""
    version = state.get("version")
    if version == 1:
        state, version = _upgrade_v1(state, tumbling), 2
    if version == 2:
        return _upgrade_v2(state, size)
    if version != STATE_VERSION:
        raise ConfigError("engine state version %r is not %d (nor 1 or 2)" % (version, STATE_VERSION))
    return state


def _upgrade_v1(state: dict, tumbling: bool) -> dict:
    """A version-1 state (one engine clock) as version 2: the cameras' clocks
    start empty (they fill again after ``min_frames`` frames each)."""
    runs = [[camera, label, first, last, frames, prob_sum, None if tumbling or sighting else sorted(ring),
             sighting, window, None]
            for camera, label, first, last, frames, prob_sum, ring, sighting, window in state["runs"]]
    return {"next_sighting": state["next_sighting"], "frames": state["frames"], "counts": state["counts"],
            "unknown": 0, "clocks": {}, "runs": runs}


def _upgrade_v2(state: dict, size: int) -> dict:
    """Version 2 (no lateness): each camera's watermark is its clock, as it was then."""
    cameras = {}
    for camera, latest in state["clocks"].items():
        known = [x for x in latest if x is not None]
        mark = min(known) if len(known) == len(latest) else None
        cameras[camera] = {"clock": latest, "mark": mark, "seen": None, "runs": []}
    for item in state["runs"]:
        camera = item[0]
        if camera not in cameras:
            cameras[camera] = {"clock": [None] * size, "mark": None, "seen": None, "runs": []}
        cameras[camera]["runs"].append(item[1:])
    return {"version": STATE_VERSION, "next_sighting": state["next_sighting"], "frames": state["frames"],
            "counts": state["counts"], "unknown": state["unknown"], "cameras": cameras, "floors": {}}


def merge(run: Run, other: Run):
    """Fold ``other`` (the later run) into ``run``: at most one of them is published."""
    run.last = other.last
    run.frames += other.frames
    run.prob_sum += other.prob_sum
    if other.sighting:
        run.sighting, run.reported, run.at = other.sighting, other.reported, other.at
    elif other.sighting == 0 and not run.sighting:
        run.at = other.at if run.sighting is None else min(run.at, other.at)
        run.sighting = 0
    if run.sighting is not None:
        run.times = None
    else:
        run.times = sorted(run.times + other.times)


def waiting(runs) -> int:
    """How many of ``runs`` are socks waiting to be published."""
    return sum(1 for run in runs if run.sighting == 0)


def closed(camera: str, label: str, run: Run, reason: str) -> SightingClosed:
    return SightingClosed(run.sighting, label, camera, run.first, run.last, run.frames,
                          run.prob_sum / run.frames, reason)
