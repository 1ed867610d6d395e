"""New designs in a runtime with a camera (``run``, the lambda, ``count``): the session's designs
between the camera side's classifier, the store and the person.

:class:`SessionDesigns` wraps the classifier as a
:class:`~sortcore.classifier.session.SessionClassifier` for the pipeline's current session (its
stored designs loaded, so a restart keeps matching them), stores the designs the engine's
confirmed socks make or grow, starts again empty after a reset (and deletes the old session's
rows), and names, merges, forgets and splits designs for the person: the engine's counts, the
sightings and the design rows change in one transaction, then a named design is taught to the user
model (:mod:`sortcore.classifier.usermodel`); a forgotten one (not a sock) loses its socks and
sightings and is ``Blank`` to the camera side for the rest of the process; a sock told apart from
its design (a false pair, "not this design") takes its views and its sighting to the next
``New k``. Everything runs in the thread that owns the pipeline.
Python 3.7 compatible.
"""

import logging

from ..store.designstore import DesignStore
from ..core.errors import BadFrame, ConfigError, SortcoreError, StoreError
from ..core.events import BLANK, UNKNOWN, UNRECOGNISED
from ..core.messages import NEW_DESIGN

log = logging.getLogger(__name__)

MAX_NAME = 64
RESERVED = (UNKNOWN, BLANK, UNRECOGNISED)


def check_name(name):
    """A design name a person may give, stripped; BadFrame with the reason otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise BadFrame("a design name must be a non-empty string")
    name = " ".join(name.split())
    if len(name) > MAX_NAME or not name.isprintable():
        raise BadFrame("a design name is at most %d printable characters" % MAX_NAME)
    if name in RESERVED or NEW_DESIGN.match(name):
        raise BadFrame("%r is reserved: choose another name" % name)
    return name


class SessionDesigns(object):
    """See the module docstring. ``enabled`` False: the crop is still used, no design is found."""

    def __init__(self, classifier, pipeline, enabled=True, user_model=None, base_model=None, on_design=None):
        self.classifier = classifier
        self.pipeline = pipeline
        # a classifier without embeddings (a stand-in, an old backend) labels frames as it is
        self.enabled = enabled and hasattr(classifier, "embed") and hasattr(classifier, "head")
        self.user_model = user_model
        self.base_model = base_model
        # on_design({"name", "picture", "old", "socks"}): the live page (name None: forgotten)
        self.on_design = on_design
        self.rows = DesignStore(pipeline.store)
        self.session = None
        self.labeller = None
        self.follow()

    def follow(self):
        """Take the pipeline's session (at start, after a reset): its designs from the store."""
        if self.session == self.pipeline.session and (self.labeller is not None or not self.enabled):
            return
        self.session = self.pipeline.session
        if not self.enabled:  # the classifier as it is, no crop, nothing found
            return
        from ..classifier.design import from_row
        from ..classifier.session import engine_labels, session_classifier
        stored = [from_row(row) for row in self.rows.load(self.session)]
        dropped = self.rows.keep_only(self.session)
        if dropped:
            log.info("new designs: %d of earlier sessions cleared", dropped)
        engine, config = self.pipeline.engine, self.pipeline.config
        reserved = engine.labels()
        self.labeller = session_classifier(self.classifier, True, config.gap, config.min_frames, stored, reserved,
                                           in_use=lambda: engine_labels(self.pipeline.engine))
        self.pipeline.untaught = {d.name for d in stored}
        for design in stored:
            self._tell(design)
        if stored:
            log.info("session %d: %d designs found earlier (%s)", self.session, len(stored),
                     ", ".join(d.name for d in stored))

    def classify_at(self, image, ts, camera):
        self.follow()
        if not self.enabled:
            return self.classifier.classify(image)
        return self.labeller.classify_at(image, ts, camera)

    def confirmed(self, events):
        """After a commit: the engine's confirmed socks; new or grown designs are stored."""
        if self.enabled and events:
            self._store(self.labeller.confirmed(events))

    def finish(self):
        """The end of a finite source: every track ends, grown designs are stored."""
        if self.enabled:
            self._store(self.labeller.finish())

    def _tell(self, design, old=None):
        if self.on_design is not None and design.picture is not None:
            self.on_design({"name": design.name, "picture": design.picture, "old": old,
                            "socks": [(s, p) for s, p in design.socks.items() if isinstance(p, bytes)]})

    def _store(self, changed):
        from ..classifier.design import to_row
        if not changed:
            return
        self.pipeline.untaught.update(d.name for d in changed)
        try:
            self.rows.save(self.session, [to_row(d) for d in changed])
        except StoreError as exc:  # kept in memory; stored with the next change
            log.warning("new designs not stored: %s", exc)
        for design in changed:
            log.info("new design %s: %d views", design.name, len(design.views))
            self._tell(design)

    # --- the person's word (control, the page) -------------------------------

    def designs(self):
        """The session's designs: ``[{"name", "views", "picture"}]``."""
        found = self.labeller.designs.designs if self.enabled else {}
        return [{"name": d.name, "views": len(d.views), "picture": d.picture is not None}
                for d in found.values()]

    def picture(self, name):
        design = self._design(name, must=False)
        return design.picture if design is not None else None

    def _design(self, name, must=True):
        if not self.enabled:
            raise BadFrame("new designs are off (setting new_designs)")
        design = self.labeller.designs.designs.get(name)
        if design is None and must:
            raise BadFrame("%r is not a design found in session %d" % (name, self.session))
        return design

    def name(self, design, name):
        """Call the session design ``design`` ``name`` (a taught design's name: it is one) and
        teach it to the user model; returns ``{"design", "name", "user_model"}``."""
        name = check_name(name)
        self._design(design)
        if name in self.labeller.designs.designs:
            raise BadFrame("%r is already a design of this session: merge them instead" % name)
        taught_to = self._relabel(design, name)
        return {"design": design, "name": name, "user_model": taught_to}

    def merge(self, design, into):
        """Count the session design ``design`` as the session design ``into`` (the person says
        they are the same); a named ``into`` learns ``design``'s views in the user model."""
        self._design(design)
        self._design(into)
        if design == into:
            raise BadFrame("cannot merge %r into itself" % design)
        taught_to = self._relabel(design, into)
        return {"design": design, "into": into, "user_model": taught_to}

    def forget(self, design):
        """The session design ``design`` is not a sock (a hand, a towel): its socks, sightings and
        row go in one transaction, and the camera side labels it ``Blank`` from now on (this
        process only: :mod:`sortcore.classifier.newdesigns`). Returns ``{"design", "socks"}``;
        a named design stays in the user model it was taught to."""
        if self.enabled and design in self.labeller.designs.taught:
            raise BadFrame("%r is a taught design: only a design found in the session can be said not to be a sock"
                           % design)
        self._design(design)
        socks = self.pipeline.forget(design, lambda session, head, cameras: self.rows.forget(
            session, design, head, cameras))
        self.labeller.designs.forget(design)
        self.pipeline.untaught.discard(design)
        if self.on_design is not None:
            self.on_design({"name": None, "picture": None, "old": design})
        return {"design": design, "socks": socks}

    def split(self, design, sock):
        """Sock ``sock`` (its sighting id) is not of the session design ``design`` (a false
        pair): its views, sighting and one count are the next free ``New k``, in one transaction.
        Returns ``{"design", "sock", "into"}``."""
        from ..classifier.design import to_row
        self._design(design)
        labeller = self.labeller.designs

        def save(kept, moved):
            self.pipeline.split(design, moved.name, lambda session, head, cameras: self.rows.split(
                session, sock, design, [to_row(kept), to_row(moved)], head, cameras))
        try:
            moved = labeller.split(design, sock, save)
        except (ValueError, ConfigError) as exc:
            raise BadFrame(str(exc))
        self.pipeline.untaught.add(moved.name)
        self._store(self.labeller.take_changed())  # their pictures made (JPEG), stored and shown
        return {"design": design, "sock": sock, "into": moved.name}

    def _relabel(self, old, new):
        from ..classifier.design import to_row
        labeller = self.labeller.designs
        views = labeller.designs[old].views
        self.pipeline.relabel(old, new, lambda session, head, cameras: self.rows.relabel(
            session, old, new, head, [to_row(d) for d in self._after_rename(old, new)], cameras))
        labeller.rename(old, new)
        labeller.take_changed()  # stored by the relabel
        self.pipeline.untaught.discard(old)
        if new in labeller.designs:
            self.pipeline.untaught.add(new)
            self._tell(labeller.designs[new], old)
        return None if NEW_DESIGN.match(new) else self._teach(new, views)

    def _after_rename(self, old, new):
        """The design rows as they will be once ``old`` is ``new`` (without changing them)."""
        designs = self.labeller.designs.designs
        design = designs[old]
        if new in designs:
            into = designs[new]
            merged = into.copy(new)
            merged.picture = into.picture or design.picture
            merged.add(design.views, design.palettes, design.owners, design.socks)
            return [merged]
        if new in self.labeller.designs.taught:
            return []
        return [design.copy(new)]

    def _teach(self, name, views):
        if not self.user_model or not self.base_model:
            return None
        from ..classifier import usermodel
        try:
            return usermodel.teach(self.user_model, self.base_model, name, views)
        except (SortcoreError, OSError) as exc:  # named in the session all the same
            log.warning("%s not taught to the user model %s: %s", name, self.user_model, exc)
            return None
