"""MQTT service figures on a loopback mosquitto (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_mqtt.py [--socks 1000] [--cameras 100] [--seconds 20]

1. latency from publishing a sock's confirming frame to receiving its
   ``sockpairs`` message, p50/p99 over ``--socks`` socks;
2. sustained frames/s with ``--cameras`` simulated cameras at 4 frames/s
   each, played in real time, and the most frames/s the service takes flat out;
3. the service's resident memory (it runs as ``python -m sortcore.cli serve``).
"""

import argparse
import heapq
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sortcore.devtools.broker import LocalBroker  # noqa: E402
from sortcore.adapters.mqtt import Connection, ConnectOptions, Message, connect_publisher  # noqa: E402
from sortcore.simulate import simulate  # noqa: E402


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
    base = time.time() - 3.0 * socks - 60
    latencies = []
    for i in range(socks):
        frames = [json.dumps({"image": "D%d" % (i % 7), "probability": 90, "ts": base + 3.0 * i + 0.25 * k})
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


def bench_cameras(broker, status, cameras, seconds, before):
    """Play ``cameras`` simulated sessions at 4 frames/s each in real time."""
    streams = []
    for c in range(cameras):
        lines, _ = simulate(socks=12, fps=4.0, seed=c, start=0.0)
        streams.append([(float(line.split(" ", 1)[0]), "sockfound/cam%d" % c, line.split(" ", 1)[1])
                        for line in lines])
    plan = [item for item in heapq.merge(*streams) if item[0] < seconds]
    cam = connect_publisher(broker.url)
    start = time.monotonic()
    for t, topic, payload in plan:
        delay = start + t - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the cameras, not waiting for a result
        cam.publish_nowait(topic, payload)
    sent_in = time.monotonic() - start
    done = status_until(status, lambda s: s["received"] - before >= len(plan), 60)
    lag = time.monotonic() - start - sent_in
    cam.close()
    return len(plan), sent_in, lag, done


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
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench-mqtt-")
    broker = LocalBroker(work).start()
    env = dict(os.environ, PYTHONPATH=ROOT)
    service = subprocess.Popen(
        [sys.executable, "-m", "sortcore.cli", "serve", "--broker", broker.url, "--db",
         os.path.join(work, "bench.db"), "--status-interval", "0.2"], env=env, cwd=ROOT)
    status = Connection(broker.url, ConnectOptions(subscriptions=(("sockpairs/status", 1),))).start()
    try:
        status_until(status, lambda s: s["status"] == "online", 15)
        rss_idle = rss_mb(service.pid)
        lat = bench_latency(broker, args.socks)
        print("latency confirming frame -> sockpairs, %d socks: p50 %.2f ms, p99 %.2f ms, max %.2f ms"
              % (len(lat), percentile(lat, 50), percentile(lat, 99), max(lat)))
        sent = 4 * len(lat)  # frames the service received so far
        n, sent_in, lag, done = bench_cameras(broker, status, args.cameras, args.seconds, sent)
        sent += n
        print("%d cameras at 4 frames/s: %d frames in %.1f s = %.0f frames/s sustained; "
              "service caught up %.2f s after the last frame; %d socks so far"
              % (args.cameras, n, sent_in, n / sent_in, lag, done["socks"]))
        print("flat out: %.0f frames/s through broker and service" % bench_flat_out(broker, status, args.flat_out, sent))
        print("service RSS: %.1f MB idle, %.1f MB after the runs" % (rss_idle, rss_mb(service.pid)))
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(15)
        status.close()
        broker.stop()


if __name__ == "__main__":
    main()
