"""The JSON results sortcore publishes and prints (one place for their shape)."""

import json
from typing import Iterable, List

TOPIC_FRAMES = "sockfound"
TOPIC_PAIRS = "sockpairs"
TOPIC_STATE = "sockpairs/state"
TOPIC_STATUS = "sockpairs/status"
TOPIC_CONTROL = "sockpairs/control"


def dumps(obj) -> str:
    """Compact JSON; NaN is refused so consumers never see it."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def sock_message(session: int, event) -> dict:
    """The ``sockpairs`` message for one confirmed sock (a SockConfirmed event).

    An unrecognised sock has ``"image": "Unknown"``, ``"pair_seen":
    "Unrecognised"``, ``"pairs": 0`` and ``number_socks_seen`` = the
    session's unrecognised socks so far.
    """
    row = event.row
    return {
        "session": session,
        "sighting": event.sighting,
        "image": event.image,
        "number_socks_seen": row.number_socks_seen,
        "pair_seen": row.pair_seen,
        "pairs": row.pairs,
        "camera": event.camera,
        "first_seen": event.first_seen,
        "confirmed_at": event.confirmed_at,
        "frames": event.frames,
        "mean_probability": round(event.mean_probability, 3),
    }


def rows_as_dicts(rows: Iterable) -> List[dict]:
    """Pairs rows (PairsRow tuples or store dicts) as plain dicts."""
    keys = ("image", "number_socks_seen", "pair_seen", "pairs")
    return [dict(row) if isinstance(row, dict) else dict(zip(keys, row)) for row in rows]


def odd_of(rows: Iterable) -> List[str]:
    """Designs with an odd sock left, from pairs rows."""
    return [row["image"] for row in rows_as_dicts(rows) if row["number_socks_seen"] % 2]


def state_message(session: int, rows, updated_at: float, unknown: int = 0) -> dict:
    """The retained ``sockpairs/state``: the whole table, the odd socks and the
    number of unrecognised socks (never a row, never odd)."""
    socks = rows_as_dicts(rows)
    return {"session": session, "socks": socks, "odd": odd_of(socks), "unknown": unknown,
            "updated_at": updated_at}
