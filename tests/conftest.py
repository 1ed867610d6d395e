"""Shared fixtures: a real mosquitto on a free loopback port (never a mock)."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A mosquitto process with a generated config in ``workdir``.

    ``extra``: more config lines (auth, TLS, ACL); ``stop()``/``start()``
    restart it on the same port with its persistence file, so persistent
    sessions and their queued QoS 1 messages survive. ``kill()`` is SIGKILL.
    """

    def __init__(self, workdir, port=None, extra=(), tls=False):
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = tls
        self.proc = None
        self.log_path = os.path.join(self.workdir, "mosquitto.log")
        self.conf_path = os.path.join(self.workdir, "mosquitto.conf")
        lines = [
            "listener %d 127.0.0.1" % self.port,
            "set_tcp_nodelay true",
            "persistence true",
            "persistence_location %s/" % self.workdir,
            "autosave_interval 1",
            "max_queued_messages 100000",
            "log_dest file %s" % self.log_path,
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        lines += list(extra)
        if not any(line.startswith(("password_file", "allow_anonymous")) for line in extra):
            lines.append("allow_anonymous true")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return "%s://%s:%d" % ("mqtts" if self.tls else "mqtt", self.host, self.port)

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf_path], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:  # poll the port: mosquitto has no readiness notification
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: %s\n%s" % (self.proc.stderr.read().decode(), self.log()))
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mosquitto did not listen on %d:\n%s" % (self.port, self.log()))
                time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        if self.proc is not None:
            self.proc.stderr.close()
        self.proc = None

    def kill(self):
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""


@pytest.fixture
def mosquitto(tmp_path):
    """A started mosquitto: ``.host .port .url .stop() .start() .kill()``."""
    broker = Broker(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
def broker_factory(tmp_path):
    """Make brokers with extra config (TLS, passwords, ACL); all stopped at the end."""
    made = []

    def make(extra=(), tls=False, name="broker"):
        broker = Broker(tmp_path / name, extra=extra, tls=tls)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()
