"""What comes in over MQTT, end to end: hostsim on a pty, the real ``smscmd run`` with an
``[mqtt]`` table (discovery on) and an ``mqtt = true`` handler, a real Mosquitto
(tests/mqtt/broker.py) and a client of the test's own as the Node-RED flow.

An SMS command is forwarded to ``…/handlers/lights/request`` and the flow's response
is the SMS reply; ``…/send`` puts an SMS on the modem, answered on ``…/send/result``;
Home Assistant's discovery configs are on the broker, retained; a hot reload keeps the
mqtt handler bound to the running connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness import running_agent
from mqtt.broker import Mosquitto, Subscriber

from device.sms.charset import Charset
from hostsim.pty import SimulatedModem
from hostsim.sim import HostSim

WAIT = 20.0
PREFIX = "smscmd/e2e"

pytestmark = pytest.mark.async_timeout(120)


def config(tmp: Path, url: str, handlers: str) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(f'[mqtt]\nurl = "{url}"\ntopic_prefix = "{PREFIX}"\nkeepalive = 5\n'
                    f'client_id = "gw-e2e"\ndiscovery = true\n{handlers}')  # fmt: skip
    return path


LIGHTS = '[handlers."lights"]\nmqtt = true\ntimeout = 5.0\n'


@contextlib.asynccontextmanager
async def flow(broker: Mosquitto) -> AsyncIterator[list[dict[str, Any]]]:
    """Answers every handler request with ``<command> <argument>`` (the requests seen
    are yielded)."""
    import aiomqtt

    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()

    async def serve() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe(f"{PREFIX}/handlers/+/request", qos=1)
            ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                request = json.loads(message.payload)
                seen.append(request)
                body = {"correlation_id": request["correlation_id"],
                        "reply": f"{request['command']} {request['argument']}"}  # fmt: skip
                topic = str(message.topic).rsplit("/", 1)[0] + "/response"
                await client.publish(topic, json.dumps(body), qos=1)

    task = asyncio.create_task(serve())
    try:
        await asyncio.wait_for(ready.wait(), WAIT)
        yield seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def ready_for_sms(gw: SimulatedModem) -> None:
    await gw.wait_until(lambda m: m.settings.cscs is Charset.UCS2 and m.settings.csdh, WAIT)


async def online(sub: Subscriber) -> None:
    """Until the agent said online on ``status`` (its link is up, subscriptions made)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not any(m.topic == f"{PREFIX}/status" and b'"online"' in m.payload
                  for m in sub.messages):  # fmt: skip
        assert loop.time() < deadline, sub.messages
        await sub.wait_for(len(sub.messages) + 1, timeout=max(0.01, deadline - loop.time()))


async def logged(running: Any, line: str) -> None:
    """Until the agent's log has ``line`` (polled, bounded by WAIT)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while line not in running.stderr():
        assert loop.time() < deadline, running.stderr()[-3000:]
        await asyncio.sleep(0.05)  # polling the log file, bounded by the deadline


def agent(tmp: Path, port: str, conf: Path) -> Any:
    return running_agent(tmp, port, "--config", str(conf), "--socket", str(tmp / "agent.sock"),
                         "--log-level", "DEBUG", stop_timeout=WAIT)  # fmt: skip


async def test_a_command_answered_by_the_flow_and_an_sms_from_send(
    tmp_path: Path, broker: Mosquitto
) -> None:
    import aiomqtt

    conf = config(tmp_path, broker.url, LIGHTS)
    async with Subscriber(broker, f"{PREFIX}/#") as sub, HostSim() as sim, flow(broker) as seen:
        gw = sim.modems[0]
        async with agent(tmp_path, gw.path, conf) as running:
            await ready_for_sms(gw)
            await online(sub)
            gw.deliver("000", "lights: on")
            await gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
            assert gw.sent[0].text == "lights on"
            (request,) = seen
            assert (request["command"], request["argument"], request["sender"]) == (
                "lights", "on", "000")  # fmt: skip
            async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                body = {"correlation_id": "s1", "text": "from the flow"}
                await client.publish(f"{PREFIX}/send", json.dumps(body), qos=1)
            await gw.wait_until(lambda m: len(m.sent) >= 2, WAIT)
            assert (gw.sent[1].destination, gw.sent[1].text) == ("000", "from the flow")
            results = await sub.wait_for(1, WAIT, topic=f"{PREFIX}/send/result")
            result = json.loads(results[0].payload)
            assert (result["correlation_id"], result["ok"]) == ("s1", True)
            assert result["state"] == "queued"
            # A hot reload (a new handler): lights still goes over this connection.
            conf.write_text(conf.read_text() + '[handlers."echo"]\nargv = ["/bin/echo"]\n')
            assert running.proc is not None
            running.proc.send_signal(signal.SIGHUP)
            await logged(running, 'reload: handlers."echo": added')
            gw.deliver("000", "lights: off")
            await gw.wait_until(lambda m: len(m.sent) >= 3, WAIT)
            assert gw.sent[2].text == "lights off"
    async with Subscriber(broker, "homeassistant/#") as home_assistant:
        configs = await home_assistant.wait_for(4, WAIT)
    assert all(m.retain for m in configs)
    assert {m.topic for m in configs} == {
        f"homeassistant/sensor/gw-e2e/{e}/config"
        for e in ("modem_state", "registration", "signal", "last_command")
    }
