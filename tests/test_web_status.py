"""The status page's state, /healthz, /metrics, HEAD, the manifest and the design pictures
(no browser): statuses come from a real runtime Core over a real Store + Pipeline."""

import json
import socket
import struct
import sys
import time
import urllib.request

import pytest

from sortcore.web.live import MAX_THUMB_BYTES, MAX_THUMBS, LiveView
from sortcore.web.server import start_http
from tests.test_web import TOKEN, Session, get, sse_events


@pytest.fixture
def served(tmp_path):
    view = LiveView()
    session = Session(tmp_path / "web.db", view)
    handle = start_http(view, "127.0.0.1", 0, TOKEN)
    yield handle, session
    handle.close()
    session.store.close()


def test_healthz_says_the_runtimes_real_state(served):
    """The status message's key is ``status``: /healthz once read ``state`` and said null."""
    handle, session = served
    status, _, body = get(handle.url + "healthz")
    assert (status, json.loads(body)) == (200, {"ok": True, "service": None, "reason": None})  # starting
    session.status()
    assert json.loads(get(handle.url + "healthz")[2]) == {"ok": True, "service": "online", "reason": None}
    session.status(problem="StoreFull: database or disk is full")
    assert json.loads(get(handle.url + "healthz")[2]) == \
        {"ok": True, "service": "degraded", "reason": "StoreFull: database or disk is full"}
    session.status(stop=True)
    status, _, body = get(handle.url + "healthz")
    assert (status, json.loads(body)) == (503, {"ok": False, "service": "offline", "reason": None})


def samples(text: str) -> dict:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    parser = pytest.importorskip("prometheus_client.parser")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parser.text_string_to_metric_families(text) for s in family.samples}


def test_metrics_are_the_status_counters_and_the_session(served):
    handle, session = served
    for image in ["Google", "Mongo", "Google", "Github", "Unknown"]:
        session.show(image)
    status = session.status(problem="StoreFull: database or disk is full")
    answer, headers, body = get(handle.url + "metrics")
    assert answer == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(body.decode())
    for key, name in [("frames", "frames"), ("dead_letters", "dead_letters"), ("socks", "socks_confirmed"),
                      ("errors", "errors"), ("received", "received"), ("published", "published")]:
        assert got[("sortcore_%s_total" % name, ())] == status[key], key
    assert got[("sortcore_outbox_pending", ())] == status["pending"]
    assert got[("sortcore_outbox_denied", ())] == status["denied"]
    assert got[("sortcore_start_time_seconds", ())] == pytest.approx(status["since"])
    assert got[("sortcore_up", ())] == 1
    assert {k[1][0][1]: v for k, v in got.items() if k[0] == "sortcore_state"} == \
        {"online": 0, "degraded": 1, "offline": 0}
    assert got[("sortcore_info", (("camera", ""), ("runtime", "serve")))] == 1
    assert got[("sortcore_session", ())] == session.pipeline.session
    assert (got[("sortcore_session_socks", ())], got[("sortcore_session_pairs", ())],
            got[("sortcore_session_odd_socks", ())], got[("sortcore_session_unrecognised_socks", ())]) == (4, 1, 2, 1)
    assert got[("sortcore_design_socks", (("design", "Google"),))] == 2
    session.status(stop=True)
    got = samples(get(handle.url + "metrics")[2].decode())
    assert got[("sortcore_up", ())] == 0 and got[("sortcore_state", (("state", "offline"),))] == 1


def test_metrics_without_prometheus_client_is_one_clear_501(served, monkeypatch):
    handle, _ = served
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as in an install without it
    monkeypatch.delitem(sys.modules, "sortcore.web.metrics", raising=False)
    status, _, body = get(handle.url + "metrics")
    assert status == 501 and body.decode().startswith("/metrics needs prometheus_client")


def head(port: int, route: str):
    """(status, headers, bytes after the headers) of a raw HEAD; the server must close at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(("HEAD /%s HTTP/1.1\r\nHost: x\r\n\r\n" % route).encode())
        data = b""
        while True:
            chunk = conn.recv(65536)  # a stream left running would time out here
            if not chunk:
                break
            data += chunk
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), dict(line.split(": ", 1) for line in lines[1:]), rest


def test_head_is_answered_on_every_get_route(served):
    """HEAD: the GET's status, type and length, no body, and no stream left running."""
    handle, session = served
    session.show("Google")
    session.view.frame(b"\xff\xd8jpeg\xff\xd9")
    session.view.thumbnail("Google", b"\xff\xd8thumb\xff\xd9")
    routes = ["", "static/app.js", "static/style.css", "static/icon.svg", "static/app-icon.svg",
              "static/icon-192.png", "static/icon-512.png", "apple-touch-icon.png", "manifest.webmanifest",
              "api/pairs", "api/status", "api/events", "healthz", "stream.mjpg", "metrics",
              "api/thumb?design=Google", "api/thumb?design=Mongo", "no/such/page", "api/reset"]
    for route in routes:
        status, headers, rest = head(handle.port, route)
        assert rest == b"", route
        if route in ("api/events", "stream.mjpg"):  # streams: their headers, then nothing
            assert status == 200 and headers["Content-Type"].startswith(("text/event-stream", "multipart/"))
            continue
        got_status, got_headers, body = get(handle.url + route)
        assert (status, headers["Content-Type"]) == (got_status, got_headers["Content-Type"]), route
        if route not in ("api/status", "metrics"):  # those two change with every request
            assert int(headers["Content-Length"]) == len(body), route


def png_size(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_manifest_is_linked_and_its_icons_are_served_at_their_sizes(served):
    handle, _ = served
    page = get(handle.url)[2].decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert '<link rel="apple-touch-icon" href="/apple-touch-icon.png">' in page
    status, headers, body = get(handle.url + "manifest.webmanifest")
    manifest = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/manifest+json"
    assert (manifest["start_url"], manifest["display"], manifest["short_name"]) == ("/", "standalone", "Socks")
    for icon in manifest["icons"]:
        status, headers, body = get(handle.url + icon["src"].lstrip("/"))
        assert (status, headers["Content-Type"]) == (200, icon["type"]), icon
        if icon["type"] == "image/png":
            assert "%dx%d" % png_size(body) == icon["sizes"], icon
    assert {"192x192", "512x512"} <= {i["sizes"] for i in manifest["icons"]}  # what Chrome asks for
    assert png_size(get(handle.url + "apple-touch-icon.png")[2]) == (180, 180)  # iOS's size


# --- design pictures -------------------------------------------------------------


def test_a_rows_picture_is_served_by_its_design_name(served):
    handle, session = served
    hostile = 'a&b=c?"<x>'
    session.show("Google")
    session.show(hostile)
    session.view.thumbnail("Google", b"\xff\xd8google\xff\xd9")
    session.view.thumbnail(hostile, b"\xff\xd8hostile\xff\xd9")
    session.view.thumbnail("Mongo", b"\xff\xd8mongo\xff\xd9")  # seen by the camera, not a sock yet
    thumbs = json.loads(get(handle.url + "api/status")[2])["thumbs"]
    assert sorted(thumbs) == sorted(["Google", hostile])  # only the rows' designs
    quoted = urllib.request.quote(hostile, safe="")
    status, headers, body = get(handle.url + "api/thumb?design=%s&v=%d" % (quoted, thumbs[hostile]))
    assert (status, headers["Content-Type"], body) == (200, "image/jpeg", b"\xff\xd8hostile\xff\xd9")
    assert "max-age" in headers["Cache-Control"]  # the page's URL changes with the picture
    assert get(handle.url + "api/thumb?design=Github")[0] == 404
    assert get(handle.url + "api/thumb")[0] == 404


def test_pictures_are_bounded_in_size_and_count():
    view = LiveView()
    view.thumbnail("Huge", b"x" * (MAX_THUMB_BYTES + 1))
    assert view.thumb("Huge") is None
    for k in range(MAX_THUMBS + 5):
        view.thumbnail("D%d" % k, b"jpeg%d" % k)
    view.thumbnail("D3", b"again")  # seen again: kept over older ones
    kept = [k for k in range(MAX_THUMBS + 5) if view.thumb("D%d" % k) is not None]
    assert len(kept) == MAX_THUMBS and 3 in kept and 0 not in kept and view.thumb("D3") == b"again"


def test_frame_feed_keeps_a_picture_of_each_design():
    np = pytest.importorskip("numpy")
    pytest.importorskip("cv2")
    from sortcore.camera.annotate import THUMB_SIZE, frame_feed

    now = [100.0]
    view = LiveView()
    on_frame = frame_feed([view], monotonic=lambda: now[0])
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, 80:560] = 255  # the centre square is white, the sides black
    on_frame(image, "Github", 97.0)
    import cv2
    first = view.thumb("Github")
    picture = cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (THUMB_SIZE, THUMB_SIZE, 3) and picture.min() > 200  # the centre, downscaled
    on_frame(image * 0, "Github", 97.0)  # within THUMB_EVERY: no new picture
    assert view.thumb("Github") == first
    now[0] += 1.0
    on_frame(image * 0, "Github", 97.0)
    assert view.thumb("Github") != first
    on_frame(image, "Blank", 99.0)
    on_frame(image, "Unknown", 80.0)
    assert view.thumb("Blank") is None and view.thumb("Unknown") is None  # never a row


# --- a stopped service ------------------------------------------------------------------


def test_a_stopped_service_ends_the_camera_view(served):
    handle, session = served
    session.view.frame(b"\xff\xd8jpeg\xff\xd9")
    session.status(camera="cam1")
    with urllib.request.urlopen(handle.url + "stream.mjpg", timeout=5) as stream:
        stream.readline()
        start = time.monotonic()
        session.status(camera="cam1", stop=True)  # what a clean stop says
        assert stream.read() is not None and time.monotonic() - start < 2  # ended, not frozen
    snap = json.loads(get(handle.url + "api/status")[2])
    assert (snap["status"]["status"], snap["stream"]) == ("offline", False)
    assert get(handle.url + "stream.mjpg")[0] == 404


def test_the_last_status_before_close_reaches_the_page(served):
    """A clean stop says offline and closes the page at once: the page must still get it."""
    handle, session = served
    session.status()
    with urllib.request.urlopen(handle.url + "api/events", timeout=5) as events:
        seen = sse_events(events)
        assert next(seen)[1]["status"]["status"] == "online"
        session.status(stop=True)
        handle.close()
        assert [snap for _, snap in seen][-1]["status"]["status"] == "offline"
