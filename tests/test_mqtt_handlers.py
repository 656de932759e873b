"""The MQTT handler kind (``[handlers."<name>"] mqtt = true``, device/mqtt/handlers.py):
the table's validation, then the request/response round trip through a real Mosquitto
(tests/mqtt/broker.py) with a responder of the test's own playing the Node-RED flow.

Sources: MQTT 3.1.1 (OASIS, 2014) §4.7.1 (``+`` matches one topic level: the agent's
one subscription ``…/handlers/+/response`` serves every handler) and §4.3.2 (QoS 1 is
at least once: a consumer may see a request twice, hence the journal id in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mqtt.broker import Mosquitto

from device.commands import CommandContext, Dispatcher, StatusSnapshot
from device.config import load_config
from device.errors import ConfigError
from device.mqtt import MqttLink, mqtt_config
from device.mqtt.handlers import RemoteHandlers, parse_response
from device.preflight import build_registry
from device.retry import Backoff

PREFIX = "smscmd/test"
BROKER = '[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "smscmd.toml"
    path.write_text(text)
    return path


# -- the table ------------------------------------------------------------------------


def test_an_mqtt_table_is_a_handler_of_its_own_kind(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BROKER + '[handlers."Lights"]\nmqtt = true\n'
                               'timeout = 2.5\nsummary = "Node-RED"\n'))  # fmt: skip
    (cfg,) = config.handlers
    assert (cfg.name, cfg.mqtt, cfg.argv, cfg.timeout) == ("lights", True, None, 2.5)
    handler = build_registry(config).get("lights")
    assert handler is not None
    assert (handler.summary, handler.idempotent) == ("Node-RED", False)  # never run twice
    declared = load_config(write(tmp_path, BROKER + '[handlers."x"]\nmqtt = true\n'
                                 "idempotent = true\n"))  # fmt: skip
    assert build_registry(declared).get("x").idempotent  # type: ignore[union-attr]
    # mqtt = false is as if not given: an exec table.
    plain = load_config(write(tmp_path, '[handlers."y"]\nargv = ["/bin/true"]\nmqtt = false\n'))
    assert plain.handlers[0].mqtt is False and plain.handlers[0].argv == ("/bin/true",)


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('[handlers."x"]\nmqtt = true\n', 'handlers."x".mqtt', "needs the [mqtt] table"),
        (BROKER + '[handlers."x"]\nmqtt = true\nargv = ["/bin/true"]\n', 'handlers."x".mqtt',
         "has no program"),
        (BROKER + '[handlers."x"]\nmqtt = true\nenv = {A = "1"}\n', 'handlers."x".mqtt',
         "has no program"),
        (BROKER + '[handlers."a/b"]\nmqtt = true\n', 'handlers."a/b".mqtt', "one topic level"),
        (BROKER + '[handlers."a+"]\nmqtt = true\n', 'handlers."a+".mqtt', "one topic level"),
        (BROKER + '[handlers."x"]\nmqtt = "yes"\n', 'handlers."x".mqtt', "true or false"),
        (BROKER + '[handlers."ping"]\nmqtt = true\n', 'handlers."ping"', "exists already"),
    ],
)  # fmt: skip
def test_bad_mqtt_tables_are_typed_errors(tmp_path: Path, text: str, key: str,
                                          message: str) -> None:  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        build_registry(load_config(write(tmp_path, text)))
    assert caught.value.key == key
    assert message in str(caught.value)


def test_parse_response_shapes() -> None:
    assert parse_response({"reply": " on "}).reply == "on"
    assert parse_response({"reply": "  "}).reply is None
    assert parse_response({}).reply is None and parse_response({}).error is None
    assert parse_response({"reply": 3}).error == "invalid MQTT response: reply is int"
    assert parse_response({"reply": "x", "error": ["no"]}).error == (
        "invalid MQTT response: error is list"
    )
    assert parse_response({"error": "relay stuck"}) == parse_response({"error": "relay stuck"})


# -- the round trip -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connected(broker: Mosquitto) -> AsyncIterator[tuple[MqttLink, RemoteHandlers]]:
    """The agent's link with the handlers attached before it connects (as the service
    does: the response subscription is made before ``connected`` is set)."""
    table = {"url": broker.url, "topic_prefix": PREFIX, "keepalive": 5}
    link = MqttLink(mqtt_config(table), reconnect=Backoff(0.05, 0.2), timeout=3.0)
    remote = RemoteHandlers()
    remote.attach(link)
    task = asyncio.create_task(link.run())
    try:
        assert await link.wait_connected(10)
        yield link, remote
    finally:
        link.stop()
        await asyncio.wait_for(task, 10)


def context(name: str, argument: str | None = "on", journal_id: int = 7) -> CommandContext:
    when = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    snapshot = StatusSnapshot("ready", "home", "-67 dBm")
    return CommandContext(name, argument, "000", when, journal_id, lambda: snapshot)


def dispatcher(remote: RemoteHandlers, tmp_path: Path, extra: str = "") -> Dispatcher:
    config = load_config(write(tmp_path, BROKER + '[handlers."lights"]\nmqtt = true\n'
                               f"timeout = 2.0\n{extra}"))  # fmt: skip
    return Dispatcher(build_registry(config, remote.handler), timeout=30)


class Responder:
    """The flow's side: answers each request on ``…/handlers/lights/request`` with
    ``answer(request)`` (None: stays silent), as a separate MQTT client."""

    def __init__(self, broker: Mosquitto, answer: Any) -> None:
        self.broker, self.answer = broker, answer
        self.requests: list[dict[str, Any]] = []

    async def run(self) -> None:
        import aiomqtt

        async with aiomqtt.Client("127.0.0.1", self.broker.port) as client:
            await client.subscribe(f"{PREFIX}/handlers/+/request", qos=1)
            self.ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                request = json.loads(message.payload)
                self.requests.append(request)
                for topic, body in self.answer(request, str(message.topic)):
                    await client.publish(topic, body, qos=1)

    async def __aenter__(self) -> Responder:
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self.run())
        await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def reply_to(request: dict[str, Any], topic: str) -> list[tuple[str, bytes]]:
    """Answer on the response topic beside the request's, with the correlation id."""
    response = topic.rsplit("/", 1)[0] + "/response"
    body = {"correlation_id": request["correlation_id"],
            "reply": f"{request['command']} {request['argument']}"}  # fmt: skip
    return [(response, json.dumps(body).encode())]


async def test_a_command_is_forwarded_and_the_response_is_the_reply(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async with connected(broker) as (_, remote), Responder(broker, reply_to) as flow:
        outcome = await dispatcher(remote, tmp_path).dispatch(context("lights"))
    assert (outcome.reply, outcome.ok) == ("lights on", True)
    (request,) = flow.requests
    assert request["journal_id"] == 7 and request["sender"] == "000"
    assert (request["command"], request["argument"]) == ("lights", "on")
    assert request["timestamp"] == "2026-12-02T06:00:00+00:00"
    deadline = datetime.fromisoformat(request["deadline"])
    assert 0 < (deadline - datetime.now(UTC)).total_seconds() <= 2.0
    assert remote.in_flight == 0


async def test_concurrent_requests_are_matched_by_correlation_id(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Responses arrive in the reverse order of the requests (the flow holds them until
    it has all three) and each run gets its own."""
    held: list[tuple[str, bytes]] = []

    def in_reverse(request: dict[str, Any], topic: str) -> list[tuple[str, bytes]]:
        held.extend(reply_to(request, topic))
        return list(reversed(held)) if len(held) == 3 else []

    async with connected(broker) as (_, remote), Responder(broker, in_reverse):
        run = dispatcher(remote, tmp_path, "concurrency = 3\n")
        outcomes = await asyncio.gather(*(run.dispatch(context("lights", arg, i))
                                          for i, arg in enumerate(["a", "b", "c"])))  # fmt: skip
    assert [o.reply for o in outcomes] == ["lights a", "lights b", "lights c"]


async def test_silence_is_a_timeout_and_a_late_or_foreign_answer_is_dropped(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import aiomqtt

    async with connected(broker) as (_, remote):
        async with Responder(broker, lambda request, topic: []) as flow:
            outcome = await dispatcher(remote, tmp_path).dispatch(context("lights"))
        assert (outcome.reply, outcome.ok) == ("error: lights timed out", False)
        assert outcome.error == "no MQTT response within 2 s"
        assert remote.in_flight == 0
        # The answer comes now: nothing waits for it, it is logged and dropped.
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            late = {"correlation_id": flow.requests[0]["correlation_id"], "reply": "late"}
            await client.publish(f"{PREFIX}/handlers/lights/response", json.dumps(late), qos=1)
            await client.publish(f"{PREFIX}/handlers/lights/response", b"not json", qos=1)
        for _ in range(250):
            if "not JSON" in caplog.text:
                break
            await asyncio.sleep(0.02)  # poll the log, bounded
    assert "matches no request in flight" in caplog.text and "not JSON" in caplog.text


async def test_an_error_response_fails_the_command_with_its_reply(
    broker: Mosquitto, tmp_path: Path
) -> None:
    def fails(request: dict[str, Any], topic: str) -> list[tuple[str, bytes]]:
        response = topic.rsplit("/", 1)[0] + "/response"
        body = {"correlation_id": request["correlation_id"], "error": "relay stuck"}
        return [(response, json.dumps(body).encode())]

    async with connected(broker) as (_, remote), Responder(broker, fails):
        outcome = await dispatcher(remote, tmp_path).dispatch(context("lights"))
    assert (outcome.reply, outcome.ok, outcome.error) == ("error: lights failed", False,
                                                          "relay stuck")  # fmt: skip


async def test_broker_down_is_the_handlers_error_reply_at_once(
    broker: Mosquitto, tmp_path: Path
) -> None:
    async with connected(broker) as (link, remote):
        broker.stop()
        for _ in range(250):
            if not link.connected:
                break
            await asyncio.sleep(0.02)  # poll the link's state, bounded
        started = asyncio.get_running_loop().time()
        outcome = await dispatcher(remote, tmp_path).dispatch(context("lights"))
        elapsed = asyncio.get_running_loop().time() - started
    assert (outcome.reply, outcome.ok) == ("error: lights unavailable", False)
    assert elapsed < 1.0  # no wait for the timeout
    unbound = RemoteHandlers()  # check-config's: never attached
    outcome = await dispatcher(unbound, tmp_path).dispatch(context("lights"))
    assert outcome.reply == "error: lights unavailable"
