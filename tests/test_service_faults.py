"""Faults of the serve runtime on a real mosquitto and real SQLite files: a second
service on one store, a full disk, a busy store, outbox retention, a labels file,
reset floods and retained resets, hostile topic names, a denied publish, late frames."""

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from sortcore.adapters.mqtt import connect_publisher
from sortcore.runtime.core import CoreOptions
from sortcore.store.database import Store
from tests.disk import fill
from tests.mqtt_util import Collector, serving
from tests.test_mqtt import USERS, make_tls
from tests.test_service import DESIGNS, ROOT, online, reap, serve_process, sock
from tests.shared import sightings

pytestmark = pytest.mark.compat


def publish(url, payloads, topic="sockfound", **kwargs):
    cam = connect_publisher(url, **kwargs)
    try:
        for payload in payloads:
            cam.publish(topic, payload)
    finally:
        cam.close()


def degraded(seen, word, timeout=20):
    return seen.wait_for(lambda s: s.get("status") == "degraded" and word in (s.get("reason") or ""),
                         "sockpairs/status", timeout)


# --- one store, one service ------------------------------------------------------

def test_a_second_serve_on_the_same_store_is_refused_naming_the_holder(mosquitto, tmp_path):
    db = tmp_path / "one.db"
    with Collector(mosquitto, ["sockpairs/status"]) as seen:
        first = serve_process(mosquitto.url, db, "--status-interval", "0.1")
        try:
            online(seen, 20)
            second = subprocess.run(
                [sys.executable, "-m", "sortcore", "serve", "--broker", mosquitto.url, "--db", str(db)],
                env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT, capture_output=True, timeout=30)
            err = second.stderr.decode()
            assert second.returncode == 1, err
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1 and "Traceback" not in err, err
            assert "pid %d" % first.pid in lines[0] and "sortcore serve" in lines[0], lines[0]
        finally:
            first.terminate()
            first.wait(15)
            reap(first)


def test_run_and_the_lambda_take_the_store_lock_too(tmp_path):
    from sortcore.core.errors import StoreLocked
    from sortcore.runtime.appliance import _loaders, appliance_config

    values = dict(db=str(tmp_path / "camera.db"), camera="cam", source="folder:" + str(tmp_path))
    lambda_, run = (appliance_config(values, runtime, model=str(tmp_path)) for runtime in ("lambda", "run"))
    first = _loaders(lambda_)[2]()
    try:
        with pytest.raises(StoreLocked, match="pid %d \\(sortcore lambda\\)" % os.getpid()):
            _loaders(run)[2]()
    finally:
        first.store.close()
    _loaders(run)[2]().store.close()  # released: the next one opens it


# --- a full disk, a busy store ----------------------------------------------------


def counted(store_path):
    store = Store(str(store_path))
    try:
        session = store.session()["id"]
        return [r["image"] for r in sightings(store, session)], store.pending()
    finally:
        store.close()


def test_full_disk_holds_the_acks_and_counts_once_when_space_returns(mosquitto, small_disk, caplog):
    db = small_disk / "serve.db"
    socks = 30
    frames = [p for i in range(socks) for p in sock(DESIGNS[i % 4], i)]
    caplog.set_level(logging.INFO, logger="sortcore")
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as seen, \
            serving(mosquitto, Store(str(db)), batch=5) as service:
        online(seen)
        filler = fill(small_disk)
        publish(mosquitto.url, frames)
        status = degraded(seen, "full")
        assert service.core.problem and "full" in status["reason"]
        assert len(seen.payloads("sockpairs")) < socks  # held back, not lost
        os.remove(str(filler))
        seen.wait_for(lambda s: s["status"] == "online" and s["socks"] == socks, "sockpairs/status", 30)
        results = seen.wait_json(socks, "sockpairs", timeout=30)
    full_lines = [r for r in caplog.records if "not acknowledging" in r.getMessage()]
    assert len(full_lines) == 1, [r.getMessage() for r in caplog.records]
    images, pending = counted(db)
    assert images == [DESIGNS[i % 4] for i in range(socks)] and pending == []
    assert sorted(r["sighting"] for r in results) == sorted(set(r["sighting"] for r in results))


def test_a_busy_store_degrades_then_commits_the_held_frames(mosquitto, tmp_path):
    db = tmp_path / "busy.db"
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as seen, \
            serving(mosquitto, Store(str(db), busy_timeout=0.2)):
        online(seen)
        other = sqlite3.connect(str(db), isolation_level=None)
        other.execute("begin immediate")  # another writer holds the write lock
        try:
            publish(mosquitto.url, sock("Google", 0))
            degraded(seen, "locked")
            assert seen.payloads("sockpairs") == []
        finally:
            other.execute("rollback")
            other.close()
        assert seen.wait_json(1, "sockpairs")[0]["image"] == "Google"
        seen.wait_for(lambda s: s["status"] == "online" and s["socks"] == 1, "sockpairs/status")
    assert counted(db) == (["Google"], [])


# --- outbox retention, labels, late frames ---------------------------------------

@pytest.mark.parametrize("retention, interval, rows", [(0.0, 0.2, 10000), (1e9, 3600.0, 1)],
                         ids=["by age", "by rows"])
def test_the_core_prunes_delivered_results_after_the_retention(mosquitto, tmp_path, retention, interval, rows):
    db = tmp_path / "prune.db"
    core = CoreOptions(status_interval=0.1, outbox_retention=retention, prune_interval=interval, outbox_rows=rows)
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as seen, \
            serving(mosquitto, Store(str(db)), core=core) as service:
        online(seen)
        publish(mosquitto.url, [p for i in range(3) for p in sock(DESIGNS[i], i)])
        seen.wait(3, "sockpairs")
        reader = Store(str(db))
        try:
            deadline = time.monotonic() + 10
            while reader.conn.execute("select count(*) from outbox").fetchone()[0] > (rows if rows < 3 else 0):
                assert time.monotonic() < deadline, "the outbox was not pruned"
                service.wait_until(lambda s: False, 0.2)
            assert len(sightings(reader, reader.session()["id"])) == 3  # the socks stay
        finally:
            reader.close()


def test_labels_file_makes_unknown_labels_dead_letters(mosquitto, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("Google\nMongo\n")
    db = tmp_path / "labels.db"
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as seen:
        proc = serve_process(mosquitto.url, db, "--labels", str(labels), "--status-interval", "0.1")
        try:
            online(seen, 20)
            publish(mosquitto.url, sock("Gogle", 0) + sock("Google", 1))
            assert seen.wait_json(1, "sockpairs")[0]["image"] == "Google"
            status = seen.wait_for(lambda s: s["dead_letters"] == 4, "sockpairs/status")
            assert status["frames"] == 4
        finally:
            proc.terminate()
            assert proc.wait(15) == 0
            reap(proc)
    store = Store(str(db))
    try:
        assert [d["reason"] for d in store.dead_letters()] and all(
            "Gogle" in d["raw"] for d in store.dead_letters())
    finally:
        store.close()


def test_late_frames_count_as_dead_letters_not_frames(mosquitto, tmp_path):
    db = tmp_path / "late.db"
    base = time.time() - 600
    frames = sock("Google", 0, base=base) + sock("Mongo", 10, base=base)
    late = json.dumps({"image": "Github", "probability": 90.0, "ts": base - 100.0})
    with Collector(mosquitto, ["sockpairs/status"]) as seen, serving(mosquitto, Store(str(db))):
        online(seen)
        publish(mosquitto.url, frames + [late])
        status = seen.wait_for(lambda s: s["received"] == 9, "sockpairs/status")
        assert (status["frames"], status["dead_letters"]) == (8, 1)
    store = Store(str(db))
    try:
        assert [d["reason"][:5] for d in store.dead_letters()] == ["late:"]
    finally:
        store.close()


# --- resets --------------------------------------------------------------------

def sessions(db):
    store = Store(str(db))
    try:
        return store.sessions()
    finally:
        store.close()


def test_a_reset_flood_makes_at_most_a_handful_of_sessions(mosquitto, tmp_path):
    db = tmp_path / "flood.db"
    reset = json.dumps({"cmd": "reset"})
    with Collector(mosquitto, ["sockpairs/status"]) as seen, serving(mosquitto, Store(str(db))) as service:
        first = online(seen)["session"]
        publish(mosquitto.url, [reset])  # an empty session: kept
        seen.wait_for(lambda s: s["received"] == 1, "sockpairs/status")
        assert service.pipeline.session == first
        publish(mosquitto.url, sock("Google", 0))
        cam = connect_publisher(mosquitto.url)
        try:
            started = time.monotonic()
            for i in range(3000):
                cam.publish("sockpairs/control", reset)
                if i % 300 == 299:  # the flood lasts 3 s, with a frame in between now and then
                    cam.publish("sockfound", json.dumps({"image": "Mongo", "probability": 90.0}))
                    threading.Event().wait(max(0.0, started + (i + 1) / 1000.0 - time.monotonic()))
        finally:
            cam.close()
        seen.wait_for(lambda s: s["received"] == 1 + 4 + 3000 + 10, "sockpairs/status", 30)
    made = sessions(db)
    assert 2 <= len(made) <= 4, made  # at most one reset every 2 s, and only of a counted session


def test_a_retained_reset_is_refused_when_published_and_after_a_restart(mosquitto, tmp_path):
    db = tmp_path / "retained.db"
    operator = connect_publisher(mosquitto.url)
    try:
        with Collector(mosquitto, ["sockpairs/status"]) as seen, serving(mosquitto, Store(str(db))):
            first = online(seen)["session"]
            publish(mosquitto.url, sock("Google", 0))
            seen.wait_for(lambda s: s["frames"] == 4, "sockpairs/status")
            operator.publish("sockpairs/control", json.dumps({"cmd": "reset"}), retain=True)
            status = seen.wait_for(lambda s: s["dead_letters"] == 1, "sockpairs/status")
            assert status["session"] == first and status["resets"] == 0
        with Collector(mosquitto, ["sockpairs/status"]) as seen, serving(mosquitto, Store(str(db))):
            # a restart subscribes again: the broker delivers the retained reset once more
            status = seen.wait_for(lambda s: s.get("status") == "online" and s["dead_letters"] == 1,
                                   "sockpairs/status", 20)
            assert status["session"] == first and status["resets"] == 0
    finally:
        operator.publish("sockpairs/control", b"", retain=True)  # clear it
        operator.close()
    letters = Store(str(db))
    try:
        reasons = [d["reason"] for d in letters.dead_letters()]
        assert reasons == ["retained control message ignored"] * 2, reasons
        assert len(letters.sessions()) == 1
    finally:
        letters.close()


# --- hostile topic names ----------------------------------------------------------

def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_2000_long_camera_names_are_dead_letters_and_the_state_stays_small(mosquitto, tmp_path):
    db = tmp_path / "names.db"
    payload = json.dumps({"image": "Google", "probability": 90.0})
    with Collector(mosquitto, ["sockpairs/status"]) as seen, serving(mosquitto, Store(str(db))) as service:
        online(seen)
        before = rss_kb()
        cam = connect_publisher(mosquitto.url)
        try:
            for i in range(2000):
                cam.publish("sockfound/%04d%s" % (i, "c" * 9996), payload)
        finally:
            cam.close()
        seen.wait_for(lambda s: s["dead_letters"] == 2000, "sockpairs/status", 60)
        grown = rss_kb() - before
        state = json.dumps(service.pipeline.engine.snapshot())
        assert service.counters.frames == 0
        assert len(state) < 2000, state[:200]
        assert grown < 20 * 1024, "RSS grew by %d kB" % grown
    store = Store(str(db))
    try:
        letters = store.dead_letters()
        assert len(letters) == 2000 and all(len(d["source"]) <= 210 for d in letters)
        assert os.path.getsize(str(db)) < 5 * 1024 * 1024
    finally:
        store.close()


# --- a denied publish ---------------------------------------------------------------

ACL_DENY = """pattern read sockpairs/#
user camera
topic write sockfound
topic write sockfound/+
user sortcore
topic read sockfound
topic read sockfound/+
topic read sockpairs/control
topic write sockpairs/state
topic write sockpairs/status
%s
user reader
topic read sockpairs/#
"""


def test_a_denied_publish_stays_pending_until_the_acl_allows_it(broker_factory, tmp_path):
    tls = make_tls(tmp_path)
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    passwd.write_text("")
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)
    os.chmod(str(passwd), 0o600)
    acl.write_text(ACL_DENY % "")
    broker = broker_factory(extra=[
        "cafile %s" % (tls / "ca.crt"), "certfile %s" % (tls / "server.crt"),
        "keyfile %s" % (tls / "server.key"), "allow_anonymous false",
        "password_file %s" % passwd, "acl_file %s" % acl], tls=True, name="deny")
    broker.start()
    ca = str(tls / "ca.crt")
    pw = tmp_path / "svc.pw"
    pw.write_text(USERS["sortcore"] + "\n")
    db = tmp_path / "denied.db"
    reader = dict(username="reader", password="rd-pw", tls_ca=ca)
    seen = Collector(broker, ["sockpairs", "sockpairs/status"], client_id="deny-reader", clean_session=False,
                     **reader)
    proc = serve_process(broker.url, db, "--username", "sortcore", "--password-file", str(pw), "--tls-ca", ca,
                         "--status-interval", "0.1", "--reconnect-max", "1")
    try:
        online(seen, 20)
        publish(broker.url, sock("Google", 0), username="camera", password="cam-pw", tls_ca=ca)
        status = seen.wait_for(lambda s: s.get("denied") == 1, "sockpairs/status", 20)
        assert status["status"] == "degraded" and "denied" in status["reason"], status
        assert status["pending"] == 1 and seen.payloads("sockpairs") == []
        store = Store(str(db))
        try:
            assert [json.loads(r["payload"])["image"] for r in store.pending()] == ["Google"]
        finally:
            store.close()
        seen.close()
        broker.stop()
        acl.write_text(ACL_DENY % "topic write sockpairs")  # the operator fixes the ACL
        broker.start()
        seen = Collector(broker, ["sockpairs", "sockpairs/status"], client_id="deny-reader",
                         clean_session=False, **reader)
        assert seen.wait_json(1, "sockpairs", timeout=30)[0]["image"] == "Google"
        seen.wait_for(lambda s: s["status"] == "online" and s["denied"] == 0 and s["pending"] == 0,
                      "sockpairs/status", 20)
        proc.terminate()
        assert proc.wait(15) == 0
    finally:
        seen.close()
        reap(proc)
