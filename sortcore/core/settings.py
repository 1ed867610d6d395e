"""The one table of settings: command-line options, environment, config file, lambda, docs.

Each :class:`Setting` names one knob once. From this table come

- the click options of every command that takes it (:mod:`sortcore.cli.options`);
- its environment variable, ``SORTCORE_<NAME>`` (``SORTCORE_<COMMAND>_<NAME>`` only for
  the few settings whose meaning differs between commands, ``per_command=True``);
- the keys of the ``--config`` INI file (section ``[sortcore]``, or ``[<command>]``);
- the Greengrass lambda's environment (:func:`from_environ`, command ``lambda``);
- the reference table in ``docs/settings.md`` (:func:`markdown`; a test keeps it current).

Values are plain Python; :func:`group` picks the settings of one options object, so
``EngineConfig(**group(values, "engine"))`` builds it by keyword with the table's defaults.
Python 3.7 compatible and free of heavy imports (the lambda reads it on the camera).
"""

from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

from .errors import ConfigError
from .events import BLANK

LIVE = ("serve", "run", "lambda")  # the long-running runtimes
CAMERAS = ("run", "lambda", "watch")  # the commands that read a camera
CLASSIFIER = ("classify", "watch")  # the commands that only classify (no engine)
ENGINE = ("replay", "serve", "run", "lambda", "demo", "count")
BROKER = ("serve", "run", "lambda", "watch")


class Setting(NamedTuple):
    """One knob. ``group`` is the options object it belongs to; ``commands`` take it."""

    name: str
    kind: str
    default: object
    help: str
    group: str
    commands: Tuple[str, ...]
    choices: Tuple[str, ...] = ()
    per_command: bool = False  # its environment variable carries the command's name
    notes: Tuple[Tuple[str, str], ...] = ()  # (command, what it means there): only its help says it

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def envvar(self, command: str) -> str:
        middle = command.upper().replace("-", "_") + "_" if self.per_command else ""
        return "SORTCORE_" + middle + self.name.upper()

    def help_for(self, command: str) -> str:
        """The help text as ``command`` shows it: the common text and that command's notes."""
        return " ".join([self.help] + [text for where, text in self.notes if where == command])

    def parse(self, text: str):
        """The value of ``text`` (from the environment or a config file); ConfigError if bad."""
        return _parse(self, text)


def _s(name, kind, default, help, group, commands, **extra) -> Setting:
    return Setting(name, kind, default, help, group, tuple(commands), **extra)


SETTINGS = (
    # --- the store ---
    _s("db", "path", None, "SQLite file of sessions, sightings, dead letters and the outbox.",
       "store", ENGINE + ("pairs", "sessions", "reset"),
       notes=(("lambda", "Default: /sortcore-data/sortcore.db."),)),
    # --- the engine ---
    _s("mode", "choice", "sighting", "sighting: count socks; tumbling: the original ksqlDB query.",
       "engine", ENGINE, choices=("sighting", "tumbling")),
    _s("window", "float", 5.0, "Seconds within which min_frames frames make a sock.", "engine", ENGINE),
    _s("min_frames", "int", 4, "Frames of a design that make a sock.", "engine", ENGINE),
    _s("gap", "float", 1.5, "Seconds without a design's frame that end its run (sighting mode).",
       "engine", ENGINE),
    _s("min_probability", "float", 0.0, "Frames below this probability (percent) are not counted.",
       "engine", ENGINE + CLASSIFIER, notes=tuple((c, "Here the classifier's threshold: a design only at "
       "this score (cosine similarity to its nearest taught views, percent) or more; overrides the "
       "model folder's calibrated tau.") for c in CLASSIFIER)),
    _s("ignore", "list", (BLANK,), "Labels that are not socks (comma-separated or repeated).",
       "engine", ENGINE),
    # --- the engine: time and bounds (docs/time.md) ---
    _s("lateness", "float", 30.0, "Seconds of event time a frame may come after newer frames of its "
       "camera and still count as if in order (later: a dead letter 'late'). A sock that such a frame "
       "could still merge with an earlier one of its design waits for it, up to this long.",
       "engine", ENGINE, notes=(("run", "Default 0: the camera's frames come in order."),
                                ("lambda", "Default 0: the camera's frames come in order."),
                                ("count", "Default 0: the source's frames come in order."))),
    _s("silence", "float", 5.0, "Seconds without a frame from a camera (receive time) after which its "
       "waiting socks are published (serve; elsewhere frames have no receive time).", "engine", ENGINE),
    _s("max_cameras", "int", 1000, "Cameras the engine keeps state for at most; a new one beyond them "
       "evicts the idle ones, or with none idle its frames are dead letters.", "engine", ENGINE),
    _s("camera_idle", "float", 300.0, "Seconds without a frame (receive time; replay: event time) "
       "after which a camera may be evicted: its runs closed, only its watermark kept.",
       "engine", ENGINE),
    # --- the broker link ---
    _s("broker", "str", None, "Broker URL, mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS); no "
       "password in it (use password_file).", "connect", BROKER,
       notes=(("run", "Also greengrass-v2:iotcore or greengrass-v2:local (inside a Greengrass v2 "
               "component). Default: none, no broker."),
              ("lambda", "Default: none, no broker."),
              ("watch", "Default: none, payloads go to stdout."))),
    _s("username", "str", None, "Broker user name.", "connect", BROKER),
    _s("password_file", "path", None, "File whose first line is the broker password.",
       "connect", BROKER),
    _s("tls_ca", "path", None, "CA certificate that signed the broker's.", "connect", BROKER),
    _s("tls_cert", "path", None, "Client certificate (with tls_key).", "connect", BROKER),
    _s("tls_key", "path", None, "The client certificate's key.", "connect", BROKER),
    _s("client_id", "str", None, "MQTT client id; fixed, so the broker keeps our session "
       "(default sortcore-<command>).", "connect", BROKER, per_command=True),
    _s("protocol", "choice", "5", "MQTT protocol version: 5 (a denied publish stays in the outbox) "
       "or 3.1.1 (the broker's PUBACK cannot say 'denied').", "connect", BROKER,
       choices=("5", "3.1.1")),
    _s("reconnect_max", "float", 30.0, "Seconds between reconnect attempts at most (the wait "
       "doubles from 0.5 s up to this).", "connect", LIVE),
    # --- the service ---
    _s("camera_default", "str", "", "Camera name for frames on 'sockfound' without one.",
       "serve", ("serve",)),
    _s("batch", "int", 50, "Frames committed together at most.", "serve", ("serve",)),
    _s("labels", "path", None, "The model's labels.txt: frames of any other label are dead "
       "letters (Blank and Unknown always pass).", "serve", ("serve", "replay")),
    _s("max_future", "float", 300.0, "Frames stamped further ahead of their receive time "
       "(seconds) are dead letters.", "serve", ("serve",)),
    # --- every live runtime ---
    _s("status_interval", "float", 5.0, "Seconds between status updates while counters change.",
       "core", LIVE),
    _s("heartbeat", "float", 30.0, "Seconds between status messages when nothing changes "
       "(0: none).", "core", LIVE),
    _s("outbox_retention", "float", 7 * 24 * 3600.0, "Seconds a published result stays in the "
       "outbox before it is pruned (every link must have it).", "core", LIVE),
    _s("ha_discovery", "bool", True, "Home Assistant MQTT discovery over the broker link: retained "
       "configs under ha_prefix for the counts, the status and a new-session button (docs/mqtt.md); "
       "off: empty retained configs, which remove the entities. Nothing without a broker.",
       "core", LIVE),
    _s("ha_prefix", "str", "homeassistant", "Home Assistant's discovery prefix (its MQTT "
       "integration's setting).", "core", LIVE),
    _s("outbox_rows", "int", 10000, "Results the outbox keeps at most: beyond them the oldest that "
       "every link has are pruned (one a link still lacks is never dropped).", "core", LIVE),
    _s("topic_prefix", "str", "", "Put this before every topic the camera publishes (e.g. "
       "'site1/').", "device", ("run", "lambda")),
    # --- the camera ---
    _s("source", "str", None, "Frame source: webcam:N, webcam:/dev/videoN, video:PATH (on its "
       "own timestamps), folder:PATH[?loop].", "device", CAMERAS,
       notes=(("lambda", "Also deeplens, the default."),)),
    _s("model", "path", None, "Model folder (default: the shipped model/).", "device",
       ("run", "lambda", "count") + CLASSIFIER),
    _s("runtime", "choice", "auto", "Classifier runtime: onnx (ONNX Runtime, the model folder's "
       ".onnx file), mxnet (the same network as <name>-symbol.json, for the DeepLens), or auto "
       "(onnx when the folder has an .onnx file and onnxruntime imports, else mxnet).", "device",
       ("classify", "watch", "run", "count", "lambda"), choices=("auto", "onnx", "mxnet")),
    _s("model_backend", "choice", "mxnet", "mxnet (CPU) or deeplens (mo.optimize + awscam.Model, "
       "on the camera).", "device", ("lambda",), choices=("mxnet", "deeplens")),
    _s("camera", "str", None, "Camera name in payloads (default: $AWS_IOT_THING_NAME, the host "
       "name, or 'camera').", "device", CAMERAS),
    _s("fps", "float", 5.0, "Frames classified a second at most (0: as fast as the model goes); "
       "a video: at most this many of its frames a second of video, stamped with the video's own "
       "time (0: every frame).", "device", CAMERAS + ("count", "replay"),
       notes=(("count", "Also the frame rate of a folder source."),
              ("replay", "Here the frame rate of logs of bare payloads (no times), which need it."))),
    _s("publish_frames", "bool", True, "Publish every classified frame on 'sockfound'.",
       "device", ("run", "lambda")),
    _s("greengrass", "bool", True, "Publish through the Greengrass core (v1).", "lambda",
       ("lambda",)),
    _s("autostart", "bool", None, "Start the loop on import (default: only under Greengrass).",
       "lambda", ("lambda",), per_command=True),
    _s("log_level", "choice", "INFO", "Log level of the lambda.", "lambda", ("lambda",),
       choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    # --- new designs (issue 24) ---
    _s("new_designs", "bool", True, "Pair socks the model was never taught: a sock it calls Unknown "
       "becomes a design of the session, New 1, New 2, ..., matched by later socks under a "
       "stricter rule than taught designs (docs/classifier.md). Off: Unknown socks are counted "
       "as unrecognised, as before.", "designs", ("run", "count", "lambda", "watch"),
       notes=(("watch", "Its designs live as long as the process; serve counts the labels it "
               "gets (docs/classifier.md)."),)),
    _s("user_model", "path", None, "Folder of the user model: the model plus the designs named on "
       "the page; run loads it when it exists, else --model (default: user-model/ beside the "
       "store).", "designs", ("run", "lambda")),
    # --- the status page ---
    _s("http", "str", None, "Serve the live status page on HOST:PORT (e.g. 0.0.0.0:8080).",
       "web", ("serve", "run", "demo")),
    _s("http_token_file", "path", None, "File whose first line is the token POST /api/reset "
       "needs (without it, reset is refused).", "web", ("serve", "run", "demo")),
    _s("http_max_clients", "int", 128, "Page connections at once (streams included); one more gets "
       "503 at once. Lowered to leave 64 open files for the service under its open-file limit.",
       "web", ("serve", "run", "demo")),
    _s("http_header_timeout", "float", 10.0, "Seconds a client has to send a request's line and "
       "headers, all together.", "web", ("serve", "run", "demo")),
)

#: Defaults that differ by command (the table's default is None for these).
COMMAND_DEFAULTS = {
    ("serve", "broker"): "mqtt://127.0.0.1:1883",
    ("serve", "client_id"): "sortcore-serve",
    ("run", "client_id"): "sortcore-run",
    ("lambda", "client_id"): "sortcore-lambda",
    ("lambda", "db"): "/sortcore-data/sortcore.db",
    ("lambda", "source"): "deeplens",
    ("lambda", "fps"): 5.0,
    ("replay", "fps"): None,
    ("classify", "min_probability"): None,
    ("watch", "min_probability"): None,
    ("run", "lateness"): 0.0,
    ("lambda", "lateness"): 0.0,
    ("count", "lateness"): 0.0,
}

BY_NAME = {s.name: s for s in SETTINGS}
if len(BY_NAME) != len(SETTINGS):  # pragma: no cover - a typo in the table
    raise RuntimeError("duplicate setting names")


def for_command(command: str) -> List[Setting]:
    """The settings ``command`` takes, in table order."""
    return [s for s in SETTINGS if command in s.commands]


def default(setting: Setting, command: str):
    return COMMAND_DEFAULTS.get((command, setting.name), setting.default)


def group(values: dict, name: str) -> dict:
    """The entries of ``values`` that belong to options group ``name``."""
    return {k: v for k, v in values.items() if k in BY_NAME and BY_NAME[k].group == name}


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _parse(setting: Setting, text):
    if not isinstance(text, str):
        return text
    text = text.strip()
    kind, where = setting.kind, setting.name
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise ConfigError("%s must be a %s, not %r" % (where, "whole number" if kind == "int" else "number", text))
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError("%s must be 1/0 (true/false), not %r" % (where, text))
    if kind == "choice" and text not in setting.choices:
        raise ConfigError("%s must be one of %s, not %r" % (where, ", ".join(setting.choices), text))
    if kind == "list":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if kind == "path":
        return text or None
    return text


def from_environ(command: str, environ: Dict[str, str]) -> dict:
    """Every setting of ``command``: its environment variable if set, else its default."""
    values = {}
    for setting in for_command(command):
        raw = environ.get(setting.envvar(command))
        values[setting.name] = default(setting, command) if raw is None or raw == "" else setting.parse(raw)
    return values


def from_mapping(command: str, items: Iterable[Tuple[str, str]], where: str) -> dict:
    """Config-file keys (names, ``-`` or ``_``) parsed; an unknown key is a ConfigError."""
    known = {s.name: s for s in for_command(command)}
    values = {}
    for key, raw in items:
        setting = known.get(key.replace("-", "_"))
        if setting is None:
            raise ConfigError("%s: unknown key %r for %s" % (where, key, command))
        values[setting.name] = setting.parse(raw)
    return values


def markdown(title: Optional[str] = "# Settings") -> str:
    """The reference table of docs/settings.md."""
    lines = [title, "", "Generated from `sortcore/core/settings.py` by `sortcore settings --markdown`; "
             "a test keeps this file equal to it.", "",
             "Every option can come from the command line, the environment, or a `--config` INI "
             "file (section `[sortcore]` or `[<command>]`, keys as the setting names), in that "
             "order. The Greengrass lambda reads the environment only.", "",
             "| setting | option | environment | default | commands | meaning |",
             "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        env = ", ".join(sorted({s.envvar(c) for c in s.commands}))
        default = "" if s.default is None else ",".join(s.default) if isinstance(s.default, tuple) else str(s.default)
        kind = "%s: %s" % (s.kind, "/".join(s.choices)) if s.choices else s.kind
        meaning = " ".join([s.help] + ["%s: %s" % (where, text) for where, text in s.notes])
        lines.append("| `%s` (%s) | `%s` | `%s` | %s | %s | %s |" % (
            s.name, kind, s.option, env, "`%s`" % default if default else "", ", ".join(s.commands), meaning))
    return "\n".join(lines) + "\n"
