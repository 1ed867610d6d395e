"""The picture that explains de-ghosting: frames per design over time.

Each frame is a dot on its design's row: filled when it belongs to a
confirmed sock, hollow red when it was a ghost. Confirmed socks are marked
where they were confirmed, and the seed's 5 s tumbling windows are drawn as
vertical lines so a sock across an edge is easy to see.
"""

import math
from dataclasses import replace
from typing import List, Sequence

from ..core.engine import Engine, EngineConfig, SightingClosed, SockConfirmed
from ..core.frames import Frame


def analyse(frames: Sequence[Frame], config: EngineConfig):
    """Run the engine; return (runs, confirmations): closed runs and SockConfirmed events."""
    engine = Engine(config)
    runs, confirmations = [], []
    for frame in frames:
        for event in engine.feed(frame):
            (confirmations if isinstance(event, SockConfirmed) else runs).append(event)
    runs.extend(engine.close_all())
    return runs, confirmations


def plot_timeline(frames: List[Frame], out: str, config: EngineConfig = EngineConfig(), title: str = ""):
    """Write the timeline of ``frames`` (with ``ts`` set) as an image to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not frames:
        raise ValueError("no frames to plot")
    runs, confirmations = analyse(frames, config)
    ignore = {label.lower() for label in config.ignore}
    designs = sorted({f.label for f in frames if f.label.lower() not in ignore})
    rows = {design: i for i, design in enumerate(designs)}
    t0 = frames[0].ts
    in_sock = [r for r in runs if isinstance(r, SightingClosed) and r.sighting is not None]

    def confirmed(frame):
        return any(r.label == frame.label and r.camera == frame.camera
                   and r.first_seen <= frame.ts <= r.last_seen for r in in_sock)

    fig, ax = plt.subplots(figsize=(max(8, min(40, (frames[-1].ts - t0) / 6)), 1.2 + 0.45 * max(1, len(designs))))
    good = [(f.ts - t0, rows[f.label]) for f in frames if f.label in rows and confirmed(f)]
    ghost = [(f.ts - t0, rows[f.label]) for f in frames if f.label in rows and not confirmed(f)]
    if good:
        ax.scatter(*zip(*good), s=14, color="tab:blue", label="frame of a confirmed sock")
    if ghost:
        ax.scatter(*zip(*ghost), s=22, facecolors="none", edgecolors="tab:red", label="ghost frame")
    if confirmations:
        ax.scatter([c.confirmed_at - t0 for c in confirmations], [rows[c.label] + 0.3 for c in confirmations],
                   marker="v", s=50, color="tab:green", label="sock counted (%s)" % config.mode)
    if config.mode != "tumbling":  # what the seed's windowed query would have counted
        _, seed_counts = analyse(frames, replace(config, mode="tumbling"))
        if seed_counts:
            ax.scatter([c.confirmed_at - t0 for c in seed_counts], [rows[c.label] - 0.3 for c in seed_counts],
                       marker="x", s=40, color="tab:orange", label="counted by tumbling windows")
    first = math.floor(t0 / config.window) * config.window
    edge = first
    while edge <= frames[-1].ts:
        ax.axvline(edge - t0, color="0.8", linewidth=0.8, zorder=0)
        edge += config.window
    ax.set_yticks(range(len(designs)))
    ax.set_yticklabels(designs)
    ax.set_ylim(-0.6, len(designs) - 0.3)
    ax.set_xlabel("seconds (grey lines: %g s tumbling-window edges)" % config.window)
    ax.set_title(title or "frames per design")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small", frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return len(confirmations)
