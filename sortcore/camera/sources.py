"""Frame sources: where the classifier's BGR frames come from.

Every source is an iterable of BGR uint8 frames with ``close()`` (and works as
a context manager). :func:`open_source` builds one from a short spec:

``folder:PATH`` (add ``?loop`` to repeat), ``video:PATH``, ``webcam:0`` or
``webcam:/dev/video0``, and ``deeplens`` (only on the camera, see
:mod:`sortcore.camera.deeplens`). A bare existing folder or file path also works.

Must stay Python 3.7 compatible (runs on the camera).
"""

import logging
import os

from ..errors import ConfigError, SourceError
from .base import FrameSource

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


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
            raise SourceError("image folder %s does not exist" % self.path)
        self.files = sorted(os.path.join(top, f) for top, _, names in os.walk(self.path)
                            for f in names if f.lower().endswith(IMAGE_EXTENSIONS))
        if not self.files:
            raise SourceError("image folder %s has no %s files" % (
                self.path, "/".join(IMAGE_EXTENSIONS)))
        self._closed = False

    def __iter__(self):
        import cv2
        while not self._closed:
            produced = False
            for path in self.files:
                if self._closed:
                    return
                frame = cv2.imread(path, 1)
                if frame is None:
                    if path not in [p for p, _ in self.skipped]:
                        log.warning("skipping %s: not an image OpenCV can decode", path)
                        self.skipped.append((path, "not an image OpenCV can decode"))
                    continue
                produced = True
                yield frame
            if not self.loop or not produced:
                return

    def close(self):
        self._closed = True


class CaptureSource(FrameSource):
    """Frames from ``cv2.VideoCapture``: a video file or a webcam."""

    def __init__(self, target, name):
        import cv2
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


def video_source(path):
    """A video file, read to its end."""
    path = str(path)
    if not os.path.isfile(path):
        raise SourceError("video file %s does not exist" % path)
    return CaptureSource(path, "video:" + path)


def webcam_source(device=0):
    """A V4L2 webcam: an index (0 for /dev/video0) or a device path."""
    device = str(device)
    target = int(device) if device.isdigit() else device
    return CaptureSource(target, "webcam:%s" % device)


def open_source(spec):
    """Open a source from its spec; see the module docstring for the forms."""
    spec = str(spec).strip()
    kind, _, arg = spec.partition(":")
    if kind == "deeplens" and not arg:
        from .deeplens import DeepLensSource
        return DeepLensSource()
    if kind == "folder" and arg:
        loop = arg.endswith("?loop")
        return FolderSource(arg[: -len("?loop")] if loop else arg, loop=loop)
    if kind == "video" and arg:
        return video_source(arg)
    if kind == "webcam":
        return webcam_source(arg or "0")
    if os.path.isdir(spec):
        return FolderSource(spec)
    if os.path.isfile(spec):
        return video_source(spec)
    raise ConfigError("unknown frame source %r: use folder:PATH[?loop], video:PATH, "
                      "webcam:N, webcam:/dev/videoN or deeplens" % spec)
