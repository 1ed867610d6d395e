"""Write frames as a video that browsers play: H.264 in MP4 where this OpenCV can encode it,
else VP8 in WebM.

pip's opencv-python-headless bundles an FFmpeg without an H.264 encoder (its ``avc1`` writer
does not open), and the MPEG-4 Part 2 (``mp4v``) it does write fails in Chromium with
``MEDIA_ERR_SRC_NOT_SUPPORTED``. VP8 WebM plays there (tests/test_videoout.py) and encodes at
about 11 ms a 640x480 frame on this machine (VP9: 48 ms). A ``.webm`` name is written as VP8;
an ``.mp4`` name as H.264 when the build has it, else as VP8 beside it under the ``.webm``
name (:func:`choose` returns the name asked for in ``asked``, for the caller to say so: a WebM
stream in a file called ``.mp4`` would not play). Any other name is an error before anything
runs.
"""

import contextlib
import os
import shutil
import tempfile
from typing import NamedTuple, Optional

from ..core.errors import SourceError

#: (fourcc, extension, what it is), best first.
H264 = ("avc1", ".mp4", "H.264 MP4")
VP8 = ("VP80", ".webm", "VP8 WebM")
EXTENSIONS = (".mp4", ".webm")

_can = {}  # fourcc -> whether this OpenCV opens a writer for it


class VideoFormat(NamedTuple):
    """Where and how :class:`VideoOut` writes: ``path``, ``fourcc``, ``name`` (e.g. VP8 WebM),
    and ``asked``, the path asked for when it differs from ``path`` (else None)."""

    path: str
    fourcc: str
    name: str
    asked: Optional[str]


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 while OpenCV opens a writer: its FFmpeg layer prints
    "tag ... is not supported" for every WebM and errors for a missing encoder straight to
    stderr, past Python. The outcome is checked (``isOpened``) and reported by us."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open(path, fourcc, rate, size):
    import cv2
    with _quiet_stderr():
        video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(rate), tuple(size))
    return video


def can_encode(fourcc, extension):
    """Whether this OpenCV build writes ``fourcc`` into a file of ``extension`` (tried once)."""
    if fourcc not in _can:
        import numpy as np
        folder = tempfile.mkdtemp(prefix="sortcore-codec-")
        try:
            video = _open(os.path.join(folder, "probe" + extension), fourcc, 5, (64, 64))
            _can[fourcc] = bool(video.isOpened())
            if _can[fourcc]:
                video.write(np.zeros((64, 64, 3), np.uint8))
            video.release()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return _can[fourcc]


def choose(path):
    """The :class:`VideoFormat` for a requested ``path`` (``.mp4`` or ``.webm``)."""
    stem, extension = os.path.splitext(str(path))
    if extension.lower() not in EXTENSIONS:
        raise SourceError("cannot write video %s: name it .mp4 (H.264) or .webm (VP8), the "
                          "formats browsers play" % path)
    if extension.lower() == ".mp4" and can_encode(H264[0], H264[1]):
        return VideoFormat(str(path), H264[0], H264[2], None)
    if not can_encode(VP8[0], VP8[1]):
        raise SourceError("cannot write video %s: this OpenCV build encodes neither H.264 nor VP8"
                          % path)
    if extension.lower() == ".webm":
        return VideoFormat(str(path), VP8[0], VP8[2], None)
    return VideoFormat(stem + VP8[1], VP8[0], VP8[2], str(path))


class VideoOut(object):
    """Frames -> ``fmt.path`` at ``rate`` frames a second; the file opens with the first frame
    (its size). Odd sizes are padded by a pixel: the encoders take even ones only."""

    def __init__(self, fmt, rate):
        self.fmt, self.rate, self.video, self.size = fmt, rate, None, None

    def write(self, image):
        if self.video is None:
            height, width = image.shape[:2]
            self.size = (width + width % 2, height + height % 2)
            self.video = _open(self.fmt.path, self.fmt.fourcc, self.rate, self.size)
            if not self.video.isOpened():
                raise SourceError("cannot write video %s (%s)" % (self.fmt.path, self.fmt.name))
        if (image.shape[1], image.shape[0]) != self.size:
            import cv2
            image = cv2.copyMakeBorder(image, 0, self.size[1] - image.shape[0], 0,
                                       self.size[0] - image.shape[1], cv2.BORDER_REPLICATE)
        self.video.write(image)

    def close(self):
        if self.video is not None:
            self.video.release()
