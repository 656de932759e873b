"""MQTT for the agent: the ``[mqtt]`` table, the broker connection, what is published.

Nothing here is imported unless the configuration has an ``[mqtt]`` table; aiomqtt (the
``mqtt`` extra) only when the connection runs (:meth:`MqttLink.run`).

The API other parts build on (stable; the receiving side, ``…/send`` and the mqtt
handler kind, uses only this):

* :func:`mqtt_config` (``[mqtt]`` → :class:`MqttConfig`, typed ConfigErrors), in
  :mod:`device.mqtt.config`, which imports nothing beyond the standard library;
* :class:`MqttLink` (:mod:`device.mqtt.link`):

  - ``link.topic("send/result")`` → ``"<topic_prefix>/send/result"``;
  - ``await link.publish(topic, payload, qos=None, retain=False)``: ``payload`` is
    bytes, str or a dict (sent as compact JSON); returns once the broker confirmed it;
    raises :class:`MqttUnavailable` at once when not connected (never waits for a
    broker that is away);
  - ``link.subscribe(filter, callback)``: ``callback(Incoming)`` (plain or async) for
    each message on a matching topic; subscribed again on every reconnect;
  - ``link.on_connect(async_callback)``: awaited after each (re)connection;
  - ``link.connected``, ``await link.wait_connected(timeout)``;
  - ``await link.run()`` (the connection task: last will, birth, reconnect with backoff)
    and ``link.stop()``.

Topics (under ``topic_prefix``, default ``smscmd/<hostname>``): ``status`` (retained:
``{"availability": "online" | "offline", ...}``, the last will says offline),
``commands/received``, ``commands/done``, ``outbox`` (see README "MQTT").
"""

from __future__ import annotations

from device.mqtt.config import MqttConfig, mqtt_config
from device.mqtt.link import Incoming, MqttLink, MqttUnavailable, topic_matches

__all__ = ["Incoming", "MqttConfig", "MqttLink", "MqttUnavailable", "mqtt_config", "topic_matches"]
