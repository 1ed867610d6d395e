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

Environment variables (all optional; the function definition's ``Variables``):

=============================  ==================================================================
``SORTCORE_LAMBDA_AUTOSTART``  ``1``/``0``: start the loop on import (default: under Greengrass)
``SORTCORE_CAMERA``            camera name in payloads (default ``$AWS_IOT_THING_NAME`` or ``deeplens``)
``SORTCORE_SOURCE``            frame source spec (default ``deeplens``; ``folder:PATH``, ``video:PATH``, ``webcam:0``)
``SORTCORE_MODEL_DIR``         model files (default ``model/`` next to this file, inside the zip)
``SORTCORE_MODEL_BACKEND``     ``mxnet`` (CPU MXNet, default) or ``deeplens`` (``mo.optimize`` + ``awscam.Model``)
``SORTCORE_DB``                SQLite file (default ``/sortcore-data/sortcore.db``, the local volume)
``SORTCORE_FPS``               frame-rate limit, frames a second (default ``5``; ``0``: unlimited)
``SORTCORE_GREENGRASS``        ``1``/``0``: publish through the Greengrass core (default ``1``)
``SORTCORE_MQTT_URL``          external broker, ``mqtt[s]://[user:password@]host[:port]`` (default: none)
``SORTCORE_PUBLISH_FRAMES``    ``1``/``0``: publish every frame on the frames topic (default ``1``)
``SORTCORE_TOPIC_FRAMES``      topic for frames (default ``sockfound``)
``SORTCORE_TOPIC_PAIRS``       topic for confirmed socks (default ``sockpairs``)
``SORTCORE_TOPIC_STATE``       topic for the retained pairs table (default ``sockpairs/state``)
``SORTCORE_TOPIC_STATUS``      topic for heartbeats (default ``sockpairs/status``)
``SORTCORE_STATUS_EVERY``      seconds between heartbeats (default ``30``; ``0``: none)
``SORTCORE_MODE``              engine mode ``sighting`` (default) or ``tumbling``
``SORTCORE_WINDOW``            engine window, seconds (default ``5``)
``SORTCORE_MIN_FRAMES``        frames of a design that make a sock (default ``4``)
``SORTCORE_GAP``               seconds without a design's frame that end its run (default ``1.5``)
``SORTCORE_MIN_PROBABILITY``   frames below this probability (percent) are not counted (default ``0``)
``SORTCORE_IGNORE``            comma-separated labels that are not socks (default ``Blank``)
``SORTCORE_LOG_LEVEL``         ``DEBUG``, ``INFO`` (default), ``WARNING``
=============================  ==================================================================

Must stay Python 3.7 compatible (the DeepLens runtime).
"""

import collections
import logging
import os
import threading

from sortcore.engine import EngineConfig
from sortcore.errors import ConfigError
from sortcore.messages import TOPIC_FRAMES, TOPIC_PAIRS, TOPIC_STATE, TOPIC_STATUS

log = logging.getLogger("sortcore.lambda")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DB = "/sortcore-data/sortcore.db"
GREENGRASS_MARKERS = ("AWS_IOT_THING_NAME", "MY_FUNCTION_ARN")

LambdaConfig = collections.namedtuple("LambdaConfig", [
    "camera", "source", "model_dir", "model_backend", "db", "fps", "greengrass", "mqtt_url",
    "publish_frames", "topics", "status_every", "engine", "log_level",
])
LambdaConfig.__doc__ = """Everything the lambda reads from its environment (see the module docstring)."""


def _flag(environ, name, default):
    value = environ.get(name)
    if value is None or not value.strip():
        return default
    value = value.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError("%s must be 1 or 0, not %r" % (name, value))


def _number(environ, name, default, kind=float):
    value = environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        return kind(value)
    except ValueError:
        raise ConfigError("%s must be a number, not %r" % (name, value))


def autostart_enabled(environ=None) -> bool:
    """Start the loop on import? ``SORTCORE_LAMBDA_AUTOSTART``, else: under Greengrass."""
    environ = os.environ if environ is None else environ
    under_greengrass = any(environ.get(name) for name in GREENGRASS_MARKERS)
    return _flag(environ, "SORTCORE_LAMBDA_AUTOSTART", under_greengrass)


def config_from_env(environ=None) -> LambdaConfig:
    """Read and check the configuration; raise :class:`ConfigError` naming the bad variable."""
    env = os.environ if environ is None else environ
    backend = env.get("SORTCORE_MODEL_BACKEND", "mxnet").strip() or "mxnet"
    if backend not in ("mxnet", "deeplens"):
        raise ConfigError("SORTCORE_MODEL_BACKEND must be mxnet or deeplens, not %r" % backend)
    ignore = tuple(label.strip() for label in env.get("SORTCORE_IGNORE", "Blank").split(",") if label.strip())
    engine = EngineConfig(
        env.get("SORTCORE_MODE", "sighting").strip() or "sighting",
        _number(env, "SORTCORE_WINDOW", 5.0),
        _number(env, "SORTCORE_MIN_FRAMES", 4, int),
        _number(env, "SORTCORE_GAP", 1.5),
        _number(env, "SORTCORE_MIN_PROBABILITY", 0.0),
        ignore,
    )
    topics = {}
    for default, name in ((TOPIC_FRAMES, "FRAMES"), (TOPIC_PAIRS, "PAIRS"), (TOPIC_STATE, "STATE"),
                          (TOPIC_STATUS, "STATUS")):
        topic = env.get("SORTCORE_TOPIC_" + name, "").strip()
        if topic and topic != default:
            if any(c in topic for c in "#+"):
                raise ConfigError("SORTCORE_TOPIC_%s must not contain MQTT wildcards: %r" % (name, topic))
            topics[default] = topic
    fps = _number(env, "SORTCORE_FPS", 5.0)
    if fps < 0:
        raise ConfigError("SORTCORE_FPS must be 0 (unlimited) or positive, not %r" % fps)
    return LambdaConfig(
        camera=(env.get("SORTCORE_CAMERA") or env.get("AWS_IOT_THING_NAME") or "deeplens").strip()[:64],
        source=env.get("SORTCORE_SOURCE", "deeplens").strip() or "deeplens",
        model_dir=env.get("SORTCORE_MODEL_DIR") or os.path.join(HERE, "model"),
        model_backend=backend,
        db=env.get("SORTCORE_DB") or DEFAULT_DB,
        fps=fps,
        greengrass=_flag(env, "SORTCORE_GREENGRASS", True),
        mqtt_url=(env.get("SORTCORE_MQTT_URL") or "").strip() or None,
        publish_frames=_flag(env, "SORTCORE_PUBLISH_FRAMES", True),
        topics=topics,
        status_every=_number(env, "SORTCORE_STATUS_EVERY", 30.0),
        engine=engine,
        log_level=(env.get("SORTCORE_LOG_LEVEL") or "INFO").strip().upper(),
    )


def build_loop(config: LambdaConfig, stop=None, links=None):
    """The :class:`~sortcore.runtime.device.DeviceLoop` for ``config``; nothing is opened yet.

    ``links`` replaces the publishers the configuration names (tests).
    """
    from sortcore.runtime.device import DeviceLoop, DeviceOptions, Link

    if links is None:
        links = []
        if config.greengrass:
            from sortcore.adapters.greengrass import GreengrassPublisher
            links.append(Link("greengrass", GreengrassPublisher, topics=config.topics))
        if config.mqtt_url:
            url = config.mqtt_url

            def connect():
                from sortcore.adapters.mqtt import connect_publisher  # paho only when a broker is configured
                return connect_publisher(url)

            links.append(Link("mqtt", connect, topics=config.topics))

    def open_source():
        from sortcore.camera.sources import open_source as _open
        return _open(config.source)

    def load_classifier():
        if config.model_backend == "deeplens":
            from sortcore.camera.deeplens import load_optimized_model
            return load_optimized_model(config.model_dir)
        from sortcore.classifier.model import load_model
        return load_model(config.model_dir)

    def open_pipeline():
        from sortcore.pipeline import Pipeline
        from sortcore.store import Store
        folder = os.path.dirname(os.path.abspath(config.db))
        if not os.path.isdir(folder):
            os.makedirs(folder)
        return Pipeline(Store(config.db), config.engine, source="camera:" + config.camera)

    options = DeviceOptions(camera=config.camera, fps=config.fps, publish_frames=config.publish_frames,
                            status_every=config.status_every)
    return DeviceLoop(open_source, load_classifier, open_pipeline, links, options, stop=stop)


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
        try:
            config = config_from_env(environ)
        except ConfigError as exc:
            _start_error = str(exc)
            log.error("sortcore lambda not started: %s", exc)
            return None
        logging.getLogger("sortcore").setLevel(getattr(logging, config.log_level, logging.INFO))
        from sortcore.runtime.device import start_thread
        _loop = build_loop(config)
        _thread = start_thread(_loop, name="sortcore-device")
        _start_error = None
        log.info("sortcore lambda started: camera %s, source %s, db %s", config.camera, config.source, config.db)
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
    """Messages routed to the lambda (``sockpairs/control``): reset or status."""
    loop = _loop
    command = event.get("cmd") if isinstance(event, dict) else None
    if loop is None:
        return {"ok": False, "error": _start_error or "the device loop is not running"}
    if command == "reset":
        loop.request_reset()
        return {"ok": True, "cmd": "reset"}
    if command in (None, "status"):
        loop.request_status()
        return {"ok": True, "status": loop.status()}
    return {"ok": False, "error": "unknown command %r (use reset or status)" % (command,)}


def _autostart():
    try:
        enabled = autostart_enabled()
    except ConfigError as exc:
        log.error("sortcore lambda not started: %s", exc)
        return
    if enabled:
        start()


_autostart()
