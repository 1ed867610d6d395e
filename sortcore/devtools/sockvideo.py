"""Generated sock footage for tests and benchmarks: clips of a sock moving in the hand, and
videos of socks held up one after another with the wall between them."""

import os

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


def held(image, mask, wall, count, seed):
    """``count`` frames of the sock of ``image`` (cut out by ``mask``, 1 = sock) held up in
    front of ``wall`` (a BGR frame: the camera and the wall stay, the sock moves, turns and
    catches the light), at 45-90 % of the frame's height."""
    import cv2
    rng = np.random.RandomState(seed)
    height, width = wall.shape[:2]
    h, w = image.shape[:2]
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)
    scale0 = rng.uniform(0.45, 0.9) * height / max(h, w)
    angle0 = rng.uniform(-30, 30)
    half = scale0 * max(h, w) / 2.0
    cx0 = rng.uniform(half, width - half)
    cy0 = rng.uniform(min(half, height / 2.0), max(height - half, height / 2.0))
    background = wall.astype(np.float32)
    frames = []
    for _ in range(count):
        matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle0 + rng.normal(0, 6),
                                         scale0 * rng.uniform(0.95, 1.05))
        matrix[:, 2] += (cx0 + rng.uniform(-12, 12) - w / 2.0, cy0 + rng.uniform(-12, 12) - h / 2.0)
        sock = cv2.warpAffine(image, matrix, (width, height)).astype(np.float32) * rng.uniform(0.9, 1.1)
        alpha = cv2.warpAffine(soft, matrix, (width, height))[:, :, None]
        frame = (sock * alpha + background * (1 - alpha)) * rng.uniform(0.97, 1.03)
        frames.append(noisy(frame, rng))
    return frames


def noisy(frame, rng):
    """``frame`` with a camera's sensor noise (sd 2 levels), as uint8."""
    return np.clip(np.asarray(frame, np.float32) + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)


def write_held_video(path, socks, wall, fps=4.0, per_sock=12, between=8, seed=0):
    """An mp4 at ``fps`` of ``socks`` ((image, mask) pairs) each held up for ``per_sock``
    frames in front of ``wall`` (BGR, the video's size), with ``between`` frames of the empty
    wall before each and at the end. Returns the frame count."""
    import cv2
    rng = np.random.RandomState(seed)
    video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, wall.shape[1::-1])
    if not video.isOpened():
        raise OSError("cannot write a video to %s" % path)
    count = 0
    for i, sock in enumerate(list(socks) + [None]):
        for _ in range(between):
            video.write(noisy(wall, rng))
            count += 1
        if sock is None:
            break
        for frame in held(sock[0], sock[1], wall, per_sock, seed * 1000 + i):
            video.write(frame)
            count += 1
    video.release()
    return count


#: Pairs of shared photos whose sock masks hold (a restyled design is one cloth on a pair).
SILHOUETTES = (("Confluent/file_16.jpg", "Confluent/file_5.jpg"), ("Databricks/file_87.jpg", "Databricks/file_99.jpg"),
               ("Github/file_90.jpg", "Github/file_96.jpg"), ("Mongo/file_108.jpg", "Mongo/file_95.jpg"),
               ("Streamsets/file_92.jpg", "Streamsets/file_98.jpg"))


def new_designs_video(path, photos, seed, untaught=4, taught=("Github/file_90.jpg", "Github/file_96.jpg",
                                                              "Streamsets/file_92.jpg"), fps=4.0):
    """A 640x480 video at ``fps`` of a laundry load on one wall: ``untaught`` designs nobody
    taught (:func:`sortcore.training.restyle.restyle`: a cloth laid on both photos of a shared
    pair, two socks of one design photographed differently) and the ``taught`` shared photos
    (paths under ``photos``), in a random order, each held up 3 s with 2 s of wall between.
    Returns the truth: the design of each sock, in order (``r<seed>`` for an untaught one)."""
    import cv2
    from ..training import augment, restyle
    from ..training.mask import sock_mask

    def photo(name):
        image = cv2.imread(os.path.join(str(photos), name))
        if image is None:
            raise OSError("cannot read %s under %s" % (name, photos))
        return image, sock_mask(image)

    rng = np.random.RandomState(seed)
    socks, truth = [], []
    for design in rng.choice(np.arange(5000, 6000), untaught, replace=False):
        cloth = restyle.design(int(design))
        for k, name in enumerate(SILHOUETTES[rng.randint(len(SILHOUETTES))]):
            image, mask = photo(name)
            socks.append((restyle.restyle(image, cloth, int(design) * 10 + k, mask), mask))
            truth.append("r%d" % design)
    for name in taught:
        socks.append(photo(name))
        truth.append(name.split("/")[0])
    order = rng.permutation(len(socks))
    wall = augment.blank(np.random.RandomState(seed + 100), 640, kinds=3)[:480]
    write_held_video(path, [socks[i] for i in order], wall, fps=fps, seed=seed)
    return [truth[i] for i in order]
