"""The page mounted on a real runtime: serve on a real mosquitto, with --http."""

import json
import threading
import urllib.error
import urllib.request

from sortcore.adapters.mqtt import connect_publisher
from sortcore.adapters.mqtt_config import ConnectOptions
from sortcore.core.engine import EngineConfig
from sortcore.runtime.core import CoreOptions
from sortcore.runtime.service import ServeOptions, Service
from sortcore.store.database import Store
from sortcore.web.live import LiveView
from sortcore.web.server import start_http
from tests.test_service import sock


def metrics(url) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "metrics", timeout=10) as response:
        text = response.read().decode("utf-8")
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if not s.labels}


def get(url, data=None, token=None):
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class Served(object):
    """``serve`` on a real mosquitto with its page: ``service``, ``view``, ``handle``."""

    def __init__(self, broker, tmp_path, token=None):
        self.store = Store(str(tmp_path / "s.db"))
        self.service = Service(self.store, EngineConfig(), ServeOptions(
            broker=broker.url, core=CoreOptions(status_interval=0.1),
            connect=ConnectOptions(client_id="sortcore-serve", clean_session=False)))
        self.view = LiveView()
        self.service.core.listeners.append(self.view)
        self.view.bind_reset(self.service.requests.ask)
        self.handle = start_http(self.view, "127.0.0.1", 0, token)
        self.url = self.handle.url
        self.thread = threading.Thread(target=self.service.run, daemon=True)
        self.thread.start()
        assert self.service.ready.wait(10)

    def publish(self, payloads, broker):
        cam = connect_publisher(broker.url)
        try:
            for payload in payloads:
                cam.publish("sockfound", payload)
        finally:
            cam.close()

    def stop(self):
        self.service.stop()
        self.thread.join(10)

    def close(self):
        self.stop()
        self.handle.close()
        self.store.close()


def test_serve_feeds_the_page_and_the_page_resets_the_service(mosquitto, tmp_path):
    served = Served(mosquitto, tmp_path, token="tok-tok-tok-tok-tok")
    try:
        served.publish(sock("Google", 0), mosquitto)
        assert served.service.wait_until(lambda s: s.counters.socks == 1, 10)
        assert served.service.core.wait_until(lambda: get(served.url + "/api/pairs")["rows"], 10)
        pairs = get(served.url + "/api/pairs")
        assert [(r["image"], r["number_socks_seen"]) for r in pairs["rows"]] == [("Google", 1)]
        first = pairs["session"]
        try:
            get(served.url + "/api/reset", data=b"")
            raise AssertionError("reset without the token was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        get(served.url + "/api/reset", data=b"", token="tok-tok-tok-tok-tok")
        assert served.service.pipeline.session == first + 1
    finally:
        served.close()


def test_healthz_and_metrics_follow_the_serve_status(mosquitto, tmp_path):
    """/healthz and /metrics say what serve's own sockpairs/status says, from start to stop."""
    served = Served(mosquitto, tmp_path)
    try:
        served.publish(sock("Google", 0) + sock("Mongo", 1) + ["not json"], mosquitto)
        version, status = -1, None
        while not (status and status["frames"] == 8 and status["dead_letters"] == 1 and status["socks"] == 2):
            snap = served.view.wait_change(version, 10)
            assert snap is not None, "no status with the 8 frames, the dead letter and 2 socks"
            version, status = snap["version"], snap["status"]
        assert get(served.url + "healthz") == {"ok": True, "service": "online", "reason": None}
        got = metrics(served.url)
        status = served.view.snapshot()["status"]
        assert got["sortcore_up"] == 1 and got["sortcore_broker_connected"] == 1
        for key in ("received", "frames", "dead_letters", "duplicates", "connects"):
            assert got["sortcore_%s_total" % key] == status[key], key
        assert got["sortcore_socks_confirmed_total"] == status["socks"] == 2
        assert got["sortcore_outbox_pending"] == status["pending"]
        assert (got["sortcore_session_socks"], got["sortcore_session_odd_socks"]) == (2, 2)
        served.stop()  # the page outlives the service here, as it does for a moment at exit
        try:
            get(served.url + "healthz")
            raise AssertionError("a stopped service answered /healthz with 200")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503 and json.loads(exc.read())["service"] == "offline"
        assert metrics(served.url)["sortcore_up"] == 0
    finally:
        served.close()
