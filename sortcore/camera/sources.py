"""Frame sources: where the classifier's BGR frames come from.

Every source is an iterable of BGR uint8 frames with ``close()`` (and works as
a context manager). :func:`open_source` builds one from a short spec:

``folder:PATH`` (add ``?loop`` to repeat), ``video:PATH`` (on the video's own clock, see
:class:`VideoSource`), ``webcam:0`` or ``webcam:/dev/video0``, and ``deeplens`` (only on the
camera, see :mod:`sortcore.camera.deeplens`). A bare existing folder or file path also works.

A file or folder that is missing or cannot be read is :class:`~sortcore.core.errors.SourceMissing`
(retrying cannot mend it); a webcam that cannot be opened is a plain ``SourceError`` (it may
be plugged in later).

Must stay Python 3.7 compatible (runs on the camera).
"""

import logging
import os

from ..core.errors import ConfigError, SourceError, SourceMissing
from .base import FrameSource

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def quiet_cv2():
    """OpenCV with its own and FFmpeg's log lines off: a source that fails says so in one line
    of ours (a missing webcam or a broken video would print C++ errors on stderr)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)  # OpenCV 5
    set_level = getattr(logging_api, "setLogLevel", None) or getattr(cv2, "setLogLevel", None)
    if set_level is not None:
        set_level(0)  # LOG_LEVEL_SILENT
    return cv2


class FolderSource(FrameSource):
    """The images of a folder and its subfolders in path order, once or looping.

    Files OpenCV cannot decode are skipped with a warning and listed in
    ``skipped`` as (path, reason), so nothing vanishes silently.
    """

    def __init__(self, path, loop=False):
        self.path = str(path)
        self.name = "folder:" + self.path
        self.loop = loop
        self.skipped = []
        if not os.path.isdir(self.path):
            raise SourceMissing("image folder %s does not exist" % self.path)
        self.files = sorted(os.path.join(top, f) for top, _, names in os.walk(self.path)
                            for f in names if f.lower().endswith(IMAGE_EXTENSIONS))
        if not self.files:
            raise SourceMissing("image folder %s has no %s files" % (
                self.path, "/".join(IMAGE_EXTENSIONS)))
        self._closed = False
        self._reported = 0

    def __iter__(self):
        cv2 = quiet_cv2()
        while not self._closed:
            produced = False
            for path in self.files:
                if self._closed:
                    return
                try:
                    frame = cv2.imread(path, 1)
                    reason = "not an image OpenCV can decode"
                except cv2.error as exc:  # e.g. a header claiming more pixels than OpenCV allows
                    frame, reason = None, "cannot decode: %s" % _first_line(exc)
                if frame is None:
                    if path not in [p for p, _ in self.skipped]:
                        log.warning("skipping %s: %s", path, reason)
                        self.skipped.append((path, reason))
                    continue
                produced = True
                yield frame
            if not self.loop or not produced:
                return

    def drain_skipped(self):
        new, self._reported = self.skipped[self._reported:], len(self.skipped)
        return new

    def close(self):
        self._closed = True


def _first_line(exc):
    """OpenCV's errors run over several lines; the one that says what happened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return next((line.split("error: ", 1)[1] for line in lines if "error: " in line), lines[0] if lines else "")


class CaptureSource(FrameSource):
    """Frames from a webcam through ``cv2.VideoCapture``, taken now."""

    def __init__(self, target, name):
        cv2 = quiet_cv2()
        self.name = name
        self.frames_read = 0
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError("cannot open %s with OpenCV" % name)

    def __iter__(self):
        while self._capture is not None:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                log.info("%s: no more frames after %d", self.name, self.frames_read)
                return
            self.frames_read += 1
            yield frame

    def close(self):
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class VideoSource(CaptureSource):
    """A video file on its own clock: :meth:`frame_time` is the last frame's position in the
    video (``CAP_PROP_POS_MSEC``), so its socks are counted as they were filmed however fast
    the frames are read. With ``fps`` > 0 at most that many frames a second of video are
    given, as a live camera at that rate would see them; the others are grabbed, not decoded.
    ``frame_count`` and ``rate`` are the container's (None when it does not say)."""

    def __init__(self, path, fps=0.0):
        cv2 = quiet_cv2()
        path = str(path)
        if not os.path.isfile(path):
            raise SourceMissing("video file %s does not exist" % path)
        try:
            super(VideoSource, self).__init__(path, "video:" + path)
        except SourceError:
            raise SourceMissing("cannot open video:%s with OpenCV (not a video, or unreadable)" % path)
        self.period = 1.0 / fps if fps and fps > 0 else 0.0
        self.frame_count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        self.rate = self._capture.get(cv2.CAP_PROP_FPS) or None
        self.position = None

    def frames(self, decode_all=False):
        """``(seconds into the video, image, kept)`` of every frame; a frame not kept (beyond
        ``fps``) has image None unless ``decode_all``."""
        cv2 = quiet_cv2()
        due = None
        while self._capture is not None and self._capture.grab():
            ts = self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            keep = due is None or ts + 1e-3 >= due  # 1 ms: a 5 fps video at fps 5 keeps all
            if keep:
                due = ts + self.period
            image = None
            if keep or decode_all:
                ok, image = self._capture.retrieve()
                if not ok or image is None:
                    break
            self.frames_read += 1
            self.position = ts
            yield ts, image, keep
        log.info("%s: no more frames after %d", self.name, self.frames_read)

    def __iter__(self):
        for _, image, keep in self.frames():
            if keep:
                yield image

    def frame_time(self):
        return self.position


def webcam_source(device=0):
    """A V4L2 webcam: an index (0 for /dev/video0) or a device path."""
    device = str(device)
    target = int(device) if device.isdigit() else device
    return CaptureSource(target, "webcam:%s" % device)


def open_source(spec, fps=0.0):
    """Open a source from its spec; see the module docstring for the forms. ``fps``: a video
    gives at most this many frames a second of video (0: all)."""
    spec = str(spec).strip()
    kind, _, arg = spec.partition(":")
    if kind == "deeplens" and not arg:
        from .deeplens import DeepLensSource
        return DeepLensSource()
    if kind == "folder" and arg:
        loop = arg.endswith("?loop")
        return FolderSource(arg[: -len("?loop")] if loop else arg, loop=loop)
    if kind == "video" and arg:
        return VideoSource(arg, fps)
    if kind == "webcam":
        return webcam_source(arg or "0")
    if os.path.isdir(spec):
        return FolderSource(spec)
    if os.path.isfile(spec):
        return VideoSource(spec, fps)
    raise ConfigError("unknown frame source %r: use folder:PATH[?loop], video:PATH, "
                      "webcam:N, webcam:/dev/videoN or deeplens" % spec)
