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


#: Designs nobody taught for the new-design tests: (design seed, index of a shared pair in
#: sockvideo.SILHOUETTES); socks "a" and "b" of a design are the cloth on the pair's two photos.
UNTAUGHT = {"X": (5368, 0), "Y": (5507, 1), "Z": (5818, 2)}


def untaught_sock(design, side):
    """(image, mask) of sock ``side`` (0 or 1) of design ``design`` of :data:`UNTAUGHT`."""
    import cv2
    from sortcore.devtools.sockvideo import SILHOUETTES
    from sortcore.training import restyle
    from sortcore.training.mask import sock_mask

    seed, pair = UNTAUGHT[design]
    image = cv2.imread(str(PHOTOS / SILHOUETTES[pair][side]))
    mask = sock_mask(image)
    return restyle.restyle(image, restyle.design(seed), seed * 10 + side, mask), mask


def taught_sock(name):
    """(image, mask) of a shared photo (``Github/file_90.jpg``)."""
    import cv2
    from sortcore.training.mask import sock_mask

    image = cv2.imread(str(PHOTOS / name))
    return image, sock_mask(image)


def write_frames(folder, socks, per_sock=12, between=16, tail=0, seed=0):
    """JPEG frames (640x480) in ``folder`` of ``socks`` ((image, mask)) held up in front of one
    wall, ``between`` empty frames before each (2 s at 8 fps: more than the engine's gap) and
    ``tail`` more at the end. Returns the frame count."""
    import cv2
    from sortcore.devtools import sockvideo
    from sortcore.training import augment

    folder.mkdir(parents=True, exist_ok=True)
    wall = augment.blank(np.random.RandomState(101), 640, kinds=3)[:480]
    rng = np.random.RandomState(seed)
    frames = []
    for i, (image, mask) in enumerate(socks):
        frames += [sockvideo.noisy(wall, rng) for _ in range(between)]
        frames += sockvideo.held(image, mask, wall, per_sock, seed * 1000 + i)
    frames += [sockvideo.noisy(wall, rng) for _ in range(between + tail)]
    for n, frame in enumerate(frames):
        cv2.imwrite(str(folder / ("%05d.jpg" % n)), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return len(frames)
