"""The sortcore Greengrass (v1) lambda for the AWS DeepLens: a long-lived (pinned) function.

On import, inside Greengrass, it starts :class:`sortcore.runtime.device.DeviceLoop` in
one daemon thread (once, under a lock): camera frames -> classifier ->
``sockfound`` -> sock engine -> SQLite on the device -> ``sockpairs``.
:func:`function_handler` receives the messages the subscription definition
routes to the lambda (``sockpairs/control``): ``{"cmd": "reset"}`` starts a
new sorting session, ``{"cmd": "status"}`` answers with the loop's status.

When does the loop start on import? ``SORTCORE_LAMBDA_AUTOSTART=1`` or ``0``
decides; when it is unset, the loop starts only when running under Greengrass,
recognised by ``AWS_IOT_THING_NAME`` or ``MY_FUNCTION_ARN`` in the environment
(the core sets them for its lambdas; ``greengrasssdk`` reads the second). So
importing this module anywhere else (tests, the packaging check) has no side
effect: no thread, no camera, no ``awscam``/``greengrasssdk`` import. The
shipped function definition sets ``SORTCORE_LAMBDA_AUTOSTART=1`` explicitly.

Its environment variables are the settings of the command ``lambda`` in the one
settings table (:mod:`sortcore.core.settings`; the list is docs/settings.md), e.g.
``SORTCORE_SOURCE``, ``SORTCORE_DB``, ``SORTCORE_BROKER``, ``SORTCORE_MIN_FRAMES``.

Must stay Python 3.7 compatible (the DeepLens runtime).
"""

import logging
import os
import threading

from sortcore.core import settings
from sortcore.core.errors import ConfigError

log = logging.getLogger("sortcore.lambda")

HERE = os.path.dirname(os.path.abspath(__file__))
GREENGRASS_MARKERS = ("AWS_IOT_THING_NAME", "MY_FUNCTION_ARN")


def autostart_enabled(environ=None) -> bool:
    """Start the loop on import? ``SORTCORE_LAMBDA_AUTOSTART``, else: under Greengrass."""
    environ = os.environ if environ is None else environ
    chosen = settings.from_environ("lambda", environ)["autostart"]
    return any(environ.get(name) for name in GREENGRASS_MARKERS) if chosen is None else chosen


def config_from_env(environ=None):
    """The lambda's :class:`~sortcore.runtime.appliance.ApplianceConfig` from its environment
    (the model: ``model/`` of the zip unless set); :class:`ConfigError` names the bad setting."""
    env = os.environ if environ is None else environ
    return _config(settings.from_environ("lambda", env), env)


def _config(values, env):
    from sortcore.runtime.appliance import appliance_config

    return appliance_config(values, "lambda", os.path.join(HERE, "model"), env)


def build_loop(config, stop=None, links=None):
    """The :class:`~sortcore.runtime.device.DeviceLoop` for ``config``; nothing is opened yet.

    ``links`` replaces the destinations the configuration names (tests).
    """
    from sortcore.runtime.appliance import build_device_loop, links_for

    return build_device_loop(config, links_for(config) if links is None else links, stop=stop)


# --- the one loop of this process ---------------------------------------------

_lock = threading.Lock()
_loop = None
_thread = None
_start_error = None


def start(environ=None):
    """Start the loop once per process (thread-safe); return it, or None if misconfigured."""
    global _loop, _thread, _start_error
    with _lock:
        if _thread is not None and _thread.is_alive():
            return _loop
        environ = os.environ if environ is None else environ
        try:
            values = settings.from_environ("lambda", environ)
            config = _config(values, environ)
        except ConfigError as exc:
            _start_error = str(exc)
            log.error("sortcore lambda not started: %s", exc)
            return None
        logging.getLogger("sortcore").setLevel(getattr(logging, values["log_level"], logging.INFO))
        from sortcore.runtime.device import start_thread
        _loop = build_loop(config)
        _thread = start_thread(_loop, name="sortcore-device")
        _start_error = None
        log.info("sortcore lambda started: camera %s, source %s, db %s", config.device.camera, config.source,
                 config.db)
        return _loop


def stop(timeout=10.0):
    """Stop the loop and wait for its thread (tests, or a clean shutdown)."""
    global _loop, _thread
    with _lock:
        loop, thread = _loop, _thread
        _loop = _thread = None
    if loop is not None:
        loop.stop.set()
    if thread is not None:
        thread.join(timeout)


def function_handler(event, context):
    """Messages routed to the lambda (``sockpairs/control``): the control commands of every
    runtime (reset, status, name, merge, forget), done in the loop's thread."""
    loop = _loop
    if loop is None:
        return {"ok": False, "error": _start_error or "the device loop is not running"}
    from sortcore.runtime.control import answer
    return answer(loop, event)


def _autostart():
    try:
        enabled = autostart_enabled()
    except ConfigError as exc:
        log.error("sortcore lambda not started: %s", exc)
        return
    if enabled:
        start()


_autostart()
