"""Engine, replay and Bytewax throughput on one simulated 1 M-frame log.

Prints frames/s for: the engine alone (both modes, frames decoded up front),
end-to-end replay into SQLite (reading, decoding, engine, store), and the
same tumbling computation written with Bytewax 0.21 (TumblingWindower +
count_window, single worker) on the same frames in the same run, with
ratios, and how far each mode's count is from the socks actually shown.

    .venv/bin/python benchmarks/bench_engine.py [--frames 1000000] [--repeat 3]

Targets (issue #3): engine >= 1 M frames/s, replay >= 300 k frames/s on one
core, engine >= 10x Bytewax.
"""

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone

from sortcore.engine import Engine, EngineConfig
from sortcore.replay import replay
from sortcore.simulate import frames_of, simulate
from sortcore.store import Store

FRAMES_PER_SOCK = 26.1  # average of simulate()'s defaults, to size the log


def best_of(repeat, func):
    """(best seconds, last result) over ``repeat`` runs."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def run_engine(frames, mode):
    engine = Engine(EngineConfig(mode=mode))
    feed = engine.feed
    for frame in frames:
        feed(frame)
    return dict(engine.counts)


def run_bytewax(items):
    """The seed's query in Bytewax: per design, 5 s epoch-aligned windows with > 3 frames."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.operators.windowing import EventClock, TumblingWindower, count_window
    from bytewax.testing import TestingSink, TestingSource, run_main

    flow = Dataflow("tumbling_socks")
    frames = op.input("frames", flow, TestingSource(items))
    socks = op.filter("not_blank", frames, lambda item: item[0].lower() != "blank")
    clock = EventClock(ts_getter=lambda item: item[1], wait_for_system_duration=timedelta(seconds=0))
    windower = TumblingWindower(length=timedelta(seconds=5), align_to=datetime(1970, 1, 1, tzinfo=timezone.utc))
    counted = count_window("count", socks, clock, windower, key=lambda item: item[0])
    found = op.filter("more_than_3", counted.down, lambda kv: kv[1][1] > 3)
    out = []
    op.output("out", found, TestingSink(out))
    run_main(flow)
    result = {}
    for image, _ in out:
        result[image] = result.get(image, 0) + 1
    return result


def off_by(counts, truth):
    return sum(abs(counts.get(d, 0) - truth.get(d, 0)) for d in set(counts) | set(truth))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-bytewax", action="store_true")
    args = parser.parse_args()

    lines, truth = simulate(socks=int(args.frames / FRAMES_PER_SOCK), seed=args.seed, start=1790000000.0)
    n = len(lines)
    frames = frames_of(lines)
    print("log: %d frames, %d socks shown, seed %d" % (n, len(truth["shown"]), args.seed))

    rates = {}
    for mode in ("sighting", "tumbling"):
        seconds, counts = best_of(args.repeat, lambda: run_engine(frames, mode))
        rates[mode] = n / seconds
        print("engine %-9s %10.0f frames/s  (%.3f s; off from socks shown by %d of %d)"
              % (mode, rates[mode], seconds, off_by(counts, truth["sighting"]), len(truth["shown"])))
    tumbling_counts = counts

    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "bench.log")
        with open(log, "w") as f:
            f.write("\n".join(lines) + "\n")

        def one_replay():
            path = os.path.join(tmp, "bench-%f.db" % time.perf_counter())
            store = Store(path)
            try:
                return replay(store, [log])
            finally:
                store.close()

        seconds, result = best_of(args.repeat, one_replay)
        rates["replay"] = n / seconds
        print("replay (read, decode, engine, SQLite) %10.0f frames/s  (%.3f s)" % (rates["replay"], seconds))

    if not args.skip_bytewax:
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        items = [(f.image, epoch + timedelta(seconds=f.ts)) for f in frames]
        seconds, bw_counts = best_of(1, lambda: run_bytewax(items))
        rates["bytewax"] = n / seconds
        print("bytewax 0.21 tumbling %10.0f frames/s  (%.3f s; same counts as our tumbling mode: %s)"
              % (rates["bytewax"], seconds, bw_counts == tumbling_counts))
        print("ratio engine tumbling / bytewax: %.1fx" % (rates["tumbling"] / rates["bytewax"]))
        print("ratio replay end-to-end / bytewax engine-only: %.1fx" % (rates["replay"] / rates["bytewax"]))

    print("targets: engine >= 1,000,000 frames/s: %s; replay >= 300,000 frames/s: %s"
          % (min(rates["sighting"], rates["tumbling"]) >= 1e6, rates["replay"] >= 3e5))


if __name__ == "__main__":
    main()
