"""The engine's configuration and the events it emits (re-exported by :mod:`sortcore.core.engine`)."""

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple, Optional, Tuple

from .errors import ConfigError

MODES = ("sighting", "tumbling")
# The labels with a meaning of their own, here and nowhere else:
UNKNOWN = "Unknown"  # the classifier's open-set label (a sock it cannot name), matched exactly
BLANK = "Blank"  # no sock in the frame (the wall); ignored by default (setting ``ignore``)
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
    # Time and bounds (docs/time.md); a session resumes when only these differ (RESUMABLE).
    lateness: float = 30.0
    silence: float = 5.0
    max_cameras: int = 1000
    camera_idle: float = 300.0

    RESUMABLE = ("lateness", "silence", "max_cameras", "camera_idle")

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError("mode must be one of %s, not %r" % (", ".join(MODES), self.mode))
        for name in ("window", "gap"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError("%s must be a positive number of seconds, not %r" % (name, value))
        for name in ("lateness", "silence", "camera_idle"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError("%s must be a number of seconds >= 0, not %r" % (name, value))
        for name, low in (("min_frames", 1), ("max_cameras", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ConfigError("%s must be an integer >= %d, not %r" % (name, low, value))
        if not 0 <= self.min_probability <= 100:
            raise ConfigError("min_probability must be in [0, 100], not %r" % (self.min_probability,))
        object.__setattr__(self, "ignore", tuple(self.ignore))

    def to_dict(self) -> dict:
        return asdict(self)

    def same_session(self, other: "EngineConfig") -> bool:
        """Whether a session counted with ``other`` may resume with this config: they
        differ at most in time allowances and bounds (the engine state keeps each camera's
        watermark, so a resumed state stays exact with any of them)."""
        mine, theirs = self.to_dict(), other.to_dict()
        for name in self.RESUMABLE:
            del mine[name], theirs[name]
        return mine == theirs

    @classmethod
    def from_dict(cls, data: dict) -> "EngineConfig":
        return cls(**data)


class PairsRow(NamedTuple):
    """One design's line of the answer (the seed's ksqlDB columns)."""

    image: str
    number_socks_seen: int
    pair_seen: str
    pairs: int


PAIR, UNMATCHED = "Pair", "Un-matched"  # ``pair_seen``: the seed's words


def pairs_row(image: str, count: int) -> PairsRow:
    """The pair rule, the one place it is decided: an even count is paired, ``count // 2``
    pairs. The store's ``pairs`` view is generated from :data:`PAIRS_SQL`, its SQL form."""
    return PairsRow(image, count, PAIR if count % 2 == 0 else UNMATCHED, count // 2)


#: :func:`pairs_row`'s columns as SQL over ``count(*)`` (tests/test_store.py checks both agree)
PAIRS_SQL = ("count(*) as number_socks_seen, case when count(*) % 2 = 0 then '{}' else '{}' end as pair_seen, "
             "count(*) / 2 as pairs").format(PAIR, UNMATCHED)


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
    """A frame stamped before its camera's watermark (its clock less ``lateness``):
    not counted (docs/time.md). ``clock`` is that watermark."""

    frame: tuple
    clock: float


class FrameRefused(NamedTuple):
    """A frame the engine cannot count without being wrong or unbounded: ``reason`` says why
    (too many live cameras; it would join two socks already published)."""

    frame: tuple
    reason: str
