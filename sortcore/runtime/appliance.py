"""The camera appliance from its settings: what ``sortcore run``, the lambda and the Greengrass v2
component build.

:func:`appliance_config` turns the settings table's values into an :class:`ApplianceConfig`
once (typed, checked); :func:`links_for` makes its destinations, :func:`build_device_loop`
wires a :class:`~sortcore.runtime.device.DeviceLoop` from it (the frame source, the classifier,
the store), and :func:`run_appliance` runs one in this thread until SIGTERM, with the live
page's listeners. Python 3.7 compatible.
"""

import dataclasses
import logging
import os
import signal
import threading
from typing import Optional

from ..adapters.mqtt_config import ConnectOptions, parse_url
from ..core.engine import EngineConfig
from ..core.errors import ConfigError, ModelError, SourceMissing, StoreCorrupt, StoreLocked
from .config import (camera_name, connect_options, core_options, engine_config, prefixed_topics, publisher_to,
                     user_model_dir, value)
from .device import DeviceLoop, DeviceOptions
from .links import Link
from .systemd import Notifier

log = logging.getLogger(__name__)

GREENGRASS_V2 = "greengrass-v2:"  # broker values for the Greengrass v2 IPC: ...:iotcore or ...:local

#: What ``run`` stops on at once, with one line, instead of retrying: nothing a retry can mend
#: (a missing file, a model that does not load, a bad setting, a store held or damaged). A
#: camera that cannot be opened, a broker that is down and a full disk are retried.
NOT_RETRYABLE = (ConfigError, ModelError, SourceMissing, StoreCorrupt, StoreLocked)


@dataclasses.dataclass(frozen=True)
class ApplianceConfig:
    """The appliance's settings, typed. ``device``: the loop's options (camera, fps, new
    designs, the model folder and the user model); ``broker``: an MQTT URL or
    ``greengrass-v2:...``, reached with ``connect``; ``greengrass``: also publish through the
    Greengrass v1 core (the lambda)."""

    runtime: str  # run, lambda
    source: str
    db: str
    engine: EngineConfig
    device: DeviceOptions
    classifier_runtime: str = "auto"  # the setting "runtime": auto, onnx, mxnet
    model_backend: str = "mxnet"
    broker: Optional[str] = None
    connect: Optional[ConnectOptions] = None
    topic_prefix: str = ""
    greengrass: bool = False


def appliance_config(values: dict, runtime: str, model: str, environ=None) -> ApplianceConfig:
    """The typed config of ``values`` (the table's settings of ``runtime``); ``model``: the
    model folder when the setting is not given. :class:`ConfigError` names a bad setting."""
    environ = os.environ if environ is None else environ
    values = dict(values, camera=camera_name(values, environ), model=values.get("model") or model)
    prefixed_topics(value(values, "topic_prefix", runtime))  # checked now
    broker = values.get("broker")
    mqtt = broker and not broker.startswith(GREENGRASS_V2)
    if mqtt:
        parse_url(broker)  # checked now: a bad URL is a bad setting, not a broker to retry
    return ApplianceConfig(
        runtime=runtime, source=values["source"], db=values["db"],
        engine=engine_config(values), device=DeviceOptions(
            camera=values["camera"], fps=value(values, "fps", runtime), core=core_options(values),
            publish_frames=value(values, "publish_frames", runtime), new_designs=value(values, "new_designs", runtime),
            user_model=user_model_dir(values), model=values["model"]),
        classifier_runtime=value(values, "runtime", runtime), model_backend=value(values, "model_backend", runtime),
        broker=broker, connect=connect_options(values, persistent=False) if mqtt else None,
        topic_prefix=value(values, "topic_prefix", runtime), greengrass=bool(values.get("greengrass")))


def links_for(config: ApplianceConfig) -> list:
    """The destinations of ``config``, in order: the Greengrass v1 core (the lambda), then the
    broker: an MQTT URL (paho only imported on connect) or ``greengrass-v2:iotcore`` /
    ``greengrass-v2:local`` (the component's IPC)."""
    topics = prefixed_topics(config.topic_prefix)
    links = []
    if config.greengrass:
        def greengrass_v1():
            from ..adapters.greengrass import GreengrassPublisher
            return GreengrassPublisher()

        links.append(Link("greengrass", greengrass_v1, topics=topics))
    if config.broker and config.broker.startswith(GREENGRASS_V2):
        target = config.broker[len(GREENGRASS_V2):]

        def greengrass_v2():
            from ..adapters.greengrass_v2 import GreengrassV2Publisher
            return GreengrassV2Publisher(target=target)

        links.append(Link("greengrass-v2", greengrass_v2, topics=topics))
    elif config.broker:
        links.append(Link("mqtt", publisher_to(config.broker, config.connect, config.topic_prefix), topics=topics,
                          mqtt=True))
    return links


def _loaders(config: ApplianceConfig):
    def open_source():
        from ..camera.sources import open_source as _open
        return _open(config.source, config.device.fps)

    def load_classifier():
        from ..classifier.usermodel import model_for
        base = config.device.model
        model = model_for(config.device.user_model, base)  # the designs named on the page
        if model != base:
            log.info("loading the user model %s", model)
        if config.model_backend == "deeplens":  # the deployed net, the user model's head
            from ..camera.deeplens import load_optimized_model
            return load_optimized_model(base, head=model)
        from ..classifier.backends import load_classifier
        return load_classifier(model, config.classifier_runtime)

    def open_pipeline():
        from ..store.database import Store
        from ..store.pipeline import Pipeline
        from ..store.storefile import make_folder
        make_folder(config.db)
        store = Store(config.db, exclusive=True, owner="sortcore " + config.runtime)  # one store, one runtime
        try:
            return Pipeline(store, config.engine, source="camera:" + config.device.camera)
        except BaseException:
            store.close()
            raise

    return open_source, load_classifier, open_pipeline


def build_device_loop(config: ApplianceConfig, links: list, stop=None, on_frame=None, fatal: tuple = ()) -> DeviceLoop:
    """The loop for ``config``; nothing is opened until it runs. ``fatal``: errors that stop
    the loop instead of being retried (``run``: a store another process holds)."""
    return DeviceLoop(*_loaders(config), links=links, options=config.device, stop=stop, runtime=config.runtime,
                      on_frame=on_frame, fatal=fatal)


def run_appliance(config: ApplianceConfig, listeners=(), on_frame=None, hold: bool = False) -> DeviceLoop:
    """Run the appliance in this thread until SIGTERM/SIGINT or the end of a finite source;
    return the stopped loop. ``hold``: after a finite source ends, wait for SIGTERM/SIGINT
    anyway (the status page stays up to show the result)."""
    stop = threading.Event()
    finite = config.source.startswith(("folder:", "video:")) and not config.source.endswith("?loop")
    if finite:
        config = dataclasses.replace(config, device=dataclasses.replace(config.device, stop_at_end=True))
    loop = build_device_loop(config, links_for(config), stop=stop, on_frame=on_frame, fatal=NOT_RETRYABLE)
    loop.listeners.extend(listeners)
    for listener in listeners:
        listener.bind_reset(loop.requests.ask)  # the page's button, done in the loop's thread
        if hasattr(listener, "bind_designs"):
            listener.bind_designs(loop.requests.ask)  # naming and merging, the same way

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("running camera %s from %s", config.device.camera, config.source)
    notifier = Notifier()  # systemd: READY, then the watchdog from each iteration
    loop.beat = notifier.beat
    try:
        loop.run()
    finally:
        notifier.stopping()
        for listener in listeners:
            listener.bind_reset(None)  # nothing left to reset
            if hasattr(listener, "bind_designs"):
                listener.bind_designs(None)
    if hold and not stop.is_set():
        log.info("%s ended after %d frames; the page stays up until SIGTERM or Ctrl-C", config.source, loop.frames)
        stop.wait()
    return loop
