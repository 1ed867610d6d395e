"""Generated sock videos for the tests of ``count`` and ``run``: shared photos held up one
after another, the wall between them, and a synthetic sock of a design no model knows."""

import numpy as np

from tests.shared import PHOTOS

FPS = 5.0
SIZE = (320, 240)
# Github twice (a pair), Mongo once (odd), one design the model never saw.
SOCKS = ["Github/file_90.jpg", "Mongo/file_95.jpg", "unknown", "Github/file_96.jpg"]


def unknown_sock():
    """A synthetic sock the shipped model calls Unknown (most synthetic socks fall below its
    Blank floor: model/README.md); these tests are about how the pipeline counts Unknown."""
    from sortcore.training import synth
    return synth.unknown_sock(np.random.RandomState(1))


def write_video(path, socks=SOCKS, fps=FPS):
    """An mp4 of ``socks`` (paths under the shared photos, or "unknown"); the same seconds of
    each sock and of wall at any frame rate. Returns the frame count."""
    import cv2
    from sortcore.devtools import sockvideo

    images = [unknown_sock() if sock == "unknown" else cv2.imread(str(PHOTOS / sock)) for sock in socks]
    scale = int(fps / FPS)
    return sockvideo.write_video(path, images, fps, SIZE, per_sock=8 * scale, wall=10 * scale)
