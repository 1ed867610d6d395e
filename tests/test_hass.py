"""Home Assistant MQTT discovery: the configs, rendered as Home Assistant renders them, and
``sortcore serve`` on a real mosquitto: retained configs, their state topics' retained
values, the button that starts a new session, and removal when discovery is turned off.

Home Assistant's templates are Jinja2 in a sandbox; its ``value_json`` is the payload's JSON.
A template that renders ``None`` sets a sensor to ``unknown`` (homeassistant/components/mqtt
sensor.py, ``PAYLOAD_NONE``)."""

import json
import re
import uuid

import pytest

from sortcore import __version__
from sortcore.runtime import hass
from sortcore.adapters.mqtt import connect_publisher
from sortcore.core.messages import offline_will, state_message, status_message
from sortcore.runtime.control import parse_control
from tests.mqtt_util import Collector
from tests.test_service import online, reap, serve_process, sock

jinja2 = pytest.importorskip("jinja2")
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

TOPIC = re.compile(r"^homeassistant/(sensor|button)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$")
SENSORS = {"socks_seen", "pairs", "odd_socks", "unrecognised_socks", "frames", "dead_letters", "status"}


def render(template, payload):
    """What Home Assistant shows for ``payload`` on the state topic."""
    return ImmutableSandboxedEnvironment().from_string(template).render(value_json=json.loads(payload))


def configs(messages):
    return {TOPIC.match(topic).group(3): json.loads(payload) for topic, payload in messages}


def test_each_entity_has_the_documented_keys_and_one_device():
    messages = hass.discovery_messages("kitchen cam", "run", {"sockpairs/state": "site1/sockpairs/state"})
    by_id = configs(messages)
    assert set(by_id) == SENSORS | {"new_session"}
    assert {TOPIC.match(t).group(2) for t, _ in messages} == {"sortcore_kitchen_cam"}
    assert len({c["unique_id"] for c in by_id.values()}) == len(by_id)
    devices = [c["device"] for c in by_id.values()]
    assert all(d == devices[0] for d in devices)
    assert devices[0] == {"identifiers": ["sortcore_kitchen_cam"], "name": "sortcore kitchen cam",
                          "manufacturer": "sortcore", "model": "sortcore run", "sw_version": __version__}
    for object_id, config in by_id.items():
        assert config["origin"]["name"] == "sortcore" and config["name"]
        if object_id != "status":  # the status shows 'offline' itself
            assert config["availability"][0]["topic"] == "sockpairs/status"
    assert by_id["pairs"]["state_topic"] == "site1/sockpairs/state"  # the link's topic_prefix
    assert by_id["frames"]["entity_category"] == by_id["status"]["entity_category"] == "diagnostic"
    assert by_id["pairs"]["state_class"] == "total_increasing"
    button = by_id["new_session"]
    assert button["command_topic"] == "sockpairs/control" and button["retain"] is False
    assert parse_control(button["payload_press"].encode())[0] == "reset"
    assert all(payload == "" for _, payload in hass.discovery_messages("kitchen cam", "run", enabled=False))


def test_templates_read_the_state_and_status_every_runtime_publishes():
    by_id = configs(hass.discovery_messages("sortcore-serve", "serve"))
    rows = [("Google", 3, "Odd", 1), ("Mongo", 2, "Pair", 1), ("Github", 1, "Odd", 0)]
    state = json.dumps(state_message(4, rows, 1.0, unknown=2))
    status = json.dumps(status_message(status="degraded", frames=120, dead_letters=3, reason="disk full"))
    shown = {k: render(by_id[k]["value_template"], state if by_id[k]["state_topic"] == "sockpairs/state"
                       else status) for k in SENSORS}
    assert shown == {"socks_seen": "8", "pairs": "2", "odd_socks": "2", "unrecognised_socks": "2",
                     "frames": "120", "dead_letters": "3", "status": "degraded"}
    available = by_id["pairs"]["availability"][0]
    assert render(available["value_template"], status) == available["payload_available"]
    assert render(available["value_template"], offline_will()) == available["payload_not_available"]
    assert render(by_id["frames"]["value_template"], offline_will()) == "None"  # Home Assistant: unknown
    assert render(by_id["pairs"]["value_template"], json.dumps(state_message(5, [], 1.0))) == "0"


def retained(broker, pattern, marker):
    """The retained messages on ``pattern`` now: subscribe to it and to ``marker``, then
    publish the marker: the broker sends the retained messages before it."""
    with Collector(broker, [pattern, marker]) as seen:
        cam = connect_publisher(broker.url)
        try:
            cam.publish(marker, b"marker")
        finally:
            cam.close()
        seen.wait(1, marker)
        return [(t, p) for t, p, r in seen.messages if t != marker and r]


def test_serve_announces_itself_and_its_button_starts_a_new_session(mosquitto, tmp_path):
    db = tmp_path / "hass.db"
    with Collector(mosquitto, ["sockpairs/status", "sockpairs/state"]) as seen:
        proc = serve_process(mosquitto.url, db, "--status-interval", "0.1", "--lateness", "0")
        try:
            online(seen, 20)
            cam = connect_publisher(mosquitto.url)
            try:
                for payload in sock("Google", 0) + sock("Google", 1) + sock("Mongo", 2):
                    cam.publish("sockfound", payload)
            finally:
                cam.close()
            first = seen.wait_for(lambda s: len(s["socks"]) == 2, "sockpairs/state", 20)
            seen.wait_for(lambda s: s["frames"] == 12, "sockpairs/status", 20)
            found = retained(mosquitto, "homeassistant/#", "homeassistant/test/%s" % uuid.uuid4().hex)
            by_id = configs(found)
            assert set(by_id) == SENSORS | {"new_session"}, found
            assert {TOPIC.match(t).group(2) for t, _ in found} == {"sortcore-serve"}
            shown = {}
            for object_id in SENSORS:  # what Home Assistant shows right after it subscribes
                config = by_id[object_id]
                values = retained(mosquitto, config["state_topic"], config["state_topic"] + "/marker")
                assert len(values) == 1, (object_id, values)
                shown[object_id] = render(config["value_template"], values[0][1])
                availability = config.get("availability", [{}])[0]
                if availability:
                    status = retained(mosquitto, availability["topic"], "sockpairs/status/marker")[0][1]
                    assert render(availability["value_template"], status) == "online"
            assert shown == {"socks_seen": "3", "pairs": "1", "odd_socks": "1", "unrecognised_socks": "0",
                             "frames": "12", "dead_letters": "0", "status": "online"}
            button = by_id["new_session"]
            press = connect_publisher(mosquitto.url)  # as Home Assistant does when it is pressed
            try:
                press.publish(button["command_topic"], button["payload_press"], qos=button["qos"],
                              retain=button["retain"])
            finally:
                press.close()
            fresh = seen.wait_for(lambda s: s["session"] != first["session"], "sockpairs/state", 20)
            assert fresh["socks"] == [] and fresh["session"] == first["session"] + 1
        finally:
            proc.terminate()
            assert proc.wait(15) == 0
            reap(proc)
        assert seen.wait_for(lambda s: s["status"] == "offline", "sockpairs/status", 10)
    with Collector(mosquitto, ["homeassistant/#"]) as announced:
        assert len(announced.wait(8)) == 8  # retained, from the first run
        proc = serve_process(mosquitto.url, db, "--no-ha-discovery")
        try:
            removed = announced.wait(16, timeout=20)[8:]
            assert sorted(t for t, p, r in announced.messages[8:]) == sorted(t for t, _ in found)
            assert removed == [b""] * 8
            assert retained(mosquitto, "homeassistant/#", "homeassistant/test/%s" % uuid.uuid4().hex) == []
        finally:
            proc.terminate()
            assert proc.wait(15) == 0
            reap(proc)


@pytest.mark.model
def test_run_announces_its_camera_takes_the_button_and_a_killed_run_shows_unavailable(mosquitto, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.shared import PHOTOS, ROOT

    pytest.importorskip("onnxruntime")
    if not PHOTOS.exists():
        pytest.skip("../shared/sock-photos is not beside the repository")
    env = dict(os.environ, PYTHONPATH=str(ROOT), SORTCORE_DB=str(tmp_path / "run.db"), SORTCORE_BROKER=mosquitto.url)
    with Collector(mosquitto, ["homeassistant/#", "sockpairs/state", "sockpairs/status"]) as seen:
        proc = subprocess.Popen([sys.executable, "-m", "sortcore", "run", "--source", "folder:%s?loop" % PHOTOS,
                                 "--fps", "20", "--camera", "testcam", "--min-frames", "2", "--status-interval", "0.2"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            first = seen.wait_for(lambda s: isinstance(s, dict) and len(s.get("socks", [])) >= 2, "sockpairs/state", 60)
            by_id = {t.split("/")[3]: json.loads(p) for t, p, r in seen.messages if t.endswith("/config")}
            assert set(by_id) == SENSORS | {"new_session"}
            assert by_id["pairs"]["device"]["name"] == "sortcore testcam"
            button = by_id["new_session"]
            press = connect_publisher(mosquitto.url)
            try:
                press.publish(button["command_topic"], button["payload_press"], qos=1)
            finally:
                press.close()
            seen.wait_for(lambda s: s["session"] == first["session"] + 1, "sockpairs/state", 30)
            proc.send_signal(signal.SIGKILL)  # no clean stop: the broker sends the last will
            proc.wait(10)
            will = seen.wait_for(lambda s: s["status"] == "offline", "sockpairs/status", 30)
        finally:
            reap(proc)
    assert will["reason"] == "connection lost"
    available = by_id["pairs"]["availability"][0]
    assert render(available["value_template"], json.dumps(will)) == available["payload_not_available"]
