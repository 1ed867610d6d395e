"""Frame sources: image folders, video files, spec parsing and the DeepLens adapter off-device."""

import sys

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from sortcore.camera import deeplens  # noqa: E402
from sortcore.core.errors import ConfigError, ModelError  # noqa: E402
from sortcore.camera.sources import (  # noqa: E402
    CaptureSource, FolderSource, SourceError, open_source, webcam_source,
)


def _write_images(folder, count, size=(40, 30)):
    folder.mkdir(exist_ok=True)
    for i in range(count):
        image = np.full((size[1], size[0], 3), 20 * i, np.uint8)
        cv2.imwrite(str(folder / ("img_%02d.png" % i)), image)
    return folder


def test_folder_source_yields_images_in_name_order(tmp_path):
    folder = _write_images(tmp_path / "frames", 3)
    with open_source("folder:%s" % folder) as source:
        frames = list(source)
    assert [f[0, 0, 0] for f in frames] == [0, 20, 40]
    assert all(f.dtype == np.uint8 and f.shape == (30, 40, 3) for f in frames)


def test_folder_source_loops_and_stops_on_close(tmp_path):
    folder = _write_images(tmp_path / "frames", 2)
    source = open_source("folder:%s?loop" % folder)
    taken = []
    for frame in source:
        taken.append(int(frame[0, 0, 0]))
        if len(taken) == 5:
            source.close()
    assert taken == [0, 20, 0, 20, 0]


def test_folder_source_skips_unreadable_files_with_a_reason(tmp_path):
    folder = _write_images(tmp_path / "frames", 2)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    source = FolderSource(folder)
    assert len(list(source)) == 2
    assert source.skipped == [(str(folder / "broken.jpg"), "not an image OpenCV can decode")]


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        FolderSource(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="has no"):
        FolderSource(tmp_path / "empty")


def test_video_file_source_reads_every_frame(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(7):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    writer.release()
    with open_source("video:%s" % path) as source:
        assert isinstance(source, CaptureSource)
        frames = list(source)
    assert len(frames) == 7
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert abs(int(frames[3].mean()) - 90) <= 4  # MJPG is lossy
    source.close()  # a second close is harmless


def test_bare_paths_and_bad_specs(tmp_path):
    folder = _write_images(tmp_path / "frames", 1)
    assert isinstance(open_source(str(folder)), FolderSource)
    with pytest.raises(ConfigError, match="unknown frame source"):
        open_source("ftp:somewhere")
    with pytest.raises(SourceError, match="does not exist"):
        open_source("video:%s" % (tmp_path / "missing.mp4"))


def test_missing_webcam_is_a_clear_error():
    with pytest.raises(SourceError, match="cannot open webcam:/dev/video99"):
        webcam_source("/dev/video99")


@pytest.mark.skipif("awscam" in sys.modules, reason="running on a DeepLens")
def test_deeplens_source_off_device_says_where_it_works():
    with pytest.raises(SourceError, match="only available on an AWS DeepLens"):
        open_source("deeplens")


def test_deeplens_model_off_device_raises_model_error(tmp_path):
    for name in ("sockclf-symbol.json", "sockclf-0000.params"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "labels.txt").write_text("A\nB\n")
    with pytest.raises(ModelError, match="only available on an AWS DeepLens"):
        deeplens.load_optimized_model(str(tmp_path))


def test_deeplens_source_with_a_fake_awscam(monkeypatch):
    """The adapter's loop, with a stand-in for the device library."""
    import types
    frames = iter([(True, np.zeros((4, 4, 3), np.uint8)), (False, None),
                   (True, np.ones((4, 4, 3), np.uint8))] + [(False, None)] * 10)
    fake = types.ModuleType("awscam")
    fake.getLastFrame = lambda: next(frames)
    monkeypatch.setitem(sys.modules, "awscam", fake)
    source = deeplens.DeepLensSource(max_failures=3)
    got = []
    with pytest.raises(SourceError, match="failed 3 times in a row"):
        for frame in source:
            got.append(int(frame.max()))
    assert got == [0, 1]
