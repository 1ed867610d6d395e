"""The annotated video's format: H.264 MP4 where OpenCV has it, else VP8 WebM; decoded back
with OpenCV, its codec read with ffprobe (or from the container), and played by Chromium."""

import os
import shutil
import subprocess

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from sortcore.camera import videoout  # noqa: E402
from sortcore.core.errors import SourceError  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def codec_of(path):
    """The video codec of ``path`` ("h264", "vp8", ...): ffprobe's word where it is installed,
    else read from the container (WebM: the EBML header and its CodecID; MP4: the sample entry)."""
    if shutil.which("ffprobe"):
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                              "stream=codec_name", "-of", "csv=p=0", str(path)],
                             stdout=subprocess.PIPE, universal_newlines=True, check=True)
        return out.stdout.strip()
    with open(str(path), "rb") as fh:
        head = fh.read(1 << 16)
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:64]:  # EBML, DocType webm
        for codec_id, name in ((b"V_VP8", "vp8"), (b"V_VP9", "vp9")):
            if codec_id in head:
                return name
    if head[4:8] == b"ftyp":
        with open(str(path), "rb") as fh:
            data = fh.read()
        for entry, name in ((b"avc1", "h264"), (b"mp4v", "mpeg4")):
            if entry in data:
                return name
    return "unknown"


def frames(count, size=(321, 241)):
    """Frames whose colour changes, so every one is a real picture to encode."""
    return [np.full((size[1], size[0], 3), (i * 12 % 256, 80, 160), np.uint8) for i in range(count)]


def write(path, count=20, rate=5.0):
    out = videoout.VideoOut(videoout.choose(path), rate)
    try:
        for image in frames(count):
            out.write(image)
    finally:
        out.close()
    return out.fmt


def test_the_name_chooses_the_format_and_other_names_are_refused(tmp_path):
    webm = videoout.choose(tmp_path / "a.webm")
    assert webm == (str(tmp_path / "a.webm"), "VP80", "VP8 WebM", None)
    mp4 = videoout.choose(tmp_path / "a.mp4")
    if videoout.can_encode("avc1", ".mp4"):
        assert mp4 == (str(tmp_path / "a.mp4"), "avc1", "H.264 MP4", None)
    else:  # pip's opencv-python-headless: VP8 beside it, and the asked name kept to say so
        assert mp4 == (str(tmp_path / "a.webm"), "VP80", "VP8 WebM", str(tmp_path / "a.mp4"))
    for name in ("a.avi", "a", "a.mkv"):
        with pytest.raises(SourceError, match=r"\.mp4 \(H\.264\) or \.webm \(VP8\)"):
            videoout.choose(tmp_path / name)


@pytest.mark.parametrize("name", ["clip.webm", "clip.mp4"])
def test_the_video_has_a_browser_codec_and_decodes_back(tmp_path, name):
    fmt = write(tmp_path / name)
    assert codec_of(fmt.path) == {"VP80": "vp8", "avc1": "h264"}[fmt.fourcc]
    capture = cv2.VideoCapture(fmt.path)
    decoded = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        decoded.append(image)
    rate = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    assert len(decoded) == 20 and rate == pytest.approx(5.0)
    assert decoded[0].shape == (242, 322, 3)  # an odd size is padded to an even one
    # the colours come back (lossy: within a few levels)
    assert abs(int(decoded[10][120, 160, 0]) - 120) <= 8 and abs(int(decoded[10][120, 160, 2]) - 160) <= 8


@pytest.mark.browser
@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason="%s is missing" % CHROMIUM)
def test_chromium_plays_the_video(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    fmt = write(tmp_path / "clip.mp4")
    page_file = tmp_path / "page.html"
    page_file.write_text('<video id="v" muted preload="auto" src="%s"></video>' % os.path.basename(fmt.path))
    script = """() => new Promise(resolve => {
        const v = document.getElementById('v');
        const report = () => resolve({ready: v.readyState, error: v.error && v.error.code,
                                      duration: v.duration, width: v.videoWidth, time: v.currentTime});
        const seek = () => { v.currentTime = 3.5; };
        v.addEventListener('error', report);
        v.addEventListener('seeked', report);
        if (v.readyState >= 2) seek(); else v.addEventListener('loadeddata', seek, {once: true});
        setTimeout(report, 10000);  // never hang: the state then says what went wrong
    })"""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            state = page.evaluate(script)
        finally:
            browser.close()
    # decoded up to 3.5 s of the 4 s clip, no MEDIA_ERR_SRC_NOT_SUPPORTED (4)
    assert state["error"] is None and state["ready"] >= 2, state
    assert state["width"] == 322 and state["duration"] == pytest.approx(4.0, abs=0.25), state
    assert state["time"] == pytest.approx(3.5), state
