"""The deployment path end to end, every piece a real process or a real client.

``hostsim run`` (a fleet of two Sims, the SmsCommands API, a fleet webhook)
and one ``smscmd run`` per gateway, as separate processes; the cloud side is
the official ``twilio`` SDK plus a local HTTP listener that receives the
status callbacks and the fleet webhook. Waits are on what the listener
receives, never on time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from harness import AgentProcess, running_agent
from twilio.rest import Client

WAIT = 20.0


class Listener:
    """A local HTTP endpoint: status callbacks at /status, the fleet webhook at /fleet."""

    def __init__(self) -> None:
        self.status: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.fleet: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.url = ""

    async def _status(self, request: web.Request) -> web.Response:
        self.status.put_nowait(dict(await request.post()))  # type: ignore[arg-type]
        return web.Response(status=204)

    async def _fleet(self, request: web.Request) -> web.Response:
        self.fleet.put_nowait(dict(await request.post()))  # type: ignore[arg-type]
        return web.Response(status=204)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Listener]:
        app = web.Application()
        app.router.add_post("/status", self._status)
        app.router.add_post("/fleet", self._fleet)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()


async def _stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), WAIT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError("process did not stop on SIGTERM") from None
    assert proc.returncode is not None
    return proc.returncode


@asynccontextmanager
async def fleet(tmp: Path, webhook: str) -> AsyncIterator[dict[str, Any]]:
    err = (tmp / "hostsim.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hostsim", "run", "--sims", "2", "--api", "127.0.0.1:0",
        "--seed", "3", "--commands-webhook", webhook, "--link", str(tmp / "gw"),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=err,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
        ready: dict[str, Any] = json.loads(line)
        yield ready
    finally:
        code = await _stop(proc)
        err.close()
        assert code == 0, (tmp / "hostsim.log").read_text(errors="replace")[-3000:]


def agent(tmp: Path, name: str, port: str) -> AbstractAsyncContextManager[AgentProcess]:
    """``smscmd run`` on ``port`` with journal and log named ``name``; exit 0 required."""
    return running_agent(tmp, port, journal=tmp / f"{name}.sqlite3", name=name, stop_timeout=WAIT)


def sdk(ready: dict[str, Any]) -> Client:
    client = Client(ready["account_sid"], ready["auth_token"])
    client.supersim.base_url = ready["api"]
    return client


@pytest.fixture(autouse=True)
def _no_twilio_edge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)


@pytest.mark.timeout(120)
@pytest.mark.async_timeout(100)
async def test_sdk_to_agent_and_back_across_a_two_sim_fleet(tmp_path: Path) -> None:
    async with Listener().serving() as hooks, fleet(tmp_path, hooks.url + "/fleet") as ready:
        client = sdk(ready)
        sim0, sim1 = ready["sims"]

        # sim0's agent is down: the command is delivered to the modem all the same.
        early = await asyncio.to_thread(
            client.supersim.v1.sms_commands.create,
            sim="sim0", payload="ping: while down",
            callback_url=hooks.url + "/status", callback_method="POST",
        )  # fmt: skip
        assert early.status == "queued"
        statuses = [(await asyncio.wait_for(hooks.status.get(), WAIT))["Status"] for _ in range(2)]
        assert statuses == ["sent", "delivered"]

        async with (
            agent(tmp_path, "agent1", sim1["link"]),
            agent(tmp_path, "agent0", sim0["link"]),
        ):
            reply = await asyncio.wait_for(hooks.fleet.get(), WAIT)
            assert reply["Payload"] == "pong: while down"
            assert reply["SimSid"] == sim0["sid"] and reply["Status"] == "received"

            command = await asyncio.to_thread(
                client.supersim.v1.sms_commands.create, sim=sim1["sid"], payload="ping: one"
            )
            reply = await asyncio.wait_for(hooks.fleet.get(), WAIT)
            assert (reply["Payload"], reply["SimSid"]) == ("pong: one", sim1["sid"])
            fetched = await asyncio.to_thread(client.supersim.v1.sms_commands(command.sid).fetch)
            assert fetched.status == "delivered" and fetched.direction == "to_sim"

            replies = await asyncio.to_thread(
                client.supersim.v1.sms_commands.list, direction="from_sim", page_size=1
            )
            assert sorted(r.payload for r in replies) == ["pong: one", "pong: while down"]
            only1 = await asyncio.to_thread(
                client.supersim.v1.sms_commands.list, sim="sim1", direction="from_sim"
            )
            assert [(r.payload, r.status) for r in only1] == [("pong: one", "received")]
        assert hooks.fleet.empty()
