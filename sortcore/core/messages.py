"""The JSON results sortcore publishes and prints (one place for their shape)."""

import json
import re
from typing import Collection, Iterable, List

DEFAULT_CAMERA = "camera"  # a camera's name when nothing names it (runtime.config.camera_name)
TOPIC_FRAMES = "sockfound"
TOPIC_PAIRS = "sockpairs"
TOPIC_STATE = "sockpairs/state"
TOPIC_STATUS = "sockpairs/status"
TOPIC_CONTROL = "sockpairs/control"
#: The person's word on a design found in the session: each command's fields, the same over
#: control (``{"cmd": "forget", "design": "New 4"}``) and the page (``POST /api/forget``).
DESIGN_COMMANDS = {"name": ("design", "name"), "merge": ("design", "into"), "forget": ("design",),
                   "split": ("design", "sock")}
#: What a field of a design command is: a non-empty string, or (``sock``) a sighting id.
FIELD_KINDS = {"design": str, "name": str, "into": str, "sock": int}
_KIND_NAMES = {str: "a string", int: "a sighting id"}


def _fits(kind, value) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    return isinstance(value, kind) and bool(value)


def command_args(cmd: str, obj) -> tuple:
    """The arguments of the design command ``cmd`` in the JSON object ``obj`` (control's, the
    page's body), in :data:`DESIGN_COMMANDS` order; ValueError with the reason."""
    fields = DESIGN_COMMANDS[cmd]
    args = tuple(obj.get(field) for field in fields) if isinstance(obj, dict) else (None,) * len(fields)
    if not all(_fits(FIELD_KINDS[field], arg) for field, arg in zip(fields, args)):
        raise ValueError("%s needs %s" % (cmd, " and ".join(
            "%s (%s)" % (field, _KIND_NAMES[FIELD_KINDS[field]]) for field in fields)))
    return args


#: The label of a design found in the session before it is named (issue 24): ``New 3``.
NEW_DESIGN = re.compile(r"^New ([1-9][0-9]{0,8})$")  # its number: group 1


def is_taught(label: str, untaught: Collection[str] = ()) -> bool:
    """Whether a design was taught (in the model), not found in the session: it is not one of
    ``untaught`` (the session's designs, named or not) nor a ``New k``."""
    return label not in untaught and not NEW_DESIGN.match(label or "")


def mark_untaught(row: dict, untaught: Collection[str] = ()) -> dict:
    """``row`` with ``"taught": false`` when its design was found in the session. A taught
    design's row has no ``taught`` key: what every consumer read before new designs, byte for
    byte (``row.get("taught", True)``)."""
    if not is_taught(row.get("image"), untaught):
        row["taught"] = False
    return row


def dumps(obj) -> str:
    """Compact JSON; NaN is refused so consumers never see it."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def sock_message(session: int, event, untaught: Collection[str] = ()) -> dict:
    """The ``sockpairs`` message for one confirmed sock (a SockConfirmed event).

    An unrecognised sock has ``"image": "Unknown"``, ``"pair_seen":
    "Unrecognised"``, ``"pairs": 0`` and ``number_socks_seen`` = the
    session's unrecognised socks so far. A sock of a design found in the session (``untaught``
    or ``New k``) has ``"taught": false``.
    """
    row = event.row
    return mark_untaught({
        "session": session,
        "sighting": event.sighting,
        "image": event.label,
        "number_socks_seen": row.number_socks_seen,
        "pair_seen": row.pair_seen,
        "pairs": row.pairs,
        "camera": event.camera,
        "first_seen": event.first_seen,
        "confirmed_at": event.confirmed_at,
        "frames": event.frames,
        "mean_probability": round(event.mean_probability, 3),
    }, untaught)


def rows_as_dicts(rows: Iterable, untaught: Collection[str] = ()) -> List[dict]:
    """Pairs rows (PairsRow tuples or store dicts) as plain dicts, ``"taught": false`` on the
    rows of designs found in the session (:func:`mark_untaught`)."""
    keys = ("image", "number_socks_seen", "pair_seen", "pairs")
    return [mark_untaught(dict(row) if isinstance(row, dict) else dict(zip(keys, row)), untaught) for row in rows]


def odd_of(rows: Iterable) -> List[str]:
    """Designs with an odd sock left, from pairs rows."""
    return [row["image"] for row in rows_as_dicts(rows) if row["number_socks_seen"] % 2]


def state_message(session: int, rows, updated_at: float, unknown: int = 0,
                  untaught: Collection[str] = (), waiting: int = 0) -> dict:
    """The retained ``sockpairs/state``: the whole table, the odd socks, the
    number of unrecognised socks (never a row, never odd) and of socks seen but
    waiting to be published (docs/time.md; not in the table yet)."""
    socks = rows_as_dicts(rows, untaught)
    return {"session": session, "socks": socks, "odd": odd_of(socks), "unknown": unknown,
            "waiting": waiting, "updated_at": updated_at}


#: The ``sockpairs/status`` keys every runtime sends (docs/mqtt.md documents them).
STATUS_KEYS = ("status", "runtime", "session", "camera", "broker", "reason", "since", "updated_at",
               "received", "frames", "dead_letters", "duplicates", "socks", "published", "pending",
               "denied", "resets", "connects", "errors")
#: What ``status`` says: ``degraded`` when it runs but cannot do all of its job (a full disk, a
#: camera or model that is not ready, a broker that refuses results).
STATES = ("online", "degraded", "offline")


def status_message(**fields) -> dict:
    """The one ``sockpairs/status`` schema of serve, run and the lambda; absent keys are None."""
    unknown = set(fields) - set(STATUS_KEYS)
    if unknown:
        raise ValueError("not status keys: %s" % ", ".join(sorted(unknown)))
    if fields.get("status") not in STATES:
        raise ValueError("status must be one of %s" % ", ".join(STATES))
    return {key: fields.get(key) for key in STATUS_KEYS}


def offline_will() -> str:
    """The last will: what a subscriber sees when the runtime vanished without a word."""
    return dumps(status_message(status="offline", reason="connection lost"))


def frame_payload(label: str, probability: float, ts: float, frame: int, camera: str) -> dict:
    """The ``sockfound`` payload of one classified frame (the wire calls the label ``image``)."""
    return {"image": label, "probability": round(float(probability), 3), "ts": round(ts, 3),
            "frame": frame, "camera": camera}
