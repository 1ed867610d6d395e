"""Idle page clients cannot starve the service (issue 25): a real ``sortcore serve --http``
under a 128-file limit, 200 clients that connect and send nothing, and a broker restart."""

import os
import resource
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from sortcore.adapters.mqtt import connect_publisher
from tests.mqtt_util import Collector
from tests.shared import ROOT
from tests.test_service import online, reap, sock


def _limited():
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))


def _page(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_flood_of_idle_page_clients_leaves_the_service_counting(mosquitto, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sortcore", "serve", "--broker", mosquitto.url, "--db", str(tmp_path / "s.db"),
         "--http", "127.0.0.1:0", "--http-header-timeout", "2", "--status-interval", "0.1",
         "--reconnect-max", "0.5"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True,
        preexec_fn=_limited)
    idle = []
    try:
        url = next(line.split("status page on ", 1)[1].split()[0] for line in proc.stderr
                   if "status page on " in line)
        port = int(url.rsplit(":", 1)[1].strip("/"))
        with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as seen:
            online(seen, 20)
            for _ in range(200):
                idle.append(socket.create_connection(("127.0.0.1", port)))
            answers = []
            for client in idle:  # beyond the cap: 503 at once; within it: cut after 2 s of silence
                client.settimeout(10)
                answers.append(client.recv(64))
            assert all(a.startswith(b"HTTP/1.0 503") or a == b"" for a in answers), set(answers)
            assert any(a.startswith(b"HTTP/1.0 503") for a in answers)  # 128 files: 64 page slots
            mosquitto.stop()  # the broker restarts while the clients held their slots
            mosquitto.start()
            cam = connect_publisher(mosquitto.url)
            try:
                for payload in sock("Mongo", 0):
                    cam.publish("sockfound", payload)
            finally:
                cam.close()
            counted = seen.wait_for(lambda m: m.get("image") == "Mongo", "sockpairs", 30)
        assert counted["number_socks_seen"] == 1
        assert _page(url + "healthz") == 200
    finally:
        for client in idle:
            client.close()
        proc.terminate()
        proc.wait(15)
        err = proc.stderr.read()
        reap(proc)
    assert "Too many open files" not in err and "Traceback" not in err, err
