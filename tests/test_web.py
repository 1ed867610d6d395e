"""The status page's HTTP side (no browser): routes, token, SSE, MJPEG, LiveView."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from sortcore.core.engine import SockConfirmed
from sortcore.core.errors import ConfigError, SortcoreError
from sortcore.core.frames import Frame
from sortcore.core.messages import sock_message, state_message
from sortcore.store.pipeline import Pipeline
from sortcore.runtime.core import Core
from sortcore.store.database import Store
from sortcore.web.live import LiveView
from sortcore.runtime.secrets_file import read_token
from sortcore.web.server import parse_address, start_http

TOKEN = "s3cret-token-for-tests"
T0 = time.time() - 200  # the session: a few minutes of socks, ending about now


class Session:
    """A real Store + Pipeline whose confirmed socks feed a LiveView as the runtime will."""

    def __init__(self, path, view):
        self.store = Store(str(path), clock=lambda: T0 - 30)  # started just before the first sock
        self.pipeline = Pipeline(self.store)
        self.view = view
        self.shown = 0

    def show(self, image, camera="left"):
        """One sock held in front of the camera: 4 frames, a commit, then the messages."""
        base = T0 + 20.0 * self.shown  # past the tick below: never a late frame
        self.shown += 1
        events = []
        for k in range(4):
            events += self.pipeline.feed(Frame(image, 90.0, base + 0.25 * k, camera))
        events += self.pipeline.tick(base + 10)
        self.pipeline.commit()
        session = self.pipeline.session
        for event in events:
            if isinstance(event, SockConfirmed):
                self.view.sock(sock_message(session, event))
        self.publish_state()
        confirmed = [e for e in events if isinstance(e, SockConfirmed)]
        assert [e.label for e in confirmed] == [image]
        return confirmed

    def publish_state(self):
        session = self.pipeline.session
        state = state_message(session, self.store.pairs(session), time.time(), self.store.unknown(session))
        state.setdefault("started_at", self.store.session(session)["started_at"])
        self.view.set_state(state)

    def reset(self):
        session = self.pipeline.reset()
        self.publish_state()
        return session

    def status(self, problem=None, camera=None, stop=False) -> dict:
        """The status a real runtime core sends its listeners: online, degraded with
        ``problem`` as its reason, or offline (``stop``: what a clean stop says)."""
        core = Core(self.pipeline, [], runtime="serve", camera=camera)
        core.listeners.append(self.view)
        core.problem = problem
        if stop:
            core.say_offline()
        else:
            core.publish_due()  # the first call sends the state and the status
        return self.view.snapshot()["status"]


@pytest.fixture
def view():
    return LiveView()


@pytest.fixture
def served(tmp_path):
    """A LiveView fed by a real session, served with a token; yields (handle, session)."""
    holder = {}
    view = LiveView(reset=lambda: holder["session"].reset())
    session = holder["session"] = Session(tmp_path / "web.db", view)
    handle = start_http(view, "127.0.0.1", 0, TOKEN)
    yield handle, session
    handle.close()
    session.store.close()


def get(url, headers=None, method="GET"):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def sse_events(response):
    """Yield (event, data) from an open SSE response."""
    name, data = None, []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\n")
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


# --- routes -------------------------------------------------------------------


def test_page_and_its_assets_come_from_the_package(served):
    handle, _ = served
    status, headers, body = get(handle.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b'data-field' not in body  # rows are built by app.js, never as HTML from data
    for path, kind in [("static/app.js", "text/javascript"), ("static/style.css", "text/css"),
                       ("static/icon.svg", "image/svg+xml")]:
        status, headers, body = get(handle.url + path)
        assert (status, headers["Content-Type"].split(";")[0]) == (200, kind) and body
    assert b"http" not in get(handle.url)[2].replace(b"http-equiv", b"")  # nothing from a CDN
    assert get(handle.url + "static/nope.js")[0] == 404
    assert get(handle.url + "api/pairs", method="POST")[0] == 405


def test_api_pairs_are_the_store_rows(served):
    handle, session = served
    for image in ["Google", "Mongo", "Google", "Github"]:
        session.show(image)
    status, _, body = get(handle.url + "api/pairs")
    pairs = json.loads(body)
    assert status == 200
    assert pairs == {"session": session.pipeline.session, "rows": session.store.pairs(session.pipeline.session),
                     "odd": ["Github", "Mongo"], "unknown": 0}
    assert pairs["rows"][1] == {"image": "Google", "number_socks_seen": 2, "pair_seen": "Pair", "pairs": 1}


def test_api_status_has_status_sightings_and_no_stream(served):
    handle, session = served
    session.show("Google")
    session.status(problem="StoreFull: database or disk is full")
    snap = json.loads(get(handle.url + "api/status")[2])
    assert snap["status"]["status"] == "degraded" and snap["status"]["runtime"] == "serve"
    assert [s["image"] for s in snap["sightings"]] == ["Google"]
    assert snap["stream"] is False and snap["can_reset"] is True


def test_sse_pushes_a_confirmed_sock_within_300ms(served):
    handle, session = served
    with urllib.request.urlopen(handle.url + "api/events", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = sse_events(response)
        name, first = next(events)
        assert name == "snapshot" and first["rows"] == []
        start = time.monotonic()
        session.show("Mongo")
        while True:
            name, snap = next(events)
            if snap["sightings"]:
                break
        assert time.monotonic() - start < 0.3
        assert snap["sightings"][0]["image"] == "Mongo"
        assert snap["rows"] == [{"image": "Mongo", "number_socks_seen": 1, "pair_seen": "Un-matched", "pairs": 0}]


def test_close_ends_open_streams_and_frees_the_port(tmp_path):
    view = LiveView()
    view.frame(b"\xff\xd8jpeg\xff\xd9")
    handle = start_http(view, "127.0.0.1", 0, None)
    events = urllib.request.urlopen(handle.url + "api/events", timeout=5)
    stream = urllib.request.urlopen(handle.url + "stream.mjpg", timeout=5)
    events.readline()
    stream.readline()
    start = time.monotonic()
    handle.close()
    assert events.read() is not None and stream.read() is not None  # EOF, not a timeout
    assert time.monotonic() - start < 2
    again = start_http(view, "127.0.0.1", handle.port, None)  # the same port, at once
    again.close()


def test_a_busy_port_is_one_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        with pytest.raises(ConfigError, match="cannot serve the status page on 127.0.0.1"):
            start_http(LiveView(), "127.0.0.1", busy.getsockname()[1], None)


# --- reset and the token -------------------------------------------------------------


def test_reset_needs_the_bearer_token(served):
    handle, session = served
    session.show("Google")
    before = session.pipeline.session
    url = handle.url + "api/reset"
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + TOKEN},
                    {"Authorization": "Bearer"}]:
        status, answer, body = get(url, headers, method="POST")
        assert status == 401 and answer["WWW-Authenticate"].startswith("Bearer"), headers
    assert session.pipeline.session == before and get(url)[0] == 405
    status, _, body = get(url, {"Authorization": "Bearer " + TOKEN}, method="POST")
    assert status == 200 and json.loads(body) == {"session": before + 1}
    assert session.store.session()["id"] == before + 1
    assert json.loads(get(handle.url + "api/pairs")[2])["rows"] == []


def test_reset_without_a_token_configured_is_forbidden(tmp_path):
    called = []
    with start_http(LiveView(reset=lambda: called.append(1) or 2), "127.0.0.1", 0, None) as handle:
        status, _, body = get(handle.url + "api/reset", {"Authorization": "Bearer x"}, method="POST")
        assert status == 403 and b"--http-token-file" in body and not called
        assert json.loads(get(handle.url + "api/status")[2])["can_reset"] is False


def test_a_failing_reset_is_a_clear_503():
    def refuse():
        raise SortcoreError("the store is locked")

    with start_http(LiveView(reset=refuse), "127.0.0.1", 0, TOKEN) as handle:
        status, _, body = get(handle.url + "api/reset", {"Authorization": "Bearer " + TOKEN}, method="POST")
        assert status == 503 and json.loads(body) == {"error": "reset failed: the store is locked"}
    with start_http(LiveView(), "127.0.0.1", 0, TOKEN) as handle:  # a process that cannot reset
        assert get(handle.url + "api/reset", {"Authorization": "Bearer " + TOKEN}, method="POST")[0] == 403


def test_token_file(tmp_path):
    good = tmp_path / "token"
    good.write_text("  %s\n" % TOKEN)
    assert read_token(str(good)) == TOKEN
    cases = {"missing": None, "empty": b" \n", "binary": b"\x00\xff\xfe token", "lines": b"one\ntwo\n",
             "short": b"tok\n"}
    messages = {"missing": "cannot read the HTTP token file .*missing: No such file",
                "empty": "is empty", "binary": "is binary", "lines": "no second line",
                "short": "has 3 characters, fewer than 16: write a good one with 'sortcore token"}
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(ConfigError, match=messages[name]):
            read_token(str(tmp_path / name))


def test_sortcore_token_writes_a_good_private_token_once(tmp_path):
    import os
    import stat
    import subprocess
    import sys
    from tests.shared import ROOT

    path = tmp_path / "token"
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def token(*extra):
        return subprocess.run([sys.executable, "-m", "sortcore", "token", "--out", str(path)] + list(extra),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)

    done = token()
    assert done.returncode == 0, done.stderr
    first = read_token(str(path))
    assert len(first) >= 40 and stat.S_IMODE(path.stat().st_mode) == 0o600
    again = token()
    assert again.returncode == 1 and again.stderr.strip() == "Error: %s exists: give --force to replace its token" % path
    assert token("--force").returncode == 0 and read_token(str(path)) != first


def test_wrong_tokens_are_slowed_per_address():
    from sortcore.web.guard import FREE, TokenGuard
    from tests.clock import FakeClock

    clock = FakeClock()
    guard = TokenGuard(TOKEN, clock=clock)
    for _ in range(FREE):
        assert guard.check("10.0.0.1", "guess") == (False, None)
    assert guard.check("10.0.0.1", TOKEN) == (False, 1.0)  # waits, even with the right token
    clock.sleep(1.0)
    assert guard.check("10.0.0.1", "guess") == (False, None)  # one more try, then 2 s
    assert guard.check("10.0.0.1", TOKEN) == (False, 2.0)
    assert guard.check("10.0.0.2", TOKEN) == (True, None)  # another address is not held up
    clock.sleep(2.0)
    assert guard.check("10.0.0.1", TOKEN) == (True, None)  # and a right one clears the count
    assert guard.check("10.0.0.1", "guess") == (False, None)


def test_parse_address():
    assert parse_address("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_address("[::1]:0") == ("::1", 0)
    for bad in ["8080", ":8080", "host:", "host:99999", "host:http"]:
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_address(bad)


# --- camera ----------------------------------------------------------------------


def test_mjpeg_is_404_without_a_camera_and_streams_frames_with_one(view):
    with start_http(view, "127.0.0.1", 0, None) as handle:
        assert get(handle.url + "stream.mjpg")[0] == 404 and view.frame_wanted
        view.frame(b"\xff\xd8first\xff\xd9")  # now it has a camera
        assert not view.frame_wanted  # nobody watches: the runtime may skip encoding
        with urllib.request.urlopen(handle.url + "stream.mjpg", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
            part = ("--%s\r\nContent-Type: image/jpeg\r\n\r\n" % r.headers["Content-Type"].split("boundary=")[1])
            for jpeg in [b"\xff\xd8first\xff\xd9", b"\xff\xd8second\xff\xd9"]:
                if b"second" in jpeg:
                    view.frame(jpeg)
                # a part's head, the latest frame; the next head follows at once (see server._mjpeg)
                expected = part.encode() + jpeg + b"\r\n"
                assert r.read(len(expected)) == expected
                assert view.frame_wanted
        assert json.loads(get(handle.url + "api/status")[2])["stream"] is True


# --- LiveView ------------------------------------------------------------------


def sock(session, sighting, image, seen):
    return {"session": session, "sighting": sighting, "image": image, "number_socks_seen": seen,
            "pair_seen": "Pair" if seen % 2 == 0 else "Un-matched", "pairs": seen // 2,
            "camera": "left", "first_seen": 10.0, "confirmed_at": 11.0}


def test_view_counts_each_sock_once_and_unknown_apart(view):
    view.set_state({"session": 4, "started_at": 100.0, "socks": [], "odd": [], "unknown": 0, "updated_at": 1.0})
    view.sock(sock(4, 1, "Google", 1))
    view.sock(sock(4, 1, "Google", 1))  # redelivered
    view.sock(sock(4, 2, "Unknown", 1))
    snap = view.snapshot()
    assert [s["sighting"] for s in snap["sightings"]] == [2, 1]
    assert snap["rows"] == [{"image": "Google", "number_socks_seen": 1, "pair_seen": "Un-matched", "pairs": 0}]
    assert (snap["odd"], snap["unknown"], snap["started_at"]) == (["Google"], 1, 100.0)
    view.set_state({"session": 4, "socks": snap["rows"], "updated_at": 2.0})  # without started_at: kept
    assert (view.snapshot()["started_at"], view.snapshot()["unknown"]) == (100.0, 1)


def test_view_starts_afresh_on_a_new_session_and_ignores_late_ones(view):
    view.set_state({"session": 4, "started_at": 100.0, "socks": [sock(4, 1, "Google", 1)], "updated_at": 1.0})
    view.sock(sock(5, 9, "Mongo", 1))
    assert [r["image"] for r in view.snapshot()["rows"]] == ["Mongo"] and view.snapshot()["session"] == 5
    view.sock(sock(4, 3, "Github", 1))  # late, from the session before
    assert [r["image"] for r in view.snapshot()["rows"]] == ["Mongo"]
    assert len(view.snapshot()["sightings"]) == 2


def test_view_waiters_wake_on_change_and_on_interrupt(view):
    version = view.snapshot()["version"]
    assert view.wait_change(version, 0.01) is None
    view.set_status({"status": "online"})
    assert view.wait_change(version, 1)["status"] == {"status": "online"}
    assert view.wait_frame(0, 0.01) == (0, None)
    stop = threading.Event()
    woken = []
    waiter = threading.Thread(target=lambda: woken.append(view.wait_frame(0, 30, stop)))
    waiter.start()
    stop.set()
    view.interrupt()
    waiter.join(10)
    assert woken == [(0, None)]


def test_a_stop_set_just_before_a_wait_is_not_missed(view):
    """The race behind a status page that took a keep-alive period to close: the server set its
    stop and woke the waiters just before a stream handler began to wait."""
    stop = threading.Event()
    stop.set()
    view.interrupt()
    start = time.monotonic()
    assert view.wait_frame(0, 30, stop) == (0, None)
    assert view.wait_change(view.snapshot()["version"], 30, stop) is None
    assert time.monotonic() - start < 5


def test_view_shows_unrecognised_socks_apart_from_the_designs(view):
    rows = [{"image": "Unknown", "number_socks_seen": 3, "pair_seen": "Un-matched", "pairs": 1},
            {"image": "Google", "number_socks_seen": 1, "pair_seen": "Un-matched", "pairs": 0}]
    view.set_state({"session": 2, "socks": rows, "odd": ["Google", "Unknown"], "updated_at": 1.0})
    snap = view.snapshot()
    assert ([r["image"] for r in snap["rows"]], snap["odd"], snap["unknown"]) == (["Google"], ["Google"], 3)


def test_connections_beyond_the_cap_get_503_at_once_and_slow_headers_are_cut():
    import socket
    import time

    view = LiveView()
    with start_http(view, "127.0.0.1", 0, None, max_clients=2, header_timeout=1.0) as handle:
        idle = [socket.create_connection(("127.0.0.1", handle.port)) for _ in range(2)]
        try:
            extra = socket.create_connection(("127.0.0.1", handle.port))
            extra.settimeout(5)
            assert extra.recv(100).startswith(b"HTTP/1.0 503")  # at once, not after a timeout
            extra.close()
            # a slow client: a header line every 0.3 s never completes its request
            started = time.monotonic()
            idle[0].sendall(b"GET /healthz HTTP/1.0\r\n")
            while True:
                try:
                    idle[0].sendall(b"X-Slow: 1\r\n")
                except OSError:
                    break
                time.sleep(0.3)  # the client's own pace: what is under test
                if time.monotonic() - started > 4:
                    break
            cut_after = time.monotonic() - started
            assert cut_after < 3, cut_after
        finally:
            for sock in idle:
                sock.close()
        assert get(handle.url + "healthz")[0] == 200  # the slots came back
