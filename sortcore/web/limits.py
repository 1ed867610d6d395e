"""Bounds on the status page's connections, so idle or slow clients cannot starve the service.

- At most ``max_clients`` connections at once (fewer when the process's open-file limit leaves
  less than :data:`RESERVE` descriptors for the broker, the store and the camera); one more
  gets ``503`` with ``Retry-After`` at once and is closed, without a thread.
- A request's line and headers must all arrive within ``header_timeout`` seconds (a client
  sending a header line every few seconds no longer holds its thread and descriptor for ever).

Python 3.7 compatible; stdlib only.
"""

import logging
import resource
import threading
import time

log = logging.getLogger(__name__)

RESERVE = 64  # descriptors kept for everything but the page
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n"
        b"Connection: close\r\nContent-Length: 49\r\n\r\n"
        b'{"error": "too many page connections: try again"}')


def client_cap(wanted: int) -> int:
    """``wanted``, lowered so that :data:`RESERVE` descriptors stay free under RLIMIT_NOFILE."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return wanted
    cap = max(1, min(wanted, soft - RESERVE))
    if cap < wanted:
        log.warning("status page: at most %d connections (open-file limit %d, %d kept for the service)",
                    cap, soft, RESERVE)
    return cap


class Limited(object):
    """A mixin for ``ThreadingHTTPServer``: a connection slot per request thread."""

    def limit(self, max_clients: int):
        self.max_clients = client_cap(max_clients)
        self._slots = threading.BoundedSemaphore(self.max_clients)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super(Limited, self).process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super(Limited, self).process_request_thread(request, client_address)
        finally:
            self._slots.release()


class HeaderDeadline(object):
    """Wraps a handler's ``rfile``: between :meth:`arm` and :meth:`finish`, each read may only
    wait for what is left of ``seconds`` (a socket timeout counts per read, not per request)."""

    def __init__(self, rfile, connection, seconds: float, after: float):
        self._rfile, self._connection = rfile, connection
        self.seconds, self.after = seconds, after
        self._deadline = None

    def arm(self):
        self._deadline = time.monotonic() + self.seconds

    def finish(self):
        self._deadline = None
        self._connection.settimeout(self.after)

    def _wait(self):
        if self._deadline is not None:
            self._connection.settimeout(max(0.01, self._deadline - time.monotonic()))

    def readline(self, *args):
        self._wait()
        return self._rfile.readline(*args)

    def read(self, *args):
        self._wait()
        return self._rfile.read(*args)

    def __getattr__(self, name):
        return getattr(self._rfile, name)
