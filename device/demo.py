"""``smscmd demo``: hostsim and the real agent in one process, on a real pseudo-terminal.

The only module of ``device`` that imports ``hostsim``. It delivers the two
example payloads of the Super SIM documentation and a ``ping``, and prints
each command as the agent journals it and each reply as the modem sends it.

The two example commands get the demo handlers below: they show how a Python
handler is written (parse the argument, validate it, answer in one line).
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from device.agent import Agent, AgentObserver
from device.commands import CommandContext, Handler, Registry, default_registry
from device.config import Config
from device.errors import SmscmdError
from device.journal import InboxRow, Journal, OutboxRow
from device.modem import ModemState

if TYPE_CHECKING:
    from hostsim.sim import HostSim

PAYLOADS = (
    "checkin: firmware update",
    "Report location: (52.520008, 13.404954)",
    "ping",
)

DEMO_TIMEOUT = 30.0

_COORDS = re.compile(r"^\(?\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*\)?$")


async def checkin(ctx: CommandContext) -> str:
    """Acknowledge a check-in request with what the device knows about itself."""
    snapshot = ctx.status()
    topic = ctx.argument or "general"
    return f"checkin ok: {topic}; module {snapshot.module}, signal {snapshot.signal}"


async def report_location(ctx: CommandContext) -> str:
    """Validate a ``(lat, lon)`` pair and confirm it back, normalised."""
    match = _COORDS.match(ctx.argument or "")
    if match is None:
        return "error: expected (latitude, longitude)"
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return "error: coordinates out of range"
    return f"location ok: {lat:.6f},{lon:.6f}"


def demo_registry() -> Registry:
    registry = default_registry()
    registry.register(Handler("checkin", checkin, idempotent=True, summary="demo check-in"))
    registry.register(
        Handler("report location", report_location, idempotent=True, summary="demo location")
    )
    return registry


class PrintingObserver(AgentObserver):
    """Prints what happens, with the time since the demo started."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.t0 = time.monotonic()
        self.ready = asyncio.Event()

    def _print(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.3f}s] {text}", file=self.out, flush=True)

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        self._print(f"agent: modem {before.value} -> {after.value}")
        if after is ModemState.READY:
            self.ready.set()

    def received(self, row: InboxRow) -> None:
        self._print(f"agent: received from {row.sender}: {row.text!r} (journal #{row.id})")

    def replied(self, row: InboxRow, outbox: OutboxRow | None) -> None:
        if outbox is not None:
            self._print(f"agent: reply queued for {outbox.destination}: {outbox.text!r}")

    def sent(self, outbox: OutboxRow) -> None:
        self._print(f"agent: reply sent to {outbox.destination} (message reference {outbox.mr})")


def require_simulator() -> None:
    """SmscmdError (one line) when hostsim or aiohttp, which the demo runs, cannot be imported.

    The gateway package (``hardware/deb/build``) carries ``device`` alone: there the demo
    says what is missing instead of ending in a ``ModuleNotFoundError`` traceback.
    """
    import importlib.util

    for name in ("hostsim", "aiohttp"):
        if importlib.util.find_spec(name) is None:
            raise SmscmdError(
                f"the demo needs {name}, which the gateway package does not carry; "
                "pip install smscmd (in a virtual environment) to try it"
            )


async def run_demo(journal: str | None = None, out: TextIO = sys.stdout) -> int:
    """The whole path: cloud POST → network → modem → agent → reply → from_sim → cloud GET."""
    from hostsim.sim import HostSim

    observer = PrintingObserver(out)
    with tempfile.TemporaryDirectory(prefix="smscmd-demo-") as tmp:
        journal_path = Path(journal) if journal else Path(tmp) / "journal.sqlite3"
        async with HostSim(api="127.0.0.1:0") as sim:
            gateway, sim0 = sim.modems[0], sim.sims[0]
            observer._print(
                f"hostsim: Super SIM API on {sim.api_url}; Sim {sim0.unique_name} ({sim0.sid}) "
                f"in a modem on {gateway.path}"
            )
            config = Config(
                port=gateway.path,
                journal=journal_path,
                reconnect_initial=0.2,
                reconnect_max=2.0,
            )
            with Journal.open(journal_path) as jnl:
                agent = Agent(config, jnl, demo_registry(), observer=observer)
                task = asyncio.create_task(agent.run())
                try:
                    return await _converse(sim, observer, agent)
                finally:
                    agent.stop()
                    await asyncio.wait_for(task, DEMO_TIMEOUT)
                    observer._print(f"journal: {journal_path}" if journal else "done")


async def _converse(sim: HostSim, observer: PrintingObserver, agent: Agent) -> int:
    """Send each payload through the HTTP API and show the reply coming back."""
    import aiohttp

    from hostsim.cloud.network import Direction, SmsCommand

    replies: asyncio.Queue[SmsCommand] = asyncio.Queue()

    def on_command(command: SmsCommand) -> None:
        if command.direction is Direction.FROM_SIM:
            replies.put_nowait(command)

    sim.network.listeners.append(on_command)
    try:
        await asyncio.wait_for(observer.ready.wait(), DEMO_TIMEOUT)
    except TimeoutError:
        print(f"smscmd demo: the agent was not ready within {DEMO_TIMEOUT:g} s "
              f"(state {agent.state.value})", file=sys.stderr)  # fmt: skip
        return 1
    auth = aiohttp.BasicAuth(sim.account_sid, sim.auth_token)
    base = f"{sim.api_url}/v1/SmsCommands"
    async with aiohttp.ClientSession(auth=auth) as http:
        for payload in PAYLOADS:
            async with http.post(base, data={"Sim": "sim0", "Payload": payload}) as response:
                created = await response.json()
            if response.status != 201:
                print(f"smscmd demo: the API refused {payload!r}: {created}", file=sys.stderr)
                return 1
            observer._print(
                f"cloud: POST /v1/SmsCommands Sim=sim0 Payload={payload!r} -> "
                f"{response.status} {created['sid']} ({created['status']})"
            )
            try:
                reply = await asyncio.wait_for(replies.get(), DEMO_TIMEOUT)
            except TimeoutError:
                print(f"smscmd demo: no reply to {payload!r} within {DEMO_TIMEOUT:g} s",
                      file=sys.stderr)  # fmt: skip
                return 1
            async with http.get(f"{base}/{created['sid']}") as response:
                command = await response.json()
            observer._print(f"cloud: GET /v1/SmsCommands/{command['sid']} -> {command['status']}")
            async with http.get(base, params={"Direction": "from_sim", "PageSize": "1"}) as resp:
                newest = (await resp.json())["sms_commands"][0]
            observer._print(
                f"cloud: GET /v1/SmsCommands?Direction=from_sim -> {newest['sid']} "
                f"{newest['payload']!r} ({newest['status']})"
            )
            if newest["sid"] != reply.sid:
                print("smscmd demo: the newest from_sim command is not the reply", file=sys.stderr)
                return 1
    return 0
