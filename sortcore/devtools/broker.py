"""A throw-away mosquitto on 127.0.0.1, for ``sortcore demo``, benchmarks and tests.

The config is generated in ``workdir``: a loopback listener with
``set_tcp_nodelay true`` (mosquitto's default leaves Nagle on, ~40 ms a
delivery), a log file, optional persistence (so a restart on the same port
keeps persistent sessions and their queued QoS 1 messages) and extra lines
(TLS, passwords, ACL).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from typing import Optional, Sequence

from ..core.errors import MqttError

#: What mosquitto logs once all its listeners are open (mosquitto 1.x and 2.x).
READY = re.compile(r"mosquitto version \S+ running")
MOSQUITTO_PLACES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def find_mosquitto() -> str:
    """The mosquitto binary, or an MqttError that says how to get it."""
    found = shutil.which("mosquitto") or next((p for p in MOSQUITTO_PLACES if os.path.exists(p)), None)
    if not found:
        raise MqttError("this needs the mosquitto broker: install it with 'apt-get install mosquitto' "
                        "(or 'brew install mosquitto'), or run 'make setup'")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalBroker:
    """A mosquitto process: ``start()`` (returns once it listens), ``stop()``, ``kill()``."""

    def __init__(self, workdir: str, port: Optional[int] = None, extra: Sequence[str] = (),
                 tls: bool = False, persistent: bool = False):
        self.binary = find_mosquitto()
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
            "max_queued_messages 100000",
            "log_dest file %s" % self.log_path,
        ] + ["log_type %s" % kind for kind in ("error", "warning", "notice", "information")]
        if persistent:
            lines += ["persistence true", "persistence_location %s/" % self.workdir, "autosave_interval 1"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to 'mosquitto' and cannot write workdir
        lines += list(extra)
        if not any(line.startswith(("password_file", "allow_anonymous")) for line in extra):
            lines.append("allow_anonymous true")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return "%s://%s:%d" % ("mqtts" if self.tls else "mqtt", self.host, self.port)

    def start(self, timeout: float = 10.0) -> "LocalBroker":
        """Start mosquitto; return once it is ready: it logged ``mosquitto version ... running``,
        which it does after opening every listener (not only the first), and accepts on ``port``."""
        logged = len(self.log())  # a restart appends to the same log
        self.proc = subprocess.Popen([self.binary, "-c", self.conf_path], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:  # mosquitto has no readiness notification: poll its log and its port
            if self.proc.poll() is not None:
                raise MqttError("mosquitto exited: %s\n%s" % (
                    self.proc.stderr.read().decode(errors="replace")[-500:], self.log()))
            if READY.search(self.log()[logged:]):
                try:
                    socket.create_connection((self.host, self.port), timeout=0.2).close()
                    return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise MqttError("mosquitto did not get ready on port %d:\n%s" % (self.port, self.log()))
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
        """What mosquitto wrote to its log file (empty if nothing yet)."""
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""
