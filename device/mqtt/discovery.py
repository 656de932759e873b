"""Home Assistant MQTT discovery (``[mqtt] discovery = true``): the agent's modem state,
registration, signal and last command appear in Home Assistant as sensor entities of
one device, with no YAML on the Home Assistant side.

On every connection the agent publishes, retained, one config payload per entity to
``<discovery_prefix>/sensor/<node_id>/<object_id>/config`` (the topic format of
https://www.home-assistant.io/integrations/mqtt/#discovery-topic; ``node_id`` is the
client id with every character outside ``[a-zA-Z0-9_-]`` made ``_``, as that page
requires). The entities read what the agent publishes anyway:

==============  ==========================  ========================================
object_id       state topic                 value
==============  ==========================  ========================================
modem_state     ``<prefix>/status``         ``state`` (ready, waiting_for_network, ...)
registration    ``<prefix>/status``         ``registration``
signal          ``<prefix>/status``         ``signal_dbm`` (device class signal_strength, dBm)
last_command    ``<prefix>/commands/done``  ``command``; reply, state, error as attributes
==============  ==========================  ========================================

Availability is bound to the retained ``<prefix>/status`` (its ``availability`` key:
``online``, and ``offline`` from the last will or a clean stop), so every entity shows
unavailable while the agent is away. Keys as the MQTT sensor page documents them
(https://www.home-assistant.io/integrations/sensor.mqtt: ``state_topic`` required;
``unique_id`` and a ``device`` with ``identifiers``, needed to group them as one
device). The last command is not retained (``commands/done`` is an event): after a
Home Assistant restart it is unknown until the next command.

Edge case: turning discovery off leaves the retained configs on the broker (the
entities stay, unavailable); an empty retained payload on each config topic deletes
them (the README's ``mosquitto_pub -r -n`` line).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from device import __version__
from device.mqtt.config import MqttConfig
from device.mqtt.link import MqttUnavailable

if TYPE_CHECKING:
    from device.mqtt.link import MqttLink

LOGGER = logging.getLogger(__name__)

#: HA's character class for node_id and object_id.
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")

#: object_id → (name, state topic under the prefix, value template, extra keys).
ENTITIES: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "modem_state": ("Modem state", "status", "{{ value_json.state }}",
                    {"icon": "mdi:cellphone-wireless"}),
    "registration": ("Registration", "status", "{{ value_json.registration }}",
                     {"icon": "mdi:radio-tower"}),
    "signal": ("Signal", "status", "{{ value_json.signal_dbm }}",
               {"device_class": "signal_strength", "unit_of_measurement": "dBm",
                "state_class": "measurement"}),
    "last_command": ("Last command", "commands/done", "{{ value_json.command }}",
                     {"icon": "mdi:message-text", "json_attributes_topic": "commands/done",
                      "json_attributes_template":
                          "{{ {'reply': value_json.reply, 'state': value_json.state,"
                          " 'error': value_json.error} | tojson }}"}),
}  # fmt: skip


def node_id(config: MqttConfig) -> str:
    """The client id as HA's node_id (``[a-zA-Z0-9_-]`` only)."""
    return _UNSAFE.sub("_", config.client_id)


def config_topic(config: MqttConfig, object_id: str) -> str:
    return f"{config.discovery_prefix}/sensor/{node_id(config)}/{object_id}/config"


def discovery_payloads(config: MqttConfig) -> list[tuple[str, dict[str, Any]]]:
    """``(topic, payload)`` of every entity's config (see the module docstring)."""
    node = node_id(config)
    prefix = config.topic_prefix
    device = {
        "identifiers": [node],
        "name": f"smscmd {config.client_id}",
        "manufacturer": "smscmd",
        "model": "SMS commands agent",
        "sw_version": __version__,
    }
    out = []
    for object_id, (name, state, template, extra) in ENTITIES.items():
        payload: dict[str, Any] = {
            "name": name,
            "unique_id": f"{node}_{object_id}",
            "object_id": f"{node}_{object_id}",
            "state_topic": f"{prefix}/{state}",
            "value_template": template,
            "availability_topic": f"{prefix}/status",
            "availability_template": "{{ value_json.availability }}",
            "payload_available": "online",
            "payload_not_available": "offline",
            "qos": config.qos,
            "device": device,
            "origin": {"name": "smscmd", "sw_version": __version__},
        }
        for key, value in extra.items():
            payload[key] = f"{prefix}/{value}" if key.endswith("_topic") else value
        out.append((config_topic(config, object_id), payload))
    return out


class Discovery:
    """Publishes :func:`discovery_payloads` (retained) on every connection of ``link``."""

    def __init__(self, link: MqttLink) -> None:
        self.link = link

    def attach(self) -> None:
        self.link.on_connect(self.publish)

    async def publish(self) -> None:
        """Publish every config; a failure is logged (the next connection tries again)."""
        for topic, payload in discovery_payloads(self.link.config):
            try:
                await self.link.publish(topic, payload, retain=True)
            except MqttUnavailable as exc:
                LOGGER.warning("Home Assistant discovery not published: %s", exc)
                return


__all__ = ["ENTITIES", "Discovery", "config_topic", "discovery_payloads", "node_id"]
