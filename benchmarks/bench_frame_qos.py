"""What publishing the camera's frames at QoS 1 costs against QoS 0 (prints numbers; not a test).

    .venv/bin/python benchmarks/bench_frame_qos.py [--frames 5000] [--rounds 5]

``run`` publishes each frame on ``sockfound`` without waiting (``publish_nowait``) and, once
an iteration, settles the acknowledgements (``Connection.settle``), so a frame the broker's
ACL refuses is counted. This publishes ``--frames`` frame payloads on a loopback mosquitto
the same way, one settle per frame, at QoS 0 and at QoS 1, and prints the publisher's CPU
time per frame and the wall time until the broker acknowledged the last one (QoS 1) or a
subscriber got it (QoS 0). The camera loop runs at 5 frames/s, so a per-frame cost in
microseconds is what matters, not the throughput. (Flat out, more than 10,000 frames waiting
for their acknowledgement would make ``publish_nowait`` forget the oldest: keep ``--frames``
below that.)
"""

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sortcore.adapters.mqtt import connect_publisher  # noqa: E402
from sortcore.devtools.broker import LocalBroker  # noqa: E402
from sortcore.core.messages import dumps, frame_payload  # noqa: E402


def one_round(url, frames, qos):
    sink = connect_publisher(url, subscriptions=(("sockfound", 0),))  # so QoS 0 has an end to wait for
    conn = connect_publisher(url)
    payloads = [dumps(frame_payload("Google", 93.1, 1.7e9 + i / 5.0, i, "bench")) for i in range(frames)]
    settled = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for payload in payloads:
        conn.publish_nowait("sockfound", payload, qos=qos)
        settled += len(conn.settle())
    settled += len(conn.settle(wait=60.0))
    cpu = time.process_time() - cpu
    got = 0
    while got < frames:  # QoS 0 has no acknowledgement: the subscriber's copy is the end
        sink.events.get(timeout=60)
        got += 1
    wall = time.perf_counter() - wall
    conn.close()
    sink.close()
    assert qos == 0 or settled == frames, settled
    return cpu / frames * 1e6, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        broker = LocalBroker(work).start()
        try:
            result = {}
            for qos in (0, 1) * args.rounds:
                cpu, wall = one_round(broker.url, args.frames, qos)
                result.setdefault("qos%d" % qos, []).append({"cpu_us_per_frame": round(cpu, 1),
                                                             "wall_s": round(wall, 3)})
        finally:
            broker.stop()
    print(json.dumps({"frames": args.frames, "rounds": result}, indent=1))


if __name__ == "__main__":
    main()
