"""A design found in the session (:class:`Design`) and its row in the store. numpy only.

Its views (unit embeddings) and palettes, its picture, and per view the sock it came from (the
engine's sighting id), with each sock's own picture: so a sock the person says is not of the
design (a false pair) can leave it (:meth:`Design.parted`). The store keeps it as bytes
(:func:`to_row`, :func:`from_row`; :class:`sortcore.store.designstore.DesignStore`).
Python 3.7 compatible.
"""

import collections

import numpy as np

from . import palette as colours

#: A design keeps at most this many views (frames); more are thinned evenly.
MAX_VIEWS = 48


class Design(object):
    """A session design: its name, views (unit embeddings), palettes and picture; ``owners``: per
    view, the engine's sighting id of the sock it came from (0: not known, stored before socks
    were told apart); ``socks``: sighting id -> that sock's picture, for the socks that own a view."""

    def __init__(self, name, views, palettes, picture=None, owners=0, socks=None):
        self.name = name
        self.views = np.asarray(views, np.float32).reshape(len(views), -1)
        self.palettes = np.asarray(palettes, np.float32).reshape(len(self.views), colours.BINS)
        self.picture = picture
        self.owners = _owners(len(self.views), owners)
        self.socks = collections.OrderedDict(socks or ())

    def add(self, views, palettes, owners=0, socks=None):
        """Views of a sock (``owners`` its sighting id) or of another design (``owners`` and
        ``socks`` its own); more than :data:`MAX_VIEWS` are thinned evenly, and a sock left
        without a view loses its picture here."""
        owners = _owners(len(views), owners)
        self.views = np.vstack([self.views, np.asarray(views, np.float32)])
        self.palettes = np.vstack([self.palettes, np.asarray(palettes, np.float32)])
        self.owners = np.concatenate([self.owners, owners])
        self.socks.update(socks or ())
        if len(self.views) > MAX_VIEWS:
            keep = np.unique(np.linspace(0, len(self.views) - 1, MAX_VIEWS).round().astype(int))
            self.views, self.palettes, self.owners = self.views[keep], self.palettes[keep], self.owners[keep]
            kept = set(self.owners.tolist())
            for sighting in [s for s in self.socks if s not in kept]:
                del self.socks[sighting]

    def copy(self, name):
        """This design under another name (its arrays shared, its socks not)."""
        return Design(name, self.views, self.palettes, self.picture, self.owners, self.socks)

    def parted(self, sighting, name):
        """``(kept, moved)``: this design without the views of sock ``sighting``, and a design
        ``name`` of them (with the sock's picture); ValueError with the reason when it cannot."""
        mine = self.owners == sighting
        if not mine.any():
            raise ValueError("no view of sock %d is kept in %s (seen before socks were told apart, or"
                             " thinned out): it cannot be told apart" % (sighting, self.name))
        if mine.all():
            raise ValueError("sock %d is the only sock of %s: nothing to tell apart" % (sighting, self.name))
        rest = [s for s in self.socks.items() if s[0] != sighting]
        kept = Design(self.name, self.views[~mine], self.palettes[~mine], rest[0][1] if rest else self.picture,
                      self.owners[~mine], rest)
        picture = self.socks.get(sighting)
        moved = Design(name, self.views[mine], self.palettes[mine], picture, sighting,
                       {sighting: picture} if picture is not None else None)
        return kept, moved


def _owners(count, owners):
    """``count`` sighting ids: ``owners`` as an array, or one id (0: unknown) for every view."""
    return np.zeros(count, np.int64) + np.asarray(owners, np.int64)


def to_row(design):
    """A design as the store keeps it (:class:`sortcore.store.designstore.DesignStore`): float16
    bytes, the owners as int64 bytes, ``socks`` [(sighting id, JPEG)] (pictures made)."""
    return {"name": design.name, "count": len(design.views), "dim": design.views.shape[1],
            "views": design.views.astype(np.float16).tobytes(),
            "palettes": design.palettes.astype(np.float16).tobytes(),
            "picture": design.picture if isinstance(design.picture, bytes) else None,
            "owners": design.owners.astype("<i8").tobytes(),
            "socks": [(int(s), p) for s, p in design.socks.items() if isinstance(p, bytes)]}


def from_row(row):
    """The :class:`Design` of a stored row (owners 0 for a row stored before they were kept)."""
    count, dim = int(row["count"]), int(row["dim"])
    views = np.frombuffer(bytes(row["views"]), np.float16).reshape(count, dim).astype(np.float32)
    palettes = np.frombuffer(bytes(row["palettes"]), np.float16).reshape(count, colours.BINS)
    picture = bytes(row["picture"]) if row.get("picture") is not None else None
    owners = np.frombuffer(bytes(row["owners"]), "<i8") if row.get("owners") is not None else 0
    return Design(row["name"], views, palettes.astype(np.float32), picture, owners, row.get("socks"))
