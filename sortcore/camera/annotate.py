"""Draw a frame's label and probability on it, and encode frames as JPEG (Python 3.7)."""

import cv2

from ..errors import ModelError

GREEN, AMBER, GREY = (60, 200, 60), (0, 170, 255), (180, 180, 180)
BANNER = GREEN  # a confirmed sock: the same colour while the frames' labels change under it


def draw(image_bgr, label, probability, note=None):
    """A copy of ``image_bgr`` with ``label probability %`` on top and ``note`` (e.g. a
    confirmed sock) as a banner at the bottom, always :data:`BANNER` whatever the label."""
    out = image_bgr.copy()
    height, width = out.shape[:2]
    scale = max(0.4, width / 640.0)
    colour = AMBER if label == "Unknown" else GREY if label == "Blank" else GREEN
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


def frame_feed(views):
    """``on_frame(image, label, probability)`` for the device loop that hands annotated JPEGs
    to live views (:class:`~sortcore.web.live.LiveView`: ``frame(jpeg)`` and the property
    ``frame_wanted``); no encoding while
    nobody watches. None when there is no such view."""
    views = [v for v in views if hasattr(v, "frame_wanted") and hasattr(v, "frame")]
    if not views:
        return None

    def on_frame(image, label, probability):
        wanted = [v for v in views if v.frame_wanted]
        if wanted:
            jpeg = to_jpeg(draw(image, label, probability))
            for view in wanted:
                view.frame(jpeg)
    return on_frame
