"""The open set per sock: what the engine counts when socks of unknown designs are held up.

One sock's frames err together (the same colours, the same pattern), so a per-frame rate
understates how often a count is wrong. Each synthetic sock (:func:`synth.unknown_sock`,
seeds 100 on) is held up for ``frames`` frames at ``fps``, moving in the hand
(:func:`sortcore.devtools.sockvideo.moving`), classified, and fed to a fresh engine
(default config); the sock counts as what the engine confirms.
"""

import collections

import numpy as np

from sortcore.core.engine import UNKNOWN, Engine, SockConfirmed
from sortcore.core.frames import Frame
from sortcore.devtools.sockvideo import moving
from sortcore.training import synth

FIRST_SEED = 100
NOTHING = "nothing"  # the engine confirmed no sock


def confirmed_as(classifier, socks, frames=12, fps=5.0):
    """{what the engine confirmed for a sock, ' + '-joined (or :data:`NOTHING`): socks}."""
    counted = collections.Counter()
    for seed in range(FIRST_SEED, FIRST_SEED + socks):
        sock = synth.unknown_sock(np.random.RandomState(seed), view_size=224)
        engine = Engine()
        events = engine.feed_many([Frame(p.label, p.probability, 1000.0 + i / fps, "probe", i) for i, p in
                                   enumerate(classifier.classify_many(moving(sock, frames, seed)))])
        events += engine.close_all()
        labels = sorted({e.label for e in events if isinstance(e, SockConfirmed)})
        counted[" + ".join(labels) or NOTHING] += 1
    return counted


def known(counted):
    """How many socks of :func:`confirmed_as` were counted as (or beside) a known design."""
    return sum(n for labels, n in counted.items()
               if any(label not in (UNKNOWN, NOTHING) for label in labels.split(" + ")))
