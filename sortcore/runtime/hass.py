"""Home Assistant MQTT discovery: the retained configs that make a runtime a device in HA.

Each entity is one retained JSON config on ``<prefix>/<component>/<node>/<object>/config``
(prefix ``homeassistant`` by default); an empty retained payload on the same topic removes
the entity. The entities read what every runtime already publishes, retained:

- ``sockpairs/state``: socks seen, pairs, odd socks, unrecognised socks;
- ``sockpairs/status``: frames, dead letters, the service status (its other keys are the
  status entity's attributes).

Availability is the status topic: ``offline`` (a clean stop, or the last will of a killed
process) makes the entities unavailable; ``online`` and ``degraded`` keep them available.
A button publishes ``{"cmd": "reset"}`` on ``sockpairs/control``: a new sorting session.
``topics`` renames topics the way a link does (``topic_prefix``). Python 3.7 compatible.
"""

import re
from typing import Dict, List, Tuple

from .. import __version__
from ..core.messages import TOPIC_CONTROL, TOPIC_STATE, TOPIC_STATUS, dumps
from ..core.settings import BY_NAME

DEFAULT_PREFIX = BY_NAME["ha_prefix"].default  # "homeassistant"
RESET_PAYLOAD = '{"cmd": "reset"}'
ONLINE_TEMPLATE = "{{ 'offline' if value_json.status == 'offline' else 'online' }}"

# object id, component, name, source topic, value template, extra keys
ENTITIES = (
    ("socks_seen", "sensor", "Socks seen", TOPIC_STATE,
     "{{ value_json.socks | sum(attribute='number_socks_seen') + value_json.unknown }}",
     {"state_class": "total_increasing", "unit_of_measurement": "socks", "icon": "mdi:sock"}),
    ("pairs", "sensor", "Pairs", TOPIC_STATE, "{{ value_json.socks | sum(attribute='pairs') }}",
     {"state_class": "total_increasing", "unit_of_measurement": "pairs", "icon": "mdi:sock"}),
    ("odd_socks", "sensor", "Odd socks", TOPIC_STATE, "{{ value_json.odd | length }}",
     {"state_class": "measurement", "unit_of_measurement": "socks", "icon": "mdi:sock"}),
    ("unrecognised_socks", "sensor", "Unrecognised socks", TOPIC_STATE, "{{ value_json.unknown }}",
     {"state_class": "total_increasing", "unit_of_measurement": "socks", "icon": "mdi:help-circle-outline"}),
    ("frames", "sensor", "Frames", TOPIC_STATUS, "{{ value_json.frames }}",
     {"state_class": "total_increasing", "unit_of_measurement": "frames", "entity_category": "diagnostic"}),
    ("dead_letters", "sensor", "Dead letters", TOPIC_STATUS, "{{ value_json.dead_letters }}",
     {"state_class": "total_increasing", "unit_of_measurement": "messages", "entity_category": "diagnostic"}),
    ("status", "sensor", "Service status", TOPIC_STATUS, "{{ value_json.status }}",
     {"entity_category": "diagnostic", "icon": "mdi:list-status"}),
    ("new_session", "button", "New session", TOPIC_CONTROL, None,
     {"payload_press": RESET_PAYLOAD, "qos": 1, "retain": False, "icon": "mdi:restart"}),
)


def node_id(name: str) -> str:
    """A discovery node id from a camera or client name: only ``[a-zA-Z0-9_-]``."""
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_") or "sortcore"
    return slug if slug.startswith("sortcore") else "sortcore_" + slug


def config_topic(prefix: str, component: str, node: str, object_id: str) -> str:
    return "%s/%s/%s/%s/config" % (prefix, component, node, object_id)


def entity_config(object_id, component, name, source, template, extra, node, device, topics) -> dict:
    """One entity's config (see the module docstring)."""
    topic = topics.get(source, source)
    config = {"name": name, "unique_id": "%s_%s" % (node, object_id), "device": device,
              "origin": {"name": "sortcore", "sw_version": __version__}}
    if component == "button":
        config["command_topic"] = topic
    else:
        config.update(state_topic=topic, value_template=template)
    if object_id == "status":  # the status shows offline itself; its keys become attributes
        config["json_attributes_topic"] = topic
    else:
        status = topics.get(TOPIC_STATUS, TOPIC_STATUS)
        config["availability"] = [{"topic": status, "value_template": ONLINE_TEMPLATE,
                                   "payload_available": "online", "payload_not_available": "offline"}]
    config.update(extra)
    return config


def discovery_messages(name: str, runtime: str, topics: Dict[str, str] = None, prefix: str = DEFAULT_PREFIX,
                       enabled: bool = True) -> List[Tuple[str, str]]:
    """``(topic, payload)`` of every entity of the runtime called ``name`` (its camera or
    client id), to publish retained; ``enabled=False``: the empty payloads that remove them."""
    node, topics = node_id(name), topics or {}
    device = {"identifiers": [node], "name": name if name.startswith("sortcore") else "sortcore " + name,
              "manufacturer": "sortcore", "model": "sortcore " + runtime, "sw_version": __version__}
    messages = []
    for entity in ENTITIES:
        object_id, component = entity[0], entity[1]
        payload = dumps(entity_config(*entity, node=node, device=device, topics=topics)) if enabled else ""
        messages.append((config_topic(prefix, component, node, object_id), payload))
    return messages
