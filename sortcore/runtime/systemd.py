"""The systemd boundary: readiness and watchdog notifications, and logging to the journal.

:class:`Notifier` speaks the sd_notify protocol (sd_notify(3)): one datagram of
``KEY=value`` lines to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a leading ``@``
means the abstract namespace). It does nothing when that variable is not set, so the
runtimes call it unconditionally. :meth:`Notifier.beat` is called from each iteration
of a runtime's loop: the first says ``READY=1``, the next say ``WATCHDOG=1`` at most
every quarter of ``$WATCHDOG_USEC`` (set by ``WatchdogSec=``), so a loop that hangs
stops them and systemd restarts the service.

:func:`journal_stream` tells whether stderr goes to the journal (``$JOURNAL_STREAM``,
systemd.exec(5)): then log lines carry no timestamp of their own (journald adds one)
and start with their syslog priority (``<4>``), which journald reads as the level.
Python 3.7 compatible.
"""

import logging
import os
import socket
import sys
import time

log = logging.getLogger(__name__)

#: Python log levels as syslog priorities (sd-daemon(3): ``<N>`` prefixes).
PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def notify_address(environ=None):
    """Where ``$NOTIFY_SOCKET`` points (an abstract address starts with NUL), or None."""
    path = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not path or not hasattr(socket, "AF_UNIX"):
        return None
    return "\0" + path[1:] if path.startswith("@") else path


def watchdog_seconds(environ=None) -> float:
    """``$WATCHDOG_USEC`` in seconds when the watchdog is meant for this process, else 0."""
    environ = os.environ if environ is None else environ
    pid = environ.get("WATCHDOG_PID")
    try:
        usec = int(environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return 0.0
    return usec / 1e6 if usec > 0 and (not pid or pid == str(os.getpid())) else 0.0


class Notifier(object):
    """sd_notify for one runtime; every method is a no-op without ``$NOTIFY_SOCKET``."""

    def __init__(self, environ=None, monotonic=time.monotonic):
        self.address = notify_address(environ)
        self.interval = watchdog_seconds(environ) / 4
        self.monotonic = monotonic
        self.ready = False
        self._last = None
        self._failed = False

    def send(self, message: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode("utf-8"), self.address)
            return True
        except OSError as exc:
            if not self._failed:  # once: the service manager may have gone away
                log.warning("cannot notify systemd at %s: %s", self.address.replace("\0", "@"), exc)
                self._failed = True
            return False

    def beat(self):
        """From each loop iteration: READY=1 the first time, then WATCHDOG=1 when due."""
        now = self.monotonic()
        if not self.ready:
            self.ready = True
            self._last = now
            self.send("READY=1\nSTATUS=running")
        elif self.interval and now - self._last >= self.interval:
            self._last = now
            self.send("WATCHDOG=1")

    def stopping(self):
        self.send("STOPPING=1")


def journal_stream(stream=None, environ=None) -> bool:
    """True when ``stream`` (stderr) is the journal: ``$JOURNAL_STREAM`` names its device:inode."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        info = os.fstat((stream or sys.stderr).fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``: no timestamp (the journal has one), the level as syslog's."""

    def __init__(self):
        logging.Formatter.__init__(self, "%(name)s: %(message)s")

    def format(self, record):
        priority = next((p for level, p in PRIORITIES if record.levelno >= level), 7)
        return "<%d>%s" % (priority, logging.Formatter.format(self, record))


def log_format(stream=None):
    """The formatter for the CLI's log lines: :class:`JournalFormatter` under journald."""
    if journal_stream(stream):
        return JournalFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
