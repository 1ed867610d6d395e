"""New designs end to end (issue 24): the real ``sortcore count`` and ``sortcore run`` CLIs, the
shipped model, a real mosquitto and the real page, on generated footage of socks nobody taught
(a shared photo's sock re-clothed: tests/videos.py)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.mqtt_util import Collector
from tests.shared import PHOTOS, ROOT
from tests.test_run import _get_json, _page_event, _page_url, sortcore

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")
pytestmark = pytest.mark.skipif(not PHOTOS.exists(), reason="../shared/sock-photos is not beside the repository")

TOKEN = "s3cret-token-for-tests"  # at least 16 characters


def rows_of(pairs_json):
    return {row["image"]: (row["number_socks_seen"], row.get("taught", True)) for row in pairs_json["socks"]}


def test_count_pairs_socks_it_was_never_taught(tmp_path):
    """A generated load: 4 designs nobody taught (both socks each), a Github pair and an odd
    Streamsets, in a random order; each untaught design is one New k, a pair, taught: false."""
    from sortcore.devtools.sockvideo import new_designs_video

    video, db = tmp_path / "load.mp4", str(tmp_path / "count.db")
    truth = new_designs_video(str(video), str(PHOTOS), seed=1)
    done = sortcore("count", "video:%s" % video, "--json", "--db", db)
    assert done.returncode == 0, done.stderr
    counted = json.loads(done.stdout)
    assert rows_of(counted) == dict({"New %d" % k: (2, False) for k in range(1, 5)},
                                    Github=(2, True), Streamsets=(1, True))
    assert counted["unknown"] == 0 and counted["odd"] == ["Streamsets"]
    labels = [row[0] for row in sqlite3.connect(db).execute("select image from sightings order by first_seen")]
    by_design = {}
    for design, label in zip(truth, labels):  # every sock of a design under that design's one label
        by_design.setdefault(design, set()).add(label)
    assert all(len(got) == 1 for got in by_design.values()) and len(set(labels)) == len(by_design)
    stored = json.loads(sortcore("pairs", "--json", "--db", db).stdout)
    assert stored["socks"] == counted["socks"]


def _designs_in(db):
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return [row[0] for row in conn.execute("select name from new_designs order by name")]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return []


def _run(*args, db, **popen):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "sortcore", "run", "--db", db, "--camera", "wall",
                             "--heartbeat", "0"] + list(args), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, **popen)


def test_a_restart_mid_session_keeps_matching_the_designs_found(tmp_path):
    """run sees the first sock of two untaught designs, is killed (SIGKILL), and a new run on the
    same store sees their second socks: they pair with the designs the first run found."""
    from tests.videos import taught_sock, untaught_sock, write_frames

    db = str(tmp_path / "run.db")
    write_frames(tmp_path / "first", [untaught_sock("X", 0), untaught_sock("Y", 0)], tail=400)
    write_frames(tmp_path / "second", [untaught_sock("Y", 1), untaught_sock("X", 1),
                                       taught_sock("Github/file_90.jpg")], seed=1)
    first = _run("--source", "folder:%s" % (tmp_path / "first"), "--fps", "8", db=db)
    try:
        deadline = time.monotonic() + 120
        while _designs_in(db) != ["New 1", "New 2"]:  # stored as the engine confirmed them
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1]
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    second = _run("--source", "folder:%s" % (tmp_path / "second"), "--fps", "8", db=db)
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    stored = json.loads(sortcore("pairs", "--json", "--db", db).stdout)
    assert rows_of(stored) == {"New 1": (2, False), "New 2": (2, False), "Github": (1, True)}


def _post(url, path, body=None, token=TOKEN):
    data = json.dumps(body).encode("utf-8") if body is not None else b""
    request = urllib.request.Request(url + path, data=data, method="POST",
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode("utf-8"))


def _untaught(snap):
    return {row["image"]: row["number_socks_seen"] for row in snap.get("rows", []) if row.get("taught") is False}


def _three_designs_looping(tmp_path, broker, db):
    """``run`` on a camera looping one sock each of three untaught designs, with the page (the
    token :data:`TOKEN`) and ``broker``; the process."""
    from tests.videos import untaught_sock, write_frames

    (tmp_path / "token").write_text(TOKEN + "\n")
    write_frames(tmp_path / "loop", [untaught_sock(d, 0) for d in "XYZ"])
    return _run("--source", "folder:%s?loop" % (tmp_path / "loop"), "--fps", "10", "--http", "127.0.0.1:0",
                "--http-token-file", str(tmp_path / "token"), "--broker", broker.url, db=db)


def _stop(proc):
    """Stop ``run`` as systemd does (SIGTERM); it must exit cleanly."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_name_and_merge_on_the_page_and_by_control_then_reset(mosquitto, tmp_path):
    """A looping camera shows one sock each of three untaught designs. The page (token) names
    New 1, control on a real mosquitto names New 2, the page merges New 3 into it; the names
    are taught to the user model. A reset clears the session's designs, not the user model,
    and the next run knows the named design as a taught one."""
    from tests.videos import untaught_sock, write_frames

    db = str(tmp_path / "run.db")
    with Collector(mosquitto, ["sockpairs/state"]) as seen:
        proc = _three_designs_looping(tmp_path, mosquitto, db)
        try:
            url = _page_url(proc)
            _page_event(url, lambda s: len(_untaught(s)) == 3, timeout=120)
            assert _post(url, "api/name", {"design": "New 1", "name": "Blue"}, token="wrong")[0] == 401
            status, done = _post(url, "api/name", {"design": "New 1", "name": "Blue"})
            assert status == 200 and done["name"] == "Blue" and done["user_model"].endswith("user-model/current")
            assert _post(url, "api/name", {"design": "New 1", "name": "Again"})[0] == 409  # not a design now
            seen.client.publish("sockpairs/control", json.dumps({"cmd": "name", "design": "New 2", "name": "Green"}), qos=1)
            _page_event(url, lambda s: "Green" in _untaught(s), timeout=30)
            status, done = _post(url, "api/merge", {"design": "New 3", "into": "Green"})
            assert status == 200, done
            snap = _page_event(url, lambda s: set(_untaught(s)) <= {"Blue", "Green"} and "Green" in _untaught(s)
                               and "New 3" not in _untaught(s), timeout=30)
            named_session = snap["session"]
            state = seen.wait_for(lambda s: {r["image"] for r in s["socks"]} >= {"Blue", "Green"}, "sockpairs/state", 30)
            assert all(row["taught"] is False for row in state["socks"])
            picture = urllib.request.urlopen(url + "api/thumb?design=Blue", timeout=10).read()
            assert picture[:2] == b"\xff\xd8" and len(picture) < 32 * 1024  # its crop, a JPEG

            assert _post(url, "api/reset")[0] == 200
            after = _page_event(url, lambda s: s["session"] != named_session and _untaught(s), timeout=120)
            assert not {"Blue", "Green"} & set(r["image"] for r in after["rows"])  # the session's designs went
            _stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    conn = sqlite3.connect(db)
    assert {row[0] for row in conn.execute("select distinct session from new_designs")} <= {after["session"]}
    labels = (tmp_path / "user-model" / "current" / "labels.txt").read_text().split("\n")
    assert "Blue" in labels and "Green" in labels  # the user model stays

    write_frames(tmp_path / "later", [untaught_sock("X", 1)], seed=3)
    later = sortcore("run", "--source", "folder:%s" % (tmp_path / "later"), "--fps", "8", "--db", db,
                     "--camera", "wall", timeout=180)
    assert later.returncode == 0, later.stderr
    rows = rows_of(json.loads(sortcore("pairs", "--json", "--db", db).stdout))
    assert rows["Blue"] == (1, True)  # taught from this session on


def test_not_a_sock_by_control_and_on_the_page_removes_the_design_and_ignores_it(mosquitto, tmp_path):
    """A looping camera shows three untaught things. The person says one is not a sock over
    control (a real mosquitto), another on the page (token): their rows, socks, pictures and
    sightings go, sockpairs/state follows, and held up again a full loop later they count nothing
    while the third design goes on counting."""
    db = str(tmp_path / "run.db")
    with Collector(mosquitto, ["sockpairs/state"]) as seen:
        proc = _three_designs_looping(tmp_path, mosquitto, db)
        try:
            url = _page_url(proc)
            first, second, kept = sorted(_untaught(_page_event(url, lambda s: len(_untaught(s)) == 3, timeout=120)))
            seen.client.publish("sockpairs/control", json.dumps({"cmd": "forget", "design": first}), qos=1)
            _page_event(url, lambda s: first not in _untaught(s), timeout=30)
            assert _post(url, "api/forget", {"design": second}, token="wrong")[0] == 401
            assert _post(url, "api/forget", {"into": second})[0] == 400
            status, done = _post(url, "api/forget", {"design": "Github"})
            assert status == 409 and "taught design" in done["error"]
            status, done = _post(url, "api/forget", {"design": second})
            assert status == 200 and done["design"] == second and done["socks"] >= 1, done
            assert _post(url, "api/forget", {"design": second})[0] == 409  # not a design any more
            with pytest.raises(urllib.error.HTTPError, match="404"):  # its picture went with it
                urllib.request.urlopen(url + "api/thumb?design=" + urllib.request.quote(second), timeout=10)
            snap = _page_event(url, lambda s: set(_untaught(s)) == {kept}, timeout=30)
            state = seen.wait_for(lambda s: {r["image"] for r in s["socks"]} == {kept}, "sockpairs/state", 30)
            assert state["session"] == snap["session"]
            # a full loop later (the kept design seen twice more) the two things were held up again
            later = snap["rows"][0]["number_socks_seen"] + 2
            snap = _page_event(url, lambda s: _untaught(s).get(kept, 0) >= later, timeout=120)
            assert set(_untaught(snap)) == {kept} and [r["image"] for r in snap["rows"]] == [kept]
            _stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert [row["image"] for row in json.loads(sortcore("pairs", "--json", "--db", db).stdout)["socks"]] == [kept]
    conn = sqlite3.connect(db)
    assert {row[0] for row in conn.execute("select distinct image from sightings")} == {kept}
    assert _designs_in(db) == [kept]


def _socks(url, design):
    return [s["sock"] for s in _get_json(url + "api/socks?design=" + urllib.request.quote(design))]


def test_not_this_design_by_control_and_on_the_page_moves_one_sock_to_a_new_design(mosquitto, tmp_path):
    """A looping camera shows three untaught designs; once two of them have two socks each, the
    person says one sock of each is not of its design: over control (a real mosquitto) and on the
    page (token). Each sock becomes the next New k with its own picture, and the store's pairs
    table and sightings say so after the run stopped."""
    db = str(tmp_path / "run.db")
    with Collector(mosquitto, ["sockpairs/state"]) as seen:
        proc = _three_designs_looping(tmp_path, mosquitto, db)
        try:
            url = _page_url(proc)
            snap = _page_event(url, lambda s: len([d for d in _untaught(s) if len(_socks(url, d)) >= 2]) >= 2,
                               timeout=180)
            first, second = [d for d in sorted(_untaught(snap)) if len(_socks(url, d)) >= 2][:2]
            by_control, by_page = _socks(url, first)[0], _socks(url, second)[0]
            picture = urllib.request.urlopen(url + "api/thumb?sock=%d" % by_control, timeout=10).read()
            assert picture[:2] == b"\xff\xd8"  # the sock's own crop
            seen.client.publish("sockpairs/control", json.dumps({"cmd": "split", "design": first, "sock": by_control}),
                                qos=1)
            _page_event(url, lambda s: len(_untaught(s)) >= 4, timeout=30)  # the sock's new design
            assert _post(url, "api/split", {"design": second, "sock": by_page}, token="wrong")[0] == 401
            status, done = _post(url, "api/split", {"design": second, "sock": str(by_page)})
            assert status == 400 and "sock (a sighting id)" in done["error"]
            status, done = _post(url, "api/split", {"design": second, "sock": by_page})
            assert status == 200 and done["design"] == second and done["sock"] == by_page, done
            into_page = done["into"]
            status, done = _post(url, "api/split", {"design": into_page, "sock": by_page})
            assert status == 409 and "only sock" in done["error"], done
            _page_event(url, lambda s: into_page in _untaught(s), timeout=30)
            _stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    conn = sqlite3.connect(db)
    moved = dict(conn.execute("select id, image from sightings where id in (?, ?)", [by_control, by_page]))
    assert moved[by_page] == into_page and moved[by_control] not in (first, second, into_page), moved
    rows = rows_of(json.loads(sortcore("pairs", "--json", "--db", db).stdout))
    assert rows[into_page][1] is False and rows[moved[by_control]][1] is False
    pictures = dict(conn.execute("select sighting, design from design_socks where sighting in (?, ?)",
                                 [by_control, by_page]))
    assert pictures == moved  # each sock's picture went with it


def test_watch_labels_new_designs_for_serve_and_serve_takes_them(tmp_path):
    """Over serve only the camera has embeddings: watch's payloads carry the designs it found,
    and serve's label allow-list lets New k through."""
    from sortcore.core.frames import decode_payload, label_set
    from tests.videos import untaught_sock, write_frames

    write_frames(tmp_path / "two", [untaught_sock("X", 0), untaught_sock("X", 1)], between=32)
    done = sortcore("watch", "--source", "folder:%s" % (tmp_path / "two"), "--fps", "20", timeout=180)
    assert done.returncode == 0, done.stderr
    labels = [json.loads(line)["image"] for line in done.stdout.splitlines()]
    socks = [label for label in labels if label != "Blank"]
    assert len(socks) == 24 and set(socks) == {"New 1"}, labels
    allowed = label_set(["Github"])
    assert decode_payload(json.dumps({"image": "New 1", "probability": 60}).encode(), "c", 1.0, allowed).label == "New 1"
    from sortcore.core.errors import BadFrame
    with pytest.raises(BadFrame, match="not one of the model's labels"):
        decode_payload(json.dumps({"image": "New 01", "probability": 60}).encode(), "c", 1.0, allowed)
