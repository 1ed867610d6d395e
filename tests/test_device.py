"""The device loop off the camera: image folders, the CPU model, a real mosquitto.

The same :class:`sortcore.runtime.device.DeviceLoop` the Greengrass lambda runs, with a
folder source instead of ``awscam`` and the paho publisher instead of the
Greengrass core. Time is a fake clock the loop's ``sleep`` moves forward, so
the frame-rate limit and the backoff delays cost no real time.
"""

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from sortcore.runtime.device import DeviceLoop, DeviceOptions
from sortcore.runtime.core import CoreOptions
from sortcore.runtime.links import Backoff, Link
from sortcore.core.engine import EngineConfig
from sortcore.core.errors import ConfigError, MqttError, SourceError, SourceMissing
from sortcore.classifier.model import Prediction
from sortcore.adapters.mqtt import connect_publisher
from sortcore.store.pipeline import Pipeline
from sortcore.camera.sources import open_source
from sortcore.store.database import Store
from tests.clock import T0, FakeClock
from tests.mqtt_util import Collector
from tests.shared import PHOTOS, ROOT, import_lambda_handler

MODEL_DIR = Path(os.environ.get("SORTCORE_TEST_MODEL_DIR") or ROOT / "model")  # the shipped model
FRAME_KEYS = {"image", "probability", "ts", "frame", "camera"}


class LabelClassifier:
    """Frames are label strings here; ``classify`` reads them (or fails on 'boom')."""

    def classify(self, frame):
        if frame == "boom":
            raise ValueError("cannot decode frame")
        if frame == "weird":
            return Prediction("Github", 250.0)  # out of range: a dead letter
        return Prediction(frame, 97.5)


class ListSource:
    """A finite source of label 'frames'."""

    name = "list"

    def __init__(self, frames):
        self.frames = frames  # a list, or an iterator shared across reopenings
        self.closed = False

    def __iter__(self):
        return iter(self.frames)

    def close(self):
        self.closed = True


def make_loop(tmp_path, clock, open_source, classifier, links=(), **options):
    store_path = str(tmp_path / "device.db")

    def open_pipeline():
        # lateness 0, as run and the lambda default to: the camera's own frames come in order
        return Pipeline(Store(store_path, clock=clock), EngineConfig(lateness=0), source="camera:test", clock=clock)

    opts = dict(camera="testcam", fps=5.0, stop_at_end=True, core=CoreOptions(heartbeat=0))
    fatal = options.pop("fatal", ())
    opts.update(options)
    return DeviceLoop(open_source, lambda: classifier, open_pipeline, list(links),
                      DeviceOptions(**opts), clock=clock, sleep=clock.sleep, fatal=fatal)


def mqtt_link(broker, clock, name="mqtt"):
    return Link(name, lambda: connect_publisher(broker.url, timeout=3.0), clock=clock)


# --- the real thing: photos, CPU model, mosquitto ------------------------------

@pytest.fixture(scope="module")
def classifier():
    if not PHOTOS.is_dir():
        pytest.skip("sock photos not found at %s" % PHOTOS)
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    from sortcore.classifier.backends import load_classifier
    return load_classifier(str(MODEL_DIR))


def photo_folder(target: Path, rounds=2, per_design=5):
    """Symlinks in name order: each design's photos ``per_design`` times, all designs, twice."""
    designs = sorted(d.name for d in PHOTOS.iterdir() if d.is_dir())
    target.mkdir()
    order = []
    for r in range(rounds):
        for i, design in enumerate(designs):
            photos = sorted((PHOTOS / design).glob("*.jpg"))
            for k in range(per_design):
                link = target / ("%d-%02d-%d-%s.jpg" % (r, i, k, design))
                os.symlink(str(photos[k % len(photos)]), str(link))
                order.append(design)
    return designs, order


def test_photos_become_sockfound_and_sockpairs(tmp_path, mosquitto, classifier):
    designs, order = photo_folder(tmp_path / "frames")
    clock = FakeClock()
    collector = Collector(mosquitto, topics=("sockfound", "sockpairs", "sockpairs/state"))
    loop = make_loop(tmp_path, clock, lambda: open_source("folder:%s" % (tmp_path / "frames")),
                     classifier, [mqtt_link(mosquitto, clock)])
    try:
        loop.run()
        frames = collector.wait_json(len(order), "sockfound", timeout=20)
        pairs = collector.wait_json(2 * len(designs), "sockpairs", timeout=10)
    finally:
        collector.close()

    assert [f["image"] for f in frames] == order  # the model knows every photo
    for number, frame in enumerate(frames):
        assert set(frame) == FRAME_KEYS
        assert frame["frame"] == number and frame["camera"] == "testcam"
        assert frame["ts"] == pytest.approx(T0 + number * 0.2, abs=1e-3)  # 5 fps, no real sleep
        assert 0 <= frame["probability"] <= 100
    by_design = {}
    for message in pairs:
        by_design.setdefault(message["image"], []).append(
            (message["number_socks_seen"], message["pair_seen"], message["pairs"]))
    assert by_design == {d: [(1, "Un-matched", 0), (2, "Pair", 1)] for d in designs}
    state = json.loads(collector.payloads("sockpairs/state")[-1])
    assert state["odd"] == [] and len(state["socks"]) == len(designs)
    store = Store(str(tmp_path / "device.db"))
    assert store.pending() == []
    assert loop.errors == 0 and loop.frames == len(order)


# --- never dies ----------------------------------------------------------------

def test_camera_not_ready_is_retried_with_backoff(tmp_path):
    clock = FakeClock()
    opened = []

    def flaky_camera():
        opened.append(clock())
        if len(opened) <= 3:
            raise SourceError("camera not ready")
        return ListSource(["Github"] * 5)

    loop = make_loop(tmp_path, clock, flaky_camera, LabelClassifier(), fps=0)
    loop.run()
    assert loop.errors == 3 and loop.frames == 5
    assert clock.sleeps[:3] == [0.5, 1.0, 2.0]  # doubling delays between attempts
    assert [round(t - T0, 3) for t in opened] == [0.0, 0.5, 1.5, 3.5]
    store = Store(str(tmp_path / "device.db"))
    assert [row["image"] for row in store.pairs(store.session()["id"])] == ["Github"]


def test_source_that_fails_mid_stream_is_reopened(tmp_path):
    clock = FakeClock()
    opens = []

    class Dropping(ListSource):
        def __iter__(self):
            yield "Mongo"
            yield "Mongo"
            if len(opens) == 1:
                raise SourceError("awscam.getLastFrame() failed 50 times in a row")
            yield "Mongo"

    def camera():
        opens.append(1)
        return Dropping([])

    loop = make_loop(tmp_path, clock, camera, LabelClassifier(), fps=0)
    loop.run()
    assert len(opens) == 2 and loop.errors == 1 and loop.frames == 5
    assert "getLastFrame" in loop.last_error


def test_bad_frames_are_dead_letters_and_the_loop_goes_on(tmp_path):
    clock = FakeClock()
    frames = ["Google", "boom", "Google", "weird", "Google", "Google"]
    loop = make_loop(tmp_path, clock, lambda: ListSource(frames), LabelClassifier())
    loop.run()
    assert loop.errors == 0 and loop.frames == 6
    store = Store(str(tmp_path / "device.db"))
    reasons = [d["reason"] for d in store.dead_letters()]
    assert len(reasons) == 2
    assert "cannot classify" in reasons[0] and "outside [0, 100]" in reasons[1]
    assert [d["line"] for d in store.dead_letters()] == [1, 3]
    assert store.pairs(store.session()["id"])[0]["number_socks_seen"] == 1


class FilmedSource(ListSource):
    """Label 'frames' filmed at 4 a second: a video's own clock (``frame_time``)."""

    def __iter__(self):
        for number, frame in enumerate(self.frames):
            self.position = number * 0.25
            yield frame

    def frame_time(self):
        return self.position


def test_a_video_is_counted_on_its_own_clock_however_fast_it_is_read(tmp_path):
    """fps 0 reads every frame at once (the fake clock never moves): on the wall clock the
    second Github sock would merge into the first; on the video's clock they are a pair."""
    clock = FakeClock()
    frames = ["Github"] * 5 + ["Blank"] * 12 + ["Github"] * 5
    loop = make_loop(tmp_path, clock, lambda: FilmedSource(frames), LabelClassifier(), fps=0)
    loop.run()
    assert clock() == T0  # no time passed on the wall clock
    store = Store(str(tmp_path / "device.db"))
    row = store.pairs(store.session()["id"])[0]
    assert (row["image"], row["number_socks_seen"], row["pair_seen"]) == ("Github", 2, "Pair")
    seen = store.conn.execute("select first_seen from sightings order by id").fetchall()
    assert [round(first - T0, 3) for first, in seen] == [0.0, 4.25]


def test_a_fatal_error_stops_the_loop_at_once(tmp_path):
    """What retrying cannot mend (here: a missing video) ends run() with the error, not a retry."""
    clock = FakeClock()

    def missing():
        raise SourceMissing("video file /no/such.mp4 does not exist")

    loop = make_loop(tmp_path, clock, missing, LabelClassifier(), fatal=(SourceMissing,))
    with pytest.raises(SourceMissing):
        loop.run()
    assert loop.errors == 0 and clock.sleeps == [] and loop.state == "failed"
    assert "does not exist" in loop.last_error and loop.pipeline is None


def test_any_exception_in_a_step_is_survived(tmp_path):
    """Even an error nobody planned for (here: the store path is a directory) is retried."""
    clock = FakeClock()
    attempts = []

    def open_pipeline():
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("disk not mounted yet")
        return Pipeline(Store(str(tmp_path / "late.db"), clock=clock), EngineConfig(lateness=0), clock=clock)

    loop = DeviceLoop(lambda: ListSource(["Github"] * 4), LabelClassifier, open_pipeline, [],
                      DeviceOptions(stop_at_end=True, core=CoreOptions(heartbeat=0)), clock=clock, sleep=clock.sleep)
    loop.run()
    assert len(attempts) == 3 and loop.frames == 4 and loop.errors == 2


def test_broker_down_keeps_counting_and_publishes_when_back(tmp_path, mosquitto):
    clock = FakeClock()
    frames = iter(["Confluent"] * 3 + ["Databricks"] * 5 + ["Blank"] * 20)
    link = mqtt_link(mosquitto, clock)
    loop = make_loop(tmp_path, clock, lambda: ListSource(frames), LabelClassifier(), [link],
                     stop_at_end=False)
    for _ in range(3):  # broker up: connected, frames published
        assert loop.step()
    assert link.sent >= 3 and link.retry_at is None  # the frames, the state and the status
    mosquitto.stop()
    for _ in range(5):  # a Databricks sock is confirmed while the broker is down
        assert loop.step()
    store = loop.pipeline.store
    assert [row["topic"] for row in store.pending()] == ["sockpairs"]
    assert not link.ready and loop.errors == 0
    publisher = link.publisher  # kept: it reconnects by itself, and resends what it had in flight

    mosquitto.start()
    with Collector(mosquitto, topics=("sockpairs", "sockpairs/state")) as collector:
        assert publisher.wait_connected(20) and link.publisher is publisher
        assert loop.step()
        message = collector.wait_json(1, "sockpairs", timeout=10)[0]
        # the retained state from before the outage may come first
        state = collector.wait_for(lambda s: s["odd"] == ["Databricks"], "sockpairs/state", 10)
    assert (message["image"], message["number_socks_seen"], message["pair_seen"]) == ("Databricks", 1, "Un-matched")
    assert state["session"] == message["session"]
    assert store.pending() == [] and link.retry_at is None
    loop.close()


def test_a_destination_that_is_down_holds_back_no_other(tmp_path, mosquitto):
    clock = FakeClock()

    def refuse():
        raise MqttError("connection refused")

    frames = iter(["Mongo"] * 5 + ["Blank"] * 5)
    up, down = mqtt_link(mosquitto, clock, name="local"), Link("cloud", refuse, clock=clock)
    loop = make_loop(tmp_path, clock, lambda: ListSource(frames), LabelClassifier(), [down, up])
    with Collector(mosquitto, topics=("sockpairs",)) as collector:
        for _ in range(5):
            assert loop.step()
        message = collector.wait_json(1, "sockpairs", timeout=10)[0]
    assert (message["image"], message["number_socks_seen"]) == ("Mongo", 1)
    store = loop.pipeline.store
    assert store.pending(destination="local") == []
    assert [row["sighting"] for row in store.pending(destination="cloud")] == [message["sighting"]]
    loop.close()


def test_reset_request_starts_a_new_session(tmp_path):
    clock = FakeClock()
    loop = make_loop(tmp_path, clock, lambda: ListSource(["Github"] * 10), LabelClassifier(),
                     stop_at_end=False)
    loop.step()
    first = loop.pipeline.session
    queued = threading.Event()
    loop.requests.wake = queued.set
    asked = threading.Thread(target=loop.requests.ask, args=("reset",))  # as the page or the lambda asks
    asked.start()
    assert queued.wait(5)
    loop.step()
    asked.join(5)
    assert loop.pipeline.session == first + 1
    assert loop.status()["session"] == first + 1
    loop.close()


def test_the_lambdas_control_messages_take_the_control_topics_path(tmp_path):
    from sortcore.runtime.control import answer

    loop = make_loop(tmp_path, FakeClock(), lambda: ListSource(["Github"] * 10), LabelClassifier(),
                     stop_at_end=False)
    loop.step()
    first = loop.pipeline.session
    said = answer(loop, {"cmd": "reset"})
    assert said["ok"] and said["cmd"] == "reset" and said["status"]["session"] == first  # not yet: the loop does it
    assert answer(loop, {"cmd": "merge", "design": "New 1"}) == {"ok": False, "error": "merge needs design (a string) and into (a string)"}
    assert answer(loop, {"cmd": "reset"})["ok"] is True
    loop.step()
    assert loop.pipeline.session == first + 1  # one reset: the second came too soon after it
    assert [d["reason"] for d in loop.pipeline.store.dead_letters()][-1].startswith("reset refused: the last one")
    loop.close()


def test_stop_event_ends_the_run(tmp_path):
    clock = FakeClock()

    def endless():
        while True:
            yield "Github"

    loop = make_loop(tmp_path, clock, lambda: endless(), LabelClassifier(), stop_at_end=False, max_frames=None)
    original = clock.sleep

    def sleep(seconds):  # stop after a few rate-limit waits, as the lambda's stop() would
        original(seconds)
        if len(clock.sleeps) >= 5:
            loop.stop.set()

    loop.sleep = sleep
    loop.run()
    assert 4 <= loop.frames <= 6 and loop.pipeline is None  # closed on the way out


def test_backoff_doubles_up_to_the_maximum():
    backoff = Backoff(0.5, 4.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_link_waits_out_its_backoff_without_touching_the_network():
    clock = FakeClock()
    calls = []

    def refuse():
        calls.append(clock())
        raise MqttError("connection refused")

    link = Link("down", refuse, clock=clock)
    with pytest.raises(MqttError):
        link.publish("sockpairs", "{}")
    with pytest.raises(MqttError, match="waiting to reconnect"):
        link.publish("sockpairs", "{}")
    assert len(calls) == 1
    clock.t += 0.5
    with pytest.raises(MqttError):
        link.publish("sockpairs", "{}")
    assert len(calls) == 2


@pytest.mark.parametrize("bad", [dict(fps=-1), dict(camera=""), dict(backoff_initial=0),
                                 dict(max_frames=0)])
def test_options_are_checked(bad):
    with pytest.raises(ConfigError):
        DeviceOptions(**bad)


# --- the lambda module, off the camera ------------------------------------------

def test_lambda_reads_its_environment():
    handler = import_lambda_handler()
    config = handler.config_from_env({
        "AWS_IOT_THING_NAME": "deeplens-kitchen", "SORTCORE_FPS": "2", "SORTCORE_MIN_FRAMES": "3",
        "SORTCORE_IGNORE": "Blank, Running Science", "SORTCORE_TOPIC_PREFIX": "home/",
        "SORTCORE_GREENGRASS": "0", "SORTCORE_BROKER": "mqtt://broker:1883",
    })
    assert config.device.camera == "deeplens-kitchen" and config.device.fps == 2.0
    assert config.engine.min_frames == 3 and config.engine.ignore == ("Blank", "Running Science")
    assert config.topic_prefix == "home/"
    assert config.greengrass is False and config.broker == "mqtt://broker:1883"
    assert config.db == "/sortcore-data/sortcore.db" and config.source == "deeplens"
    assert config.device.model.endswith(os.path.join("greengrass_lambda", "model"))
    for env in ({"SORTCORE_FPS": "fast"}, {"SORTCORE_MODE": "hopping"}, {"SORTCORE_GREENGRASS": "maybe"},
                {"SORTCORE_MODEL_BACKEND": "tflite"}, {"SORTCORE_BROKER": "mqtt://u:pw@broker"},
                {"SORTCORE_MIN_FRAMES": "0"}, {"SORTCORE_TOPIC_PREFIX": "socks/#"}):
        with pytest.raises(ConfigError):
            handler.config_from_env(env)


def test_lambda_autostarts_only_under_greengrass():
    handler = import_lambda_handler()
    assert handler._thread is None  # importing it here started nothing
    assert not handler.autostart_enabled({})
    assert handler.autostart_enabled({"AWS_IOT_THING_NAME": "deeplens"})
    assert handler.autostart_enabled({"MY_FUNCTION_ARN": "arn:aws:lambda:..."})
    assert not handler.autostart_enabled({"MY_FUNCTION_ARN": "x", "SORTCORE_LAMBDA_AUTOSTART": "0"})
    assert handler.autostart_enabled({"SORTCORE_LAMBDA_AUTOSTART": "1"})
    assert handler.function_handler({"cmd": "status"}, None)["ok"] is False


def test_lambda_runs_a_folder_through_an_external_broker(tmp_path, mosquitto):
    """The handler's own wiring (env -> loop thread -> broker), with a folder for a camera."""
    handler = import_lambda_handler()
    (tmp_path / "frames").mkdir()
    model = tmp_path / "model"
    model.mkdir()
    env = {
        "SORTCORE_SOURCE": "folder:%s" % (tmp_path / "frames"), "SORTCORE_MODEL": str(model),
        "SORTCORE_DB": str(tmp_path / "data" / "socks.db"), "SORTCORE_GREENGRASS": "0",
        "SORTCORE_BROKER": mosquitto.url, "SORTCORE_HEARTBEAT": "0",
    }
    loop = handler.start(env)
    try:
        assert handler.start(env) is loop  # a second start returns the running loop
        deadline = time.monotonic() + 10
        while loop.errors < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        status = handler.function_handler({"cmd": "status"}, None)
        assert status["ok"] and status["status"]["camera"] == socket.gethostname()[:64]  # no thing name
        assert status["status"]["status"] == "degraded"  # no model: it says why
        assert handler.function_handler({"cmd": "reset"}, None)["cmd"] == "reset"  # done in the loop's thread
        assert handler.function_handler({"cmd": "dance"}, None) == {
            "ok": False, "error": "unknown control command 'dance'"}
    finally:
        handler.stop()
    assert handler._thread is None
    # no photos in the folder and no model: the loop kept retrying instead of dying
    assert loop.errors >= 1 and loop.frames == 0


def test_a_folder_s_undecodable_images_are_dead_letters(tmp_path):
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / ("%d.png" % i)), np.full((8, 8, 3), 40 * i, np.uint8))
    (folder / "1b.jpg").write_bytes(b"not an image")

    class Named:
        def classify(self, image):
            return Prediction("Github", 97.0)

    clock = FakeClock()
    loop = make_loop(tmp_path, clock, lambda: open_source("folder:%s" % folder), Named(), fps=0)
    loop.run()
    store = Store(str(tmp_path / "device.db"))
    assert loop.frames == 3 and loop.counters["dead_letters"] == 1
    assert [(d["reason"], d["raw"]) for d in store.dead_letters()] == [
        ("not an image OpenCV can decode", str(folder / "1b.jpg"))]


class IpcPublisher(object):
    """A Greengrass-like publisher (synchronous, no paho): it records, or fails while ``down``."""

    def __init__(self, record, down):
        self.record, self.down = record, down

    def publish(self, topic, payload, qos=1, retain=False):
        if self.down[0]:
            raise MqttError("IPC: the nucleus is restarting")
        self.record.append((topic, payload))

    def close(self):
        pass


def test_frames_a_link_could_not_take_go_out_first_and_in_order_when_it_is_back(tmp_path):
    """The lambda's and the component's links: frames made while the link is down wait in the
    backlog and are sent oldest first, before any newer frame."""
    clock = FakeClock()
    record, down = [], [False]
    link = Link("greengrass-v2", lambda: IpcPublisher(record, down), clock=clock, backoff=Backoff(1.0, 1.0))
    loop = make_loop(tmp_path, clock, lambda: ListSource(["Blank"] * 12), LabelClassifier(), [link],
                     stop_at_end=False)
    for n in range(12):
        down[0] = 3 <= n < 8  # the link fails from the 4th frame to the 8th
        assert loop.step()
        if n == 7:
            assert len(loop.backlog) == 5
    frames = [json.loads(p)["frame"] for t, p in record if t == "sockfound"]
    assert frames == list(range(12)) and len(loop.backlog) == 0
    loop.close()
