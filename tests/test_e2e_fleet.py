"""The deployment path end to end, every piece a real process or a real client.

``hostsim run`` (a fleet of two Sims, the SmsCommands API, a fleet webhook)
and one ``smscmd run`` per gateway, as separate processes; the cloud side is
the official ``twilio`` SDK plus a local HTTP listener that receives the
status callbacks and the fleet webhook. Waits are on what the listener
receives, never on time.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from harness import AgentProcess, Listener, running_agent, running_hostsim, sdk

WAIT = 20.0


def fleet(tmp: Path, webhook: str) -> AbstractAsyncContextManager[dict[str, Any]]:
    """Two Sims, seeded, every from_sim command posted to ``webhook``."""
    return running_hostsim(tmp, "--sims", "2", "--seed", "3", "--commands-webhook", webhook)


def agent(tmp: Path, name: str, port: str) -> AbstractAsyncContextManager[AgentProcess]:
    """``smscmd run`` on ``port`` with journal and log named ``name``; exit 0 required."""
    return running_agent(tmp, port, journal=tmp / f"{name}.sqlite3", name=name, stop_timeout=WAIT)


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
