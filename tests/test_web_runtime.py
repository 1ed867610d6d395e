"""The page mounted on a real runtime: serve on a real mosquitto, with --http."""

import json
import threading
import urllib.error
import urllib.request

from sortcore.adapters.mqtt import connect_publisher
from sortcore.adapters.mqtt_config import ConnectOptions
from sortcore.engine import EngineConfig
from sortcore.runtime.core import CoreOptions
from sortcore.runtime.service import ServeOptions, Service
from sortcore.store import Store
from sortcore.web.live import LiveView
from sortcore.web.server import start_http
from tests.test_service import sock


def get(url, data=None, token=None):
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_serve_feeds_the_page_and_the_page_resets_the_service(mosquitto, tmp_path):
    store = Store(str(tmp_path / "s.db"))
    service = Service(store, EngineConfig(), ServeOptions(
        broker=mosquitto.url, core=CoreOptions(status_interval=0.1),
        connect=ConnectOptions(client_id="sortcore-serve", clean_session=False)))
    view = LiveView()
    service.core.listeners.append(view)
    view.bind_reset(service.resets.ask)
    handle = start_http(view, "127.0.0.1", 0, "tok")
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert service.ready.wait(10)
        cam = connect_publisher(mosquitto.url)
        try:
            for payload in sock("Google", 0):
                cam.publish("sockfound", payload)
        finally:
            cam.close()
        assert service.wait_until(lambda s: s.counters.socks == 1, 10)
        assert service.core.wait_until(lambda: get(handle.url + "/api/pairs")["rows"], 10)
        pairs = get(handle.url + "/api/pairs")
        assert [(r["image"], r["number_socks_seen"]) for r in pairs["rows"]] == [("Google", 1)]
        first = pairs["session"]
        try:
            get(handle.url + "/api/reset", data=b"")
            raise AssertionError("reset without the token was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        get(handle.url + "/api/reset", data=b"", token="tok")
        assert service.pipeline.session == first + 1
    finally:
        service.stop()
        thread.join(10)
        handle.close()
        store.close()
