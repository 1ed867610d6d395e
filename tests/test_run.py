"""``sortcore run``: the appliance in one process, on a real mosquitto and the shipped model."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.mqtt_util import Collector
from tests.shared import PHOTOS, ROOT

pytest.importorskip("onnxruntime")
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
    from sortcore.store.database import Store

    db = str(tmp_path / "held.db")
    holder = Store(db, exclusive=True, owner="sortcore serve")
    try:
        done = sortcore("run", "--source", "folder:%s" % tmp_path, env={"SORTCORE_DB": db})
    finally:
        holder.close()
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and str(os.getpid()) in lines[0] and "Traceback" not in done.stderr


def _page_url(proc) -> str:
    """The page's address from run's 'status page on URL' line (it listens on port 0)."""
    for line in proc.stderr:
        if "status page on " in line:
            return line.split("status page on ", 1)[1].split()[0]
    raise AssertionError("run never said where its page is")


def _get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))


@pytest.mark.skipif(not PHOTOS.exists(), reason="../shared/sock-photos is not beside the repository")
def test_run_a_video_with_page_and_broker_counts_what_count_counts(mosquitto, tmp_path):
    """The appliance command as a user runs it: a video, the page and a broker, all real.
    The page, the sockpairs messages and the store agree with ``sortcore count``."""
    from tests.videos import write_video

    video = tmp_path / "socks.mp4"
    write_video(video)
    counted = sortcore("count", "video:%s" % video, "--json", "--fps", "0", "--db", str(tmp_path / "count.db"))
    assert counted.returncode == 0, counted.stderr
    expected = json.loads(counted.stdout)
    table = {row["image"]: row for row in expected["socks"]}
    assert table["Github"]["pair_seen"] == "Pair" and expected["odd"] == ["Mongo", "New 1"]  # the video's truth
    assert table["New 1"]["taught"] is False  # the sock no model knows: a design of the session

    db = str(tmp_path / "run.db")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with Collector(mosquitto, ["sockpairs", "sockpairs/status"]) as seen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sortcore", "run", "--source", "video:%s" % video, "--fps", "0",
             "--http", "127.0.0.1:0", "--broker", mosquitto.url, "--db", db, "--camera", "e2e",
             "--heartbeat", "0", "--status-interval", "0.2"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        try:
            url = _page_url(proc)
            # the video ended: the loop says offline, and the page stays up to show the result
            final = seen.wait_for(lambda s: s["status"] == "offline", "sockpairs/status", 120)
            page = _get_json(url + "api/pairs")
            with pytest.raises(urllib.error.HTTPError) as stopped:  # the loop stopped: 503 for checkers
                urllib.request.urlopen(url + "healthz", timeout=10)
            health = json.loads(stopped.value.read().decode("utf-8"))
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        results = seen.json("sockpairs")
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert final["frames"] == expected["frames"] and final["camera"] == "e2e"
    rows = {row["image"]: row for row in page["rows"]}
    assert rows == table
    assert page["odd"] == expected["odd"] and page["unknown"] == expected["unknown"] == 0
    last = {}
    for message in results:
        last[message["image"]] = (message["number_socks_seen"], message.get("taught", True))
    assert last == {image: (row["number_socks_seen"], row.get("taught", True)) for image, row in table.items()}
    stored = json.loads(sortcore("pairs", "--json", "--db", db).stdout)
    assert stored["socks"] == expected["socks"] and stored["odd"] == expected["odd"]
    assert stopped.value.code == 503 and health["service"] == "offline"


@pytest.mark.parametrize("args, line", [
    (["--source", "video:/no/such.mp4"], "video file /no/such.mp4 does not exist"),
    (["--source", "folder:/no/such/folder"], "image folder /no/such/folder does not exist"),
    (["--source", "folder:%s" % PHOTOS, "--model", "/no/model"], "model directory /no/model does not exist"),
])
def test_what_retrying_cannot_mend_stops_at_once_with_one_line(tmp_path, args, line):
    done = sortcore("run", "--db", str(tmp_path / "x.db"), *args, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "Error: " + line
    assert "Traceback" not in done.stderr and "retrying" not in done.stderr


def test_a_bad_option_or_token_file_is_a_usage_error(tmp_path):
    for args in (["--fps", "-1"], ["--http", "127.0.0.1:0", "--http-token-file", str(tmp_path / "none")],
                 ["--mode", "hourly"], ["--broker", "http://127.0.0.1:1883"]):
        done = sortcore("run", "--source", "folder:%s" % PHOTOS, "--db", str(tmp_path / "x.db"), *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr and "Error" in done.stderr


@pytest.mark.skipif(not PHOTOS.exists(), reason="../shared/sock-photos is not beside the repository")
def test_a_full_disk_is_retried_as_degraded_and_a_run_with_errors_exits_3(mosquitto, small_disk):
    """A full disk under the store: retried with backoff while the status says degraded; once
    space returns the folder is counted to its end, and the exit code says there were errors."""
    from tests.disk import fill

    db = str(small_disk / "run.db")
    assert sortcore("reset", "--db", db).returncode == 0  # the store exists; now the disk fills
    filler = fill(small_disk)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with Collector(mosquitto, ["sockpairs/status"]) as seen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sortcore", "run", "--source", "folder:%s" % PHOTOS, "--fps", "0",
             "--min-frames", "2", "--broker", mosquitto.url, "--db", db, "--heartbeat", "0",
             "--status-interval", "0.2"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        try:
            degraded = seen.wait_for(lambda s: s["status"] == "degraded", "sockpairs/status", 60)
            filler.unlink()  # space returns
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "full" in degraded["reason"]
    assert proc.returncode == 3, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("stopped after 12 frames;")
    stored = json.loads(sortcore("pairs", "--json", "--db", db).stdout)
    assert [row["number_socks_seen"] for row in stored["socks"]] == [1] * 6


def _page_event(url, predicate, timeout=60):
    """The first snapshot on the page's event stream (SSE) for which ``predicate`` holds."""
    with urllib.request.urlopen(url + "api/events", timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith("data: "):
                snap = json.loads(line[len("data: "):])
                if predicate(snap):
                    return snap
    raise AssertionError("the page's event stream ended first")


def _degraded(snap):
    return (snap.get("status") or {}).get("status") == "degraded"


@pytest.mark.parametrize("args, reason", [
    (["--source", "webcam:/dev/video99"], "cannot open webcam:/dev/video99"),  # a camera unplugged
    (["--source", "folder:%s?loop" % PHOTOS, "--broker", "mqtt://127.0.0.1:9"], "mqtt"),  # a broker down
])
def test_what_a_retry_can_mend_is_retried_as_degraded_until_sigterm(tmp_path, args, reason):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "sortcore", "run", "--db", str(tmp_path / "x.db"),
                             "--http", "127.0.0.1:0", "--status-interval", "0.2"] + args,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        snap = _page_event(_page_url(proc), _degraded)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert reason in snap["status"]["reason"]
    assert proc.returncode == 0, err
    assert "Traceback" not in err
