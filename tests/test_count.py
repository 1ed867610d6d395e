"""``sortcore count`` on a generated video: the counted socks equal the video's truth."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from tests.videos import FPS, SOCKS, write_video  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "sock-photos"
needs_photos = pytest.mark.skipif(not any(PHOTOS.glob("*/*.jpg")),
                                  reason="shared photos not found at %s" % PHOTOS)


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "sortcore"] + list(args), env=env, cwd=str(ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)


def annotated_path(stderr):
    """The file count says it wrote (an .mp4 asked becomes .webm without H.264)."""
    (line,) = [line for line in stderr.decode().splitlines() if line.startswith("annotated video: ")]
    return line[len("annotated video: "):].rsplit(" (", 1)[0]


def banner_runs(path):
    """(runs of consecutive frames showing the "sock: X" banner, frame rate) of a video."""
    from sortcore.camera.annotate import BANNER
    capture = cv2.VideoCapture(str(path))
    rate, flags = capture.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        band = image[-6:-2, -image.shape[1] // 4:].reshape(-1, 3)  # the banner's right end: no text
        flags.append(bool(np.abs(np.median(band, axis=0) - BANNER).max() <= 40))
    capture.release()
    runs, length = [], 0
    for flag in flags + [False]:
        if flag:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs, rate, len(flags)


@needs_photos
def test_count_a_video_equals_its_truth(tmp_path):
    """New designs on (the default): the sock no model knows is a design of its own, New 1,
    an odd sock with ``"taught": false``; taught rows carry no ``taught`` key."""
    from tests.test_videoout import codec_of
    video = tmp_path / "socks.mp4"
    write_video(video, SOCKS)
    result = run("count", "video:%s" % video, "--json", "--db", str(tmp_path / "s.db"),
                 "--annotate", str(tmp_path / "annotated.mp4"))
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
    out = annotated_path(result.stderr)  # H.264 MP4 where OpenCV has it, else VP8 WebM, said so
    assert codec_of(out) == {".mp4": "h264", ".webm": "vp8"}[os.path.splitext(out)[1]]
    if out.endswith(".webm"):
        assert "instead of %s" % (tmp_path / "annotated.mp4") in result.stderr.decode()
    runs, rate, frames = banner_runs(out)
    assert frames == counted["frames"] and rate == pytest.approx(FPS)
    # one banner per confirmed sock (3 designs + the unrecognised one), each held >= 1 s
    assert len(runs) == len(SOCKS) and min(runs) >= FPS * 1.0, runs


@needs_photos
def test_a_30_fps_video_is_classified_at_fps_and_annotated_in_full(tmp_path):
    """At --fps 5 (the default) a 30 fps video gives the engine a sixth of its frames, as a
    live camera at 5 fps would, and counts the same; the annotated video keeps every frame.
    Without new designs, the sock no model knows is an unrecognised sock, as before them."""
    video, out = tmp_path / "socks30.mp4", tmp_path / "annotated.webm"
    total = write_video(video, SOCKS, fps=30.0)
    result = run("count", "video:%s" % video, "--json", "--db", str(tmp_path / "s.db"),
                 "--annotate", str(out), "--no-new-designs")
    assert result.returncode == 0, result.stderr.decode()
    counted = json.loads(result.stdout)
    assert counted["unknown"] == 1 and counted["odd"] == ["Mongo"]
    assert {row["image"] for row in counted["socks"]} == {"Github", "Mongo"}
    assert counted["frames"] == total // 6
    assert annotated_path(result.stderr) == str(out)
    runs, rate, frames = banner_runs(out)
    assert frames == total and rate == pytest.approx(30.0)
    assert len(runs) == len(SOCKS) and min(runs) >= 30.0 * 1.0, runs
    every = run("count", "video:%s" % video, "--json", "--fps", "0", "--db", str(tmp_path / "e.db"),
                "--no-new-designs")
    assert json.loads(every.stdout)["frames"] == total


def test_annotate_to_a_name_browsers_cannot_play_stops_before_counting(tmp_path):
    result = run("count", "video:%s" % (tmp_path / "none.mp4"), "--db", str(tmp_path / "s.db"),
                 "--annotate", str(tmp_path / "out.avi"))
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert result.stderr.decode().strip().splitlines() == [
        "Error: cannot write video %s: name it .mp4 (H.264) or .webm (VP8), the formats browsers "
        "play" % (tmp_path / "out.avi")]


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


def _huge_png(path):
    """A PNG whose header claims 60000x60000 pixels (OpenCV refuses to decode it)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


@needs_photos
def test_undecodable_files_are_dead_letters_and_a_source_with_no_frame_fails(tmp_path):
    """Nothing lost, nothing silent: a folder's bad images are dead letters beside the good
    ones; a source that gave no frame at all exits 1 in one line, its session ended."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for photo in sorted((PHOTOS / "Github").glob("*.jpg")):
        (folder / photo.name).write_bytes(photo.read_bytes())
    _huge_png(folder / "huge.png")
    (folder / "junk.jpg").write_bytes(b"not an image")
    db = str(tmp_path / "s.db")
    done = run("count", "folder:%s" % folder, "--json", "--min-frames", "1", "--db", db)
    assert done.returncode == 0, done.stderr.decode()
    counted = json.loads(done.stdout)
    assert counted["frames"] == 2 and counted["dead_letters"] == 2
    bad = tmp_path / "bad"
    bad.mkdir()
    _huge_png(bad / "huge.png")
    for spec in ("folder:%s" % bad, "video:%s" % (bad / "huge.png")):
        done = run("count", spec, "--db", db)
        err = done.stderr.decode()
        assert done.returncode == 1 and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("Error: ")
    sessions = run("sessions", "--json", "--db", db)
    assert all(s["status"] == "done" for s in json.loads(sessions.stdout)), sessions.stdout
