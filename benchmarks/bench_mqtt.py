"""MQTT service figures on a loopback mosquitto (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_mqtt.py [--socks 1000] [--cameras 100] [--seconds 20]

1. latency from publishing a sock's confirming frame to receiving its
   ``sockpairs`` message, p50/p99 over ``--socks`` socks, one at a time (40 s of
   event time apart: none waits for the lateness allowance);
2. the same at load: ``--cameras`` simulated cameras at 4 frames/s each, played
   in real time, every sock measured and checked against the pure engine's count
   of the same frames, with the broker's own delivery of those frames to a plain
   subscriber as the same-run reference. Socks published at once and socks that
   waited for the allowance (docs/time.md: a sock of a design seen again within
   ``--lateness`` s) are reported apart; then the most frames/s the service takes
   flat out;
3. the service's resident memory (it runs as ``python -m sortcore.cli serve``).
"""

import argparse
import heapq
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sortcore.devtools.broker import LocalBroker  # noqa: E402
from sortcore.adapters.mqtt import Connection, ConnectOptions, Message, connect_publisher  # noqa: E402
from sortcore.core.engine import Engine, EngineConfig, SockConfirmed  # noqa: E402
from sortcore.core.frames import Frame  # noqa: E402
from sortcore.offline.simulate import simulate  # noqa: E402


def rss_mb(pid: int) -> float:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def next_message(conn, topic, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        event = conn.events.get(timeout=max(0.001, deadline - time.monotonic()))
        if isinstance(event, Message) and event.topic == topic:
            return event


def status_until(conn, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        status = json.loads(next_message(conn, "sockpairs/status", deadline - time.monotonic()).payload)
        if predicate(status):
            return status


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def bench_latency(broker, socks):
    viewer = Connection(broker.url, ConnectOptions(subscriptions=(("sockpairs", 1),))).start()
    cam = connect_publisher(broker.url)
    viewer.wait_connected()
    base = time.time() - 40.0 * socks - 60
    latencies = []
    for i in range(socks):
        frames = [json.dumps({"image": "D%d" % (i % 7), "probability": 90, "ts": base + 40.0 * i + 0.25 * k})
                  for k in range(4)]
        for payload in frames[:3]:
            cam.publish("sockfound", payload)
        start = time.perf_counter()
        cam.publish_nowait("sockfound", frames[3])
        message = json.loads(next_message(viewer, "sockpairs").payload)
        latencies.append((time.perf_counter() - start) * 1000)
        assert message["image"] == "D%d" % (i % 7)
    cam.close()
    viewer.close()
    return latencies


class Stamped(object):
    """Drain a Connection's events in a thread, stamping each message as it arrives."""

    def __init__(self, conn):
        self.conn, self.messages, self._stop = conn, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                event = self.conn.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(event, Message):
                self.messages.append((time.perf_counter(), event.topic, event.payload))

    def close(self):
        self._stop.set()
        self.thread.join(5)
        self.conn.close()


def expected_socks(plan, lateness):
    """The socks the pure engine confirms from the same frames in the same order, to their
    end: ``{(camera, confirmed_at): published at once}``."""
    engine = Engine(EngineConfig(lateness=lateness))
    confirmed = {}
    for _, topic, obj in plan:
        frame = Frame(obj["image"], float(obj["probability"]), obj["ts"], topic.split("/", 1)[1])
        confirmed.update(((e.camera, e.confirmed_at), e.confirmed_at == frame.ts)
                         for e in engine.feed(frame) if isinstance(e, SockConfirmed))
    confirmed.update(((e.camera, e.confirmed_at), False) for e in engine.close_all() if isinstance(e, SockConfirmed))
    return confirmed


def bench_cameras(broker, status, cameras, seconds, before, lateness):
    """Play ``cameras`` simulated sessions at 4 frames/s each in real time; measure, for every
    sock, confirming frame -> ``sockpairs`` and (the reference) the same frame -> a plain subscriber."""
    t0 = time.time() + 1.0
    streams = []
    for c in range(cameras):
        lines, _ = simulate(socks=12, fps=4.0, seed=c, start=0.0)
        stream = []
        for line in lines:
            t, payload = line.split(" ", 1)
            obj = dict(json.loads(payload), ts=round(t0 + float(t), 6))
            stream.append((float(t), "sockfound/cam%d" % c, obj))
        streams.append(stream)
    plan = [item for item in heapq.merge(*streams, key=lambda item: item[0]) if item[0] < seconds]
    expected = expected_socks(plan, lateness)
    viewer = Connection(broker.url, ConnectOptions(subscriptions=(("sockpairs", 1), ("sockfound/+", 1)))).start()
    viewer.wait_connected()
    seen = Stamped(viewer)
    cam = connect_publisher(broker.url)
    sent = {}
    start = time.monotonic()
    for t, topic, obj in plan:
        delay = start + t - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the cameras, not waiting for a result
        sent[(topic[len("sockfound/"):], obj["ts"])] = time.perf_counter()
        cam.publish_nowait(topic, json.dumps(obj))
    sent_in = time.monotonic() - start
    done = status_until(status, lambda s: s["received"] - before >= len(plan), 60)
    lag = time.monotonic() - start - sent_in
    deadline = time.monotonic() + 20  # the last waiting socks: published once their camera is silent
    while sum(1 for m in seen.messages if m[1] == "sockpairs") < len(expected) and time.monotonic() < deadline:
        time.sleep(0.05)  # the last results on their way
    cam.close()
    seen.close()
    arrived, results = {}, {}
    for at, topic, payload in seen.messages:
        obj = json.loads(payload)
        if topic == "sockpairs":
            results.setdefault((obj["camera"], obj["confirmed_at"]), at)
        else:
            arrived.setdefault((topic[len("sockfound/"):], obj["ts"]), at)
    service = [(at - sent[key]) * 1000 for key, at in results.items() if expected.get(key)]
    waited = [(at - sent[key]) * 1000 for key, at in results.items() if expected.get(key) is False]
    broker_only = [(arrived[key] - sent[key]) * 1000 for key in results if key in arrived]
    return dict(frames=len(plan), sent_in=sent_in, lag=lag, socks=done["socks"], expected=len(expected),
                matched=len(set(results) & set(expected)), results=len(results), service=service,
                waited=waited, broker_only=broker_only)


def bench_flat_out(broker, status, frames, before):
    cam = connect_publisher(broker.url)
    payloads = [json.dumps({"image": "D%d" % (i % 9), "probability": 80, "camera": "c%d" % (i % 50)})
                for i in range(frames)]
    start = time.monotonic()
    for p in payloads:
        cam.publish_nowait("sockfound", p)
    status_until(status, lambda s: s["received"] - before >= frames, 120)
    elapsed = time.monotonic() - start
    cam.close()
    return frames / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--socks", type=int, default=1000)
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--flat-out", type=int, default=20000)
    parser.add_argument("--lateness", type=float, default=EngineConfig().lateness)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench-mqtt-")
    broker = LocalBroker(work).start()
    env = dict(os.environ, PYTHONPATH=ROOT)
    service = subprocess.Popen(
        [sys.executable, "-m", "sortcore.cli", "serve", "--broker", broker.url, "--db",
         os.path.join(work, "bench.db"), "--status-interval", "0.2", "--lateness", str(args.lateness)],
        env=env, cwd=ROOT)
    status = Connection(broker.url, ConnectOptions(subscriptions=(("sockpairs/status", 1),))).start()
    try:
        status_until(status, lambda s: s["status"] == "online", 15)
        rss_idle = rss_mb(service.pid)
        lat = bench_latency(broker, args.socks)
        print("latency confirming frame -> sockpairs, %d socks: p50 %.2f ms, p99 %.2f ms, max %.2f ms"
              % (len(lat), percentile(lat, 50), percentile(lat, 99), max(lat)))
        sent = 4 * len(lat)  # frames the service received so far
        run = bench_cameras(broker, status, args.cameras, args.seconds, sent, args.lateness)
        sent += run["frames"]
        print("%d cameras at 4 frames/s: %d frames in %.1f s = %.0f frames/s sustained; "
              "service caught up %.2f s after the last frame"
              % (args.cameras, run["frames"], run["sent_in"], run["frames"] / run["sent_in"], run["lag"]))
        print("  socks: %d results for %d socks the engine alone confirms from the same frames (%d match)"
              % (run["results"], run["expected"], run["matched"]))
        for name, what in (("service", "sockpairs, socks published at once"),
                           ("waited", "sockpairs, socks that waited (lateness %g s)" % args.lateness),
                           ("broker_only", "a plain subscriber (same run, reference)")):
            values = run[name]
            if values:
                print("  %s: confirming frame -> %s, %d socks: p50 %.2f ms, p99 %.2f ms, max %.2f ms"
                      % (name, what, len(values), percentile(values, 50), percentile(values, 99), max(values)))
        print("flat out: %.0f frames/s through broker and service" % bench_flat_out(broker, status, args.flat_out, sent))
        print("service RSS: %.1f MB idle, %.1f MB after the runs" % (rss_idle, rss_mb(service.pid)))
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(15)
        status.close()
        broker.stop()


if __name__ == "__main__":
    main()
