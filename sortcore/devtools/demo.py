"""``sortcore demo``: the whole thing on one machine with nothing set up.

Starts mosquitto on a free loopback port, the service in a thread, a viewer
subscribed to ``sockpairs`` (as ``mosquitto_sub`` would be) and a camera
stand-in that plays a frame log onto ``sockfound`` in real time (``speed``
times faster). Event times in the played frames keep the log's spacing, so
the answer does not depend on the speed.
"""

import json
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from .broker import LocalBroker
from ..core.engine import EngineConfig
from ..core.errors import BadFrame, DemoError
from ..adapters.mqtt import Connection, ConnectOptions, Message
from ..core.messages import TOPIC_FRAMES, TOPIC_PAIRS, TOPIC_STATE, odd_of, rows_as_dicts
from ..runtime.core import CoreOptions
from ..runtime.service import ServeOptions, Service
from ..store.database import Store
from ..offline.logfiles import split_stamped

@dataclass(frozen=True)
class DemoOptions:
    """``log``: a recorded ``%U %p`` log (None: simulate a session); ``db``: None is a temp file."""

    log: Optional[str] = None
    speed: float = 8.0
    socks: int = 20
    seed: Optional[int] = None
    db: Optional[str] = None
    timeout: float = 120.0

    def __post_init__(self):
        if not self.speed > 0:
            raise DemoError("speed must be positive")


def read_log(path: str) -> List[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\r\n") for line in f if line.strip()]


def schedule(lines: List[str], end: float) -> List[Tuple[float, bytes]]:
    """``(offset seconds, payload)`` for each ``"<unix seconds> <payload>"`` line.

    The payload gets a ``ts`` that keeps the log's spacing and ends at ``end``
    (times in the past, so the service accepts them however fast we play).
    """
    parsed = []
    for line in lines:
        try:
            parsed.append(split_stamped(line))
        except BadFrame:
            parsed.append((None, line))  # played as it is; the service dead-letters it
    stamps = [t for t, _ in parsed if t is not None]
    if not stamps:
        raise DemoError("the log has no '<unix seconds> <payload>' lines")
    first, last = min(stamps), max(stamps)
    out, previous = [], 0.0
    for t, payload in parsed:
        offset = previous if t is None else t - first
        previous = offset
        try:
            obj = json.loads(payload)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and t is not None and "ts" not in obj:
            obj["ts"] = round(end - (last - t), 6)
            payload = json.dumps(obj)
        out.append((offset, payload.encode("utf-8")))
    return out


class DemoResult(dict):
    """The ``demo --json`` object."""


def run_demo(options: DemoOptions = DemoOptions(), config: EngineConfig = EngineConfig(),
             on_sock: Optional[Callable[[dict, list], None]] = None, listeners=()) -> DemoResult:
    """Run the demo; call ``on_sock(message, table)`` for each ``sockpairs`` message.

    Everything it makes goes into a temporary folder removed at the end, the store too
    unless ``options.db`` names one. ``listeners`` see the service's results (the page).
    """
    truth = None
    if options.log:
        lines = read_log(options.log)
    else:
        from ..offline.simulate import simulate

        lines, truth = simulate(socks=options.socks, seed=options.seed)
    with tempfile.TemporaryDirectory(prefix="sortcore-demo-") as workdir:  # broker files, temp store
        return _run(options, config, on_sock, lines, truth, workdir, listeners)


def _run(options, config, on_sock, lines, truth, workdir, listeners):
    db = options.db or os.path.join(workdir, "demo.db")
    broker = LocalBroker(workdir).start()
    store = Store(db)
    service = Service(store, config, ServeOptions(
        broker=broker.url, connect=ConnectOptions(client_id="sortcore-demo", clean_session=False),
        core=CoreOptions(status_interval=1.0)))
    service.core.listeners.extend(listeners)
    for listener in listeners:
        listener.bind_reset(service.requests.ask)
    thread = threading.Thread(target=service.run, name="sortcore-serve", daemon=True)
    viewer = camera = None
    try:
        thread.start()
        viewer = Connection(broker.url, ConnectOptions(subscriptions=((TOPIC_PAIRS, 1), (TOPIC_STATE, 1)))).start()
        camera = Connection(broker.url).start()
        # ready: the service's subscriptions went out before its online status
        if not (viewer.wait_connected() and camera.wait_connected() and service.ready.wait(10)):
            raise DemoError("could not connect to the demo broker at %s" % broker.url)
        plan = schedule(lines, time.time())
        messages, table = [], []
        started = time.monotonic()
        for offset, payload in plan:
            delay = started + offset / options.speed - time.monotonic()
            if delay > 0:
                _take_results(viewer, messages, table, on_sock, delay)
            camera.publish(TOPIC_FRAMES, payload, qos=1)
        if not service.wait_until(lambda s: s.counters.received + s.counters.duplicates >= len(plan),
                                  options.timeout):
            raise DemoError("the service did not take all frames within %.0f s" % options.timeout)
        # a sock waiting for its camera's watermark is published once the camera is silent
        if not service.wait_until(lambda s: s.pipeline.waiting == 0, options.timeout):
            raise DemoError("socks still waiting %.0f s after the last frame" % options.timeout)
        deadline = time.monotonic() + options.timeout
        while len(messages) < service.counters.socks and time.monotonic() < deadline:
            _take_results(viewer, messages, table, on_sock, deadline - time.monotonic(), until=1)
        rows = rows_as_dicts(service.pipeline.table())
        result = DemoResult(
            broker=broker.url, db=os.path.abspath(db) if options.db else None, session=service.pipeline.session,
            frames=service.counters.frames, dead_letters=service.counters.dead_letters,
            messages=len(messages), socks=rows, odd=odd_of(rows),
            seconds=round(time.monotonic() - started, 1),
        )
        if truth is not None:
            result["truth"] = truth["sighting"]
            result["correct"] = {r["image"]: r["number_socks_seen"] for r in rows} == truth["sighting"]
        return result
    finally:
        service.stop()
        thread.join(10)
        for conn in (viewer, camera):
            if conn is not None:
                conn.close()
        store.close()
        broker.stop()


def _take_results(viewer, messages, table, on_sock, timeout, until=None):
    """Move viewer messages into ``messages`` for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    got = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            event = viewer.events.get(timeout=remaining)
        except queue.Empty:
            return
        if not isinstance(event, Message):
            continue
        obj = json.loads(event.payload)
        if event.topic == TOPIC_STATE:
            table[:] = obj.get("socks", [])
            continue
        messages.append(obj)
        rows = {r["image"]: r for r in table}
        rows[obj["image"]] = {k: obj[k] for k in ("image", "number_socks_seen", "pair_seen", "pairs")}
        table[:] = [rows[k] for k in sorted(rows)]
        if on_sock:
            on_sock(obj, list(table))
        got += 1
        if until and got >= until:
            return
