"""The agent in-process against hostsim on a real pty: recovery paths, edge cases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import run_async

from device.agent import Agent, AgentObserver
from device.commands import CommandContext, Handler, Registry, default_registry
from device.config import Config
from device.journal import InboxRow, InboxState, Journal
from device.modem import STATES, TRANSITIONS, Lifecycle, ModemState, parse_cmti
from device.sms.charset import Charset
from hostsim.sim import HostSim, SimulatedModem
from hostsim.storage import Status, StoredMessage

WAIT = 10.0


class Recorder(AgentObserver):
    def __init__(self) -> None:
        self.states: list[ModemState] = []
        self.ready = asyncio.Event()
        self.rows: list[InboxRow] = []
        self.got_row = asyncio.Event()

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        self.states.append(after)
        if after is ModemState.READY:
            self.ready.set()
        else:
            self.ready.clear()

    def received(self, row: InboxRow) -> None:
        self.rows.append(row)
        self.got_row.set()


@dataclass
class Rig:
    gw: SimulatedModem
    agent: Agent
    journal: Journal
    recorder: Recorder


@asynccontextmanager
async def rig(tmp: Path, registry: Registry | None = None) -> AsyncIterator[Rig]:
    async with HostSim() as sim:
        gw = sim.modems[0]
        config = Config(
            port=gw.path,
            journal=tmp / "journal.sqlite3",
            reconnect_initial=0.05,
            reconnect_max=0.2,
            command_timeout=2.0,
        )
        with Journal.open(config.journal) as journal:
            recorder = Recorder()
            agent = Agent(config, journal, registry or default_registry(), observer=recorder)
            task = asyncio.create_task(agent.run())
            try:
                await asyncio.wait_for(recorder.ready.wait(), WAIT)
                yield Rig(gw, agent, journal, recorder)
            finally:
                agent.stop()
                await asyncio.wait_for(task, WAIT)


def test_lifecycle_table_is_data_and_complete() -> None:
    assert set(STATES) == set(ModemState)
    reachable = {t["dest"] for t in TRANSITIONS}
    assert reachable | {ModemState.DISCONNECTED} == set(ModemState)
    seen: list[tuple[ModemState, ModemState]] = []
    life = Lifecycle(lambda a, b: seen.append((a, b)))
    for trigger in ("connected", "answered", "configured", "sim_ready", "sms_ready", "registered"):
        life.fire(trigger)
    assert life.state is ModemState.READY
    life.fire("answered")  # not valid in READY: ignored, no change
    assert life.state is ModemState.READY
    life.fire("unresponsive")
    assert life.state is ModemState.PROBING
    life.fire("port_lost")
    assert life.state is ModemState.DISCONNECTED
    assert len(seen) == 8


def test_parse_cmti() -> None:
    assert parse_cmti('"SM",3') == ("SM", 3)
    assert parse_cmti('"me", 12') == ("ME", 12)
    assert parse_cmti('"SM",-1') is None
    assert parse_cmti("garbage") is None


def test_state_sequence_on_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            assert r.recorder.states == [
                ModemState.PROBING,
                ModemState.CONFIGURING,
                ModemState.WAITING_FOR_SIM,
                ModemState.SETTING_UP_SMS,
                ModemState.WAITING_FOR_NETWORK,
                ModemState.READY,
            ]
            assert r.agent.status().module == "Quectel BG96"
        assert r.agent.state is ModemState.STOPPED

    run_async(scenario())


def test_reboot_is_detected_and_settings_replayed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            r.gw.reboot()
            assert r.gw.modem.settings.cscs is Charset.GSM
            # The agent reconfigures: UCS2 again, then answers as before.
            await r.gw.wait_until(lambda m: m.settings.cscs is Charset.UCS2, WAIT)
            await asyncio.wait_for(r.recorder.ready.wait(), WAIT)
            r.gw.deliver("000", "ping: after reboot")
            await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
            assert r.gw.sent[0].text == "pong: after reboot"
            assert r.agent.counters.reinitialisations == 1

    run_async(scenario())


def test_indication_for_another_storage(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            when = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
            message = StoredMessage(Status.REC_UNREAD, "000", "ping: from ME", when)
            index = r.gw.modem.storages["ME"].store(message)
            r.gw.inject(f'\r\n+CMTI: "ME",{index}\r\n'.encode())
            await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
            assert r.gw.sent[0].text == "pong: from ME"
            assert r.gw.modem.storages["ME"].used == 0

    run_async(scenario())


def test_undecodable_message_is_journaled_and_deleted(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            when = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
            # DCS 0x24: compressed GSM text, which text mode cannot decode.
            message = StoredMessage(Status.REC_UNREAD, "000", "zzz", when, dcs=0x24)
            index = r.gw.modem.storages["SM"].store(message)
            r.gw.inject(f'\r\n+CMTI: "SM",{index}\r\n'.encode())
            await r.gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
            await asyncio.wait_for(r.recorder.got_row.wait(), WAIT)
            row = r.recorder.rows[0]
            assert row.state is InboxState.UNDECODABLE
            assert row.error
            assert r.gw.sent == []

    run_async(scenario())


def test_indication_for_an_empty_index_is_harmless(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            r.gw.inject(b'\r\n+CMTI: "SM",7\r\n\r\n+CMTI: "SM",-1\r\n')
            r.gw.deliver("000", "ping")
            await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
            assert r.gw.sent[0].text == "pong"

    run_async(scenario())


def test_handler_failure_answers_error(tmp_path: Path) -> None:
    async def boom(ctx: CommandContext) -> str:
        raise RuntimeError("handler bug")

    registry = default_registry()
    registry.register(Handler("boom", boom, idempotent=True, summary="fails"))

    async def scenario() -> None:
        async with rig(tmp_path, registry) as r:
            r.gw.deliver("000", "boom")
            await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
            assert r.gw.sent[0].text == "error: boom failed"
            (row,) = r.journal.inbox()
            assert row.state is InboxState.FAILED and "handler bug" in (row.error or "")

    run_async(scenario())


def test_interrupted_non_idempotent_command_answers_error(tmp_path: Path) -> None:
    """A row left RUNNING by a crash: not run again, answered ``error: interrupted``."""
    calls: list[str] = []

    async def once(ctx: CommandContext) -> str:
        calls.append(ctx.argument or "")
        return "done"

    registry = default_registry()
    registry.register(Handler("once", once, idempotent=False, summary="not idempotent"))
    with Journal.open(tmp_path / "journal.sqlite3") as journal:
        row, _ = journal.record_incoming(
            sender="000", timestamp=None, text="once: x", storage="SM", index=0
        )
        journal.mark_deleted(row.id)
        journal.start(row.id, "once", "x")

    async def scenario() -> None:
        async with rig(tmp_path, registry) as r:
            await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
            assert r.gw.sent[0].text == "error: interrupted"
            assert calls == []

    run_async(scenario())


def test_reconnects_with_backoff_and_stops_while_port_is_missing(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = Config(port=str(tmp_path / "no-such-tty"), journal=tmp_path / "j.sqlite3",
                        reconnect_initial=0.01, reconnect_max=0.02)  # fmt: skip
        with Journal.open(config.journal) as journal:
            agent = Agent(config, journal, default_registry())
            attempts = 0
            connect = agent._connect

            async def counting_connect() -> object:
                nonlocal attempts
                attempts += 1
                if attempts == 3:
                    agent.stop()
                return await connect()

            agent._connect = counting_connect  # type: ignore[method-assign,assignment]
            await asyncio.wait_for(agent.run(), WAIT)
            assert attempts == 3
            assert agent.state is ModemState.STOPPED

    run_async(scenario())


def test_agent_requires_a_port(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite3") as journal, pytest.raises(ValueError):
        Agent(Config(port=None), journal, default_registry())
