"""Replay recorded frame logs through the engine into the store, in event time.

Each replay is its own sorting session. It commits every ``commit_every``
lines with its position, so a replay that was killed resumes where its last
commit ended when the same command runs again: no sock lost, none twice.
"""

import contextlib
import gc
import json
import os
from typing import Callable, NamedTuple, Optional, Sequence

from ..core.engine import EngineConfig
from .logbatch import Batch, read_batches
from .logfiles import open_log, open_lines
from ..store.pipeline import Pipeline


class ReplayResult(NamedTuple):
    session: int
    mode: str
    frames: int
    dead_letters: int
    rows: list
    resumed: bool
    unknown: int = 0  # unrecognised socks (not in ``rows``)
    untaught: tuple = ()  # designs found in the session (their rows: "taught": false)

    def as_json(self) -> dict:
        """The ``replay --json`` object."""
        from ..core.messages import odd_of, rows_as_dicts

        socks = rows_as_dicts(self.rows, self.untaught)
        return {
            "session": self.session, "mode": self.mode, "frames": self.frames,
            "dead_letters": self.dead_letters, "socks": socks, "odd": odd_of(socks), "unknown": self.unknown,
        }


def source_id(paths: Sequence[str]) -> Optional[str]:
    """What identifies a replay for resuming: the files, their sizes and times."""
    if "-" in paths:
        return None
    files = []
    for path in paths:
        st = os.stat(path)
        files.append([os.path.abspath(path), st.st_size, st.st_mtime_ns])
    return "replay:" + json.dumps(files)


def check_logs(paths: Sequence[str], fps: Optional[float] = None):
    """Raise BadLog/BadFrame for a path that is no log (FIFO, device, binary, empty, no times)."""
    for path in paths:
        if path != "-":
            with open_log(path) as stream:
                open_lines(stream, path, fps)


def replay(store, paths: Sequence[str], config: EngineConfig = EngineConfig(), fps: Optional[float] = None,
           start: float = 0.0, commit_every: int = 5000,
           progress: Optional[Callable[[int], None]] = None, labels: Optional[frozenset] = None) -> ReplayResult:
    """Replay ``paths`` (``-`` is stdin) into a new or resumed session of ``store``.

    ``labels``: an allow-list (:func:`sortcore.core.frames.label_set`); other images are dead letters.
    Commits with ``synchronous=NORMAL`` (:meth:`Store.durable`), restored when done.
    """
    check_logs(paths, fps)  # fail before a session is started, not half-way
    # Nothing is published: a commit undone by a power cut is replayed again from its position.
    store.durable(False)
    ident = source_id(paths)
    pipe = Pipeline(store, config, source=ident or "replay:-", resume=ident is not None,
                    outbox_topic=None)
    done = pipe.replay_position or {"file": 0, "line": 0}
    resumed = pipe.replay_position is not None
    # Counted here, not from the kept rows: the store drops the oldest beyond its bounds.
    dead = done.get("dead", store.dead_letter_count(pipe.session))
    with rare_collections():
        for index, path in enumerate(paths):
            if index < done["file"]:
                continue
            skip = done["line"] if index == done["file"] else 0
            with open_log(path) as stream:
                for batch in read_batches(stream, path, fps=fps, start=start, skip=skip, labels=labels,
                                          size=commit_every):
                    _feed(pipe, batch)
                    dead += len(batch.dead)
                    pipe.commit(replay_position={"file": index, "line": batch.end, "dead": dead})
                    if progress:
                        progress(batch.lines)
            pipe.commit(replay_position={"file": index + 1, "line": 0, "dead": dead})
    pipe.finish()
    store.durable(True)
    return ReplayResult(pipe.session, config.mode, pipe.engine.frames, dead, pipe.table(), resumed,
                        pipe.unknown)


@contextlib.contextmanager
def rare_collections(factor: int = 100):
    """Young-generation garbage collections ``factor`` times rarer, restored after: replay
    allocates frames and events by the hundred thousand (none in a reference cycle), and a
    collection every 700 of them cost ~0.1 s of ~0.8 s CPU on bench_engine.py's log."""
    threshold = gc.get_threshold()
    gc.set_threshold(threshold[0] * factor, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _feed(pipe: Pipeline, batch: Batch):
    """A batch's frames and dead letters, in line order."""
    at = 0
    for index, letter in batch.dead:
        pipe.feed_many(batch.frames[at:index])
        pipe.reject(letter)
        at = index
    pipe.feed_many(batch.frames[at:] if at else batch.frames)

