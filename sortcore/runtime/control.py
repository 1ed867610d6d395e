"""Control commands, the same for every runtime: ``{"cmd": "reset"}``, ``{"cmd": "status"}``, and
where the runtime finds new designs (``run``, the lambda) ``{"cmd": "name", "design": "New 2",
"name": "Blue stripes"}``, ``{"cmd": "merge", "design": "New 3", "into": "New 1"}``,
``{"cmd": "forget", "design": "New 4"}`` (not a sock) and ``{"cmd": "split", "design": "New 3",
"sock": 17}`` (sock 17, a sighting id, is not of New 3: a false pair).

A reset starts a new sorting session (the next laundry load), with two guards:

- a reset of a session that has counted no frame yet keeps that session (a
  double click, or a flood of resets, creates no empty sessions);
- resets closer together than ``min_interval`` seconds are refused.

A retained control message is refused: it would reset again at every restart
(MQTT 5 subscriptions keep the retain flag as published, so it is seen).
Anything else is a dead letter with its reason. Python 3.7 compatible.
"""

import json
import logging
import threading
import time

from ..core.errors import BadFrame, SortcoreError, StoreError
from ..core.frames import DeadLetter, raw_text
from ..core.messages import DESIGN_COMMANDS, command_args

log = logging.getLogger(__name__)

COMMANDS = ("reset", "status") + tuple(DESIGN_COMMANDS)


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs):
    """A JSON object, refused when a key repeats: ``{"cmd":"noop","cmd":"reset"}`` must not
    reset because the last key happens to win."""
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _Duplicate(key)
        obj[key] = value
    return obj


def parse_control(payload: bytes) -> tuple:
    """``(command, its arguments)`` of a control payload; :class:`BadFrame` with the reason."""
    try:
        obj = json.loads(payload.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _Duplicate as exc:
        raise BadFrame("control message repeats the key %r" % (str(exc)[:40],))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadFrame("control message is not JSON")
    cmd = obj.get("cmd") if isinstance(obj, dict) else None
    if cmd not in COMMANDS:
        raise BadFrame("unknown control command %r" % (str(cmd)[:40],))
    if cmd not in DESIGN_COMMANDS:
        return cmd, ()
    try:
        return cmd, command_args(cmd, obj)
    except ValueError as exc:
        raise BadFrame(str(exc))


class Control(object):
    """Applies control commands to a :class:`~sortcore.runtime.core.Core`."""

    def __init__(self, core, min_interval: float = 2.0, clock=time.monotonic, designs=None):
        self.core = core
        self.min_interval = min_interval
        self.clock = clock
        self.designs = designs  # a runtime.designs.SessionDesigns, where new designs are found
        self.reset_done = False  # the last command started a new session
        self._last_reset = None

    def handle(self, payload: bytes, retained: bool = False, where: str = "control"):
        """Apply one control message; a bad one becomes a dead letter. Returns the command or None."""
        self.reset_done = False
        try:
            if retained:
                raise BadFrame("retained control message ignored")
            cmd, args = parse_control(payload)
            getattr(self, cmd)(*args)
            return cmd
        except BadFrame as exc:
            self.core.reject(DeadLetter(where, None, exc.reason, raw_text(payload)))
            return None

    def reset(self) -> int:
        """Start a new session unless the current one is empty; BadFrame when too soon."""
        now = self.clock()
        if self._last_reset is not None and now - self._last_reset < self.min_interval:
            raise BadFrame("reset refused: the last one was %.1f s ago (at most one every %g s)"
                           % (now - self._last_reset, self.min_interval))
        self._last_reset = now
        pipeline = self.core.pipeline
        if pipeline.engine.frames == 0 and not pipeline.dirty:
            log.info("reset: session %d has no frames yet; kept", pipeline.session)
            self.core.status_soon()
            return pipeline.session
        try:
            session = self.core.reset()
        except StoreError as exc:  # nothing changed: the session goes on
            raise BadFrame("reset refused: %s" % exc)
        self.reset_done = True
        return session

    def status(self) -> dict:
        """Publish the status now; return it."""
        self.core.status_soon()
        return self.core.status()

    def name(self, design: str, name: str) -> dict:
        """Name a design found in the session (BadFrame with the reason when refused)."""
        return self._designs("name", design, name)

    def merge(self, design: str, into: str) -> dict:
        """Count a design found in the session as another one (BadFrame when refused)."""
        return self._designs("merge", design, into)

    def forget(self, design: str) -> dict:
        """A design found in the session is not a sock: it counts no more (BadFrame when refused)."""
        return self._designs("forget", design)

    def split(self, design: str, sock: int) -> dict:
        """One sock of a design found in the session is not of it: it is a new design (BadFrame when refused)."""
        return self._designs("split", design, sock)

    def _designs(self, action, *args):
        if self.designs is None:
            raise BadFrame("%s refused: this runtime finds no new designs (serve counts the labels"
                           " the camera sends; name them on the camera's page)" % action)
        try:
            done = getattr(self.designs, action)(*args)
        except StoreError as exc:
            raise BadFrame("%s refused: %s" % (action, exc))
        log.info("%s: %s", action, done)
        self.core.state_soon()
        return done


class ControlRequests(object):
    """Control commands asked for from another thread (the page's buttons, the lambda's
    handler), done in the runtime's thread: the one way in besides the control topic.

    :meth:`ask` blocks until the runtime called :meth:`serve` and returns the command's result
    (a reset: the session id), or raises :class:`SortcoreError` with the reason it was
    refused. ``wake`` tells an idle runtime to look (serve puts a marker on its event queue).
    """

    def __init__(self, wake=None, timeout: float = 5.0):
        self.wake = wake
        self.timeout = timeout
        self._lock = threading.Lock()
        self._waiting = []  # type: list
        self._posted = []  # type: list  # (payload, where): control messages, handled as the topic's

    def ask(self, action: str = "reset", *args):
        """Do ``action`` (a :data:`COMMANDS` name) with ``args`` in the runtime's thread; its result."""
        request = {"done": threading.Event(), "action": action, "args": args}
        with self._lock:
            self._waiting.append(request)
        if self.wake is not None:
            self.wake()
        if not request["done"].wait(self.timeout):
            raise SortcoreError("the runtime did not take the %s within %.0f s" % (action, self.timeout))
        if "error" in request:
            raise SortcoreError(request["error"])
        return request["result"]

    def post(self, payload: bytes, where: str):
        """Hand a control message to the runtime's thread without waiting: it is handled as one
        from the control topic (a refusal is a dead letter)."""
        with self._lock:
            self._posted.append((payload, where))
        if self.wake is not None:
            self.wake()

    def serve(self, control: Control):
        """Do the waiting requests (call from the thread that owns the pipeline)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
            posted, self._posted = self._posted, []
        for payload, where in posted:
            control.handle(payload, where=where)
        for request in waiting:
            try:
                request["result"] = getattr(control, request["action"])(*request["args"])
            except BadFrame as exc:
                request["error"] = exc.reason
            request["done"].set()


def answer(loop, event) -> dict:
    """The Greengrass lambda's answer to a message routed to it (``sockpairs/control``, decoded;
    an event without ``cmd`` asks for the status): checked here as every control message, then
    handed to ``loop``'s thread, which handles it as one from the control topic. The answer
    carries the loop's status as it is now."""
    if isinstance(event, dict) and "cmd" not in event:
        event = dict(event, cmd="status")
    try:
        payload = json.dumps(event).encode("utf-8")
        cmd = parse_control(payload)[0]
    except (TypeError, ValueError):
        return {"ok": False, "error": "control message is not JSON"}
    except BadFrame as exc:
        return {"ok": False, "error": exc.reason}
    loop.requests.post(payload, "lambda")
    return {"ok": True, "cmd": cmd, "status": loop.status()}
