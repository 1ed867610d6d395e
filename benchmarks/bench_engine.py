"""Replay against Bytewax end to end, on the same log file, each in its own process.

One simulated '%U %p' log is written to a temporary file. Timed end to end
(process start to exit, best of --repeat):

- ``python benchmarks/bytewax_tumbling.py LOG``: Bytewax 0.21 FileSource +
  TumblingWindower + count_window (parses, validates nothing);
- ``python -m sortcore replay --mode tumbling --json LOG --db NEW.db``: reads,
  decodes and validates every line, runs the engine, writes SQLite;
- the same replay in sighting mode, and ``python -m sortcore --help`` (start-up).

Also, labelled as such: the engine alone, in process, on frames decoded up
front and fed 5000 at a time to ``Engine.feed_many`` as replay does (no reading,
decoding, SQLite or start-up); and what the lateness allowance costs in latency:
the event time from each sock's confirming frame to its publication, frames fed
in order one at a time (docs/time.md, What it costs).

    .venv/bin/python benchmarks/bench_engine.py [--frames 270000] [--repeat 3]

Targets (issue): replay >= 5x Bytewax end to end; start-up <= 150 ms.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from sortcore.core.engine import Engine, EngineConfig, SockConfirmed
from sortcore.offline.simulate import frames_of, simulate

FRAMES_PER_SOCK = 26.1  # average of simulate()'s defaults, to size the log
HERE = os.path.dirname(os.path.abspath(__file__))


def write_log(path, frames, seed):
    """Simulate about ``frames`` frames as a '%U %p' log at ``path``; (lines, truth)."""
    lines, truth = simulate(socks=max(1, int(frames / FRAMES_PER_SOCK)), seed=seed, start=1790000000.0)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines, truth


def timed_run(argv, repeat):
    """((best wall seconds, best CPU seconds), stdout of the last run) of a process run to its exit.

    CPU = user + system time of the process and its threads: steadier than wall
    time on a shared machine."""
    best, cpu, out = float("inf"), float("inf"), ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
        best = min(best, time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = min(cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out = done.stdout.decode()
    return (best, cpu), out


def engine_only(frames, mode, repeat, batch=5000):
    """Best seconds and counts of the engine fed ``batch`` frames per feed_many call, as replay feeds it."""
    best, counts = float("inf"), None
    batches = [frames[i:i + batch] for i in range(0, len(frames), batch)]
    for _ in range(repeat):
        engine = Engine(EngineConfig(mode=mode))
        feed_many = engine.feed_many
        start = time.perf_counter()
        for chunk in batches:
            feed_many(chunk)
        best = min(best, time.perf_counter() - start)
        engine.close_all()  # the end of the log: a sock still waiting is published
        counts = dict(engine.counts)
    return best, counts


def publication_delay(frames, lateness):
    """Sorted event-time delays from each sock's confirming frame to its publication."""
    engine, delays = Engine(EngineConfig(lateness=lateness)), []
    for frame in frames:
        delays.extend(frame.ts - e.confirmed_at for e in engine.feed(frame) if isinstance(e, SockConfirmed))
    delays.extend(float("inf") for e in engine.close_all() if isinstance(e, SockConfirmed))  # till the end
    return sorted(delays)


def quantile(ordered, p):
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def off_by(counts, truth):
    return sum(abs(counts.get(d, 0) - truth.get(d, 0)) for d in set(counts) | set(truth))


def replay_argv(log, mode, tmp):
    db = os.path.join(tmp, "replay-%s-%f.db" % (mode, time.perf_counter()))
    return [sys.executable, "-m", "sortcore", "replay", "--mode", mode, "--json", log, "--db", db]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=270000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-bytewax", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "bench.log")
        lines, truth = write_log(log, args.frames, args.seed)
        n = len(lines)
        print("log: %d frames, %d socks shown, seed %d; best of %d runs each"
              % (n, len(truth["shown"]), args.seed, args.repeat))
        rates, counts, cpu = {}, {}, {}
        startup, _ = timed_run([sys.executable, "-m", "sortcore", "--help"], max(args.repeat, 5))
        print("start-up   sortcore --help                     %6.3f s wall %6.3f s CPU" % startup)
        for mode in ("tumbling", "sighting"):
            best = (float("inf"), float("inf"))
            for _ in range(args.repeat):  # a fresh store each run: no replay resumes another
                seconds, out = timed_run(replay_argv(log, mode, tmp), 1)
                best = tuple(map(min, best, seconds))
            rates[mode], cpu[mode] = n / best[0], best[1]
            counts[mode] = {r["image"]: r["number_socks_seen"] for r in json.loads(out.splitlines()[-1])["socks"]}
            print("end to end sortcore replay --mode %-9s %6.3f s wall %6.3f s CPU %9.0f frames/s"
                  % ((mode,) + best + (rates[mode],)))
        if not args.skip_bytewax:
            seconds, out = timed_run([sys.executable, os.path.join(HERE, "bytewax_tumbling.py"), log], args.repeat)
            rates["bytewax"], cpu["bytewax"] = n / seconds[0], seconds[1]
            same = json.loads(out.splitlines()[-1]) == counts["tumbling"]
            print("end to end bytewax 0.21 FileSource tumbling  %6.3f s wall %6.3f s CPU %9.0f frames/s"
                  " (same counts: %s)" % (seconds + (rates["bytewax"], same)))
            ratio = rates["tumbling"] / rates["bytewax"]
            print("ratio replay tumbling / bytewax, end to end: %.2fx wall, %.2fx CPU (target >= 5x)"
                  % (ratio, cpu["bytewax"] / cpu["tumbling"]))
    print("start-up <= 150 ms wall: %s" % (startup[0] <= 0.150))

    frames = frames_of(lines)
    for mode in ("sighting", "tumbling"):
        seconds, found = engine_only(frames, mode, args.repeat)
        print("engine only (in process, frames decoded up front, feed_many of 5000, no I/O) %-9s %10.0f frames/s  (%.3f s;"
              " off from the socks shown by %d of %d)"
              % (mode, n / seconds, seconds, off_by(found, truth["sighting"]), len(truth["shown"])))
    for lateness in (0.0, 10.0, EngineConfig().lateness):
        d = publication_delay(frames, lateness)
        print("publication delay, lateness %2.0f s: %.1f %% of %d socks at once; p50 %.2f s, p90 %.2f s, p99 %.2f s,"
              " worst %.2f s (event time after the confirming frame)"
              % ((lateness, 100.0 * d.count(0.0) / len(d), len(d)) + tuple(quantile(d, p) for p in (0.5, 0.9, 0.99))
                 + (d[-1],)))


if __name__ == "__main__":
    main()
