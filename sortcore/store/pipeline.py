"""Engine + store for one sorting session: the step replay, the service and the
lambda share. Frames go in; confirmed socks come out, stored with their outbox
rows; :meth:`Pipeline.commit` writes a batch atomically with the engine state
(the cameras that changed since the last commit). A frame the engine finds late
(stamped before its camera's watermark, see docs/time.md) or refuses is kept as
a dead letter, never dropped silently.
"""

import logging
import time
from typing import List, Optional

from ..core.engine import Engine, EngineConfig, FrameLate, FrameRefused, SightingClosed, SockConfirmed
from ..core.frames import DeadLetter
from ..core.messages import TOPIC_PAIRS, dumps, sock_message

log = logging.getLogger(__name__)


def _same_config(stored: dict, config: EngineConfig) -> bool:
    """Whether a stored session counts as ``config`` does (time allowances and bounds may differ)."""
    try:
        return EngineConfig.from_dict(stored).same_session(config)
    except (TypeError, ValueError):  # written by another version
        return False


class Pipeline:
    """One open sorting session in a store, fed frame by frame.

    ``outbox_topic``: queue an outbox row on this topic for each confirmed sock
    (None: nothing is published, as in replay).
    """

    def __init__(self, store, config: EngineConfig = EngineConfig(), source: str = "live",
                 clock=time.time, resume: bool = True, outbox_topic: Optional[str] = TOPIC_PAIRS):
        self.store = store
        self.outbox_topic = outbox_topic
        self.config = config
        self.source = source
        self.clock = clock
        self.replay_position = None  # type: Optional[dict]
        self.recent_messages = []  # type: list
        self.untaught = set()  # type: set  # designs found in the session (rows "taught": false)
        self._pending = {"confirmed": [], "closed": [], "dead_letters": [], "outbox": []}
        row = store.open_session(source) if resume else None
        self.engine = None
        if row and _same_config(row["config"], config):
            self.session = row["id"]
            self.replay_position = row["replay_position"]
            self.recent_messages = row["recent_messages"] or []
            if row["engine_state"]:
                self.engine = Engine(config, store.engine_state(self.session))
            else:  # started by 'sortcore reset', not fed yet
                self.engine = self._new_engine()
            log.info("resuming session %d of %s", self.session, source)
        else:
            self._start()

    def _new_engine(self) -> Engine:
        """A fresh engine whose sighting ids continue after every stored one."""
        engine = Engine(self.config)
        engine.next_sighting = self.store.next_sighting_id()
        if self.engine is not None:
            engine.next_sighting = max(engine.next_sighting, self.engine.next_sighting)
        return engine

    def _start(self):
        self.session = self.store.new_session(self.config.mode, self.config.to_dict(), self.source)
        self.engine = self._new_engine()
        self.replay_position, self.recent_messages, self.untaught = None, [], set()
        head, cameras = self.engine.changes()
        self.store.commit(self.session, engine_state=head, engine_cameras=cameras)

    # --- feeding -----------------------------------------------------------

    def feed(self, frame, received_at: Optional[float] = None) -> list:
        """Process one frame; a frame without ``ts`` gets the clock's time. ``received_at``:
        when it arrived (serve): see :meth:`sortcore.core.engine.Engine.feed`."""
        if frame.ts is None:
            frame = frame._replace(ts=self.clock())
        if received_at is None:
            return self.feed_many((frame,))
        events = self.engine.feed(frame, received_at)
        if events:
            self._collect(events)
        return events

    def feed_many(self, frames) -> list:
        """Process frames in order, each with its ``ts`` set; return their events."""
        events = self.engine.feed_many(frames)
        if events:
            self._collect(events)
        return events

    def reject(self, dead_letter):
        """Keep input that was not a frame as a dead letter (written at commit)."""
        self._pending["dead_letters"].append(dead_letter)

    def tick(self, now: Optional[float] = None) -> list:
        """Report socks idle at ``now`` (default: the injected clock) for display.

        It closes nothing for good: only frames move the cameras' clocks.
        """
        events = self.engine.tick(self.clock() if now is None else now)
        self._collect(events)
        return events

    def idle(self, now: float) -> list:
        """At receive time ``now``: publish the waiting socks of cameras silent for
        ``silence`` s and evict those idle for ``camera_idle`` s (docs/time.md)."""
        events = self.engine.release(now) + self.engine.evict_idle(now)
        self._collect(events)
        return events

    def _collect(self, events):
        pending = self._pending
        for event in events:
            if isinstance(event, SockConfirmed):
                pending["confirmed"].append(event)
                if self.outbox_topic is not None:
                    pending["outbox"].append(
                        (event.sighting, self.outbox_topic, dumps(sock_message(self.session, event, self.untaught)))
                    )
            elif isinstance(event, SightingClosed):
                pending["closed"].append(event)
            elif isinstance(event, FrameLate):
                pending["dead_letters"].append(_late_letter(event))
            elif isinstance(event, FrameRefused):
                pending["dead_letters"].append(_dead_letter(event.frame, "refused: " + event.reason))

    @property
    def dirty(self) -> bool:
        return any(self._pending.values())

    def commit(self, replay_position: Optional[dict] = None, recent_messages: Optional[list] = None) -> list:
        """Write what was fed since the last commit, with the engine state (and where a
        replay resumes, or the messages serve took); return the :class:`SockConfirmed`
        events now stored."""
        confirmed = self._pending["confirmed"]
        head, cameras = self.engine.changes()
        try:
            self.store.commit(
                self.session, engine_state=head, engine_cameras=cameras, replay_position=replay_position,
                recent_messages=recent_messages, frames=self.engine.frames, **self._pending
            )
        except Exception:
            self.engine.touch(cameras)  # the batch is retried: its cameras are written then
            raise
        if replay_position is not None:
            self.replay_position = replay_position
        if recent_messages is not None:
            self.recent_messages = recent_messages
        self._pending = {key: [] for key in self._pending}
        return confirmed

    # --- session -----------------------------------------------------------

    def finish(self) -> list:
        """Close every open run, commit, and end the session (end of a log)."""
        events = self.close_runs()
        self.commit()
        self.store.end_session(self.session)
        return events

    def close_runs(self) -> list:
        """Close every open run (waiting socks are published); written at the next commit."""
        events = self.engine.close_all()
        self._collect(events)
        return events

    def reset(self) -> int:
        """Close this session's runs (its waiting socks are published in it), commit,
        and start a new session; return its id."""
        self.close_runs()
        self.commit()
        self._start()
        log.info("new sorting session %d", self.session)
        return self.session

    def relabel(self, old: str, new: str, save):
        """Count ``old``'s socks as ``new`` from now on (a design found in the session, named
        or merged): commit what was fed, relabel the engine, and ``save(session, engine_state, engine_cameras)``
        writes the sightings, designs and state in one transaction (the engine is put back
        when it fails)."""
        self._change(lambda engine: engine.relabel(old, new), save)

    def forget(self, label: str, save) -> int:
        """Count ``label`` no more (a thing the person says is not a sock), as :meth:`relabel`
        does; returns how many socks the engine dropped (:meth:`sortcore.core.engine.Engine.forget`)."""
        return self._change(lambda engine: engine.forget(label), save)

    def split(self, old: str, new: str, save):
        """Count one of ``old``'s socks as ``new`` (a false pair told apart), as :meth:`relabel`
        does (:meth:`sortcore.core.engine.Engine.move`)."""
        self._change(lambda engine: engine.move(old, new), save)

    def _change(self, change, save):
        self.commit()
        before = self.engine.snapshot()
        done = change(self.engine)
        head, cameras = self.engine.changes()
        try:
            save(self.session, head, cameras)
        except BaseException:
            self.engine = Engine(self.config, before)
            raise
        return done

    def table(self) -> List:
        return self.engine.table()

    @property
    def waiting(self) -> int:
        """Socks confirmed but not yet published (docs/time.md)."""
        return self.engine.pending

    @property
    def unknown(self) -> int:
        """Unrecognised socks (``Unknown`` runs that confirmed) in this session."""
        return self.engine.unknown


def _late_letter(event: FrameLate) -> DeadLetter:
    frame = event.frame
    return _dead_letter(frame, "late: 'ts' %.3f is %.3f s before camera %r's watermark %.3f (its clock less"
                        " the lateness allowance); its run may be closed" % (
                            frame.ts, event.clock - frame.ts, frame.camera, event.clock))


def _dead_letter(frame, reason: str) -> DeadLetter:
    raw = dumps({"image": frame.label, "probability": frame.probability, "ts": frame.ts,
                 "camera": frame.camera, "frame": frame.frame})
    return DeadLetter("engine", None, reason, raw)
