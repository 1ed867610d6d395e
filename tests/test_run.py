"""``sortcore run``: the appliance in one process, on a real mosquitto and the shipped model."""

import json
import os
import subprocess
import sys

import pytest

from tests.mqtt_util import Collector
from tests.shared import PHOTOS, ROOT

pytest.importorskip("mxnet")
pytest.importorskip("cv2")


def sortcore(*args, env=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "sortcore"] + list(args), env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)


@pytest.mark.skipif(not PHOTOS.exists(), reason="../shared/sock-photos is not beside the repository")
def test_run_counts_a_folder_camera_and_publishes(mosquitto, tmp_path):
    db = str(tmp_path / "run.db")
    with Collector(mosquitto, ["sockpairs", "sockpairs/status", "sockfound"]) as seen:
        # every design has two photos, shown one after the other: one sock each with min_frames 2
        done = sortcore("run", "--source", "folder:%s" % PHOTOS, "--fps", "0", "--min-frames", "2",
                        "--camera", "testcam", "--heartbeat", "0",
                        env={"SORTCORE_DB": db, "SORTCORE_BROKER": mosquitto.url})
        assert done.returncode == 0, done.stderr
        results = seen.wait_json(6, "sockpairs", timeout=20)
        final = seen.wait_for(lambda s: s["status"] == "offline", "sockpairs/status", 10)
    assert sorted(r["image"] for r in results) == sorted(d.name for d in PHOTOS.iterdir() if d.is_dir())
    assert all(r["number_socks_seen"] == 1 and r["camera"] == "testcam" for r in results)
    assert final["runtime"] == "run" and final["frames"] == 12 and final["socks"] == 6
    assert len(seen.payloads("sockfound")) == 12
    pairs = sortcore("pairs", "--json", "--db", db)
    assert {row["image"]: row["number_socks_seen"] for row in json.loads(pairs.stdout)["socks"]} == \
        {r["image"]: 1 for r in results}


def test_run_without_a_source_says_so():
    done = sortcore("run", env={"SORTCORE_SOURCE": ""})
    assert done.returncode == 2 and "--source" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not PHOTOS.exists(), reason="../shared/sock-photos is not beside the repository")
def test_run_stops_cleanly_on_sigterm_and_says_offline(mosquitto, tmp_path):
    import signal

    env = dict(os.environ, PYTHONPATH=str(ROOT), SORTCORE_DB=str(tmp_path / "run.db"),
               SORTCORE_BROKER=mosquitto.url)
    with Collector(mosquitto, ["sockpairs/status"]) as seen:
        proc = subprocess.Popen([sys.executable, "-m", "sortcore", "run", "--source", "folder:%s?loop" % PHOTOS,
                                 "--fps", "20", "--status-interval", "0.2"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        try:
            seen.wait_for(lambda s: s["status"] == "online" and s["frames"] >= 5, "sockpairs/status", 60)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        final = seen.wait_for(lambda s: s["status"] == "offline", "sockpairs/status", 10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and final["runtime"] == "run" and final["frames"] >= 5


def test_a_second_run_on_the_same_store_is_refused_naming_the_holder(tmp_path):
    from sortcore.store import Store

    db = str(tmp_path / "held.db")
    holder = Store(db, exclusive=True, owner="sortcore serve")
    try:
        done = sortcore("run", "--source", "folder:%s" % tmp_path, env={"SORTCORE_DB": db})
    finally:
        holder.close()
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and str(os.getpid()) in lines[0] and "Traceback" not in done.stderr
