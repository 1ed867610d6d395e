"""The engine's cameras over receive time: clocks and bounds, silence, eviction. Pure, Python 3.7.

Receive times are data here (serve passes them in); nothing reads a clock.

A frame stamped ahead of the time it was received is either from a camera whose
clock runs ahead, or an outlier (a wrong clock for a moment, a hostile publisher).
Either way it is counted where its ``ts`` puts it, but it moves its camera's clock
at most to :func:`ceiling`: its receive time plus the camera's *lag*, the median
``ts - received_at`` of the camera's last :data:`LAGS` frames, never above zero.
So no number of frames stamped ahead moves the clock of a camera in step with us
past their receive time, and for a camera whose clock is behind, frames stamped
ahead move it past its own time only if they are most of its last 16 frames. Ten
frames stamped now + 290 s leave the frames that follow in bound (docs/time.md).

Holding a clock back is always safe: it makes no frame late and closes no run
early; it only delays what waits for the clock (a run's end, a waiting sock).

:class:`CameraLife` (a base of :class:`~sortcore.core.engine.Engine`): the waiting socks
of a camera silent for ``silence`` s are published (:meth:`CameraLife.release`); socks idle at a
time are reported (:meth:`CameraLife.tick`);
a camera idle for ``camera_idle`` s is evicted, keeping only its watermark; and at
most ``max_cameras`` cameras are live.
"""

from typing import Optional

from .events import FrameRefused
from .runs import INF, Camera, closed

FLOOR_MARGIN = 0.001  # s past an evicted run's end: a frame that could have joined it is late
FLOORS = 10  # watermarks of evicted cameras kept, per live camera allowed (max_cameras)

LAGS = 16  # frames a camera's lag is measured over (their median: LAGS // 2 outliers change nothing)


def ceiling(cam: Camera, ts: float, received_at: float) -> float:
    """The latest time a frame stamped ``ts`` and received at ``received_at`` may move
    ``cam``'s clock to (and record its lag)."""
    lags = cam.lags
    if lags is None:
        lags = cam.lags = [0.0] * LAGS  # a new camera is taken to be in step with us
    lags[cam.lag_at] = ts - received_at
    cam.lag_at = (cam.lag_at + 1) % LAGS
    lag = sorted(lags)[LAGS // 2 - 1]
    return received_at + lag if lag < 0.0 else received_at


def last_seen(cam: Camera) -> float:
    """When ``cam`` last sent: its receive time where given, else its clock (event time)."""
    return cam.latest[0] if cam.seen is None else cam.seen


class CameraLife(object):
    """The :class:`~sortcore.core.engine.Engine`'s cameras over receive time: cameras that fell
    silent (their waiting socks), idle ones evicted, at most ``max_cameras`` live."""

    def clock(self, camera: str) -> float:
        """``camera``'s event-time clock (-inf until it sent ``min_frames`` frames)."""
        cam = self._cameras.get(camera)
        return cam.latest[0] if cam else -INF

    def watermark(self, camera: str) -> float:
        """``camera``'s watermark: a frame stamped before it is late (an evicted camera's: kept)."""
        cam = self._cameras.get(camera)
        return cam.latest[0] - self._lateness if cam else self._floors.get(camera, -INF)

    def tick(self, now: float) -> list:
        """Report socks idle at ``now`` (e.g. wall-derived) for display; close nothing:
        a later frame still joins the run, which is reported again when it closes.
        Ghosts and waiting socks are only reported when final."""
        events = []
        for camera, cam in self._cameras.items():
            for label, runs in cam.designs.items():
                for run in runs:
                    if run.sighting and run.reported != run.frames and now > self._expiry_of(run):
                        run.reported = run.frames
                        events.append(closed(camera, label, run, "idle"))
        return events

    def release(self, now: float) -> list:
        """Publish the waiting socks of cameras silent (receive time) for ``silence`` s at
        ``now``: a frame still to come would have been delayed that long. Two socks of a
        design may then be published and open; a frame that would join them is refused."""
        events = []
        for camera, cam in self._cameras.items():
            if cam.seen is not None and cam.seen < now - self.config.silence:
                waiting = sorted(((run.at, label, run) for label, runs in cam.designs.items()
                                  for run in runs if run.sighting == 0), key=lambda item: item[0])
                for _, label, run in waiting:
                    self._publish(camera, label, run, events)
                if waiting:
                    self._touched.add(camera)
        return events

    def evict_idle(self, now: float) -> list:
        """Forget the cameras that sent nothing for ``camera_idle`` s at ``now`` (see :meth:`_evict`)."""
        events = []
        idle = now - self.config.camera_idle
        for camera in [c for c, cam in self._cameras.items() if cam.seen is not None and cam.seen < idle]:
            self._evict(camera, events)
        return events

    def _admit(self, camera: str, frame, events: list) -> Optional[Camera]:
        """A new camera's state; with ``max_cameras`` live, room is made by evicting the idle
        ones, and without any the frame is refused (live cameras are never disturbed)."""
        cameras, limit = self._cameras, self.config.max_cameras
        now = self._now if self._now > -INF else frame[2]
        if len(cameras) >= limit and (now < self._sweep_after or not self._make_room(events)):
            events.append(FrameRefused(frame, "%d cameras are live (max_cameras), none idle for %g s (camera_idle)"
                                       % (limit, self.config.camera_idle)))
            return None
        cam = cameras[camera] = Camera(self._min_frames, self._floors.pop(camera, -INF) + self._lateness)
        self._touched.add(camera)
        return cam

    def _make_room(self, events: list) -> bool:
        """Evict the idle cameras; without any, no look again before one can be idle."""
        cameras, idle = self._cameras, self.config.camera_idle
        now = self._now if self._now > -INF else max(cam.latest[0] for cam in cameras.values())
        if now == -INF:  # no receive times and no camera with a clock: none has a sock
            now = INF
        last = {camera: last_seen(cam) for camera, cam in cameras.items()}
        gone = [camera for camera, at in last.items() if at < now - idle]
        for camera in gone:
            self._evict(camera, events)
        if not gone:
            self._sweep_after = min(last.values()) + idle
        return bool(gone)

    def _evict(self, camera: str, events: list):
        """Close ``camera``'s runs as final (waiting socks published, reason ``idle``) and
        keep only its watermark, moved past them: when it comes back, a frame that could
        have joined them is late. At most :data:`FLOORS` x ``max_cameras`` watermarks are
        kept, the oldest forgotten first."""
        cam = self._cameras.pop(camera)
        floor = cam.latest[0] - self._lateness
        for label, runs in cam.designs.items():
            for run in runs:
                if run.sighting == 0:
                    self._publish(camera, label, run, events)
                events.append(closed(camera, label, run, "idle"))
                floor = max(floor, self._expiry_of(run) + FLOOR_MARGIN)
        touched = self._touched
        touched.add(camera)
        if floor > -INF:
            self._floors[camera] = floor
            if len(self._floors) > FLOORS * self.config.max_cameras:
                oldest = next(iter(self._floors))
                del self._floors[oldest]
                touched.add(oldest)

