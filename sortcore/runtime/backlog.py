"""Frames a link could not take yet, sent oldest first before any newer one (issue 25).

A camera publishes every frame on ``sockfound`` without waiting. While a link is down its
frames wait here, one queue per link, and when it is back they go out in the order they were
made, before any frame made after them. A service counting them over the broker therefore sees
each camera's frames in order across an outage, and its lateness allowance is never spent on
a reconnect. What a lost connection left unacknowledged is paho's to resend, ahead of these
(:mod:`sortcore.adapters.mqtt` is ready only after it did). Python 3.7 compatible.
"""

import collections
import logging

from ..core.errors import MqttError, PublishDenied

log = logging.getLogger(__name__)

#: Frames kept per link at most: over an hour at 5 frames a second (about 100 bytes each).
MAX_FRAMES = 20000


class FrameBacklog(object):
    """``put`` a frame for every link, ``flush`` what each ready link takes, in order.

    Beyond ``limit`` frames for one link the oldest are dropped, counted in ``dropped`` and
    logged once per outage."""

    def __init__(self, links, topic: str, limit: int = MAX_FRAMES):
        self.links = list(links)
        self.topic = topic
        self.limit = limit
        self.dropped = 0
        self._queues = {link.name: collections.deque() for link in self.links}
        self._full = set()

    def __len__(self):
        return max([len(q) for q in self._queues.values()] or [0])

    def put(self, payload):
        """Queue one frame for every link and send what the ready links take."""
        for link in self.links:
            waiting = self._queues[link.name]
            if len(waiting) >= self.limit:
                waiting.popleft()
                self.dropped += 1
                if link.name not in self._full:
                    self._full.add(link.name)
                    log.warning("%s: %d frames wait for the link; dropping the oldest", link.name, self.limit)
            waiting.append(payload)
        self.flush()

    def flush(self) -> int:
        """Send waiting frames, oldest first, to every ready link until one refuses; the
        frames sent."""
        sent = 0
        for link in self.links:
            waiting = self._queues[link.name]
            while waiting and link.ready:
                try:
                    link.publish_nowait(self.topic, waiting[0], qos=1)
                except PublishDenied:
                    pass  # the broker is there and said no (its ACL): sending it again will not help
                except MqttError:
                    break  # the link logged it; the frame stays first in line
                waiting.popleft()
                sent += 1
            if not waiting:
                self._full.discard(link.name)
        return sent
