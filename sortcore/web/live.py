"""What the status page shows, kept up to date by the runtime (no web library here).

The runtime calls :meth:`LiveView.set_state`, :meth:`LiveView.sock`,
:meth:`LiveView.set_status` and :meth:`LiveView.frame` from its own threads (paho's
callback thread, the service loop, the device loop); the HTTP threads read
:meth:`LiveView.snapshot` and wait for changes with :meth:`LiveView.wait_change`
and :meth:`LiveView.wait_frame`. Every change bumps a version number; a waiter
that missed several changes gets the latest snapshot once (latest state wins,
nothing queues up behind a slow phone).
"""

import threading
import time
from collections import OrderedDict, deque
from typing import Callable, List, Optional, Tuple

from ..core.errors import SortcoreError
from ..core.events import UNKNOWN
from ..core.messages import odd_of, rows_as_dicts

MAX_THUMBS = 64  # designs with a picture kept; the least recently seen goes first
MAX_THUMB_BYTES = 32 * 1024  # a 96 px JPEG is 2-4 KB: anything bigger is not a thumbnail
SIGHTING_KEYS = ("session", "sighting", "image", "camera", "first_seen", "confirmed_at",
                 "number_socks_seen", "pair_seen", "pairs", "taught")


def _rows(rows) -> List[dict]:
    keys = ("image", "number_socks_seen", "pair_seen", "pairs")
    return sorted((dict({k: row.get(k) for k in keys}, **({"taught": False} if row.get("taught") is False else {}))
                   for row in rows_as_dicts(rows or ())), key=lambda row: str(row["image"]))


class LiveView:
    """The latest pairs table, status, sightings and camera frame of one process.

    ``reset``: a callable that starts a new sorting session and returns its id
    (or raises SortcoreError); None when this process cannot reset.
    ``history``: how many confirmed socks the "last sightings" list keeps.
    """

    def __init__(self, reset: Optional[Callable[[], int]] = None, clock=time.time, history: int = 20):
        self._reset = reset
        self.clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._framed = threading.Condition(self._lock)
        self._version = 0
        self._state = {"session": None, "started_at": None, "rows": [], "odd": [], "unknown": 0,
                       "waiting": 0, "updated_at": None}
        self._status = None  # type: Optional[dict]
        self._sightings = deque(maxlen=history)
        self._frame = None  # type: Optional[bytes]
        self._frame_seq = 0
        self._watchers = 0
        self._thumbs = OrderedDict()  # type: OrderedDict  # design -> (seq, jpeg), bounded
        self._thumb_seq = 0
        # design found in the session -> (seq, jpeg, [(sighting id, jpeg)] of its socks), bounded
        self._pictures = OrderedDict()  # type: OrderedDict
        self._designs = None  # type: Optional[Callable]  # designs(action, *args) in the runtime

    def bind_reset(self, reset: Optional[Callable[[], int]]):
        """Set the reset callable once the runtime exists (it runs in an HTTP thread)."""
        self._reset = reset

    @property
    def can_reset(self) -> bool:
        return self._reset is not None

    def bind_designs(self, designs: Optional[Callable]):
        """``designs(action, *args)``: names (``"name", design, name``), merges (``"merge",
        design, into``), forgets (``"forget", design``) or splits a sock from (``"split", design,
        sock``) a design found in the session, in the runtime's thread (None: cannot)."""
        self._designs = designs

    @property
    def can_name(self) -> bool:
        return self._designs is not None

    def name(self, design: str, name: str) -> dict:
        """Name a design found in the session (SortcoreError when refused)."""
        return self._design_action("name", design, name)

    def merge(self, design: str, into: str) -> dict:
        """Count a design found in the session as another (SortcoreError when refused)."""
        return self._design_action("merge", design, into)

    def forget(self, design: str) -> dict:
        """A design found in the session is not a sock (SortcoreError when refused)."""
        return self._design_action("forget", design)

    def split(self, design: str, sock: int) -> dict:
        """One sock of a design found in the session is not of it (SortcoreError when refused)."""
        return self._design_action("split", design, sock)

    def _design_action(self, action, *args):
        if self._designs is None:
            raise SortcoreError("this process finds no new designs")
        return self._designs(action, *args)

    # --- fed by the runtime ------------------------------------------------

    def set_state(self, state: dict):
        """The retained ``sockpairs/state`` message (:func:`~sortcore.core.messages.state_message`).

        An ``Unknown`` row (a session counted before unrecognised socks were apart) is
        shown apart, as the ``unknown`` count, like ``sock()`` does.
        """
        rows = _rows(state.get("socks"))
        unknown = [row["number_socks_seen"] for row in rows if row["image"] == UNKNOWN]
        rows = [row for row in rows if row["image"] != UNKNOWN]  # shown apart, as "unrecognised"
        with self._lock:
            old = self._state
            session = state.get("session")
            started_at = state.get("started_at")
            if started_at is None and session == old["session"]:
                started_at = old["started_at"]
            if "unknown" in state or unknown:
                unknown = int(state.get("unknown", sum(unknown)))
            else:
                unknown = old["unknown"] if session == old["session"] else 0
            self._state = {
                "session": session, "started_at": started_at, "rows": rows,
                "odd": [image for image in state.get("odd", odd_of(rows)) if image != UNKNOWN],
                "unknown": unknown, "waiting": int(state.get("waiting") or 0),
                "updated_at": state.get("updated_at", self.clock()),
            }
            self._bump()

    def sock(self, message: dict):
        """One ``sockpairs`` message: update its row at once (the state follows later)."""
        entry = {key: message.get(key) for key in SIGHTING_KEYS if key != "taught" or key in message}
        with self._lock:
            if any(s["session"] == entry["session"] and s["sighting"] == entry["sighting"]
                   for s in self._sightings):
                return  # at-least-once delivery: a redelivered sock counts once
            self._sightings.appendleft(entry)
            self._count(entry)
            self._bump()

    def _count(self, entry: dict):
        state = self._state
        session = entry["session"]
        if state["session"] is not None and session is not None and session < state["session"]:
            return  # a late sock of an earlier session: listed, not counted
        if session != state["session"]:
            state.update(session=session, started_at=None, rows=[], odd=[], unknown=0, waiting=0)
        state["updated_at"] = self.clock()
        if entry["image"] == UNKNOWN:
            seen = entry["number_socks_seen"]
            state["unknown"] = seen if isinstance(seen, int) else state["unknown"] + 1
            return
        row = {k: entry[k] for k in ("image", "number_socks_seen", "pair_seen", "pairs")}
        if entry.get("taught") is False:
            row["taught"] = False
        rows = [r for r in state["rows"] if r["image"] != entry["image"]] + [row]
        state["rows"] = _rows(rows)
        state["odd"] = odd_of(state["rows"])

    def set_status(self, status: dict):
        """The ``sockpairs/status`` message, shown as it is. Once it says ``offline`` (the
        runtime stopped) the camera frame is dropped and open camera views end: a stopped
        service never shows as a frozen last frame."""
        with self._lock:
            self._status = dict(status)
            if status.get("status") == "offline" and self._frame is not None:
                self._frame = None
                self._frame_seq += 1
                self._framed.notify_all()
            self._bump()

    def service_state(self) -> Tuple[Optional[str], Optional[str]]:
        """``(status, reason)`` of the latest status message; ``(None, None)`` before the first."""
        with self._lock:
            status = self._status or {}
            return status.get("status"), status.get("reason")

    def frame(self, jpeg: bytes):
        """The latest annotated camera frame (JPEG bytes)."""
        with self._lock:
            first = self._frame is None
            self._frame = bytes(jpeg)
            self._frame_seq += 1
            self._framed.notify_all()
            if first:  # the page shows the camera from now on
                self._bump()

    def thumbnail(self, design: str, jpeg: bytes):
        """A small picture (JPEG) of the last frame classified as ``design``, for its row."""
        if len(jpeg) > MAX_THUMB_BYTES:
            return
        with self._lock:
            new = design not in self._thumbs
            self._thumb_seq += 1
            self._thumbs[design] = (self._thumb_seq, bytes(jpeg))
            self._thumbs.move_to_end(design)
            while len(self._thumbs) > MAX_THUMBS:
                self._thumbs.popitem(last=False)
            if new:  # its row gets a picture; later ones show at the row's next change
                self._bump()

    def design(self, message: dict):
        """A design found in the session: ``{"name", "picture", "old", "socks"}``, its picture (a
        crop of its clearest frame) shown instead of the camera's latest; ``old``: its former
        name; ``socks``: [(sighting id, JPEG)] of its socks. ``name`` None: ``old`` was forgotten
        (not a sock), its pictures go."""
        picture, name = message.get("picture"), message.get("name")
        if name is not None and (not picture or len(picture) > MAX_THUMB_BYTES):
            return
        with self._lock:
            self._pictures.pop(message.get("old"), None)
            if name is None:
                self._thumbs.pop(message.get("old"), None)
            else:
                self._thumb_seq += 1
                socks = [(int(s), bytes(p)) for s, p in message.get("socks") or () if p and len(p) <= MAX_THUMB_BYTES]
                self._pictures[name] = (self._thumb_seq, bytes(picture), socks)
                while len(self._pictures) > MAX_THUMBS:
                    self._pictures.popitem(last=False)
            self._bump()

    def thumb(self, design: str) -> Optional[bytes]:
        """The picture of ``design`` (a design found in the session: its own), or None."""
        with self._lock:
            entry = self._pictures.get(design) or self._thumbs.get(design)
            return entry[1] if entry else None

    def socks(self, design: str) -> List[dict]:
        """The socks of a design found in the session that have a picture: ``[{"sock", "picture"}]``."""
        with self._lock:
            entry = self._pictures.get(design)
            return [{"sock": sock, "picture": True} for sock, _ in (entry[2] if entry else ())]

    def sock_picture(self, sock: int) -> Optional[bytes]:
        """The picture of sock ``sock`` (its sighting id) of a design found in the session, or None."""
        with self._lock:
            return next((jpeg for entry in self._pictures.values() for s, jpeg in entry[2] if s == sock), None)

    @property
    def frame_wanted(self) -> bool:
        """True before the first frame and while a camera view is open: the runtime can skip
        encoding JPEGs nobody watches."""
        with self._lock:
            return self._frame is None or self._watchers > 0

    def watching(self, delta: int):
        """The server counts open camera views (+1 on open, -1 on close)."""
        with self._lock:
            self._watchers += delta

    def _bump(self):
        self._version += 1
        self._changed.notify_all()

    # --- read by the web server ----------------------------------------------

    def snapshot(self) -> dict:
        """Everything the page shows, as JSON-ready data; ``version`` grows on every change."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> dict:
        state = self._state
        out = dict(state, rows=[dict(r) for r in state["rows"]], odd=list(state["odd"]))
        out.update(status=dict(self._status) if self._status else None,
                   sightings=[dict(s) for s in self._sightings],
                   stream=self._frame is not None, version=self._version,
                   thumbs={r["image"]: (self._pictures.get(r["image"]) or self._thumbs[r["image"]])[0]
                           for r in state["rows"] if r["image"] in self._pictures or r["image"] in self._thumbs})
        return out

    def wait_change(self, after: int, timeout: float, stop: Optional[threading.Event] = None) -> Optional[dict]:
        """The snapshot once ``version`` > ``after``; None on timeout or once ``stop`` is set."""
        with self._lock:
            self._wait(self._changed, lambda: self._version > after, timeout, stop)
            return self._snapshot() if self._version > after else None

    def wait_frame(self, after: int, timeout: float,
                   stop: Optional[threading.Event] = None) -> Tuple[int, Optional[bytes]]:
        """``(seq, jpeg)`` of a frame newer than ``after``; ``(after, None)`` on timeout or ``stop``;
        ``(seq, None)`` with a newer ``seq`` once the camera stopped."""
        with self._lock:
            self._wait(self._framed, lambda: self._frame_seq > after, timeout, stop)
            if self._frame_seq > after:
                return self._frame_seq, self._frame
            return after, None

    @staticmethod
    def _wait(condition: threading.Condition, ready, timeout: float, stop: Optional[threading.Event]):
        """Wait (the lock held) until ``ready()``, ``timeout`` or ``stop``. ``stop`` is read under
        the lock, and :meth:`interrupt` notifies under it, so a stop set just before the wait
        cannot be missed."""
        deadline = time.monotonic() + timeout
        while not ready() and not (stop is not None and stop.is_set()):
            left = deadline - time.monotonic()
            if left <= 0 or not condition.wait(left):
                break

    def interrupt(self):
        """Wake every waiter now: the caller has set the ``stop`` event they wait with."""
        with self._lock:
            self._changed.notify_all()
            self._framed.notify_all()

    def reset(self) -> int:
        """Start a new sorting session through the runtime; show it empty at once."""
        if self._reset is None:
            raise SortcoreError("this process cannot start a new session")
        session = self._reset()
        with self._lock:
            self._state = {"session": session, "started_at": self.clock(), "rows": [], "odd": [],
                           "unknown": 0, "waiting": 0, "updated_at": self.clock()}
            self._bump()
        return session
