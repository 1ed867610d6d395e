"""The serve loop on a real mosquitto: results, outages, kills, hostile input, ACL."""

import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from sortcore.core.errors import PublishDenied
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sortcore.adapters.mqtt import connect_publisher
from sortcore.store.database import Store
from tests.mqtt_util import Collector, serving
from tests.test_mqtt import USERS, secure_broker
from tests.shared import sightings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = time.time() - 3600  # event times an hour ago: never ahead of the receive time


def sock(image, index, camera=None, frames=4, base=T0):
    """Payloads of one sock shown as sock number ``index`` (3 s of event time apart)."""
    out = []
    for k in range(frames):
        obj = {"image": image, "probability": 90.0, "ts": base + 3.0 * index + 0.25 * k}
        if camera:
            obj["camera"] = camera
        out.append(json.dumps(obj))
    return out


DESIGNS = ["Google", "Mongo", "Github", "Confluent"]


def wall(index, base=T0):
    """Blank frames from 35 s after sock number ``index``: the camera goes on past the
    lateness allowance, so a sock waiting for that (docs/time.md) is published. Sixteen:
    sent at once, their clock moves as a backlog's does (sortcore.core.clocks)."""
    return [json.dumps({"image": "Blank", "probability": 90.0, "ts": base + 3.0 * index + 35.0 + 0.25 * k})
            for k in range(16)]


def session_frames(n, start=0):
    frames = []
    for i in range(start, start + n):
        frames += sock(DESIGNS[i % len(DESIGNS)], i)
    return frames


def running(broker, tmp_path, db="serve.db", **opts):
    return serving(broker, Store(str(tmp_path / db)), **opts)


def online(collector, timeout=10):
    return collector.wait_for(lambda s: isinstance(s, dict) and s.get("status") == "online",
                              "sockpairs/status", timeout)


@pytest.mark.compat
def test_frames_in_results_and_state_out(mosquitto, tmp_path):
    with Collector(mosquitto, ["sockpairs/#"]) as seen, running(mosquitto, tmp_path):
        online(seen)
        cam = connect_publisher(mosquitto.url)
        try:
            for payload in session_frames(5) + wall(5):
                cam.publish("sockfound", payload)
            for payload in sock("Google", 6, frames=4):  # camera named by the topic
                cam.publish("sockfound/left", payload)
        finally:
            cam.close()
        results = seen.wait_json(6, "sockpairs")
        assert [r["image"] for r in results] == ["Google", "Mongo", "Github", "Confluent", "Google", "Google"]
        assert [r["number_socks_seen"] for r in results] == [1, 1, 1, 1, 2, 3]
        assert results[4]["pair_seen"] == "Pair" and results[4]["pairs"] == 1
        assert results[5]["camera"] == "left"
        assert len({r["sighting"] for r in results}) == 6
        state = seen.wait_for(lambda s: sum(r["number_socks_seen"] for r in s["socks"]) == 6, "sockpairs/state")
        assert state["odd"] == ["Confluent", "Github", "Google", "Mongo"]
    # a late subscriber gets the retained state and the offline status
    with Collector(mosquitto, ["sockpairs/state", "sockpairs/status"]) as late:
        state = late.wait_json(1, "sockpairs/state")[0]
        assert {r["image"]: r["number_socks_seen"] for r in state["socks"]}["Google"] == 3
        assert late.wait_json(1, "sockpairs/status")[0]["status"] == "offline"


@pytest.mark.compat
def test_reset_starts_a_new_session(mosquitto, tmp_path):
    with Collector(mosquitto, ["sockpairs/#"]) as seen, running(mosquitto, tmp_path):
        first = online(seen)["session"]
        cam = connect_publisher(mosquitto.url)
        try:
            for payload in session_frames(2):
                cam.publish("sockfound", payload)
            seen.wait(2, "sockpairs")
            cam.publish("sockpairs/control", json.dumps({"cmd": "reset"}))
            state = seen.wait_for(lambda s: s["session"] != first, "sockpairs/state")
            assert state["socks"] == [] and state["odd"] == []
            for payload in sock("Mongo", 10):
                cam.publish("sockfound", payload)
            after = seen.wait_json(3, "sockpairs")[2]
            assert after["session"] == state["session"] and after["number_socks_seen"] == 1
            assert after["sighting"] > seen.json("sockpairs")[1]["sighting"]
        finally:
            cam.close()


@pytest.mark.compat
def test_broker_restart_mid_stream_loses_no_result(mosquitto, tmp_path):
    total = 24
    reader = Collector(mosquitto, ["sockpairs"], client_id="reader-1", clean_session=False)
    try:
        with Collector(mosquitto, ["sockpairs/status"]) as status, running(mosquitto, tmp_path):
            online(status)
            cam = connect_publisher(mosquitto.url, reconnect_max=0.5)
            try:
                for payload in session_frames(total // 2):
                    cam.publish("sockfound", payload)
                reader.wait(2, "sockpairs")
                mosquitto.stop()  # mid-stream: the service is still working through the frames
                mosquitto.start()
                assert cam.wait_connected(10)
                for payload in session_frames(total // 2, start=total // 2):
                    cam.publish("sockfound", payload)
            finally:
                cam.close()
            deadline = time.monotonic() + 30
            while len(reader.first_by("sighting")) < total and time.monotonic() < deadline:
                reader.wait(len(reader.payloads("sockpairs")) + 1, "sockpairs", timeout=deadline - time.monotonic())
        results = reader.first_by("sighting")
        assert [r["sighting"] for r in results] == sorted(r["sighting"] for r in results)
        assert [r["image"] for r in results] == [DESIGNS[i % 4] for i in range(total)]
    finally:
        reader.close()


def serve_process(broker_url, db, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "sortcore.cli", "-v", "serve", "--broker", broker_url, "--db", str(db)] + list(extra),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
    )


def reap(proc):
    """Kill a serve process that a failing test left running, and close its pipe."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.stderr.close()


@pytest.mark.compat
def test_service_killed_and_restarted_loses_no_sock(mosquitto, tmp_path):
    db = tmp_path / "killed.db"
    total = 20
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as seen:
        proc = serve_process(mosquitto.url, db, "--status-interval", "0.1")
        try:
            online(seen)
            cam = connect_publisher(mosquitto.url)
            try:
                for payload in session_frames(total // 2):
                    cam.publish("sockfound", payload)
                seen.wait(2, "sockpairs")
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                seen.wait_for(lambda s: s.get("status") == "offline", "sockpairs/status")  # the last will
                for payload in session_frames(total // 2, start=total // 2):
                    cam.publish("sockfound", payload)  # queued by the broker for the service's session
            finally:
                cam.close()
            proc.stderr.close()
            proc = serve_process(mosquitto.url, db)
            deadline = time.monotonic() + 30
            while len(seen.first_by("sighting")) < total and time.monotonic() < deadline:
                seen.wait(len(seen.payloads("sockpairs")) + 1, "sockpairs", timeout=deadline - time.monotonic())
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            reap(proc)
    results = seen.first_by("sighting")
    assert [r["image"] for r in results] == [DESIGNS[i % 4] for i in range(total)]
    store = Store(str(db))
    try:
        rows = sightings(store, store.session()["id"])
        assert sorted(r["id"] for r in rows) == sorted(r["sighting"] for r in results)
        assert len(rows) == total and len({r["id"] for r in rows}) == total
        assert store.pending() == []
    finally:
        store.close()


# --- hostile input ----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
frame_like = st.fixed_dictionaries({}, optional={
    "image": st.one_of(st.text(max_size=80), st.integers(), st.none(), st.lists(st.text(max_size=3))),
    "probability": st.one_of(st.floats(allow_nan=False), st.integers(), st.text(max_size=5), st.none()),
    "camera": st.one_of(st.text(max_size=70), st.integers()),
    "frame": st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=3)),
})
hostile = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    json_values.map(lambda v: json.dumps(v).encode()),
    frame_like.map(lambda d: json.dumps(d).encode()),
    st.sampled_from([
        b'{"image": "Google", "probability": NaN}', b'{"image": "Google", "probability": Infinity}',
        b'{"image": "Google", "probability": 50, "ts": "now"}', b'{"image": "Google", "probability": 1e999}',
        b"\xff\xfe\x00", b"[" * 5000, b"{" * 100000, b'"' + b"x" * 70000 + b'"', b"",
    ]),
)


def _no_constant(name):
    raise ValueError(name)


def is_valid_frame(payload: bytes) -> bool:
    """The oracle, written by hand, independent of decode_payload: strict UTF-8
    JSON (no NaN/Infinity, integers within 64 bits) of at most 64 KiB, an object with a non-blank
    printable ``image`` of at most 64 characters (surrounding whitespace dropped), a finite
    ``probability`` in [0, 100], an optional finite ``ts`` (these frames are never ahead of
    now), an optional printable ``camera`` of at most 64 characters, an optional ``frame`` >= 0."""
    def number(v):
        return type(v) in (int, float) and (type(v) is float or -2 ** 63 <= v < 2 ** 64) and math.isfinite(v)

    if len(payload) > 64 * 1024:
        return False
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return False
    if type(obj) is not dict:
        return False
    image, prob = obj.get("image"), obj.get("probability")
    camera, seq, ts = obj.get("camera"), obj.get("frame"), obj.get("ts")
    return (type(image) is str and 0 < len(image) <= 64 and image.strip() != "" and image.strip().isprintable()
            and number(prob) and 0 <= prob <= 100
            and (ts is None or (number(ts) and ts <= time.time() + 300))
            and (camera is None or (type(camera) is str and len(camera) <= 64 and camera.isprintable()))
            and (seq is None or (type(seq) is int and 0 <= seq < 2 ** 64)))


@pytest.mark.compat
def test_hostile_payloads_are_dead_letters_and_the_service_goes_on(mosquitto, tmp_path):
    expected = {"frames": 0, "dead": 0}
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as seen, running(mosquitto, tmp_path):
        online(seen)
        cam = connect_publisher(mosquitto.url)

        @settings(max_examples=2000, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(payload=hostile, control=st.integers(0, 20))
        def flood(payload, control):
            topic = "sockpairs/control" if control == 0 else "sockfound"
            if topic == "sockfound":
                expected["frames" if is_valid_frame(payload) else "dead"] += 1
            else:
                expected["dead"] += 1  # only {"cmd": "reset"} is a command
            cam.publish(topic, payload)

        try:
            flood()
            # valid flood frames had no ts (receive time), so this sock is in the present too
            for payload in sock("AfterTheFlood", 0, camera="good", base=time.time()):
                cam.publish("sockfound", payload)
        finally:
            cam.close()
        assert expected["dead"] > 1000
        result = seen.wait_for(lambda r: r.get("image") == "AfterTheFlood", "sockpairs", timeout=30)
        assert result["number_socks_seen"] == 1
        # the first status with every dead letter may predate the last good frames: wait for both
        status = seen.wait_for(lambda s: s["dead_letters"] == expected["dead"]
                               and s["frames"] == expected["frames"] + 4, "sockpairs/status", timeout=30)
        assert status["status"] == "online" and status["resets"] == 0
    store = Store(str(tmp_path / "serve.db"))
    try:
        letters = store.dead_letters()
        assert len(letters) == expected["dead"]
        assert all(d["reason"] and len(d["raw"]) < 1100 for d in letters)
    finally:
        store.close()


@pytest.mark.compat
def test_frames_that_overtake_a_backlog_by_up_to_28_s_count_exactly(mosquitto, tmp_path):
    """Issue 25: frames published while paho waits for CONNACK go out before its buffered
    backlog. Within the lateness allowance that order changes no count."""
    total = 20
    frames = session_frames(total)
    reordered = frames[:-40] + frames[-8:] + frames[-40:-8]  # the last 2 socks before the 8 before them
    with Collector(mosquitto, ["sockpairs"]) as seen, running(mosquitto, tmp_path) as service:
        assert service.ready.wait(10)
        cam = connect_publisher(mosquitto.url)
        try:
            for payload in reordered:
                cam.publish("sockfound", payload)
        finally:
            cam.close()
        results = seen.wait_json(total, "sockpairs", timeout=30)
        assert len({r["sighting"] for r in results}) == total
    store = Store(str(tmp_path / "serve.db"))
    try:
        assert store.dead_letters() == []
        assert {r["image"]: r["number_socks_seen"] for r in store.pairs(store.session()["id"])} == {
            design: total // 4 for design in DESIGNS}
    finally:
        store.close()


@pytest.mark.compat
def test_ten_frames_stamped_290_s_ahead_leave_the_next_session_exact(mosquitto, tmp_path):
    """Issue 25: four such frames gave 0 of 20 and 317 late dead letters. Held at their
    receive time (sortcore.core.clocks), they move the camera's clock no further than that."""
    total = 20
    with Collector(mosquitto, ["sockpairs"]) as seen, running(mosquitto, tmp_path) as service:
        assert service.ready.wait(10)
        cam = connect_publisher(mosquitto.url)
        try:
            ahead = time.time() + 290.0
            for k in range(10):
                cam.publish("sockfound", json.dumps({"image": "Blank", "probability": 90.0, "ts": ahead + k}))
            assert service.wait_until(lambda s: s.counters.received == 10, 10)
            base = time.time() + 1.0  # the next session, stamped after them
            for i in range(total):
                for payload in sock(DESIGNS[i % len(DESIGNS)], i, base=base):
                    cam.publish("sockfound", payload)
        finally:
            cam.close()
        results = seen.wait_json(total, "sockpairs", timeout=30)  # the last ones wait for silence
        assert [r["image"] for r in results] == [DESIGNS[i % 4] for i in range(total)]
    store = Store(str(tmp_path / "serve.db"))
    try:
        assert store.dead_letters() == []
        assert len(sightings(store, store.session()["id"])) == total
    finally:
        store.close()


# --- TLS, passwords and the ACL -------------------------------------------------------

def test_secure_broker_password_and_acl(broker_factory, tmp_path):
    broker = secure_broker(broker_factory, tmp_path)
    pw = tmp_path / "svc.pw"
    pw.write_text(USERS["sortcore"] + "\n")
    auth = dict(tls_ca=broker.ca)
    with Collector(broker, ["sockpairs/#"], username="reader", password="rd-pw", **auth) as seen:
        proc = serve_process(broker.url, tmp_path / "secure.db", "--username", "sortcore",
                             "--password-file", str(pw), "--tls-ca", broker.ca, "--status-interval", "0.1")
        try:
            first = online(seen)["session"]
            intruder = connect_publisher(broker.url, username="camera", password="cam-pw", **auth)
            try:
                with pytest.raises(PublishDenied, match="Not authorized"):  # MQTT 5 says so
                    intruder.publish("sockpairs/control", json.dumps({"cmd": "reset"}))  # the ACL
                for payload in sock("Google", 0):
                    intruder.publish("sockfound", payload)
            finally:
                intruder.close()
            assert seen.wait_json(1, "sockpairs")[0]["session"] == first
            assert seen.payloads("sockpairs/control") == []
            operator = connect_publisher(broker.url, username="operator", password="op-pw", **auth)
            try:
                operator.publish("sockpairs/control", json.dumps({"cmd": "reset"}))
            finally:
                operator.close()
            seen.wait_for(lambda s: s["session"] == first + 1, "sockpairs/state")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            reap(proc)


def test_wrong_password_is_one_clear_line_and_a_retry(broker_factory, tmp_path):
    broker = secure_broker(broker_factory, tmp_path)
    pw = tmp_path / "bad.pw"
    pw.write_text("not-the-password\n")
    proc = serve_process(broker.url, tmp_path / "bad.db", "--username", "sortcore", "--password-file", str(pw),
                         "--tls-ca", broker.ca)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l.decode()) for l in proc.stderr], daemon=True)
    reader.start()
    seen = []
    try:
        while not any("refused" in line for line in seen):
            seen.append(lines.get(timeout=15))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        reader.join(5)
        proc.stderr.close()
    while not lines.empty():
        seen.append(lines.get())
    text = "".join(seen)
    assert "refused the connection: Not authorized" in text
    assert "not-the-password" not in text and "Traceback" not in text
    assert text.count("refused") == 1


# --- options: command line > environment > config file > default ------------------------

@pytest.mark.compat
def test_option_precedence(tmp_path):
    from click.testing import CliRunner

    from sortcore.cli import main

    pw = tmp_path / "pw"
    pw.write_text("x\n")
    example = open(os.path.join(ROOT, "deploy", "sortcore.conf.example")).read()
    conf = tmp_path / "sortcore.conf"
    conf.write_text(example.replace("/etc/sortcore/broker.pw", str(pw))
                    .replace("mqtt://127.0.0.1:1883", "fromfile://a"))

    def broker_used(args, env=None):
        result = CliRunner().invoke(main, ["serve", "--config", str(conf)] + args, env=env or {})
        assert result.exit_code == 2, result.output  # the bad scheme stops it before connecting
        return result.output

    assert "fromfile://a" in broker_used([])
    assert "fromenv://b" in broker_used([], {"SORTCORE_BROKER": "fromenv://b"})
    assert "fromcli://c" in broker_used(["--broker", "fromcli://c"], {"SORTCORE_BROKER": "fromenv://b"})
    conf.write_text("[serve]\nbrokr = mqtt://x\n")
    assert "unknown key 'brokr'" in broker_used([])


@pytest.mark.compat
def test_a_control_message_that_repeats_a_key_is_a_dead_letter_not_a_reset():
    from sortcore.core.errors import BadFrame
    from sortcore.runtime.control import parse_control

    assert parse_control(b'{"cmd": "reset"}')[0] == "reset"
    with pytest.raises(BadFrame, match="repeats the key 'cmd'"):
        parse_control(b'{"cmd": "noop", "cmd": "reset"}')
    with pytest.raises(BadFrame, match="repeats the key 'x'"):
        parse_control(b'{"cmd": "status", "x": 1, "x": 2}')
