"""``<prefix>/send`` (device/mqtt/send.py): a JSON request through a real Mosquitto
(tests/mqtt/broker.py) into a real journal's outbox, answered on ``…/send/result``;
every refusal a typed result, never an exception (hypothesis: any bytes).

Sources: MQTT 3.1.1 (OASIS, 2014) §4.3.2 (QoS 1, at least once: the same PUBLISH may
arrive twice, so a correlation id seen already is answered again, not queued again);
3GPP TS 23.038 §6.2.1 (the GSM 7-bit default alphabet and its extension table: ``€``
counts two septets; 160 septets per SMS, TS 23.040 §9.2.3.16).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt.broker import Mosquitto, Subscriber

from device.errors import JournalError
from device.journal import Journal, OutboxState
from device.mqtt import MqttLink, mqtt_config
from device.mqtt.send import REMEMBERED, SendError, SendTopic
from device.retry import Backoff

PREFIX = "smscmd/test"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "journal.sqlite3") as opened:
        yield opened


def queue_into(journal: Journal) -> Any:
    """What the agent's queue_send does, on a journal of the test's (default 000)."""

    async def queue_send(text: str, destination: str | None) -> dict[str, Any]:
        return journal.queue_outgoing(destination or "000", text).as_dict()

    return queue_send


class Offline:
    """A link that is never connected (for :meth:`SendTopic.handle` alone)."""

    def topic(self, name: str) -> str:
        return f"{PREFIX}/{name}"


def request(**body: object) -> bytes:
    return json.dumps(body).encode()


async def test_a_request_is_queued_once_and_answered_with_its_outbox_row(
    journal: Journal,
) -> None:
    send = SendTopic(Offline(), queue_into(journal))  # type: ignore[arg-type]
    first = await send.handle(request(correlation_id="c1", text="door opened"))
    assert first == {"correlation_id": "c1", "ok": True, "outbox_id": first["outbox_id"],
                     "state": "queued", "destination": "000"}  # fmt: skip
    (row,) = journal.outbox()
    assert (row.id, row.text, row.destination, row.state) == (
        first["outbox_id"], "door opened", "000", OutboxState.QUEUED)  # fmt: skip
    # A redelivery (or a client's retry) of the same id: the same answer, one row.
    again = await asyncio.gather(*(send.handle(request(correlation_id="c1", text="door opened"))
                                   for _ in range(3)))  # fmt: skip
    assert again == [first] * 3 and len(journal.outbox()) == 1
    other = await send.handle(request(correlation_id="c2", text="x", destination="+4915112345"))
    assert other["destination"] == "+4915112345" and len(journal.outbox()) == 2


@pytest.mark.parametrize(
    ("payload", "correlation", "kind"),
    [
        (b"not json", None, SendError.INVALID_REQUEST),
        (b"[1, 2]", None, SendError.INVALID_REQUEST),
        (request(text="no id"), None, SendError.INVALID_REQUEST),
        (request(correlation_id="", text="x"), "", SendError.INVALID_REQUEST),
        (request(correlation_id=7, text="x"), None, SendError.INVALID_REQUEST),
        (request(correlation_id="x" * 201, text="x"), "x" * 201, SendError.INVALID_REQUEST),
        (request(correlation_id="a"), "a", SendError.INVALID_TEXT),
        (request(correlation_id="a", text=""), "a", SendError.INVALID_TEXT),
        (request(correlation_id="a", text="€" * 81), "a", SendError.INVALID_TEXT),  # 162 septets
        (request(correlation_id="a", text="\u4e2d"), "a", SendError.INVALID_TEXT),  # not GSM 7
        (request(correlation_id="a", text="x", destination="12 34"), "a",
         SendError.INVALID_DESTINATION),
        (request(correlation_id="a", text="x", destination=123), "a",
         SendError.INVALID_DESTINATION),
    ],
)  # fmt: skip
async def test_refusals_are_typed_results_and_queue_nothing(
    journal: Journal, payload: bytes, correlation: str | None, kind: SendError
) -> None:
    send = SendTopic(Offline(), queue_into(journal))  # type: ignore[arg-type]
    result = await send.handle(payload)
    assert result["ok"] is False and result["correlation_id"] == correlation
    assert result["error"]["type"] == kind.value and result["error"]["message"]
    assert journal.outbox() == []


async def test_exactly_one_sms_is_taken_and_a_journal_failure_is_not_queued(
    journal: Journal,
) -> None:
    send = SendTopic(Offline(), queue_into(journal))  # type: ignore[arg-type]
    assert (await send.handle(request(correlation_id="a", text="€" * 80)))["ok"]  # 160 septets

    async def refuses(text: str, destination: str | None) -> dict[str, Any]:
        raise JournalError("database or disk is full")

    broken = SendTopic(Offline(), refuses)  # type: ignore[arg-type]
    result = await broken.handle(request(correlation_id="b", text="x"))
    assert result["error"] == {"type": "not_queued", "message": "database or disk is full"}
    # Not remembered: a retry of that id is tried again (here it queues).
    broken.queue_send = queue_into(journal)
    assert (await broken.handle(request(correlation_id="b", text="x")))["ok"]


async def test_the_remembered_ids_are_bounded(journal: Journal) -> None:
    send = SendTopic(Offline(), queue_into(journal))  # type: ignore[arg-type]
    for n in range(REMEMBERED + 1):
        await send.handle(request(correlation_id=f"id{n}", text="x"))
    assert len(send._results) == REMEMBERED
    await send.handle(request(correlation_id="id0", text="x"))  # forgotten: queued again
    assert len(journal.outbox(limit=None)) == REMEMBERED + 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(["correlation_id", "text", "destination", "x"]),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=200),
                              st.lists(st.integers(), max_size=3)),
                    max_size=4).map(lambda d: json.dumps(d).encode()),
))  # fmt: skip
def test_any_payload_gets_a_result_never_an_exception(payload: bytes) -> None:
    queued: list[tuple[str, str | None]] = []

    async def queue_send(text: str, destination: str | None) -> dict[str, Any]:
        queued.append((text, destination))
        return {"id": len(queued), "state": "queued", "destination": destination or "000"}

    send = SendTopic(Offline(), queue_send)  # type: ignore[arg-type]
    result = asyncio.run(send.handle(payload))
    assert set(result) >= {"correlation_id", "ok"}
    if result["ok"]:
        assert len(queued) == 1 and result["outbox_id"] == 1
    else:
        assert queued == [] and SendError(result["error"]["type"])


# -- through the broker ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(broker: Mosquitto, journal: Journal) -> AsyncIterator[MqttLink]:
    table = {"url": broker.url, "topic_prefix": PREFIX, "keepalive": 5}
    link = MqttLink(mqtt_config(table), reconnect=Backoff(0.05, 0.2), timeout=3.0)
    SendTopic(link, queue_into(journal)).attach()
    task = asyncio.create_task(link.run())
    try:
        assert await link.wait_connected(10)
        yield link
    finally:
        link.stop()
        await asyncio.wait_for(task, 10)


async def test_send_and_result_through_mosquitto(broker: Mosquitto, journal: Journal) -> None:
    import aiomqtt

    result_topic = f"{PREFIX}/send/result"
    async with serving(broker, journal), Subscriber(broker, result_topic) as results:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.publish(f"{PREFIX}/send", request(correlation_id="n1", text="hi"), qos=1)
            await client.publish(f"{PREFIX}/send", b"\xff garbage", qos=1)
            await client.publish(f"{PREFIX}/send", request(correlation_id="n1", text="hi"), qos=1)
        got = [json.loads(m.payload) for m in await results.wait_for(3)]
    ok = [r for r in got if r["ok"]]
    assert len(ok) == 2 and ok[0] == ok[1] and ok[0]["correlation_id"] == "n1"
    (bad,) = [r for r in got if not r["ok"]]
    assert (bad["correlation_id"], bad["error"]["type"]) == (None, "invalid_request")
    (row,) = journal.outbox()
    assert (row.id, row.text) == (ok[0]["outbox_id"], "hi")
