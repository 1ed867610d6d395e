"""Draw a frame's label and probability on it, and encode frames as JPEG (Python 3.7)."""

import time

import cv2

from ..core.errors import ModelError
from ..core.events import BLANK, UNKNOWN

GREEN, AMBER, GREY = (60, 200, 60), (0, 170, 255), (180, 180, 180)
THUMB_SIZE = 96  # px: a 40 px picture in the pairs table, sharp on a 2x phone screen
THUMB_EVERY = 1.0  # seconds: at most one picture a second per design (2 ms each at 1080p here)
NOT_DESIGNS = (BLANK, UNKNOWN)  # never a row of the pairs table, so no picture
BANNER = GREEN  # a confirmed sock: the same colour while the frames' labels change under it


def draw(image_bgr, label, probability, note=None):
    """A copy of ``image_bgr`` with ``label probability %`` on top and ``note`` (e.g. a
    confirmed sock) as a banner at the bottom, always :data:`BANNER` whatever the label."""
    out = image_bgr.copy()
    height, width = out.shape[:2]
    scale = max(0.4, width / 640.0)
    colour = AMBER if label == UNKNOWN else GREY if label == BLANK else GREEN
    text = "%s %.0f %%" % (label, probability)
    cv2.rectangle(out, (0, 0), (width, int(28 * scale)), (0, 0, 0), -1)
    cv2.putText(out, text, (6, int(20 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, colour,
                max(1, int(2 * scale)), cv2.LINE_AA)
    if note:
        cv2.rectangle(out, (0, height - int(30 * scale)), (width, height), BANNER, -1)
        cv2.putText(out, note, (6, height - int(9 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.6 * scale, (0, 0, 0), max(1, int(2 * scale)), cv2.LINE_AA)
    return out


def to_jpeg(image_bgr, quality=80):
    """JPEG bytes of a BGR image."""
    ok, data = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ModelError("cannot encode a frame of shape %s as JPEG" % (image_bgr.shape,))
    return data.tobytes()


def thumbnail(image_bgr, size=THUMB_SIZE):
    """JPEG bytes of the centre square of ``image_bgr``, downscaled to ``size`` px."""
    height, width = image_bgr.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image_bgr[top:top + side, left:left + side]
    return to_jpeg(cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA), quality=75)


def frame_feed(views, monotonic=time.monotonic):
    """``on_frame(image, label, probability)`` for the device loop, feeding live views
    (:class:`~sortcore.web.live.LiveView`): annotated JPEGs to ``frame(jpeg)`` while the
    property ``frame_wanted`` says someone watches (no encoding otherwise), and a small
    picture of each design (:func:`thumbnail`, at most every ``THUMB_EVERY`` s per design)
    to ``thumbnail(label, jpeg)``. None when there is no such view."""
    views = [v for v in views if hasattr(v, "frame_wanted") and hasattr(v, "frame")]
    if not views:
        return None
    pictured = {}  # design -> when its last picture was taken

    def on_frame(image, label, probability):
        wanted = [v for v in views if v.frame_wanted]
        if wanted:
            jpeg = to_jpeg(draw(image, label, probability))
            for view in wanted:
                view.frame(jpeg)
        now = monotonic()
        if label not in NOT_DESIGNS and now - pictured.get(label, now - THUMB_EVERY) >= THUMB_EVERY:
            pictured[label] = now
            picture = thumbnail(image)
            for view in views:
                if hasattr(view, "thumbnail"):
                    view.thumbnail(label, picture)
    return on_frame
