"""The few exceptions sortcore raises, each carrying the useful detail."""


class SortcoreError(Exception):
    """Base class of every sortcore error."""


class BadFrame(SortcoreError):
    """A payload is not a valid frame; ``reason`` says why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class ConfigError(SortcoreError, ValueError):
    """An engine, store or service option is out of range."""


class StoreError(SortcoreError):
    """The SQLite store is unusable (wrong schema version, locked, corrupt)."""


class ModelError(SortcoreError):
    """A model cannot be loaded, or an image cannot be classified."""


class SourceError(SortcoreError):
    """A frame source cannot be opened or stopped delivering frames."""


class MqttError(SortcoreError):
    """The broker cannot be reached or refused us; ``reason`` is paho's text."""

    def __init__(self, reason, code=None):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class PublishDenied(MqttError):
    """The broker received a publish and refused it (an MQTT 5 PUBACK reason code, e.g. its ACL)."""


class DemoError(SortcoreError):
    """The demo cannot run (log unreadable, service did not keep up)."""


class PackageError(SortcoreError):
    """A deployable package cannot be built (a file missing, a clash, pip failed)."""


class GreengrassUnavailable(MqttError):
    """The Greengrass SDK cannot make a client: not running inside a Greengrass core."""


class SourceEnded(SourceError):
    """The frame source ran out of frames (a video or folder); the device loop reopens it."""
