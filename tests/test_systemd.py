"""systemd: sd_notify (READY, WATCHDOG from the loop, STOPPING) to a real AF_UNIX datagram
socket around real ``sortcore serve``/``run`` processes, a hung loop that stops the watchdog,
and log lines under journald without a timestamp of their own."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid

import pytest

from sortcore.core.engine import EngineConfig
from sortcore.store.pipeline import Pipeline
from sortcore.runtime.core import CoreOptions
from sortcore.runtime.device import DeviceLoop, DeviceOptions
from sortcore.store.database import Store
from sortcore.runtime.systemd import Notifier, journal_stream, watchdog_seconds
from tests.shared import PHOTOS, ROOT
from tests.test_device import LabelClassifier
from tests.test_service import reap

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket, on a path or abstract (``@name``)."""

    def __init__(self, tmp_path, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "sortcore-test-%s" % uuid.uuid4().hex
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = str(tmp_path / "notify.sock")
            self.sock.bind(path)
            self.env = path

    def next(self, timeout=30.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def until(self, message, timeout=30.0) -> list:
        """Every datagram up to and including ``message``."""
        seen = []
        while message not in seen:
            seen.append(self.next(timeout))
        return seen

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    opened = []

    def make(abstract=False):
        opened.append(NotifySocket(tmp_path, abstract))
        return opened[-1]

    yield make
    for sock in opened:
        sock.close()


def sortcore_process(args, env):
    return subprocess.Popen([sys.executable, "-m", "sortcore"] + args, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=ROOT, **env))


def watched(proc, sock, pings=3):
    """READY=1 first, then ``pings`` WATCHDOG=1; then SIGTERM gives STOPPING=1 and exit 0."""
    try:
        assert sock.next().startswith("READY=1")
        assert [sock.next() for _ in range(pings)] == ["WATCHDOG=1"] * pings
        proc.send_signal(signal.SIGTERM)
        assert sock.until("STOPPING=1")[-1] == "STOPPING=1"
        assert proc.wait(30) == 0, proc.stderr.read().decode()
    finally:
        reap(proc)


def test_serve_says_ready_pings_the_watchdog_and_says_stopping(mosquitto, tmp_path, notify):
    sock = notify()
    proc = sortcore_process(["serve", "--broker", mosquitto.url, "--db", str(tmp_path / "s.db")],
                            {"NOTIFY_SOCKET": sock.env, "WATCHDOG_USEC": "400000"})
    watched(proc, sock)


@pytest.mark.model
@pytest.mark.skipif(not PHOTOS.exists(), reason="../shared/sock-photos is not beside the repository")
def test_run_notifies_an_abstract_socket(tmp_path, notify):
    pytest.importorskip("onnxruntime")
    sock = notify(abstract=True)
    proc = sortcore_process(["run", "--source", "folder:%s?loop" % PHOTOS, "--fps", "10", "--db",
                             str(tmp_path / "r.db")], {"NOTIFY_SOCKET": sock.env, "WATCHDOG_USEC": "400000"})
    watched(proc, sock)


class HangingSource:
    """A camera that delivers until ``hang`` is set, then blocks in its read until ``release``."""

    name = "hanging"

    def __init__(self):
        self.hang, self.hung, self.release = threading.Event(), threading.Event(), threading.Event()

    def __iter__(self):
        while True:
            if self.hang.is_set():
                self.hung.set()
                self.release.wait(30)
                self.hang.clear()
            yield "Google"

    def close(self):
        pass


def test_a_hung_loop_stops_the_watchdog_and_a_live_one_resumes_it(tmp_path, notify):
    sock = notify()
    source = HangingSource()
    notifier = Notifier({"NOTIFY_SOCKET": sock.env, "WATCHDOG_USEC": "200000"})  # a ping every 0.05 s at most
    loop = DeviceLoop(lambda: source, LabelClassifier, lambda: Pipeline(Store(str(tmp_path / "d.db")), EngineConfig()),
                      [], DeviceOptions(camera="cam", fps=50, core=CoreOptions(heartbeat=0)), runtime="run")
    loop.beat = notifier.beat
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        assert sock.next().startswith("READY=1")
        assert [sock.next() for _ in range(3)] == ["WATCHDOG=1"] * 3
        source.hang.set()
        assert source.hung.wait(10)
        sock.sock.setblocking(False)
        try:  # the pings sent before the read hung
            while sock.sock.recv(4096):
                pass
        except BlockingIOError:
            pass
        with pytest.raises(socket.timeout):  # ten watchdog intervals and nothing
            sock.next(timeout=0.5)
        source.release.set()
        assert sock.next() == "WATCHDOG=1"
    finally:
        source.release.set()
        loop.stop.set()
        thread.join(30)
    assert not thread.is_alive() and loop.frames > 3


def test_nothing_without_notify_socket_and_no_watchdog_for_another_pid():
    assert not Notifier({}).send("READY=1")
    assert watchdog_seconds({"WATCHDOG_USEC": "2000000"}) == 2.0
    assert watchdog_seconds({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) == 0.0
    assert watchdog_seconds({"WATCHDOG_USEC": "nonsense"}) == 0.0


def test_under_journald_log_lines_have_no_timestamp_but_a_priority(mosquitto, tmp_path):
    def lines(journal):
        """stderr up to 'serving ...' (logged once the signal handlers are in place)."""
        read, write = os.pipe()
        info = os.fstat(write)
        env = dict(os.environ, PYTHONPATH=ROOT)
        if journal:  # what systemd sets when stderr is the journal (systemd.exec(5))
            env["JOURNAL_STREAM"] = "%d:%d" % (info.st_dev, info.st_ino)
        proc = subprocess.Popen([sys.executable, "-m", "sortcore", "-v", "serve", "--broker", mosquitto.url,
                                 "--db", str(tmp_path / "j.db")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=write)
        os.close(write)
        with os.fdopen(read) as stderr:
            try:
                seen = [stderr.readline()]
                while seen[-1] and "serving" not in seen[-1]:
                    seen.append(stderr.readline())
                return seen
            finally:
                proc.terminate()
                assert proc.wait(30) == 0

    journal, terminal = lines(True), lines(False)
    assert journal[-1].startswith("<6>sortcore.runtime.service: serving mqtt://"), journal
    assert all(re.match(r"<[3-7]>sortcore\.", line) and not TIMESTAMP.search(line) for line in journal), journal
    assert all(TIMESTAMP.match(line) for line in terminal) and " INFO sortcore." in terminal[-1], terminal
    assert not journal_stream(environ={"JOURNAL_STREAM": "1:2"})
