"""Generated sock footage for tests and benchmarks: clips of a sock moving in the hand, and
videos of socks held up one after another with the wall between them."""

import numpy as np

WALL_BGR = (180, 190, 200)


def moving(image, count, seed):
    """``count`` frames of one sock: it moves, turns and the light changes."""
    import cv2
    rng = np.random.RandomState(seed)
    h, w = image.shape[:2]
    frames = []
    for _ in range(count):
        matrix = cv2.getRotationMatrix2D((w / 2 + rng.uniform(-15, 15), h / 2 + rng.uniform(-15, 15)),
                                         rng.uniform(-20, 20), rng.uniform(0.9, 1.1))
        moved = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
        frames.append(cv2.convertScaleAbs(moved, alpha=rng.uniform(0.85, 1.15)))
    return frames


def write_video(path, socks, fps, size, per_sock=8, wall=10):
    """An mp4 at ``fps`` and ``size`` (w, h): ``wall`` wall frames, then for each BGR image in
    ``socks`` ``per_sock`` frames of it and ``wall`` wall frames. Returns the frame count."""
    import cv2
    wall_frame = np.full((size[1], size[0], 3), WALL_BGR, np.uint8)
    video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, tuple(size))
    if not video.isOpened():
        raise OSError("cannot write a video to %s" % path)
    for _ in range(wall):
        video.write(wall_frame)
    for image in socks:
        frame = cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA)
        for _ in range(per_sock):
            video.write(frame)
        for _ in range(wall):
            video.write(wall_frame)
    video.release()
    return wall + len(socks) * (per_sock + wall)
