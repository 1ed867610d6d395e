"""``sortcore count`` on a generated video: the counted socks equal the video's truth."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("mxnet")

from tests.videos import SOCKS, write_video  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "sock-photos"
needs_photos = pytest.mark.skipif(not any(PHOTOS.glob("*/*.jpg")),
                                  reason="shared photos not found at %s" % PHOTOS)


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "sortcore"] + list(args), env=env, cwd=str(ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)


@needs_photos
def test_count_a_video_equals_its_truth(tmp_path):
    """New designs on (the default): the sock no model knows is a design of its own, New 1,
    an odd sock with ``"taught": false``; taught rows carry no ``taught`` key."""
    video = tmp_path / "socks.mp4"
    write_video(video, SOCKS)
    out = tmp_path / "annotated.mp4"
    result = run("count", "video:%s" % video, "--json", "--db", str(tmp_path / "s.db"),
                 "--annotate", str(out))
    assert result.returncode == 0, result.stderr.decode()
    counted = json.loads(result.stdout)
    assert counted["unknown"] == 0
    assert counted["odd"] == ["Mongo", "New 1"]
    socks = {row["image"]: row for row in counted["socks"]}
    assert socks["New 1"] == {"image": "New 1", "number_socks_seen": 1, "pair_seen": "Un-matched", "pairs": 0,
                              "taught": False}
    assert socks["Github"] == {"image": "Github", "number_socks_seen": 2, "pair_seen": "Pair", "pairs": 1}
    assert set(socks) == {"Github", "Mongo", "New 1"}
    assert counted["frames"] == 10 + len(SOCKS) * 18
    annotated = cv2.VideoCapture(str(out))
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == counted["frames"]
    annotated.release()


@needs_photos
def test_a_30_fps_video_is_classified_at_fps_and_annotated_in_full(tmp_path):
    """At --fps 5 (the default) a 30 fps video gives the engine a sixth of its frames, as a
    live camera at 5 fps would, and counts the same; the annotated video keeps every frame.
    Without new designs, the sock no model knows is an unrecognised sock, as before them."""
    video, out = tmp_path / "socks30.mp4", tmp_path / "annotated.mp4"
    total = write_video(video, SOCKS, fps=30.0)
    result = run("count", "video:%s" % video, "--json", "--db", str(tmp_path / "s.db"),
                 "--annotate", str(out), "--no-new-designs")
    assert result.returncode == 0, result.stderr.decode()
    counted = json.loads(result.stdout)
    assert counted["unknown"] == 1 and counted["odd"] == ["Mongo"]
    assert {row["image"] for row in counted["socks"]} == {"Github", "Mongo"}
    assert counted["frames"] == total // 6
    annotated = cv2.VideoCapture(str(out))
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == total
    annotated.release()
    every = run("count", "video:%s" % video, "--json", "--fps", "0", "--db", str(tmp_path / "e.db"),
                "--no-new-designs")
    assert json.loads(every.stdout)["frames"] == total


def test_count_without_a_source_file_is_one_clear_error(tmp_path):
    result = run("count", "video:%s" % (tmp_path / "none.mp4"), "--db", str(tmp_path / "s.db"))
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines()[-1].endswith("does not exist")


def test_annotate_draws_and_encodes():
    from sortcore.camera import annotate
    image = np.zeros((120, 160, 3), np.uint8)
    drawn = annotate.draw(image, "Github", 97.5, note="sock: Github")
    assert drawn.shape == image.shape and drawn.any() and not image.any()
    assert annotate.to_jpeg(drawn)[:2] == b"\xff\xd8"


def test_camera_view_encodes_only_while_someone_watches():
    """The real LiveView, not a fake: a fake with a method hid a crash on every frame."""
    from sortcore.camera.annotate import frame_feed
    from sortcore.web.live import LiveView

    view = LiveView()
    on_frame = frame_feed([object(), view])
    on_frame(np.zeros((60, 80, 3), np.uint8), "Github", 97.0)  # the first frame: always
    seq, jpeg = view.wait_frame(0, timeout=0)
    assert seq == 1 and jpeg[:2] == b"\xff\xd8"
    on_frame(np.zeros((60, 80, 3), np.uint8), "Github", 97.0)  # nobody watches: not encoded
    assert view.wait_frame(1, timeout=0) == (1, None)
    view.watching(+1)
    on_frame(np.zeros((60, 80, 3), np.uint8), "Unknown", 60.0)
    assert view.wait_frame(1, timeout=0)[0] == 2
    assert frame_feed([object()]) is None
