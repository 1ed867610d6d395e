"""Event time against a real mosquitto and a real ``python -m sortcore serve``
(docs/time.md): a future-stamped frame, two skewed cameras, and the broker
killed for 10 s and for 60 s while the camera buffers its stamped frames.
Every test ends with the store's counts equal to the truth and each result
delivered exactly once."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager

import pytest

from sortcore.adapters.mqtt import connect_publisher
from sortcore.store.database import Store
from tests.mqtt_util import Collector
from tests.shared import sightings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESIGNS = ["Google", "Mongo", "Github", "Confluent"]
N = 20  # socks in a session


def sock_frames(i, base, spacing=3.0, camera=None):
    """The four frames (0.25 s apart) of sock ``i``, stamped ``base + spacing * i``."""
    out = []
    for k in range(4):
        obj = {"image": DESIGNS[i % len(DESIGNS)], "probability": 90.0, "ts": base + spacing * i + 0.25 * k}
        if camera:
            obj["camera"] = camera
        out.append(obj)
    return out


def truth(n=N):
    return dict(Counter(DESIGNS[i % len(DESIGNS)] for i in range(n)))


@contextmanager
def serving(broker, tmp_path):
    """``python -m sortcore serve`` on ``broker``; yields (process, db path); SIGTERM at the end."""
    db = tmp_path / "serve.db"
    log = open(str(tmp_path / "serve.log"), "wb")
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "sortcore", "-v", "serve", "--broker", broker.url,
                             "--db", str(db), "--status-interval", "0.1", "--reconnect-max", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
    try:
        yield proc, db
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "serve.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def online(status):
    status.wait_for(lambda s: isinstance(s, dict) and s.get("status") == "online", "sockpairs/status", 20)


def wait_socks(results, n, timeout):
    """Block until ``n`` distinct sightings arrived on ``sockpairs``."""
    deadline = time.monotonic() + timeout
    while len(results.first_by("sighting")) < n:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "only %d of %d socks within %.0f s" % (len(results.first_by("sighting")), n, timeout)
        results.wait(len(results.payloads("sockpairs")) + 1, "sockpairs", timeout=remaining)


def persisted(broker, timeout=10.0):
    """Block until mosquitto saved its sessions once more (it has no event for it:
    poll its log), so a SIGKILL right after loses no subscription."""
    def saves():
        return broker.log().count("Saving in-memory database")

    before, deadline = saves(), time.monotonic() + timeout
    while saves() == before:
        assert time.monotonic() < deadline, "mosquitto saved nothing within %.0f s" % timeout
        time.sleep(0.05)


def publish(url, frames, topic="sockfound"):
    cam = connect_publisher(url, reconnect_max=0.5)
    try:
        for obj in frames:
            cam.publish(topic if "camera" not in obj else topic + "/" + obj["camera"], json.dumps(obj))
    finally:
        cam.close()


def check_store(db, results, expected, by_camera=None):
    """Counts equal ``expected``; every sighting delivered once; no dead letter."""
    store = Store(str(db))
    try:
        session = store.session()["id"]
        rows = sightings(store, session)
        assert {r["image"]: r["number_socks_seen"] for r in store.pairs(session)} == expected
        if by_camera:
            assert dict(Counter(r["camera"] for r in rows)) == by_camera
        sent = [json.loads(p)["sighting"] for p in results.payloads("sockpairs")]
        assert sorted(sent) == sorted(r["id"] for r in rows)  # none lost, none twice
        assert store.pending() == [] and store.dead_letter_count(session) == 0
    finally:
        store.close()


@pytest.mark.compat
def test_a_future_stamped_frame_then_a_normal_session(mosquitto, tmp_path):
    now = time.time()
    stray = {"image": "Google", "probability": 90.0, "ts": now + 290.0}  # under max_future (300 s)
    frames = [f for i in range(N) for f in sock_frames(i, now - 120.0)]
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as results, serving(mosquitto, tmp_path) as (_, db):
        online(results)
        publish(mosquitto.url, [stray] + frames)
        wait_socks(results, N, 30)
    check_store(db, results, truth())


@pytest.mark.compat
def test_two_cameras_with_3_s_of_clock_skew(mosquitto, tmp_path):
    now = time.time()
    left = [f for i in range(N) for f in sock_frames(i, now - 120.0, camera="left")]
    right = [f for i in range(N) for f in sock_frames(i, now - 123.0, camera="right")]  # 3 s behind
    arrival = sorted(left + right, key=lambda f: f["ts"] + (3.0 if f["camera"] == "right" else 0.0))
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as results, serving(mosquitto, tmp_path) as (_, db):
        online(results)
        publish(mosquitto.url, arrival)
        wait_socks(results, 2 * N, 30)
    check_store(db, results, {d: 2 * n for d, n in truth().items()}, by_camera={"left": N, "right": N})


@pytest.mark.parametrize("outage", [10, pytest.param(60, marks=pytest.mark.slow)])  # not compat: 80 s once is enough
def test_broker_killed_mid_session_while_the_camera_buffers(mosquitto, tmp_path, outage):
    half = N // 2
    results = Collector(mosquitto, ["sockpairs", "sockpairs/status"], client_id="outage-reader",
                        clean_session=False)  # the persistent broker keeps its queue across the kill
    try:
        with serving(mosquitto, tmp_path) as (_, db):
            online(results)
            publish(mosquitto.url, [f for i in range(half) for f in sock_frames(i, time.time() - 30.0)])
            wait_socks(results, half, 30)
            persisted(mosquitto)
            statuses = len(results.payloads("sockpairs/status"))
            killed_at = time.time()
            mosquitto.kill()
            # The camera goes on: what it sees during the outage it stamps and buffers.
            spacing = outage / float(half)
            buffered = [f for j in range(half) for f in sock_frames(j, killed_at + 0.2, spacing)]
            for f, i in zip(buffered, [i for i in range(half, N) for _ in range(4)]):
                f["image"] = DESIGNS[i % len(DESIGNS)]  # the session goes on where it was
            threading.Event().wait(outage)  # the outage itself: a deliberate wait
            mosquitto.start()
            # The reader and the service are both back (a status reaches the reader) before the
            # camera sends what it buffered: what is tested is the service, not the reader's session.
            results.wait(statuses + 1, "sockpairs/status", timeout=30)
            publish(mosquitto.url, buffered)
            wait_socks(results, N, 60)
        check_store(db, results, truth())
    finally:
        results.close()
