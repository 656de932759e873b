"""Home Assistant MQTT discovery (device/mqtt/discovery.py): the config payloads
against Home Assistant's documented discovery schema, their templates rendered with
Jinja2 (Home Assistant's template engine) over the agent's own payloads, and the
retained configs through a real Mosquitto (tests/mqtt/broker.py).

Sources (Home Assistant documentation, read for this test):

* https://www.home-assistant.io/integrations/mqtt/#discovery-topic: the topic is
  ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``, the prefix
  ``homeassistant`` by default, node_id and object_id only ``[a-zA-Z0-9_-]``; the
  configs are retained (or re-sent on Home Assistant's birth message); a ``device``
  needs ``identifiers`` or ``connections``, and ``unique_id`` for the entity to join it.
* https://www.home-assistant.io/integrations/sensor.mqtt: ``state_topic`` required;
  ``availability_topic`` with ``payload_available`` (default ``online``) and
  ``payload_not_available`` (default ``offline``), ``availability_template``,
  ``value_template``, ``json_attributes_topic``/``json_attributes_template``,
  ``device_class``, ``state_class``, ``unit_of_measurement``, ``qos``.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import pytest
from mqtt.broker import Mosquitto, Subscriber

from device.config import load_config
from device.errors import ConfigError
from device.mqtt import MqttLink, mqtt_config
from device.mqtt.discovery import Discovery, discovery_payloads
from device.retry import Backoff

#: The part of the documented schema these payloads use (sensor.mqtt's configuration
#: variables, the discovery page's device rule); no other key is allowed, so a typo in
#: a key name fails here instead of being ignored by Home Assistant.
SENSOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["state_topic", "unique_id", "device", "name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "unique_id": {"type": "string", "minLength": 1},
        "object_id": {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$"},
        "state_topic": {"type": "string", "pattern": "^[^#+]+$"},
        "value_template": {"type": "string"},
        "availability_topic": {"type": "string", "pattern": "^[^#+]+$"},
        "availability_template": {"type": "string"},
        "payload_available": {"type": "string"},
        "payload_not_available": {"type": "string"},
        "json_attributes_topic": {"type": "string", "pattern": "^[^#+]+$"},
        "json_attributes_template": {"type": "string"},
        "device_class": {"enum": ["signal_strength"]},
        "state_class": {"enum": ["measurement", "total", "total_increasing"]},
        "unit_of_measurement": {"type": "string"},
        "icon": {"type": "string", "pattern": "^mdi:"},
        "qos": {"enum": [0, 1, 2]},
        "origin": {"type": "object", "required": ["name"]},
        "device": {
            "type": "object",
            "anyOf": [{"required": ["identifiers"]}, {"required": ["connections"]}],
            "properties": {
                "identifiers": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "name": {"type": "string"},
                "manufacturer": {"type": "string"},
                "model": {"type": "string"},
                "sw_version": {"type": "string"},
            },
        },
    },
}
TOPIC = re.compile(r"^homeassistant/sensor/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config$")

#: What mqtt publishes on ``status`` (device/mqtt/events.py status_payload) and
#: ``commands/done``; the last will's ``status`` is ``{"availability": "offline"}``.
STATUS = {"availability": "online", "state": "ready", "registration": "home",
          "signal": "-67 dBm", "signal_dbm": -67}  # fmt: skip
DONE = {"id": 3, "state": "done", "command": "lights", "argument": "on",
        "reply": "lights are on", "error": None}  # fmt: skip


def config(**keys: object) -> Any:
    return mqtt_config({"url": "mqtt://127.0.0.1", "client_id": "smscmd-gw.1 a",
                        "topic_prefix": "smscmd/gw1", "discovery": True, **keys})  # fmt: skip


def test_payloads_follow_the_documented_schema() -> None:
    payloads = discovery_payloads(config())
    assert [topic for topic, _ in payloads] == [
        f"homeassistant/sensor/smscmd-gw_1_a/{name}/config"
        for name in ("modem_state", "registration", "signal", "last_command")
    ]
    for topic, payload in payloads:
        assert TOPIC.match(topic), topic
        jsonschema.validate(payload, SENSOR_SCHEMA)
        assert payload["availability_topic"] == "smscmd/gw1/status"  # the last will's topic
        assert (payload["payload_available"], payload["payload_not_available"]) == (
            "online", "offline")  # fmt: skip
    assert len({p["unique_id"] for _, p in payloads}) == 4
    assert len({json.dumps(p["device"]) for _, p in payloads}) == 1  # one device
    assert discovery_payloads(config(discovery_prefix="ha/disc"))[0][0].startswith("ha/disc/")


def render(template: str, payload: dict[str, Any]) -> str:
    """As Home Assistant renders an MQTT template: ``value_json`` is the parsed payload."""
    environment = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    return environment.from_string(template).render(value_json=payload, value=json.dumps(payload))


def test_the_templates_read_the_agents_payloads() -> None:
    by_id = {topic.split("/")[-2]: payload for topic, payload in discovery_payloads(config())}
    assert render(by_id["modem_state"]["value_template"], STATUS) == "ready"
    assert render(by_id["registration"]["value_template"], STATUS) == "home"
    assert render(by_id["signal"]["value_template"], STATUS) == "-67"
    assert by_id["last_command"]["state_topic"] == "smscmd/gw1/commands/done"
    assert render(by_id["last_command"]["value_template"], DONE) == "lights"
    attributes = render(by_id["last_command"]["json_attributes_template"], DONE)
    assert json.loads(attributes) == {"reply": "lights are on", "state": "done", "error": None}
    for payload in by_id.values():
        assert render(payload["availability_template"], STATUS) == "online"
        assert render(payload["availability_template"], {"availability": "offline"}) == "offline"


def test_the_keys_in_the_table(tmp_path: Path) -> None:
    conf = tmp_path / "smscmd.toml"
    conf.write_text('[mqtt]\nurl = "mqtt://h"\ndiscovery = true\ndiscovery_prefix = "ha"\n')
    mqtt = load_config(conf).mqtt
    assert mqtt is not None and (mqtt.discovery, mqtt.discovery_prefix) == (True, "ha")
    assert mqtt_config({"url": "mqtt://h"}).discovery is False
    for key, value in (("discovery", "yes"), ("discovery_prefix", "ha/#")):
        with pytest.raises(ConfigError) as caught:
            mqtt_config({"url": "mqtt://h", key: value})
        assert caught.value.key == f"mqtt.{key}"


async def test_configs_are_retained_on_the_broker(broker: Mosquitto) -> None:
    """A Home Assistant that subscribes after the agent connected still gets all four
    (retained), each republished on every connection."""
    table = {"url": broker.url, "client_id": "gw-1", "topic_prefix": "smscmd/gw1",
             "discovery": True, "keepalive": 5}  # fmt: skip
    link = MqttLink(mqtt_config(table), reconnect=Backoff(0.05, 0.2), timeout=3.0)
    Discovery(link).attach()
    task = asyncio.create_task(link.run())
    try:
        assert await link.wait_connected(10)
        async with Subscriber(broker, "homeassistant/#") as early:
            await early.wait_for(4)  # published (live or retained: the order is the race)
        async with Subscriber(broker, "homeassistant/#") as home_assistant:
            seen = await home_assistant.wait_for(4)  # after publication: retained ones
    finally:
        link.stop()
        await asyncio.wait_for(task, 10)
    assert sorted(m.topic for m in seen) == sorted(t for t, _ in
                                                   discovery_payloads(link.config))  # fmt: skip
    assert all(m.retain for m in seen)
    assert json.loads(seen[0].payload)["device"]["identifiers"] == ["gw-1"]
