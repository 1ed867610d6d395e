"""``GET /metrics``: the status page's snapshot in the Prometheus text format.

The numbers are the ones the ``sockpairs/status`` message carries (the runtime's
counters since it started, the outbox backlog) and the session's table (pairs, odd
and unrecognised socks), read from the same :class:`~sortcore.web.live.LiveView`
snapshot the page draws, so a scrape never disagrees with the page or the status
topic. The exposition is prometheus_client's own, imported only when /metrics is
asked for (the server imports this module lazily; see docs/web.md).
"""

from typing import Tuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..core.messages import STATES

PREFIX = "sortcore_"
#: The classic text format, which every scraper reads. prometheus_client's CONTENT_TYPE_LATEST
#: says 1.0.0 from 0.22 on (0.0.4 before), for the same bytes with names like ours; its own
#: server still answers 0.0.4 to a scraper that asks for nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: status key -> (counter name without ``_total``, help)
COUNTERS = (
    ("received", "received", "MQTT messages received on sockfound since the service started."),
    ("frames", "frames", "Frames counted (fed to the engine) since the service started."),
    ("dead_letters", "dead_letters", "Frames or messages refused as dead letters since the service started."),
    ("duplicates", "duplicates", "Redelivered frames counted once since the service started."),
    ("socks", "socks_confirmed", "Socks confirmed since the service started (all sessions)."),
    ("published", "published", "Results the broker acknowledged since the service started."),
    ("resets", "resets", "New sorting sessions started since the service started."),
    ("connects", "connects", "Connections to the broker since the service started."),
    ("errors", "errors", "Failures retried by the camera loop since the service started."),
)
#: status key -> (gauge name, help)
GAUGES = (
    ("pending", "outbox_pending", "Results stored but not yet acknowledged by every destination."),
    ("denied", "outbox_denied", "Results the broker refused (not authorised), kept to retry."),
    ("since", "start_time_seconds", "When the service started (Unix time)."),
    ("updated_at", "status_updated_timestamp_seconds", "When the status these numbers come from was made."),
)


def _gauge(name: str, doc: str, value, labels=None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, doc, labels=sorted(labels or {}))
    family.add_metric([labels[key] for key in sorted(labels or {})], value)
    return family


class _Snapshot(object):
    """A one-scrape collector over one snapshot."""

    def __init__(self, snapshot: dict):
        self.snapshot = snapshot

    def collect(self):
        status = self.snapshot.get("status") or {}
        state = status.get("status")
        yield _gauge("up", "1 while the service runs (online or degraded), 0 once it stopped or"
                     " before its first status.", 1 if state in ("online", "degraded") else 0)
        family = GaugeMetricFamily(PREFIX + "state", "The service's status: 1 on the current one.",
                                   labels=["state"])
        for name in STATES:
            family.add_metric([name], 1 if state == name else 0)
        yield family
        yield _gauge("info", "What runs: the runtime and its camera.", 1,
                     {"runtime": str(status.get("runtime") or ""), "camera": str(status.get("camera") or "")})
        if status.get("broker") in ("connected", "disconnected"):
            yield _gauge("broker_connected", "1 when every broker link is connected.",
                         1 if status["broker"] == "connected" else 0)
        for key, name, doc in COUNTERS:
            if isinstance(status.get(key), (int, float)):
                yield CounterMetricFamily(PREFIX + name, doc, value=status[key])
        for key, name, doc in GAUGES:
            if isinstance(status.get(key), (int, float)):
                yield _gauge(name, doc, status[key])
        for family in self._session():
            yield family

    def _session(self):
        snap = self.snapshot
        rows = snap.get("rows") or []
        if snap.get("session") is not None:
            yield _gauge("session", "The current sorting session's id.", snap["session"])
        yield _gauge("session_socks", "Socks of a known design in the current session.",
                     sum(r["number_socks_seen"] or 0 for r in rows))
        yield _gauge("session_pairs", "Pairs in the current session.", sum(r["pairs"] or 0 for r in rows))
        yield _gauge("session_odd_socks", "Designs with an odd sock left in the current session.",
                     len(snap.get("odd") or ()))
        yield _gauge("session_unrecognised_socks", "Unrecognised socks in the current session.",
                     snap.get("unknown") or 0)
        family = GaugeMetricFamily(PREFIX + "design_socks", "Socks of each design in the current session.",
                                   labels=["design"])
        for row in rows:
            family.add_metric([str(row["image"])], row["number_socks_seen"] or 0)
        yield family


def exposition(snapshot: dict) -> Tuple[bytes, str]:
    """``(body, content type)`` of a scrape of ``snapshot`` (:meth:`LiveView.snapshot`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(snapshot))
    return generate_latest(registry), CONTENT_TYPE
