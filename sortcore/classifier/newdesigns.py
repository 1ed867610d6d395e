"""Designs found in the session: socks the model was never taught, paired all the same. numpy only.

The camera side, before the engine. Each frame comes with what the taught head said of it, its
embedding and its colours (:mod:`sortcore.classifier.palette`). Frames of one camera that belong
together (one sock held up) form a *track*: a frame joins the live track of its camera it is
most like (cosine >= ``join`` and colours >= ``join_colour``), else starts one; a track whose
last frame is more than ``gap`` seconds old has ended (the engine's rule for a run).

- Every frame of a track takes the track's label. While a track has at most ``decide`` frames
  it decides again at each frame, with all of them: the taught design the head gave at least
  half of them, or the one the head's rule gives the mean of their scores (when the head named
  one of them), else a session design
  whose ``k`` nearest views score at least ``tau`` on average **and** whose colours agree at
  least ``colour`` (or less, by ``tiers``, the higher the views score: the same sock in another
  light), and, if several do, beats the second by ``margin``, else a *candidate*
  ``New k``. Once it has ``decide`` frames (the engine's ``min_frames``) its label stays: the
  frames it gave another label are fewer than ``min_frames``, a ghost, so a sock is never
  counted twice (a stray frame the head gave another design takes the track's label too).
- When the engine confirms a candidate's sock (:meth:`NewDesigns.confirmed`) the candidate
  becomes a session design, remembered by its frames' embeddings and colours (at most
  :data:`MAX_VIEWS`). A candidate whose track ends unconfirmed was a ghost: its number is free.
- A confirmed track's frames join its design when the track ends (another view of the design),
  each view remembering its sock (the engine's sighting id), with the sock's own picture.
- A sock the person says is not of its design (a false pair, :meth:`NewDesigns.split`): its
  views leave the design and are the next free ``New k``.
- A design the person says is not a sock (:meth:`NewDesigns.forget`: a hand, a towel) is kept
  as *ignored* for the rest of the process: a track that matches it by the same rule is
  ``Blank``, the wall to us. Ignored designs are not stored: after a restart the thing becomes
  a ``New k`` again and can be forgotten again (a choice: nothing a person said "not a sock" to
  lingers in the store, and a reset starts clean).

``tau`` is stricter than the taught head's: a false match is a false pair, the worst output;
a split (one design found twice) costs a missed pair that the person can merge. The values and
their calibration: docs/classifier.md, New designs. Python 3.7 compatible.
"""

import collections

import numpy as np

from ..core.events import BLANK, UNKNOWN
from ..core.messages import NEW_DESIGN
from . import palette as colours
from .design import MAX_VIEWS, Design

#: A track compares a frame with at most its last this many frames.
TRACK_VIEWS = 12

Rule = collections.namedtuple("Rule", ["k", "tau", "colour", "tiers", "margin", "join", "join_colour"])
#: Calibrated in research/newdesigns_calibrate.py (docs/classifier.md, New designs). ``tiers``:
#: (score, colour) pairs: the more the views agree, the less the colours must (the same sock in
#: another light).
RULE = Rule(k=3, tau=0.65, colour=0.70, tiers=((0.75, 0.60), (0.80, 0.50)), margin=0.02, join=0.80,
            join_colour=0.30)


def matches(rule, score, colour):
    """Whether a track's k-NN ``score`` and ``colour`` agreement with a design pass ``rule``:
    ``tau`` and ``colour``, or a tier's score and colour. Works on numpy arrays too."""
    passes = colour >= rule.colour
    for at, need in rule.tiers:
        passes = passes | ((score >= at) & (colour >= need))
    return (score >= rule.tau) & passes


def new_label(number):
    return "New %d" % number


def is_new_label(label):
    """Whether ``label`` is a session design's number (``New 3``), reserved for them."""
    return number_of(label) is not None


def number_of(label):
    """The number of a ``New k`` label (``New 3``: 3), or None for any other label."""
    found = NEW_DESIGN.match(label or "")
    return int(found.group(1)) if found else None


class Track(object):
    """The frames of one camera that belong together (one sock held up)."""

    def __init__(self, ts):
        self.first = self.last = ts
        self.frames = 0
        self.label = None
        self.heads = []  # what the taught head said of its first frames
        self.scores = []  # the head's design scores of its first frames
        self.confirmed = False
        self.sighting = 0  # the engine's id of its sock, once confirmed
        self.views, self.palettes = [], []
        self.picture = None  # (sharpness, picture) of its clearest frame

    @property
    def taught(self):
        """Its label is a taught design's."""
        return self.label is not None and self.label in self.heads

    def add(self, ts, view, palette, picture, head, scores=None):
        self.last = max(self.last, ts)
        self.frames += 1
        if len(self.heads) < TRACK_VIEWS:
            self.heads.append(head)
            if scores is not None:
                self.scores.append(scores)
        self.views.append(view)
        self.palettes.append(palette)
        if picture is not None and (self.picture is None or picture[0] > self.picture[0]):
            self.picture = picture

    def sock_picture(self):
        """``{sighting id: clearest crop}`` of its sock once confirmed, if it has a crop; else None."""
        return {self.sighting: self.picture[1]} if self.sighting and self.picture else None

    def likeness(self, view, palette):
        """(best cosine, best colour agreement) of a frame with this track's latest frames."""
        views = np.asarray(self.views[-TRACK_VIEWS:], np.float32)
        return float((views @ view).max()), float(colours.cover(palette, self.palettes[-TRACK_VIEWS:]).max())


def knn_score(views, gallery, k):
    """Mean over ``views`` (N, D) of the mean cosine of their ``k`` nearest rows of ``gallery``."""
    sims = np.asarray(views, np.float32) @ gallery.T
    kk = min(k, sims.shape[1])
    return float(np.partition(sims, sims.shape[1] - kk, axis=1)[:, -kk:].mean())


def colour_score(palettes, gallery):
    """Mean over ``palettes`` of their best agreement with a palette of ``gallery``."""
    return float(np.mean([colours.cover(p, gallery).max() for p in palettes]))


class NewDesigns(object):
    """The session's designs and every camera's live tracks; see the module docstring.

    ``taught``: the taught labels (never used as a ``New k``); ``gap``: seconds after which a
    track has ended; ``decide``: frames after which a track's label stays (the engine's
    ``min_frames``); ``reserved``: labels already in the session (the engine's runs and counts
    after a restart), whose numbers are never given again; ``in_use()``: the labels the engine
    holds a sock of now (confirmed, or waiting to be published): their numbers stay taken even
    after a candidate's track ended, so a late confirmation never pairs two designs.
    """

    def __init__(self, rule=RULE, gap=1.5, decide=4, taught=(), designs=(), reserved=(), judge=None,
                 in_use=None):
        self.rule = rule
        self.in_use = in_use
        self.judge = judge  # judge(mean design scores) -> a taught design or None: the head's rule
        self.gap = float(gap)
        self.decide = int(decide)
        self.taught = set(taught)
        self.designs = collections.OrderedDict((d.name, d) for d in designs)
        self.ignored = {}  # name -> Design: not socks, said the person (kept for the process only)
        self.tracks = {}  # camera -> [Track]
        self.reserved = set(map(number_of, reserved)) - {None}
        self.changed = []  # designs to store (new, or grown by a finished track)

    # --- frames ------------------------------------------------------------

    def label(self, camera, ts, taught_label, view, palette, picture=None, scores=None):
        """The label of one frame: its track's (a taught design, a session design or a
        candidate), ``Blank`` for a Blank frame. ``taught_label``: what the head said of it;
        ``view``: its unit embedding; ``palette``: its colours; ``picture``: (sharpness,
        anything) of its crop, for a design's picture; ``scores``: the head's design scores."""
        self._expire(camera, ts)
        if taught_label == BLANK:
            return taught_label
        tracks = self.tracks.setdefault(camera, [])
        track = self._nearest(tracks, view, palette)
        if track is None:
            track = Track(ts)
            tracks.append(track)
        track.add(ts, view, palette, picture, taught_label, scores)
        if track.frames <= self.decide:
            track.label = self._decide(track)
        return track.label

    def continues(self, camera, ts, view, palette):
        """Whether a frame at ``ts`` would join a live track of ``camera`` (the sock held up a
        moment ago, still there: a frame the head called ``Blank`` that is its sock)."""
        self._expire(camera, ts)
        return self._nearest(self.tracks.get(camera, []), view, palette) is not None

    def _nearest(self, tracks, view, palette):
        """The live track this frame continues, or None."""
        best, best_like = None, -1.0
        for track in tracks:
            like, agree = track.likeness(view, palette)
            if like >= self.rule.join and agree >= self.rule.join_colour and like > best_like:
                best, best_like = track, like
        return best

    def _decide(self, track):
        """An undecided track's label: the taught design most of its frames had (or the head's
        rule on their mean scores gives), else ``Blank`` if it matches a design the person said is
        not a sock, else a session design it matches, else the taught design half of its frames
        had, else its candidate number."""
        taught = collections.Counter(label for label in track.heads if label != UNKNOWN).most_common(1)
        if taught and 2 * taught[0][1] > len(track.heads):
            return taught[0][0]
        if self.judge is not None and len(track.scores) == len(track.heads) and taught:
            label = self.judge(np.mean(track.scores, axis=0))
            if label is not None:  # the head's rule on the mean of the track's scores
                return label
        if self._passing(track, self.ignored):
            return BLANK  # the person said this is not a sock
        matched = self._session_design(track)
        if matched is not None:
            return matched
        if taught and 2 * taught[0][1] == len(track.heads):
            return taught[0][0]
        if track.label is not None and is_new_label(track.label) and track.label not in self.designs:
            return track.label  # keeps its candidate number
        return new_label(self._free_number())

    def _passing(self, track, designs):
        """[(score, name)] of ``designs`` (name -> Design) that ``track`` matches by the rule, best first."""
        rule, passing = self.rule, []
        for name, design in designs.items():
            score = knn_score(track.views, design.views, rule.k)
            if score >= rule.tau and matches(rule, score, colour_score(track.palettes, design.palettes)):
                passing.append((score, name))
        return sorted(passing, reverse=True)

    def _session_design(self, track):
        """The session design ``track`` matches (beating any other by the rule's margin), or None."""
        passing = self._passing(track, self.designs)
        if passing and (len(passing) == 1 or passing[0][0] - passing[1][0] >= self.rule.margin):
            return passing[0][1]
        return None

    def _free_number(self):
        labels = list(self.in_use() if self.in_use is not None else ()) + list(self.designs)
        labels += [track.label for tracks in self.tracks.values() for track in tracks]
        used = self.reserved | set(map(number_of, labels)) - {None}
        number = 1
        while number in used or new_label(number) in self.taught:
            number += 1
        return number

    def _expire(self, camera, ts):
        tracks = self.tracks.get(camera, [])
        for track in [t for t in tracks if ts - t.last > self.gap]:
            tracks.remove(track)
            design = self.designs.get(track.label)
            if design is not None and track.confirmed and not track.taught:
                design.add(track.views[-MAX_VIEWS:], track.palettes[-MAX_VIEWS:], track.sighting,
                           track.sock_picture())
                self._changed(design)

    def _changed(self, design):
        if design not in self.changed:
            self.changed.append(design)

    def finish(self):
        """End every track (the end of a video): confirmed ones grow their designs."""
        for camera in list(self.tracks):
            self._expire(camera, float("inf"))

    # --- the engine's word ---------------------------------------------------

    def confirmed(self, label, camera, sighting=0):
        """The engine confirmed a sock (its ``sighting`` id) of ``label`` on ``camera``: a
        candidate becomes a session design. Returns that design, or None."""
        track = next((t for t in reversed(self.tracks.get(camera, [])) if t.label == label), None)
        if track is None or track.taught:
            return None
        track.confirmed, track.sighting = True, int(sighting or 0)
        if label in self.designs or not is_new_label(label):
            return None
        picture = track.picture[1] if track.picture else None
        design = self.designs[label] = Design(label, track.views, track.palettes, picture, track.sighting,
                                              track.sock_picture())
        track.views, track.palettes = track.views[-TRACK_VIEWS:], track.palettes[-TRACK_VIEWS:]
        self._changed(design)
        return design

    def take_changed(self):
        """The designs created or grown since the last call (to store them)."""
        changed, self.changed = self.changed, []
        return changed

    # --- the person's word ---------------------------------------------------

    def rename(self, old, new):
        """``old`` is called ``new`` from now on: into another session design, merged; into a
        taught design, no longer a session design. Returns the design ``new`` (None if taught)."""
        design = self.designs.pop(old)
        into = None
        if new in self.designs:
            into = self.designs[new]
            into.add(design.views, design.palettes, design.owners, design.socks)
            if into.picture is None:
                into.picture = design.picture
        elif new not in self.taught:
            design.name = new
            self.designs[new] = into = design
        for tracks in self.tracks.values():
            for track in tracks:
                if track.label == old:
                    track.label = new
        self.changed = [d for d in self.changed if d is not design and d is not into] + ([into] if into else [])
        return into

    def forget(self, name):
        """The session design ``name`` is not a sock: it leaves the designs, its live tracks are
        ``Blank`` from now on, and so is any new track that matches it (see the module
        docstring). Its number is not given again in this process. Returns the design."""
        design = self.ignored[name] = self.designs.pop(name)
        for tracks in self.tracks.values():
            for track in tracks:
                if track.label == name:
                    track.label = BLANK
        self.changed = [d for d in self.changed if d is not design]
        if is_new_label(name):
            self.reserved.add(number_of(name))
        return design

    def split(self, name, sighting, save=None):
        """Sock ``sighting`` is not of the session design ``name`` (a false pair): its views leave
        ``name`` and are the next free ``New k``, with the sock's picture. ``save(kept, moved)``
        stores both first (nothing changes here when it fails). Returns the new design;
        ValueError with the reason when the sock is still held up or cannot be told apart."""
        design = self.designs[name]
        if any(t.label == name and t.sighting == sighting for tracks in self.tracks.values() for t in tracks):
            raise ValueError("sock %d of %s is still held up: tell it apart once it is put down" % (sighting, name))
        kept, moved = design.parted(sighting, new_label(self._free_number()))
        if save is not None:
            save(kept, moved)
        self.designs[name], self.designs[moved.name] = kept, moved
        self.changed = [d for d in self.changed if d is not design] + [kept, moved]  # pictures to make
        return moved
