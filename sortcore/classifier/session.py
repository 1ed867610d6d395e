"""The camera side of new designs: a :class:`Classifier` that also pairs socks it was never taught.

:class:`SessionClassifier` wraps a classifier (ONNX Runtime or MXNet, the same head). Per frame
and camera, with one embedding per frame:

1. the sock is found against the camera's empty scene (:mod:`sortcore.classifier.foreground`): the
   frame's own last ``Blank`` frame; the embedding is of the sock's crop when a sock stands out,
   else of the whole frame (a sock filling the frame, a camera that moved). A frame no pixel of
   which differs from the empty scene is that scene: ``Blank`` again, with the empty scene's
   probability, and nothing embedded (most frames of a sorting station are the empty wall);
2. the taught head labels the embedding (a design, ``Blank`` or ``Unknown``); a region the head
   calls ``Blank`` is ``Unknown`` when it is a sock by :func:`head_label`'s rule or continues a
   live track (the sock held up a moment ago, still there: :meth:`NewDesigns.continues`);
3. :class:`~sortcore.classifier.newdesigns.NewDesigns` turns ``Unknown`` into a session
   design or a candidate ``New k`` (the engine then runs, de-ghosts and confirms them);
4. :meth:`SessionClassifier.confirmed` takes the engine's confirmed socks: a candidate becomes
   a session design with a picture of its clearest frame (a JPEG crop, at most
   :data:`PICTURE_SIZE` px), and each sock of a session design keeps its own picture.

The empty scene: a frame the head calls ``Blank`` with no sock standing out becomes it (so it
follows the light slowly); so does a ``Blank`` frame when the whole scene changed, and after
:data:`RELEARN` ``Blank`` frames in a row in which a region stood out (the scene was learnt with
something in it). Python 3.7 compatible (runs on the camera).
"""

import collections

import numpy as np

from . import foreground, palette
from .model import Prediction
from ..core.events import BLANK, UNKNOWN
from ..core.messages import DEFAULT_CAMERA
from .newdesigns import NewDesigns
from .openset import normalise

#: The picture of a design: the crop of its clearest frame at most this many px a side.
PICTURE_SIZE = 128
#: Blank frames in a row with a region standing out before the empty scene is learnt again.
RELEARN = 3
#: A region that stands out from the empty scene and that the head calls ``Blank`` is still a
#: sock (``Unknown``, for new designs) when its colours moved at least SHIFT from the scene's
#: under it (:func:`sortcore.classifier.foreground.shift`: shadows and light patches on 60 walls
#: 0.01-0.12, socks held up 0.10-0.92, 5 % below 0.16) and its best design score is LIFT above
#: the empty scene's own: a stripy sock on a dark wall can look like a wall to the head
#: (docs/classifier.md, New designs).
SHIFT, LIFT = 0.15, 0.08

Look = collections.namedtuple("Look", ["image", "found"])


def look(image, empty):
    """What to embed of ``image`` (the sock's crop, or the whole frame) and what was found."""
    found = foreground.find(image, empty)
    return Look(foreground.crop(image, found.box) if found.box else image, found)


def judge_for(head):
    """``judge(mean design scores)``: the taught design the head's rule gives, or None."""
    from .openset import decide

    def judge(scores):
        index = int(decide(np.asarray(scores)[None, :], head.tau, head.margin, head.floor)[0])
        return head.labels[head.designs[index]] if index >= 0 else None
    return judge


def head_label(head, scores, found=None, empty_top=None):
    """(label, probability) of one frame by the taught head from ``head.scores(embedding)``;
    with ``found`` (what :func:`look` found) and ``empty_top`` (the empty scene's best design
    score), a ``Blank`` region that is a sock by :data:`SHIFT` and :data:`LIFT` is ``Unknown``."""
    (label, probability), = head.predict_scores(*scores)
    if label != BLANK or found is None or found.box is None or empty_top is None:
        return label, probability
    best = 1.0 - probability / 100.0
    if found.shift >= SHIFT and best - empty_top >= LIFT:
        return UNKNOWN, round(100.0 * best, 2)
    return label, probability


def sharpness(image):
    """How clear a crop is: the variance of its Laplacian (grey, 64 px)."""
    import cv2
    grey = cv2.cvtColor(cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def picture_jpeg(image):
    """The JPEG bytes of a design's picture (at most PICTURE_SIZE px a side)."""
    import cv2
    side = max(image.shape[:2])
    if side > PICTURE_SIZE:
        scale = PICTURE_SIZE / float(side)
        image = cv2.resize(image, (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return data.tobytes() if ok else None


class _Scene(object):
    def __init__(self):
        self.empty = None
        self.blank = None
        self.blank_regions = 0

    def learn(self, found, label, probability):
        if label != BLANK:
            self.blank_regions = 0
            return
        if found.box is not None:
            self.blank_regions += 1
            if self.blank_regions < RELEARN:
                return
        self.empty, self.blank, self.blank_regions = found.scene, probability, 0


class SessionClassifier(object):
    """``classify_at(image, ts, camera)`` -> :class:`Prediction`, new designs included; see the
    module docstring. ``designs``: the session's :class:`NewDesigns` (None: new designs off,
    the crop still used). Everything else is the wrapped classifier's."""

    def __init__(self, classifier, designs=None):
        self.classifier = classifier
        self.designs = designs
        self.scenes = {}  # camera -> _Scene
        self._clock = 0.0

    def __getattr__(self, name):  # labels, head, embed, size: the wrapped classifier's
        return getattr(self.classifier, name)

    def classify_at(self, image, ts, camera=DEFAULT_CAMERA):
        scene = self.scenes.get(camera)
        if scene is None:
            scene = self.scenes[camera] = _Scene()
        seen = look(image, scene.empty)
        if seen.found.still and scene.blank is not None:  # the empty scene again: Blank, no net
            scene.learn(seen.found, BLANK, scene.blank)
            return Prediction(BLANK, scene.blank)
        embedding = self.classifier.embed(seen.image)
        scores = self.classifier.head.scores(embedding)
        empty_top = None if self.designs is None or scene.blank is None else 1.0 - scene.blank / 100.0
        label, probability = head_label(self.classifier.head, scores, seen.found, empty_top)
        if self.designs is None or (label == BLANK and seen.found.box is None):
            scene.learn(seen.found, label, probability)
            return Prediction(label, probability)
        view, colours = normalise(embedding)[0], palette.palette(seen.found.pixels)
        if label == BLANK and self.designs.continues(camera, ts, view, colours):
            label, probability = UNKNOWN, round(100.0 - probability, 2)  # the sock still held up
        scene.learn(seen.found, label, probability)
        if label == BLANK:
            return Prediction(label, probability)
        picture = (sharpness(seen.image), seen.image) if seen.found.box else None
        return Prediction(self.designs.label(camera, ts, label, view, colours, picture, scores[0][0]), probability)

    def classify(self, image):
        """One frame of one camera, frames a second apart (for callers without times)."""
        self._clock += 1.0
        return self.classify_at(image, self._clock)

    def classify_many(self, images):
        return [self.classify(image) for image in images]

    def confirmed(self, events):
        """The engine's confirmed socks (SockConfirmed events); returns the session designs
        created or grown since the last call, their pictures as JPEG bytes."""
        if self.designs is None:
            return []
        for event in events:
            if getattr(event, "label", None) not in (None, UNKNOWN):
                self.designs.confirmed(event.label, event.camera, event.sighting)
        return self.take_changed()

    def take_changed(self):
        changed = self.designs.take_changed() if self.designs is not None else []
        for design in changed:
            if isinstance(design.picture, np.ndarray):
                design.picture = picture_jpeg(design.picture)
            for sighting, picture in design.socks.items():
                if isinstance(picture, np.ndarray):
                    design.socks[sighting] = picture_jpeg(picture)
        return changed

    def finish(self):
        """End every track (the end of a video); returns the designs that grew."""
        if self.designs is None:
            return []
        self.designs.finish()
        return self.take_changed()


def engine_labels(engine):
    """The labels ``engine`` holds a sock of (counted, or confirmed and waiting to be published).
    A ghost's run (never a sock) does not count: a new track takes its number only after ``gap``,
    when the engine starts a new run anyway."""
    from ..core.runs import Run
    sighting = 1 + Run.__slots__.index("sighting")  # a run's row: [label] + Run.to_list()
    state = engine.snapshot()
    return set(state["counts"]) | {run[0] for cam in state["cameras"].values() for run in cam["runs"]
                                   if run[sighting] is not None}


def session_classifier(classifier, new_designs=True, gap=1.5, decide=4, designs=(), reserved=(), in_use=None):
    """A :class:`SessionClassifier` around ``classifier`` for an engine of ``gap`` seconds and
    ``decide`` = its ``min_frames``; ``designs``: the session's stored designs; ``in_use()``:
    the labels the engine holds a sock of (:func:`engine_labels`)."""
    found = NewDesigns(gap=gap, decide=decide, taught=classifier.labels, designs=designs,
                       reserved=reserved, judge=judge_for(classifier.head), in_use=in_use) if new_designs else None
    return SessionClassifier(classifier, found)
