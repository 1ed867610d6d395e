"""The frame-source interface every camera implements (Python 3.7: runs on the camera)."""


class FrameSource(object):
    """Base class: iterate for BGR uint8 frames, ``close()`` when done."""

    name = "source"

    def __iter__(self):
        raise NotImplementedError

    def close(self):
        """Release the device or file; safe to call twice."""

    def drain_skipped(self):
        """The (file, reason) of inputs skipped since the last call (a folder's undecodable or
        oversized images): the caller makes each a dead letter, so none vanishes silently."""
        return []

    def frame_time(self):
        """Seconds from the source's start to the last frame it gave, for a source with a clock
        of its own (a video); None: the frame was taken now (a camera, a folder)."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self.name)
