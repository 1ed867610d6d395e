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
from tests.proxy import Proxy
from tests.shared import PHOTOS, sightings

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
def serving(broker, tmp_path, *extra):
    """``python -m sortcore serve`` on ``broker``; yields (process, db path); SIGTERM at the end."""
    db = tmp_path / "serve.db"
    log = open(str(tmp_path / "serve.log"), "wb")
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "sortcore", "-v", "serve", "--broker", broker.url,
                             "--db", str(db), "--status-interval", "0.1", "--reconnect-max", "1"] + list(extra),
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


# --- our own publisher across a reconnect whose CONNACK is late (issue 25) -----------------

def photo_sequence(folder, designs):
    """A folder camera showing each design's photo 4 times, then 8 blank frames: one sock each."""
    import cv2
    import numpy as np
    blank = str(folder.parent / "blank.png")
    cv2.imwrite(blank, np.full((48, 64, 3), 190, np.uint8))
    n = 0
    for design in designs:
        photo = sorted((PHOTOS / design).iterdir())[0]
        for path in [photo] * 4 + [blank] * 8:
            os.symlink(str(path), str(folder / ("%03d%s" % (n, os.path.splitext(str(path))[1]))))
            n += 1
    return n


@pytest.mark.skipif(not PHOTOS.exists(), reason="../shared/sock-photos is not beside the repository")
def test_run_sends_its_backlog_before_new_frames_across_a_late_connack(mosquitto, tmp_path):
    """``sortcore run`` publishes through a proxy that is cut for 2 s and then holds each
    CONNACK 300 ms; serve, on the broker itself, counts every sock run counted, with no late
    frame, and the broker got the camera's frames in the order they were taken."""
    pytest.importorskip("onnxruntime")
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    designs = sorted(d.name for d in PHOTOS.iterdir() if d.is_dir())
    total = photo_sequence(frames_dir, designs)
    proxy = Proxy(mosquitto)
    env = dict(os.environ, PYTHONPATH=ROOT, SORTCORE_DB=str(tmp_path / "run.db"), SORTCORE_BROKER=proxy.url)
    try:
        with Collector(mosquitto, ["sockfound", "sockpairs", "sockpairs/status"]) as seen, \
                serving(mosquitto, tmp_path, "--silence", "0.5") as (_, db):
            online(seen)
            camera = subprocess.Popen(
                [sys.executable, "-m", "sortcore", "run", "--source", "folder:%s" % frames_dir, "--fps", "10",
                 "--camera", "cam", "--heartbeat", "0", "--reconnect-max", "0.5"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True, cwd=ROOT)
            try:
                seen.wait_for(lambda f: f.get("frame", 0) >= 14, "sockfound", 60)  # in its 2nd sock
                proxy.cut()
                threading.Event().wait(2.0)  # the outage itself: a deliberate wait
                proxy.restore()
                assert camera.wait(60) == 0, camera.stderr.read()
            finally:
                if camera.poll() is None:
                    camera.kill()
            assert proxy.held >= 1  # it reconnected through a late CONNACK
            run = Store(str(tmp_path / "run.db"))
            try:
                expected = {r["image"]: r["number_socks_seen"] for r in run.pairs(run.session()["id"])}
            finally:
                run.close()
            assert expected == {d: 1 for d in designs}
            # run publishes its own results too: serve's status says when it has them all
            seen.wait_for(lambda s: s.get("runtime") == "serve" and s.get("socks") == len(designs)
                          and s.get("pending") == 0, "sockpairs/status", 30)
        store = Store(str(db))
        try:
            session = store.session()["id"]
            assert {r["image"]: r["number_socks_seen"] for r in store.pairs(session)} == expected
            assert store.dead_letter_count(session) == 0 and store.pending() == []
        finally:
            store.close()
    finally:
        proxy.close()
    frames = [json.loads(p) for p in dict.fromkeys(seen.payloads("sockfound"))]  # a resent one counts once
    assert [f["frame"] for f in frames] == list(range(total))
    assert [f["ts"] for f in frames] == sorted(f["ts"] for f in frames)


# --- frames without a camera name: each publisher is its own camera (issue 25) -------------

@pytest.mark.parametrize("protocol, exact", [("5", True), ("3.1.1", False)])
def test_a_publisher_stamping_ahead_cannot_blind_another_without_camera_names(mosquitto, tmp_path,
                                                                              protocol, exact):
    """Two publishers send frames without a camera name: one a camera 100-40 s behind, the
    other twice as many Blank frames stamped now + 290 s. Over MQTT 5 each is the camera its
    client id names (our publishers send it as a user property) and every sock counts; over
    3.1.1 they share the default camera and the strays make the slow camera's frames late."""
    now = time.time()
    socks = [f for i in range(N) for f in sock_frames(i, now - 100.0)]
    stray = json.dumps({"image": "Blank", "probability": 99.0, "ts": now + 290.0})
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as results, serving(mosquitto, tmp_path) as (_, db):
        online(results)
        slow = connect_publisher(mosquitto.url, client_id="cam-slow", protocol=protocol)
        ahead = connect_publisher(mosquitto.url, client_id="cam-ahead", protocol=protocol)
        try:
            for frame in socks:
                ahead.publish("sockfound", stray)
                ahead.publish("sockfound", stray)
                slow.publish("sockfound", json.dumps(frame))
            status = results.wait_for(lambda s: s.get("runtime") == "serve" and s.get("received") == 3 * len(socks),
                                      "sockpairs/status", 30)
        finally:
            slow.close()
            ahead.close()
        if exact:
            wait_socks(results, N, 30)
    if exact:
        check_store(db, results, truth(), by_camera={"cam-slow": N})
    else:
        assert status["dead_letters"] > 0 and status["socks"] < N
