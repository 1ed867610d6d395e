"""The camera appliance from its settings: what ``sortcore run`` and the lambda build.

:func:`build_device_loop` wires a :class:`~sortcore.runtime.device.DeviceLoop` from a
settings dict (:mod:`sortcore.core.settings`): the frame source, the classifier, the store
and the links. :func:`run_appliance` runs one in this thread until SIGTERM, with the
live page's listeners. Python 3.7 compatible.
"""

import logging
import signal
import threading

from ..core.errors import ConfigError, ModelError, SourceMissing, StoreCorrupt, StoreLocked
from .systemd import Notifier
from .config import core_options, engine_config, prefixed_topics, publisher_factory, user_model_dir
from .device import DeviceLoop, DeviceOptions
from .links import Link

log = logging.getLogger(__name__)


GREENGRASS_V2 = "greengrass-v2:"

#: What ``run`` stops on at once, with one line, instead of retrying: nothing a retry can mend
#: (a missing file, a model that does not load, a bad setting, a store held or damaged). A
#: camera that cannot be opened, a broker that is down and a full disk are retried.
NOT_RETRYABLE = (ConfigError, ModelError, SourceMissing, StoreCorrupt, StoreLocked)  # broker values for the Greengrass v2 IPC: ...:iotcore or ...:local


def broker_links(values: dict) -> list:
    """A link to ``values['broker']`` when one is set: an MQTT URL (paho only imported on
    connect), or ``greengrass-v2:iotcore`` / ``greengrass-v2:local`` (the component's IPC)."""
    broker = values.get("broker")
    topics = prefixed_topics(values.get("topic_prefix", ""))
    if not broker:
        return []
    if broker.startswith(GREENGRASS_V2):
        target = broker[len(GREENGRASS_V2):]

        def connect():
            from ..adapters.greengrass_v2 import GreengrassV2Publisher
            return GreengrassV2Publisher(target=target)

        return [Link("greengrass-v2", connect, topics=topics)]
    return [Link("mqtt", publisher_factory(values), topics=topics, mqtt=True)]


def _loaders(values: dict, runtime: str = "run"):
    def open_source():
        from ..camera.sources import open_source as _open
        return _open(values["source"], values.get("fps", 0.0))

    def load_classifier():
        if values.get("model_backend") == "deeplens":
            from ..camera.deeplens import load_optimized_model
            return load_optimized_model(values["model"])
        from ..classifier.backends import load_classifier
        from ..classifier.usermodel import model_for
        model = model_for(user_model_dir(values), values["model"])  # the designs named on the page
        if model != values["model"]:
            log.info("loading the user model %s", model)
        return load_classifier(model, values.get("runtime", "auto"))

    def open_pipeline():
        from ..store.pipeline import Pipeline
        from ..store.database import Store
        from ..store.storefile import make_folder
        make_folder(values["db"])
        store = Store(values["db"], exclusive=True, owner="sortcore " + runtime)  # one store, one runtime
        try:
            return Pipeline(store, engine_config(values), source="camera:" + values["camera"])
        except BaseException:
            store.close()
            raise

    return open_source, load_classifier, open_pipeline


def build_device_loop(values: dict, links: list, runtime: str, stop=None, on_frame=None,
                      stop_at_end: bool = False, fatal: tuple = ()) -> DeviceLoop:
    """The loop for these settings; nothing is opened until it runs. ``fatal``: errors that
    stop the loop instead of being retried (``run``: a store another process holds)."""
    options = DeviceOptions(camera=values["camera"], fps=values["fps"], publish_frames=values["publish_frames"],
                            core=core_options(values), stop_at_end=stop_at_end,
                            new_designs=values.get("new_designs", True), user_model=user_model_dir(values),
                            model=values.get("model"))
    return DeviceLoop(*_loaders(values, runtime), links=links, options=options, stop=stop, runtime=runtime,
                      on_frame=on_frame, fatal=fatal)


def run_appliance(values: dict, listeners=(), on_frame=None, hold: bool = False) -> DeviceLoop:
    """Run the appliance in this thread until SIGTERM/SIGINT or the end of a finite source;
    return the stopped loop. ``hold``: after a finite source ends, wait for SIGTERM/SIGINT
    anyway (the status page stays up to show the result)."""
    stop = threading.Event()
    source = values["source"]
    finite = source.startswith(("folder:", "video:")) and not source.endswith("?loop")
    loop = build_device_loop(values, broker_links(values), "run", stop=stop, on_frame=on_frame,
                             stop_at_end=finite, fatal=NOT_RETRYABLE)
    loop.listeners.extend(listeners)
    for listener in listeners:
        listener.bind_reset(loop.resets.ask)  # the page's button, done in the loop's thread
        if hasattr(listener, "bind_designs"):
            listener.bind_designs(loop.resets.ask)  # naming and merging, the same way
    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("running camera %s from %s", values["camera"], source)
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
        log.info("%s ended after %d frames; the page stays up until SIGTERM or Ctrl-C", source, loop.frames)
        stop.wait()
    return loop
