"""The image sets of the pretrained eye's measurements (issue 23), and their cached embeddings.

Every set is a fixed function of seeds; its embeddings are computed once per model file and
kept as ``.npy`` under ``build/eye-cache/<model file>/`` (gitignored), so head experiments cost
no network time. The shared photos are read from ``../shared/sock-photos`` and never copied.

Sets (all BGR uint8 images, embedded through :func:`sortcore.classifier.model.preprocess`):

- ``enrol/<photo>``: the views a prototype is built from (:func:`sortcore.training.views.enrol_views`);
- ``held/<photo>``: 20 augmented views of a photo, the leave-one-photo-out protocol
  (``RandomState(777)``, 448 px, crops of 45-100 %, any rotation, flips, colour, blur);
- ``frame/<photo>``: 10 640x480 frames of the photo on a synthetic wall, filling 30-100 % of it;
- ``untaught-cal`` / ``untaught-test``: synthetic socks of designs nobody taught (seeds 9001 and
  31337, 200 each): the first may calibrate the rule, the second only measures it;
- ``blanks``: 200 synthetic walls, wood, tables, stripes and noise (seed 4242, each its own),
  plus 200 crops of the shared photos' backgrounds (where the GrabCut mask finds no sock);
- ``new/<d>``: design ``d`` of 2 new synthetic designs (seeds 501, 502): 3 enrolment photos and
  10 new photos each.
"""

import glob
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sortcore.classifier.model import SIZE, preprocess, read_image  # noqa: E402
from sortcore.training import augment, synth  # noqa: E402
from sortcore.training.views import enrol_views  # noqa: E402

PHOTOS = os.path.join(os.path.dirname(ROOT), "shared", "sock-photos")
CACHE = os.path.join(ROOT, "build", "eye-cache")
FRAME_W, FRAME_H = 640, 480
NEW_DESIGNS = (501, 502)


def photos():
    """[(label, name, image)] of the 12 shared photos, in path order."""
    out = []
    for path in sorted(glob.glob(os.path.join(PHOTOS, "*", "*.jpg"))):
        out.append((os.path.basename(os.path.dirname(path)), os.path.basename(path)[:-4],
                    read_image(path)))
    return out


def held_views(image, count=20):
    rng = np.random.RandomState(777)
    return [augment.augment(image, rng, SIZE * 2) for _ in range(count)]


def wall(rng):
    """A 640x480 synthetic wall: plain, gradient or fine texture (no stripes or noise)."""
    return augment.blank(rng, FRAME_W, kinds=3)[:FRAME_H]


def on_wall(image, fill, rng):
    """``image`` as a square covering ``fill`` of a 640x480 wall frame, at a random place."""
    import cv2
    frame = wall(rng).copy()
    side = int(round(np.sqrt(fill * FRAME_W * FRAME_H)))
    photo = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    x = rng.randint(0, max(0, FRAME_W - side) + 1)
    y = rng.randint(0, max(0, FRAME_H - side) + 1)
    h, w = min(side, FRAME_H - y), min(side, FRAME_W - x)
    frame[y:y + h, x:x + w] = photo[:h, :w]
    return frame


def framed(image, seed, count=10):
    rng = np.random.RandomState(seed)
    return [on_wall(image, rng.uniform(0.3, 1.0), rng) for _ in range(count)]


def untaught(seed, count=200):
    rng = np.random.RandomState(seed)
    return [synth.unknown_sock(rng, size=SIZE * 2, view_size=SIZE * 2) for _ in range(count)]


def background_crops(count=200, seed=4243):
    """Crops of the shared photos with no sock pixel in them (GrabCut mask), 40-90 px."""
    from sortcore.training.mask import sock_mask
    rng = np.random.RandomState(seed)
    sources = [(image, sock_mask(image)) for _, _, image in photos()]
    out, tries = [], 0
    while len(out) < count and tries < 200000:
        tries += 1
        image, mask = sources[rng.randint(len(sources))]
        side = rng.randint(40, 91)
        y, x = rng.randint(0, image.shape[0] - side + 1, 2)
        if mask[y:y + side, x:x + side].any() or mask.all():
            continue
        out.append(augment.colour_jitter(image[y:y + side, x:x + side].copy(), rng))
    return out


def blanks(count=200, seed=4242):
    rng = np.random.RandomState(seed)
    return [augment.blank(rng, SIZE * 2) for _ in range(count)] + background_crops()


def new_design(seed, enrol=3, new=10):
    """(3 enrolment photos, 10 new photos) of synthetic design ``seed``."""
    pattern = synth.design(seed)
    rng = np.random.RandomState(seed * 7 + 1)
    shots = [synth.render(pattern, rng) for _ in range(enrol + new)]
    return shots[:enrol], shots[enrol:]


class Embedder(object):
    """(N, 1280) L2-normalised embeddings through ONNX Runtime on one thread, cached."""

    def __init__(self, model_path):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        import hashlib
        with open(model_path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:12]
        self.cache = os.path.join(CACHE, os.path.basename(model_path) + "-" + digest)

    def embed(self, images, batch=32):
        rows = [self.session.run(None, {"data": preprocess(images[i:i + batch], SIZE)})[0]
                for i in range(0, len(images), batch)]
        emb = np.concatenate(rows).astype(np.float32)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    def cached(self, name, make):
        path = os.path.join(self.cache, name + ".npy")
        if os.path.isfile(path):
            return np.load(path)
        emb = self.embed(make())
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, emb)
        return emb


def all_sets(embedder):
    """{set name: embeddings}, computing what the cache lacks."""
    out = {}
    for i, (label, name, image) in enumerate(photos()):
        out["enrol/" + name] = embedder.cached("enrol-" + name, lambda: enrol_views([image]))
        out["held/" + name] = embedder.cached("held-" + name, lambda: held_views(image))
        out["frame/" + name] = embedder.cached("frame-" + name, lambda: framed(image, 1000 + i))
    out["untaught-cal"] = embedder.cached("untaught-9001", lambda: untaught(9001))
    out["untaught-test"] = embedder.cached("untaught-31337", lambda: untaught(31337))
    out["blanks"] = embedder.cached("blanks", blanks)
    for seed in NEW_DESIGNS:
        enrol, new = new_design(seed)
        out["new-enrol/%d" % seed] = embedder.cached("new-enrol-%d" % seed,
                                                     lambda: enrol_views(enrol))
        out["new-test/%d" % seed] = embedder.cached("new-test-%d" % seed, lambda: new)
    return out
