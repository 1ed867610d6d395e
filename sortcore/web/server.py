"""The status page's HTTP server: stdlib ``ThreadingHTTPServer`` in background threads.

One thread accepts; each request gets its own thread, so the Server-Sent Events
and MJPEG streams (one per open phone) never block the others or paho. See
docs/web.md for the routes and why the standard library and not a framework.
"""

import json
import logging
import math
import pkgutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional, Tuple
from urllib.parse import parse_qs

from ..core.errors import ConfigError, SortcoreError
from ..core.messages import DESIGN_COMMANDS, command_args, dumps
from .guard import TokenGuard
from .limits import HeaderDeadline, Limited
from .live import LiveView

log = logging.getLogger(__name__)

MAX_CLIENTS = 128  # page connections at once (settings: http_max_clients)
HEADER_TIMEOUT = 10.0  # seconds for a request's line and headers (settings: http_header_timeout)
KEEPALIVE = 10.0  # seconds between SSE comments / MJPEG waits, so dead clients are noticed
BOUNDARY = "sortcoreframe"
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
    "/static/icon.svg": ("icon.svg", "image/svg+xml"),
    "/static/app-icon.svg": ("app-icon.svg", "image/svg+xml"),
    "/static/icon-192.png": ("icon-192.png", "image/png"),
    "/static/icon-512.png": ("icon-512.png", "image/png"),
    "/apple-touch-icon.png": ("icon-180.png", "image/png"),  # where iOS looks without a <link>
    "/manifest.webmanifest": ("manifest.webmanifest", "application/manifest+json"),
}
#: route -> the action, a control command (its JSON fields: DESIGN_COMMANDS)
DESIGN_ACTIONS = {"/api/" + action: action for action in DESIGN_COMMANDS}
POSTS = ("/api/reset",) + tuple(DESIGN_ACTIONS)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
       " manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


def parse_address(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError("--http wants HOST:PORT (e.g. 0.0.0.0:8080), not %r" % text)
    return host, int(port)


class _Server(Limited, ThreadingHTTPServer):
    daemon_threads = True  # a phone left open never holds the process up at exit
    request_queue_size = 128  # listen backlog: a burst of phones is accepted, not left to SYN retries

    def __init__(self, address, view: LiveView, token: Optional[str], max_clients: int = MAX_CLIENTS,
                 header_timeout: float = HEADER_TIMEOUT):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.view = view
        self.token = token
        self.guard = TokenGuard(token) if token else None
        self.closing = threading.Event()
        self.header_timeout = header_timeout
        self.limit(max_clients)
        self.assets = {route: (pkgutil.get_data(__name__.rpartition(".")[0], "static/" + name), kind)
                       for route, (name, kind) in ASSETS.items()}
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server_version = "sortcore"
    timeout = 30  # a stalled client's socket gives up instead of holding its thread

    def setup(self):
        super().setup()
        self.rfile = HeaderDeadline(self.rfile, self.connection, self.server.header_timeout, self.timeout)

    def handle_one_request(self):
        self.rfile.arm()  # the request line and headers within header_timeout, all together
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.rfile.finish()
        return parsed

    def log_message(self, format, *args):  # noqa: A002 (stdlib's name)
        log.debug("%s %s", self.address_string(), format % args)

    # --- plumbing -----------------------------------------------------------

    def _send(self, status: int, body: bytes, kind: str, headers=()):
        """One whole answer; a HEAD request gets the same headers and no body."""
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if not any(name == "Cache-Control" for name, _ in headers):
            self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _stream_head(self, kind: str) -> bool:
        """The headers of a stream; False for HEAD (no stream follows)."""
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        return self.command != "HEAD"

    def _json(self, status: int, obj, headers=()):
        self._send(status, dumps(obj).encode("utf-8"), "application/json", headers)

    def _error(self, status: int, message: str, headers=()):
        self._json(status, {"error": message}, headers)

    def _snapshot(self) -> dict:
        return self._abilities(self.server.view.snapshot())

    def _abilities(self, snap: dict) -> dict:
        """What the page may offer: reset, and naming designs found in the session."""
        snap["can_reset"] = self.server.token is not None and self.server.view.can_reset
        snap["can_name"] = self.server.token is not None and self.server.view.can_name
        return snap

    # --- routes -------------------------------------------------------------

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        routes = {
            "/api/pairs": self._pairs, "/api/status": lambda: self._json(200, self._snapshot()),
            "/api/events": self._events, "/healthz": self._healthz, "/stream.mjpg": self._mjpeg,
            "/api/thumb": self._thumb, "/api/socks": self._socks, "/metrics": self._metrics,
        }
        try:
            if path in self.server.assets:
                body, kind = self.server.assets[path]
                self._send(200, body, kind, [("Content-Security-Policy", CSP)] if path == "/" else ())
            elif path in routes:
                routes[path]()
            elif path in POSTS:
                self._error(405, "POST %s with Authorization: Bearer <token>" % path, [("Allow", "POST")])
            else:
                self._error(404, "no such page: %s" % path)
        except CLIENT_GONE:
            pass

    do_HEAD = do_GET  # the same answers without their bodies (see _send and _stream_head)

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        try:
            if path == "/api/reset":
                self._reset()
            elif path in DESIGN_ACTIONS:
                self._design_action(DESIGN_ACTIONS[path])
            elif path in self.server.assets or path.startswith("/api/") or path in ("/healthz", "/metrics"):
                self._error(405, "%s takes GET" % path, [("Allow", "GET")])
            else:
                self._error(404, "no such page: %s" % path)
        except CLIENT_GONE:
            pass

    def _pairs(self):
        snap = self.server.view.snapshot()
        self._json(200, {key: snap[key] for key in ("session", "rows", "odd", "unknown", "waiting")})

    def _healthz(self):
        """200 while the service runs (online, degraded or not started yet), 503 once it
        said offline: what a health check (docker, uptime monitors) wants."""
        state, reason = self.server.view.service_state()
        self._json(503 if state == "offline" else 200,
                   {"ok": state != "offline", "service": state, "reason": reason})

    def _query(self, name: str) -> str:
        return parse_qs(self.path.partition("?")[2]).get(name, [""])[0]

    def _thumb(self):
        """``/api/thumb?design=NAME``: the design's latest picture (JPEG) or 404;
        ``/api/thumb?sock=ID``: the picture of one sock of a design found in the session."""
        sock = self._query("sock")
        if sock:
            jpeg = self.server.view.sock_picture(int(sock)) if sock.isdigit() else None
        else:
            jpeg = self.server.view.thumb(self._query("design"))
        if jpeg is None:
            return self._error(404, "no picture of this %s yet" % ("sock" if sock else "design"))
        # the page asks with ?v=<seq>: an answer is never stale for its URL
        self._send(200, jpeg, "image/jpeg", [("Cache-Control", "private, max-age=3600")])

    def _socks(self):
        """``/api/socks?design=NAME``: ``[{"sock", "picture"}]``, the socks of a design found in
        the session with their own picture (``/api/thumb?sock=ID``)."""
        self._json(200, self.server.view.socks(self._query("design")))

    def _metrics(self):
        """The status's counters in the Prometheus text format (prometheus_client, when installed)."""
        try:
            from .metrics import exposition
        except ImportError as exc:
            return self._send(501, ("/metrics needs prometheus_client (pip install prometheus_client):"
                                    " %s\n" % exc).encode("utf-8"), "text/plain; charset=utf-8")
        body, kind = exposition(self.server.view.snapshot())
        self._send(200, body, kind)

    def _authorized(self) -> bool:
        """True when the bearer token is right; else False, the answer already sent: 401, or
        429 while this address waits after too many wrong tokens (:mod:`sortcore.web.guard`)."""
        scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
        ok, wait = self.server.guard.check(self.client_address[0],
                                           given.strip() if scheme.lower() == "bearer" else "")
        if ok:
            return True
        if wait is not None:
            seconds = str(int(math.ceil(wait)))
            self._error(429, "too many wrong tokens from this address: try again in %s s" % seconds,
                        [("Retry-After", seconds)])
        else:
            self._error(401, "a valid 'Authorization: Bearer <token>' header is required",
                        [("WWW-Authenticate", 'Bearer realm="sortcore"')])
        return False

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length") or "0"
        if length.isdigit() and int(length) <= 65536:
            return self.rfile.read(int(length))
        return b""

    def _allowed(self, what: str) -> bool:
        """The token check of every POST; False after answering 403 or 401."""
        if self.server.token is None:
            self._error(403, "%s is disabled: the process was started without --http-token-file" % what)
            return False
        if not self._authorized():
            return False  # _authorized answered 401 or 429
        return True

    def _design_action(self, action: str):
        """POST /api/name {"design", "name"}, /api/merge {"design", "into"}, /api/forget
        {"design"} or /api/split {"design", "sock"}: JSON answer."""
        body = self._body()
        if not self._allowed(action):
            return None
        if not self.server.view.can_name:
            return self._error(403, "this process finds no new designs (serve counts the camera's labels)")
        try:
            obj = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            obj = None
        try:
            args = command_args(action, obj)
        except ValueError as exc:
            return self._error(400, "send a JSON object: %s" % exc)
        try:
            done = getattr(self.server.view, action)(*args)
        except SortcoreError as exc:
            return self._error(409, "%s refused: %s" % (action, exc))
        log.info("%s from the web page (%s): %s", action, self.address_string(), done)
        self._json(200, done)

    def _reset(self):
        self._body()
        if not self._allowed("reset"):
            return None
        if not self.server.view.can_reset:
            return self._error(403, "this process cannot start a new session")
        try:
            session = self.server.view.reset()
        except SortcoreError as exc:
            return self._error(503, "reset failed: %s" % exc)
        log.info("new session %s started from the web page (%s)", session, self.address_string())
        self._json(200, {"session": session})

    def _events(self):
        """Server-Sent Events: the whole snapshot on connect and after every change. A change
        made just before close() (the runtime's last "offline" status) is still sent."""
        if not self._stream_head("text/event-stream; charset=utf-8"):
            return
        self.wfile.write(b"retry: 1000\n\n")
        version, closing = -1, False
        while not closing:
            # read before the wait: once closing, one last look sends a change made before close()
            closing = self.server.closing.is_set()
            snap = self.server.view.wait_change(version, 0 if closing else KEEPALIVE, self.server.closing)
            if snap is not None:
                version = snap["version"]
                self._abilities(snap)
                self.wfile.write(("id: %d\nevent: snapshot\ndata: %s\n\n" % (version, dumps(snap))).encode("utf-8"))
            elif not self.server.closing.is_set():
                self.wfile.write(b": keepalive\n\n")

    def _mjpeg(self):
        """multipart/x-mixed-replace of the latest frames; 404 before a camera sent one."""
        seq, jpeg = self.server.view.wait_frame(0, 0)
        if jpeg is None:
            return self._error(404, "this process has no camera (or it stopped)")
        if not self._stream_head("multipart/x-mixed-replace; boundary=" + BOUNDARY):
            return
        # Each frame is followed at once by the next part's boundary and headers: Chrome
        # shows a part only when the next one has begun, not after Content-Length bytes.
        head = ("--%s\r\nContent-Type: image/jpeg\r\n\r\n" % BOUNDARY).encode("ascii")
        self.wfile.write(head)
        self.server.view.watching(+1)
        try:
            while not self.server.closing.is_set():
                if jpeg is not None:
                    self.wfile.write(jpeg + b"\r\n" + head)
                last = seq
                seq, jpeg = self.server.view.wait_frame(seq, KEEPALIVE, self.server.closing)
                if jpeg is None and seq > last:
                    break  # the camera stopped: end the view rather than freeze it
        finally:
            self.server.view.watching(-1)


class HttpHandle:
    """A running status page: ``port``, ``url``, ``close()``."""

    def __init__(self, server: _Server, thread: threading.Thread, host: str):
        self._server = server
        self._thread = thread
        self.port = server.server_address[1]
        self.url = "http://%s:%d/" % ("[%s]" % host if ":" in host else host, self.port)

    def close(self):
        """Stop accepting, end the open streams, free the port."""
        self._server.closing.set()
        self._server.view.interrupt()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_http(view: LiveView, host: str, port: int, token: Optional[str], max_clients: int = MAX_CLIENTS,
               header_timeout: float = HEADER_TIMEOUT) -> HttpHandle:
    """Serve the status page of ``view`` on ``host:port`` (0: a free port) in the background;
    at most ``max_clients`` connections, ``header_timeout`` seconds for a request's headers
    (:mod:`sortcore.web.limits`)."""
    try:
        server = _Server((host, port), view, token, max_clients, header_timeout)
    except OSError as exc:
        raise ConfigError("cannot serve the status page on %s:%d: %s" % (host, port, exc.strerror or exc))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="sortcore-http", daemon=True)
    thread.start()
    log.info("status page on http://%s:%d/", host, server.server_address[1])
    return HttpHandle(server, thread, host)
