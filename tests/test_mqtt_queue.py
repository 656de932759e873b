"""The journal's MQTT publish queue (device/journal/publish.py) and the payloads of each
topic against their JSON Schemas (device/mqtt/schemas/), without a broker."""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.journal import InboxState, Journal, PublishEvent
from device.journal.schema import MIGRATIONS, migrate
from device.modem import ModemState
from device.mqtt.events import (
    Topic,
    done_payload,
    outbox_payload,
    received_payload,
    schema,
    status_payload,
)
from device.mqtt.link import OFFLINE


def validator(topic: Topic) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schema(topic), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def event(n: int, topic: str = "t") -> PublishEvent:
    return PublishEvent(topic, f'{{"n": {n}}}', qos=1)


def test_queue_in_order_and_delete_on_confirmation(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        first = journal.queue_publish([event(1), event(2, "u")], limit=10)
        second = journal.queue_publish([event(3)], limit=10)
        assert first.dropped == second.dropped == 0
        rows = journal.pending_publish()
        assert [r.payload for r in rows] == ['{"n": 1}', '{"n": 2}', '{"n": 3}']
        assert [r.id for r in rows] == [*first.ids, *second.ids] == sorted(r.id for r in rows)
        assert rows[1].topic == "u" and rows[0].qos == 1 and not rows[0].retain
        assert rows[0].created.tzinfo is not None
        assert journal.published([rows[0].id, rows[2].id]) == 2
        assert [r.payload for r in journal.pending_publish()] == ['{"n": 2}']
        assert journal.publish_queue_size() == 1
        assert journal.published([]) == 0


def test_the_bound_drops_the_oldest(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        journal.queue_publish([event(n) for n in range(3)], limit=3)
        outcome = journal.queue_publish([event(3), event(4)], limit=3)
        assert outcome.dropped == 2
        assert [r.payload for r in journal.pending_publish()] == [
            '{"n": 2}', '{"n": 3}', '{"n": 4}'
        ]
        with pytest.raises(ValueError, match="limit"):
            journal.queue_publish([event(5)], limit=0)
        with pytest.raises(ValueError, match="qos"):
            journal.queue_publish([PublishEvent("t", "{}", qos=3)], limit=3)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=8), st.integers(1, 10))
def test_any_batches_keep_the_newest_in_order(batches: list[int], limit: int) -> None:
    """Whatever the batch sizes, the queue holds the newest ``limit`` events in order,
    and the dropped counts add up to the rest."""
    with tempfile.TemporaryDirectory() as directory, Journal.open(
        Path(directory) / "j.sqlite3"
    ) as journal:
        n = dropped = 0
        for size in batches:
            dropped += journal.queue_publish([event(n + i) for i in range(size)],
                                             limit=limit).dropped  # fmt: skip
            n += size
        kept = [int(r.payload[6:-1]) for r in journal.pending_publish(1000)]
        assert kept == list(range(max(0, n - limit), n))
        assert dropped == n - len(kept)


def test_a_version_5_journal_gets_the_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path)
    for statements in MIGRATIONS[:5]:
        for sql in statements:
            raw.execute(sql)
    raw.execute("PRAGMA user_version = 5")
    raw.commit()
    migrate(raw, path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) >= 6
    raw.execute("INSERT INTO publish (topic, payload, retain, qos, created) "
                "VALUES ('t', '{}', 0, 1, '2026-01-01T00:00:00+00:00')")  # fmt: skip
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("INSERT INTO publish (topic, payload, retain, qos, created) "
                    "VALUES ('t', '{}', 0, 3, '2026-01-01T00:00:00+00:00')")  # fmt: skip
    raw.close()


def test_payloads_match_their_schemas(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        row, _ = journal.record_incoming(
            sender="000", timestamp=None, text="ping: 1", storage="SM", index=1
        )
        journal.start(row.id, command="ping", argument="1")
        outbox = journal.finish(row.id, reply="pong: 1", state=InboxState.DONE, reply_to="000")
        finished = journal.get_inbox(row.id)
        assert outbox is not None and finished is not None
        sent = journal.mark_sent(outbox.id, mr=7)
    for topic, payload in (
        (Topic.RECEIVED, received_payload(row)),
        (Topic.DONE, done_payload(finished, outbox)),
        (Topic.OUTBOX, outbox_payload(outbox)),
        (Topic.OUTBOX, outbox_payload(sent)),
    ):
        validator(topic).validate({"event": 1, **payload})
    status = status_payload(ModemState.READY, datetime.now(UTC), "registered, home",
                            "-73 dBm", 20, queued=0, dropped=0)  # fmt: skip
    assert status["signal_dbm"] == -73
    validator(Topic.STATUS).validate(status)
    validator(Topic.STATUS).validate(OFFLINE)
    unknown = status_payload(ModemState.PROBING, datetime.now(UTC), "unknown", "unknown", 99,
                             queued=1, dropped=2)  # fmt: skip
    assert unknown["signal_dbm"] is None
    validator(Topic.STATUS).validate(unknown)


def test_the_schemas_refuse_what_they_should() -> None:
    """The schemas are not vacuous: a missing field, an extra one, a wrong state."""
    received = {"event": 1, "id": 1, "received_at": "2026-01-01T00:00:00+00:00",
                "sender": "000", "timestamp": None, "command": "ping", "argument": None,
                "state": "received"}  # fmt: skip
    validator(Topic.RECEIVED).validate(received)
    for bad in (
        {k: v for k, v in received.items() if k != "event"},
        {**received, "extra": 1},
        {**received, "state": "sent"},
        {**received, "received_at": "yesterday"},
    ):
        assert not validator(Topic.RECEIVED).is_valid(bad), bad
    assert not validator(Topic.STATUS).is_valid({"availability": "online"})
    assert not validator(Topic.STATUS).is_valid({"availability": "offline", "state": "ready"})
