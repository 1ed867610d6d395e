"""A loopback TCP proxy in front of a real broker, for outages a test controls (issue 25).

``cut()`` drops every connection and turns new ones away (accepted, then closed at once) until
``restore()``; after a restore each new connection's first bytes from the broker, its CONNACK,
are held ``connack_delay`` seconds. That is the window in which paho 2.2 sent frames published
after reconnect() ahead of its backlog.
"""

import socket
import threading
import time


class Proxy(object):
    def __init__(self, upstream, connack_delay=0.3):
        self.upstream = (upstream.host, upstream.port)
        self.connack_delay = connack_delay
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.url = "mqtt://127.0.0.1:%d" % self.port
        self.down = threading.Event()
        self.held = 0  # CONNACKs held
        self._hold = False
        self._lock = threading.Lock()
        self._open = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, server]
            hold = self._hold
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, hold), daemon=True).start()

    def _pump(self, src, dst, hold):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if hold:  # the broker's first bytes are its CONNACK
                    hold = False
                    self.held += 1
                    time.sleep(self.connack_delay)  # the delay under test, not a wait for an event
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        """Drop every connection and refuse new ones."""
        self.down.set()
        with self._lock:
            sockets, self._open = self._open, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self):
        """Take connections again, holding each one's CONNACK."""
        self._hold = True
        self.down.clear()

    def close(self):
        self._closed = True
        self.cut()
        self.listener.close()
