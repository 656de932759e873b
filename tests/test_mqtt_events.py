"""What the agent publishes, end to end: hostsim on a pty, the real ``smscmd run`` with
an ``[mqtt]`` table, a real Mosquitto (tests/mqtt/broker.py) and a subscriber of the
test's own. Every payload is validated against its JSON Schema (device/mqtt/schemas/).

The broker being away never holds up a reply (RELIABILITY.md: nothing lost, never run
twice): the events wait in the journal's publish queue and arrive, in order, once the
broker is back; the queue is bounded (``queue_max``) and says what it dropped.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from harness import running_agent
from mqtt.broker import Mosquitto, Received, Subscriber

from device.commands import StatusSnapshot
from device.errors import JournalError
from device.journal import Journal, PublishRow
from device.modem import ModemState
from device.mqtt import mqtt_config
from device.mqtt.bridge import MqttBridge
from device.mqtt.events import Topic, schema
from device.sms.charset import Charset
from hostsim.pty import SimulatedModem
from hostsim.sim import HostSim

WAIT = 20.0
PREFIX = "smscmd/e2e"
#: The topic of each Topic under PREFIX.
TOPICS = {f"{PREFIX}/{t.value}": t for t in Topic}

pytestmark = pytest.mark.async_timeout(120)


def config(tmp: Path, url: str, **keys: object) -> Path:
    lines = [f'url = "{url}"', f'topic_prefix = "{PREFIX}"', "keepalive = 5"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    path = tmp / "mqtt.toml"
    path.write_text("[mqtt]\n" + "\n".join(lines) + "\n")
    return path


def agent(tmp: Path, port: str, conf: Path) -> Any:
    """``smscmd run`` with ``conf`` and a control socket of its own (with --config the
    harness leaves the socket to the file: the default one would be shared)."""
    return running_agent(tmp, port, "--config", str(conf), "--socket", str(tmp / "agent.sock"),
                         "--log-level", "DEBUG", stop_timeout=WAIT)  # fmt: skip


async def ready_for_sms(gw: SimulatedModem) -> None:
    await gw.wait_until(lambda m: m.settings.cscs is Charset.UCS2 and m.settings.csdh, WAIT)


def check(message: Received) -> dict[str, Any]:
    """The payload, validated against its topic's schema (date-times checked too)."""
    payload: dict[str, Any] = json.loads(message.payload)
    validator = jsonschema.Draft202012Validator(
        schema(TOPICS[message.topic]), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(payload)
    return payload


def events(sub: Subscriber) -> list[tuple[Topic, dict[str, Any]]]:
    """The queued events received (not status), each checked against its schema."""
    out = []
    for message in sub.messages:
        topic = TOPICS[message.topic]
        if topic is not Topic.STATUS:
            out.append((topic, check(message)))
    return out


async def event_count(sub: Subscriber, count: int, timeout: float = WAIT) -> list[Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got := events(sub)) < count:
        assert loop.time() < deadline, f"{len(got)} of {count} events: {got}"
        await sub.wait_for(len(sub.messages) + 1, timeout=max(0.01, deadline - loop.time()))
    return got


async def test_a_command_publishes_its_events_in_order(tmp_path: Path, broker: Mosquitto) -> None:
    async with Subscriber(broker, f"{PREFIX}/#") as sub, HostSim() as sim:
        gw = sim.modems[0]
        async with agent(tmp_path, gw.path, config(tmp_path, broker.url)):
            await ready_for_sms(gw)
            gw.deliver("000", "ping: 42")
            await gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
            got = await event_count(sub, 4)
            ready = [check(m) for m in sub.messages if TOPICS[m.topic] is Topic.STATUS]
        # The clean stop published offline, last.
        await _until_async(sub, lambda: check(sub.messages[-1]) == {"availability": "offline"})
    assert [t for t, _ in got] == [Topic.RECEIVED, Topic.DONE, Topic.OUTBOX, Topic.OUTBOX]
    received, done, queued, sent = (p for _, p in got)
    assert [p["event"] for _, p in got] == sorted(p["event"] for _, p in got)
    assert (received["sender"], received["command"], received["argument"]) == ("000", "ping", "42")
    assert received["id"] == done["id"] == queued["inbox_id"] == sent["inbox_id"]
    assert (done["state"], done["reply"], done["outbox_id"]) == ("done", "pong: 42", queued["id"])
    assert (queued["state"], sent["state"], sent["attempts"]) == ("queued", "sent", 1)
    assert isinstance(sent["mr"], int)
    assert any(s["availability"] == "online" and s["state"] == "ready" for s in ready)
    assert check(sub.messages[-1]) == {"availability": "offline"}


def queued_rows(journal: Path) -> list[tuple[str, dict[str, Any]]]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as raw:
        rows = raw.execute("SELECT topic, payload FROM publish ORDER BY id").fetchall()
    return [(topic, json.loads(payload)) for topic, payload in rows]


async def answer(gw: SimulatedModem, n: int) -> float:
    """Deliver ``ping: n`` and wait for its reply; the seconds it took."""
    before = len(gw.sent)
    started = time.monotonic()
    gw.deliver("000", f"ping: {n}")
    await gw.wait_until(lambda m: len(m.sent) > before, WAIT)
    return time.monotonic() - started


async def test_a_broker_outage_delays_no_reply(tmp_path: Path, broker: Mosquitto) -> None:
    """Stopped broker: replies at the same pace, events journaled, then published in
    order once it is back."""
    async with HostSim() as sim:
        gw = sim.modems[0]
        async with agent(tmp_path, gw.path, config(tmp_path, broker.url)) as proc:
            await ready_for_sms(gw)
            async with Subscriber(broker, f"{PREFIX}/commands/#", f"{PREFIX}/outbox") as sub:
                up = [await answer(gw, n) for n in range(5)]
                await event_count(sub, 20)
            broker.stop()
            down = [await answer(gw, n) for n in range(5, 10)]
            await _until(lambda: len(queued_rows(proc.journal)) >= 20)
            waiting = queued_rows(proc.journal)
            assert [TOPICS[t] for t, _ in waiting[:4]] == [
                Topic.RECEIVED, Topic.DONE, Topic.OUTBOX, Topic.OUTBOX
            ]
            broker.start()
            async with Subscriber(broker, f"{PREFIX}/commands/#", f"{PREFIX}/outbox") as sub:
                got = await event_count(sub, 20, timeout=45)
            await _until(lambda: not queued_rows(proc.journal))
    up_median, down_median = statistics.median(up), statistics.median(down)
    assert down_median <= max(2 * up_median, up_median + 0.25), (up, down)
    ids = [p["event"] for _, p in got]
    assert ids == sorted(ids)
    commands = [p["argument"] for t, p in got if t is Topic.RECEIVED]
    assert commands == [str(n) for n in range(5, 10)]
    assert [p["reply"] for t, p in got if t is Topic.DONE] == [f"pong: {n}" for n in range(5, 10)]


async def test_the_queue_is_bounded(tmp_path: Path, broker: Mosquitto) -> None:
    """queue_max = 4 and the broker away: the oldest events go, counted and logged; the
    newest four arrive when it is back, and status says how many were dropped."""
    async with HostSim() as sim:
        gw = sim.modems[0]
        conf = config(tmp_path, broker.url, queue_max=4)
        async with agent(tmp_path, gw.path, conf) as proc:
            await ready_for_sms(gw)
            broker.stop()
            for n in range(3):
                await answer(gw, n)
            await _until(lambda: len(queued_rows(proc.journal)) == 4
                         and queued_rows(proc.journal)[-1][1].get("state") == "sent")  # fmt: skip
            broker.start()
            async with Subscriber(broker, f"{PREFIX}/#") as sub:
                got = await event_count(sub, 4, timeout=45)

                def dropped() -> bool:
                    last = [check(m) for m in sub.messages if TOPICS[m.topic] is Topic.STATUS]
                    return bool(last) and last[-1].get("dropped") == 8

                await _until_async(sub, dropped)
            log = proc.stderr()
    assert [(t, p.get("argument", p.get("state"))) for t, p in got] == [
        (Topic.RECEIVED, "2"), (Topic.DONE, "2"), (Topic.OUTBOX, "queued"), (Topic.OUTBOX, "sent")
    ]
    assert "publish queue full (queue_max 4)" in log


async def _until(condition: Any, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"not true within {timeout} s"
        await asyncio.sleep(0.02)


async def _until_async(sub: Subscriber, condition: Any, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"not true within {timeout} s"
        await sub.wait_for(len(sub.messages) + 1, timeout=max(0.01, deadline - loop.time()))


async def test_a_silent_broker_delays_no_reply(tmp_path: Path) -> None:
    """A broker host that accepts TCP and never answers CONNECT (a firewall that drops,
    a hung broker): the link waits its 10 s in its own task, and every reply goes out
    well within that."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"mqtt://127.0.0.1:{silent.getsockname()[1]}"
        async with HostSim() as sim:
            gw = sim.modems[0]
            async with agent(tmp_path, gw.path, config(tmp_path, url)) as proc:
                await ready_for_sms(gw)
                took = [await answer(gw, n) for n in range(5)]
                await _until(lambda: len(queued_rows(proc.journal)) >= 20)
    assert max(took) < 1.0, took


async def test_the_publisher_outlives_a_journal_error(tmp_path: Path, broker: Mosquitto) -> None:
    """The publish queue cannot be read once (an I/O error): logged, and the next event
    is published all the same (the bridge's tasks do not die of it)."""
    with Journal.open(tmp_path / "j.sqlite3") as journal:
        table = {"url": broker.url, "topic_prefix": PREFIX, "keepalive": 5}
        bridge = MqttBridge(mqtt_config(table), journal)
        real = journal.pending_publish
        calls: list[int] = []

        def failing_once(limit: int = 100) -> list[PublishRow]:
            calls.append(limit)
            if len(calls) == 1:
                raise JournalError("disk I/O error")
            return real(limit)

        journal.pending_publish = failing_once  # type: ignore[method-assign]
        agent = SimpleNamespace(
            status=lambda: StatusSnapshot("BG96", "registered (home)", "-73 dBm"),
            modem=None, state=ModemState.READY, lifecycle=SimpleNamespace(since=datetime.now(UTC)),
            queue_send=None,  # for …/send, which this test does not use
        )  # fmt: skip
        async with Subscriber(broker, f"{PREFIX}/outbox") as sub:
            bridge.start(agent)  # type: ignore[arg-type]
            try:
                assert await bridge.link.wait_connected(10)
                await _until(lambda: calls)  # the connection's look at the queue failed
                bridge.events.sent(journal.queue_outgoing("000", "hello"))
                (message,) = await sub.wait_for(1)
            finally:
                await bridge.close()
        assert check(message)["destination"] == "000" and len(calls) >= 2
