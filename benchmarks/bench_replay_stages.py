"""Where replay's time goes, stage by stage, and the floor that sets against Bytewax.

On bench_engine.py's log (same simulation, size and seed):

- start-up: ``python -m sortcore --help`` end to end (interpreter, click, the CLI);
- in process, CPU seconds, best of --repeat, each stage alone on the same file:
  read (1 MB blocks split into lines), decode (``read_batches`` minus read),
  engine (``feed_many`` of the decoded batches), SQLite write (the store's commits
  in a ``replay()`` into a new store) and the rest of that replay (the pipeline,
  session start and end);
- fixed and per-frame cost end to end, for replay and for Bytewax: fixed = a run
  on a log of --small frames, per frame = (full run - fixed) / frames; and the
  ratio those imply as the log grows.

    .venv/bin/python benchmarks/bench_replay_stages.py [--frames 270000] [--repeat 3]
"""

import argparse
import gc
import os
import sys
import tempfile
import time

from bench_engine import HERE, replay_argv, timed_run, write_log
from sortcore.core.engine import Engine, EngineConfig
from sortcore.offline.logbatch import read_batches
from sortcore.offline.logfiles import line_blocks
from sortcore.offline.replay import rare_collections, replay
from sortcore.store.database import Store


def cpu(fn, repeat):
    """Best CPU seconds of ``fn()`` and its last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        with rare_collections():
            start = time.process_time()
            out = fn()
            best = min(best, time.process_time() - start)
    return best, out


def stages(log, tmp, repeat):
    def read():
        with open(log, "rb") as f:
            return sum(map(len, line_blocks(f)))

    def decode(keep=False):
        with open(log, "rb") as f:
            return [batch.frames if keep else len(batch.frames) for batch in read_batches(f, log)]

    def engine():
        feed_many = Engine(EngineConfig(mode="tumbling")).feed_many
        for frames in batches:
            feed_many(frames)

    def whole():
        store = TimedStore(os.path.join(tmp, "stages-%f.db" % time.perf_counter()))
        try:
            replay(store, [log], EngineConfig(mode="tumbling"))
        finally:
            store.close()
        return store.seconds

    seconds = {"read": cpu(read, repeat)[0]}
    seconds["decode"] = cpu(decode, repeat)[0] - seconds["read"]  # frames dropped as replay drops them
    batches = decode(keep=True)
    seconds["engine"] = cpu(engine, repeat)[0]
    total, seconds["SQLite write"] = cpu(whole, repeat)
    seconds["the rest"] = total - sum(seconds.values())
    return total, seconds


class TimedStore(Store):
    """A store that adds up the CPU seconds of its commits."""

    seconds = 0.0

    def commit(self, *args, **kwargs):
        start = time.process_time()
        try:
            return super().commit(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=270000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log, small = os.path.join(tmp, "bench.log"), os.path.join(tmp, "small.log")
        n, k = (len(write_log(path, size, args.seed)[0])
                for path, size in ((log, args.frames), (small, args.small)))
        startup, _ = timed_run([sys.executable, "-m", "sortcore", "--help"], max(args.repeat, 5))
        print("log: %d frames (small log: %d), seed %d; best of %d" % (n, k, args.seed, args.repeat))
        print("%-14s %6.3f s wall %6.3f s CPU" % (("start-up",) + startup))
        total, costs = stages(log, tmp, args.repeat)
        for stage, seconds in costs.items():
            print("%-14s %6.3f s CPU %6.2f us/frame" % (stage, seconds, 1e6 * seconds / n))
        print("%-14s %6.3f s CPU (replay() in process, best of %d)" % ("in all", total, args.repeat))
        runs = {"replay": lambda path: replay_argv(path, "tumbling", tmp),
                "bytewax": lambda path: [sys.executable, os.path.join(HERE, "bytewax_tumbling.py"), path]}
        cost = {}
        for name, argv in runs.items():
            fixed = min(timed_run(argv(small), 1)[0][0] for _ in range(max(args.repeat, 5)))
            full = min(timed_run(argv(log), 1)[0][0] for _ in range(args.repeat))
            cost[name] = (fixed, (full - fixed) / (n - k))
            print("%-8s end to end: fixed %.3f s + %.2f us/frame (wall)" % (name, fixed, 1e6 * cost[name][1]))
    (fr, pr), (fb, pb) = cost["replay"], cost["bytewax"]
    for frames in (10 ** 4, n, 10 ** 6, 10 ** 7):
        print("implied ratio bytewax / replay at %9d frames: %.2fx" % (frames, (fb + pb * frames) / (fr + pr * frames)))
    print("implied ratio as the log grows without bound: %.2fx" % (pb / pr))


if __name__ == "__main__":
    main()
