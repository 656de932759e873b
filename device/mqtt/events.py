"""What the agent publishes: the payload of each topic, and the observer that makes them.

Topics (under ``topic_prefix``; the JSON Schema of each payload is
``device/mqtt/schemas/<name>.schema.json``, the name with ``/`` as ``-``):

* ``commands/received`` -- each message committed to the journal, refused ones included:
  ``id`` (the inbox row's journal id), ``received_at``, ``sender``, ``timestamp`` (the
  SMSC's, null when none), ``command``, ``argument``, ``state``;
* ``commands/done`` -- each command finished: ``id``, ``state`` (done or failed),
  ``command``, ``argument``, ``reply``, ``error``, ``outbox_id`` (its queued reply, null
  when none), ``finished_at`` (when the agent reported it, right after the journal);
* ``outbox`` -- each outbox change (a reply queued, sent, a send failed or retried):
  ``id`` (the outbox row's journal id), ``inbox_id``, ``destination``, ``state``,
  ``attempts``, ``mr``, ``last_error``, ``updated_at``, ``next_attempt_at``;
* ``status`` (retained, not queued: only the latest matters) -- ``availability``,
  ``state`` (the modem lifecycle), ``since``, ``registration``, ``signal``,
  ``signal_dbm``, ``queued`` (events waiting for the broker), ``dropped`` (events lost
  to the queue bound since the agent started), ``updated_at``.

Every queued event also carries ``event``: its row id in the journal's publish queue,
increasing, and the same when an event is published again (at-least-once): the key a
consumer de-duplicates on. Times are ISO 8601 with their offset (UTC). The payload
texts are the SMS's as journaled; nothing is truncated.

:class:`MqttEvents` is the agent's observer: its hooks only append to a list in memory
(never blocking the agent) and wake the bridge, which journals them
(:mod:`device.mqtt.bridge`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from device.commands import parse_payload
from device.journal import InboxRow, OutboxRow
from device.modem import ModemState
from device.observer import AgentObserver


class Topic(enum.Enum):
    """The topics the agent publishes, as names under ``topic_prefix``."""

    RECEIVED = "commands/received"
    DONE = "commands/done"
    OUTBOX = "outbox"
    STATUS = "status"

    @property
    def schema_name(self) -> str:
        """The schema file's stem: ``commands-received``."""
        return self.value.replace("/", "-")


def schema(topic: Topic) -> dict[str, Any]:
    """The JSON Schema of ``topic``'s payloads (shipped with the package)."""
    text = resources.files("device.mqtt").joinpath("schemas", f"{topic.schema_name}.schema.json")
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def received_payload(row: InboxRow) -> dict[str, Any]:
    """``command`` and ``argument`` as the executor will parse them (the row has them
    only once started): for a refused message too, which never runs; an empty name is
    null."""
    parsed = parse_payload(row.text)
    return {
        "id": row.id,
        "received_at": _iso(row.received_at),
        "sender": row.sender,
        "timestamp": _iso(row.timestamp),
        "command": row.command or parsed.name or None,
        "argument": row.argument if row.command else parsed.argument,
        "state": row.state.value,
    }


def done_payload(row: InboxRow, outbox: OutboxRow | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.state.value,
        "command": row.command,
        "argument": row.argument,
        "reply": row.reply,
        "error": row.error,
        "outbox_id": outbox.id if outbox is not None else None,
        "finished_at": datetime.now(UTC).isoformat(),
    }


def outbox_payload(row: OutboxRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "inbox_id": row.inbox_id,
        "destination": row.destination,
        "state": row.state.value,
        "attempts": row.attempts,
        "mr": row.mr,
        "last_error": row.last_error,
        "updated_at": _iso(row.updated_at),
        "next_attempt_at": _iso(row.next_attempt_at),
    }


def status_payload(
    state: ModemState,
    since: datetime,
    registration: str,
    signal: str,
    rssi: int | None,
    *,
    queued: int,
    dropped: int,
) -> dict[str, Any]:
    """The retained ``status``: ``signal_dbm`` from the ``+CSQ`` rssi (27.007 §8.5:
    0..31 is -113 + 2·rssi dBm, 99 unknown → null)."""
    dbm = -113 + 2 * rssi if rssi is not None and 0 <= rssi <= 31 else None
    return {
        "availability": "online",
        "state": state.value,
        "since": since.isoformat(timespec="seconds"),
        "registration": registration,
        "signal": signal,
        "signal_dbm": dbm,
        "queued": queued,
        "dropped": dropped,
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class MqttEvents(AgentObserver):
    """The agent's observer for MQTT: each hook appends ``(topic, payload)`` to
    :attr:`pending` and calls ``wake`` (both on the event loop; nothing waits)."""

    def __init__(self, wake: Callable[[], None], on_state: Callable[[], None]) -> None:
        self.pending: list[tuple[Topic, dict[str, Any]]] = []
        self._wake = wake
        self._on_state = on_state

    def _add(self, topic: Topic, payload: dict[str, Any]) -> None:
        self.pending.append((topic, payload))
        self._wake()

    def received(self, row: InboxRow) -> None:
        self._add(Topic.RECEIVED, received_payload(row))

    def replied(self, row: InboxRow, outbox: OutboxRow | None) -> None:
        self._add(Topic.DONE, done_payload(row, outbox))
        if outbox is not None:
            self._add(Topic.OUTBOX, outbox_payload(outbox))

    def sent(self, outbox: OutboxRow) -> None:
        self._add(Topic.OUTBOX, outbox_payload(outbox))

    def send_failed(self, outbox: OutboxRow) -> None:
        self._add(Topic.OUTBOX, outbox_payload(outbox))

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        self._on_state()


__all__ = [
    "MqttEvents",
    "Topic",
    "done_payload",
    "outbox_payload",
    "received_payload",
    "status_payload",
]
