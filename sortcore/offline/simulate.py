"""Simulated sorting sessions: a realistic ``sockfound`` log and its truth.

A person holds up ``socks`` socks one after another in front of the wall; the
classifier emits ``fps`` frames a second (with jitter), mostly right, with
stray ghost frames of other designs at ``ghost_rate``. The truth has the same
shape as ``../shared/frame-logs/*.truth.json``: ``shown`` in order,
``sighting`` (socks per design: the right answer) and ``tumbling`` (what the
seed's windowed query counts on this log).
"""

import collections
import io
import json
import random
import time
from typing import List, Optional, Sequence, Tuple

from ..core.engine import BLANK, Engine, EngineConfig
from ..core.frames import Frame
from .logfiles import read_frames

DESIGNS = ("Confluent", "Databricks", "Github", "Google", "Mongo", "Streamsets", "Running Science")


def simulate(designs: Optional[Sequence[str]] = None, socks: int = 20, fps: float = 3.5,
             ghost_rate: float = 0.06, wall: Tuple[float, float] = (1.8, 4.0),
             hold: Tuple[float, float] = (2.5, 6.0), seed: Optional[int] = None,
             start: Optional[float] = None, camera: str = "") -> Tuple[List[str], dict]:
    """Return ``(lines, truth)``; lines are ``"<unix seconds> <payload>"`` (``%U %p``).

    ``wall`` and ``hold`` are (min, max) seconds of wall between socks and of a
    sock in view. Keep ``wall[0]`` above the engine's ``gap`` (1.5 s) so two
    socks of one design shown in a row stay two socks.
    """
    rng = random.Random(seed)
    designs = list(designs or DESIGNS)
    t = time.time() if start is None else start
    lines = []

    def emit(image, low, high):
        payload = {"image": image, "probability": round(rng.uniform(low, high), 6)}
        if camera:
            payload["camera"] = camera
        lines.append("%.6f %s" % (t, json.dumps(payload)))

    def frames_for(seconds, image, near=()):
        """Frames of ``image`` for ``seconds``; ghosts are never of ``near`` designs."""
        nonlocal t
        others = [d for d in designs if d != image and d not in near] or designs
        end = t + seconds
        while t < end:
            if rng.random() < ghost_rate:
                emit(rng.choice(others), 30.0, 70.0)
            elif image == BLANK:
                emit(BLANK, 30.0, 75.0)
            else:
                emit(image, 55.0, 99.5)
            t += rng.uniform(0.85, 1.15) / fps

    shown = [rng.choice(designs) for _ in range(socks)]
    # A ghost of a neighbouring sock's design in the wall between two socks would
    # be indistinguishable from that sock, and could join two socks of one design.
    for i, design in enumerate(shown):
        frames_for(rng.uniform(*wall), BLANK, near=shown[max(0, i - 1):i + 1])
        frames_for(rng.uniform(*hold), design)
    frames_for(rng.uniform(*wall), BLANK, near=shown[-1:])
    truth = {
        "frames": len(lines),
        "shown": shown,
        "sighting": dict(collections.Counter(shown)),
        "tumbling": count(lines, EngineConfig(mode="tumbling")),
    }
    return lines, truth


def frames_of(lines: Sequence[str]) -> List[Frame]:
    """The frames of ``%U %p`` lines, decoded as replay decodes them."""
    data = io.BytesIO("\n".join(lines).encode("utf-8"))
    return [item for _, item in read_frames(data, "simulated") if isinstance(item, Frame)]


def count(lines: Sequence[str], config: EngineConfig) -> dict:
    """Socks per design the engine counts on ``%U %p`` lines (to their end: a sock still
    waiting for its camera's watermark is published then)."""
    engine = Engine(config)
    for frame in frames_of(lines):
        engine.feed(frame)
    engine.close_all()
    return dict(engine.counts)
