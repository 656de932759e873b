"""The agent in-process against hostsim over the in-memory link variants: recovery, edge cases."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import Line

from device.agent import Agent, AgentObserver
from device.commands import CommandContext, Handler, Registry, default_registry
from device.config import Config
from device.errors import JournalError
from device.journal import InboxRow, InboxState, Journal, OutboxRow, OutboxState
from device.modem import (
    STATES,
    TRANSITIONS,
    InvalidTrigger,
    Lifecycle,
    ModemState,
    Trigger,
    parse_cmti,
)
from device.sms.charset import Charset
from hostsim.modem.personas import PERSONAS, persona
from hostsim.modem.settings import Cnmi, RegStat
from hostsim.modem.storage import Status, StoredMessage
from hostsim.pty import SimulatedModem

WAIT = 10.0


class Recorder(AgentObserver):
    """Records what the agent reports; tests wait on it without polling."""

    def __init__(self) -> None:
        self.states: list[ModemState] = []
        self.ready = asyncio.Event()
        self.rows: list[InboxRow] = []
        self.got_row = asyncio.Event()
        self.sent_rows: list[OutboxRow] = []
        self.failed_rows: list[OutboxRow] = []
        self._changed = asyncio.Condition()

    def _poke(self) -> None:
        asyncio.get_running_loop().create_task(self._notify_all())

    async def _notify_all(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; re-checked after every reported event."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def reached(self, state: ModemState, count: int = 1) -> None:
        """Wait until ``state`` has been entered ``count`` times in all."""
        await self.until(lambda: self.states.count(state) >= count)

    def state_changed(self, before: ModemState, after: ModemState) -> None:
        self.states.append(after)
        if after is ModemState.READY:
            self.ready.set()
        else:
            self.ready.clear()
        self._poke()

    def received(self, row: InboxRow) -> None:
        self.rows.append(row)
        self.got_row.set()
        self._poke()

    def sent(self, outbox: OutboxRow) -> None:
        self.sent_rows.append(outbox)
        self._poke()

    def send_failed(self, outbox: OutboxRow) -> None:
        self.failed_rows.append(outbox)
        self._poke()


@dataclass
class Rig:
    gw: SimulatedModem
    agent: Agent
    journal: Journal
    recorder: Recorder


@asynccontextmanager
async def rig(
    tmp: Path,
    line: Line,
    registry: Registry | None = None,
    *,
    before_start: Callable[[SimulatedModem], None] | None = None,
    wait_ready: bool = True,
    recorder: Recorder | None = None,
    **overrides: Any,
) -> AsyncIterator[Rig]:
    async with line.hostsim(config=overrides.pop("modem_config", None)) as sim:
        gw = sim.modems[0]
        if before_start is not None:
            before_start(gw)
        settings: dict[str, Any] = {
            "port": line.port(gw),
            "journal": tmp / "journal.sqlite3",
            "reconnect_initial": 0.05,
            "reconnect_max": 0.2,
            "command_timeout": 2.0,
        }
        settings.update(overrides)
        config = Config(**settings)
        with Journal.open(config.journal) as journal:
            recorder = recorder or Recorder()
            agent = Agent(
                config,
                journal,
                registry or default_registry(),
                observer=recorder,
                open_channel=line.open_channel(gw, default_timeout=config.command_timeout),
            )
            task = asyncio.create_task(agent.run())
            try:
                if wait_ready:
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
    for trigger in (
        Trigger.CONNECTED,
        Trigger.ANSWERED,
        Trigger.CONFIGURED,
        Trigger.SIM_READY,
        Trigger.SMS_READY,
        Trigger.REGISTERED,
    ):
        life.fire(trigger)
    assert life.state is ModemState.READY
    with pytest.raises(InvalidTrigger):  # not valid in READY: loud (issue 10), no change
        life.fire(Trigger.ANSWERED)
    assert life.state is ModemState.READY
    life.fire(Trigger.UNRESPONSIVE)
    assert life.state is ModemState.PROBING
    life.fire(Trigger.PORT_LOST)
    assert life.state is ModemState.DISCONNECTED
    assert len(seen) == 8


def test_parse_cmti() -> None:
    assert parse_cmti('"SM",3') == ("SM", 3)
    assert parse_cmti('"me", 12') == ("ME", 12)
    assert parse_cmti('"SM",-1') is None
    assert parse_cmti("garbage") is None


async def test_state_sequence_on_start(tmp_path: Path, line: Line) -> None:
    async with rig(tmp_path, line) as r:
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


async def test_reboot_is_detected_and_settings_replayed(tmp_path: Path, line: Line) -> None:
    async with rig(tmp_path, line) as r:
        r.gw.reboot()
        assert r.gw.modem.settings.cscs is Charset.GSM
        # The agent reconfigures: UCS2 again, then answers as before.
        await r.gw.wait_until(lambda m: m.settings.cscs is Charset.UCS2, WAIT)
        await asyncio.wait_for(r.recorder.ready.wait(), WAIT)
        r.gw.deliver("000", "ping: after reboot")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: after reboot"
        assert r.agent.counters.reinitialisations == 1


async def test_indication_for_another_storage(tmp_path: Path, line: Line) -> None:
    async with rig(tmp_path, line) as r:
        when = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
        message = StoredMessage(Status.REC_UNREAD, "000", "ping: from ME", when)
        index = r.gw.modem.storages["ME"].store(message)
        r.gw.inject(f'\r\n+CMTI: "ME",{index}\r\n'.encode())
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: from ME"
        # Reply before delete (issue 14): the delete follows the send.
        await r.gw.wait_until(lambda m: m.storages["ME"].used == 0, WAIT)


async def test_undecodable_message_is_journaled_and_deleted(tmp_path: Path, line: Line) -> None:
    async with rig(tmp_path, line) as r:
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


async def test_indication_for_an_empty_index_is_harmless(tmp_path: Path, line: Line) -> None:
    async with rig(tmp_path, line) as r:
        r.gw.inject(b'\r\n+CMTI: "SM",7\r\n\r\n+CMTI: "SM",-1\r\n')
        r.gw.deliver("000", "ping")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong"


async def test_handler_failure_answers_error(tmp_path: Path, line: Line) -> None:
    async def boom(ctx: CommandContext) -> str:
        raise RuntimeError("handler bug")

    registry = default_registry()
    registry.register(Handler("boom", boom, idempotent=True, summary="fails"))

    async with rig(tmp_path, line, registry) as r:
        r.gw.deliver("000", "boom")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "error: boom failed"
        (row,) = r.journal.inbox()
        assert row.state is InboxState.FAILED and "handler bug" in (row.error or "")


async def test_interrupted_non_idempotent_command_answers_error(tmp_path: Path, line: Line) -> None:
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

    async with rig(tmp_path, line, registry) as r:
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "error: interrupted"
        assert calls == []


async def test_reconnects_with_backoff_and_stops_while_port_is_missing(tmp_path: Path) -> None:
    config = Config(port=str(tmp_path / "no-such-tty"), journal=tmp_path / "j.sqlite3",
                    reconnect_initial=0.01, reconnect_max=0.02)  # fmt: skip
    with Journal.open(config.journal) as journal:
        agent = Agent(config, journal, default_registry())
        attempts = 0
        connect = agent.supervisor.connect

        async def counting_connect() -> object:
            nonlocal attempts
            attempts += 1
            if attempts == 3:
                agent.stop()
            return await connect()

        agent.supervisor.connect = counting_connect  # type: ignore[method-assign,assignment]
        await asyncio.wait_for(agent.run(), WAIT)
        assert attempts == 3
        assert agent.state is ModemState.STOPPED


def test_agent_requires_a_port(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.sqlite3") as journal, pytest.raises(ValueError):
        Agent(Config(port=None), journal, default_registry())


WHEN = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


async def test_crash_between_commit_and_delete_runs_once(tmp_path: Path, line: Line) -> None:
    """The journal has the message (still on the modem); the agent deletes it, runs it once."""
    with Journal.open(tmp_path / "journal.sqlite3") as journal:
        journal.record_incoming(sender="000", timestamp=WHEN, text="ping: once", storage="SM",
                                index=0)  # fmt: skip

    def store(gw: SimulatedModem) -> None:
        gw.modem.storages["SM"].store(StoredMessage(Status.REC_READ, "000", "ping: once", WHEN))

    async with rig(tmp_path, line, before_start=store) as r:
        await r.gw.wait_until(lambda m: len(m.sent) >= 1 and m.storages["SM"].used == 0, WAIT)
        r.gw.deliver("000", "ping: next")
        await r.gw.wait_until(lambda m: len(m.sent) >= 2, WAIT)
        assert [s.text for s in r.gw.sent] == ["pong: once", "pong: next"]
        assert [row.text for row in r.journal.inbox()] == ["ping: once", "ping: next"]


async def test_interrupted_idempotent_command_runs_again(tmp_path: Path, line: Line) -> None:
    with Journal.open(tmp_path / "journal.sqlite3") as journal:
        row, _ = journal.record_incoming(sender="000", timestamp=WHEN, text="ping: again",
                                         storage="SM", index=0)  # fmt: skip
        journal.mark_deleted(row.id)
        journal.start(row.id, "ping", "again")

    async with rig(tmp_path, line) as r:
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: again"


async def test_definite_send_failure_is_retried(tmp_path: Path, line: Line) -> None:
    async with rig(tmp_path, line, send_retry_initial=0.05) as r:
        r.gw.modem.fail_next_send(331)  # no network service
        r.gw.deliver("000", "ping: retry")
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.sent_rows) == 1), WAIT)
        assert [s.text for s in r.gw.sent] == ["pong: retry"]
        assert [f.state for f in r.recorder.failed_rows] == [OutboxState.QUEUED]
        (out,) = r.journal.outbox()
        assert out.state is OutboxState.SENT and out.attempts == 2
        outcomes = [a.outcome.value for a in r.journal.attempts_of(out.id)]
        assert outcomes == ["failed", "sent"]


def _cmgs_lines(caplog: pytest.LogCaptureFixture) -> int:
    """How many ``AT+CMGS`` command lines the emulated module read."""
    return sum(
        1
        for record in caplog.records
        if record.name == "hostsim.modem.lines" and b"AT+CMGS" in bytes(record.args[0])  # type: ignore[index,arg-type]
    )


async def test_a_permanent_cms_cause_fails_the_reply_at_once(
    tmp_path: Path, line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    """+CMS ERROR 21 "short message transfer rejected" (RP-cause, 27.005 §3.2.5 -> TS 24.011
    Annex E.2; permanent by Table 8.4) on a reply: FAILED after exactly one AT+CMGS, its
    name in the log and the journal (the module prints the text under AT+CMEE=2), although
    ``send_max_attempts`` allows five."""
    caplog.set_level(logging.INFO, logger="device.outbox")
    caplog.set_level(logging.DEBUG, logger="hostsim.modem.lines")  # (last: the handler's level)
    async with rig(tmp_path, line, send_retry_initial=0.05, send_max_attempts=5) as r:
        r.gw.modem.fail_next_send(21)
        r.gw.deliver("000", "ping: refused")
        await asyncio.wait_for(r.recorder.until(lambda: bool(r.recorder.failed_rows)), WAIT)
        (failed,) = r.recorder.failed_rows
        assert failed.state is OutboxState.FAILED and failed.attempts == 1
        # A later reply goes out (a retry of the refused one would come first: none does).
        r.gw.deliver("000", "ping: next")
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.sent_rows) == 1), WAIT)
        assert [s.text for s in r.gw.sent] == ["pong: next"]
        assert _cmgs_lines(caplog) == 2
        first = r.journal.outbox()[0]
        assert first.state is OutboxState.FAILED and first.attempts == 1
        assert [a.outcome.value for a in r.journal.attempts_of(first.id)] == ["failed"]
        error = first.last_error or ""
        assert "+CMS ERROR 21" in error and "short message transfer rejected" in error.lower()
        assert error.startswith("permanent: ")
        # The destination decoded (text mode sends "003000300030" under AT+CSCS="UCS2").
        assert 'AT+CMGS="000"' in error and "0030" not in error
        last = (await r.agent.status_report())["last_error"]["text"]
        assert 'AT+CMGS="000"' in last and "0030" not in last
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "device.outbox"]
    assert any(
        "outbox 1: send to 000 failed (attempt 1 of 1, giving up)" in text
        and "short message transfer rejected" in text.lower()
        and "0030" not in text
        for text in logged
    ), logged


async def test_a_temporary_cms_cause_is_retried(
    tmp_path: Path, line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    """+CMS ERROR 42 "congestion" (TS 24.011 Table 8.4: temporary) is retried; the retry
    goes out."""
    caplog.set_level(logging.DEBUG, logger="hostsim.modem.lines")
    async with rig(tmp_path, line, send_retry_initial=0.05, send_max_attempts=5) as r:
        r.gw.modem.fail_next_send(42)
        r.gw.deliver("000", "ping: busy")
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.sent_rows) == 1), WAIT)
        (out,) = r.journal.outbox()
        assert out.state is OutboxState.SENT and out.attempts == 2
        assert [a.outcome.value for a in r.journal.attempts_of(out.id)] == ["failed", "sent"]
        assert "congestion" in (r.recorder.failed_rows[0].last_error or "").lower()
        assert _cmgs_lines(caplog) == 2


async def test_uncertain_send_is_not_repeated_forever(tmp_path: Path, line: Line) -> None:
    """+CMS ERROR: 500 although the SMS went out: one retry at most, then failed."""

    async with rig(tmp_path, line, send_retry_initial=0.05) as r:
        for _ in range(3):
            r.gw.modem.fail_next_send(500, sent_anyway=True)
        r.gw.deliver("000", "ping: dup")
        await asyncio.wait_for(
            r.recorder.until(
                lambda: any(f.state is OutboxState.FAILED for f in r.recorder.failed_rows)
            ),
            WAIT,
        )
        # Failed for good: a later wake-up (another command) does not resend it.
        r.gw.deliver("000", "ping: next")
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.failed_rows) == 3), WAIT)
        assert [s.text for s in r.gw.sent] == ["pong: dup", "pong: dup", "pong: next"]
        first = r.journal.outbox()[0]
        assert first.state is OutboxState.FAILED and first.attempts == 2
        assert "outcome unknown" in (first.last_error or "")


async def test_hung_modem_goes_back_to_probing_and_recovers(tmp_path: Path, line: Line) -> None:
    async with rig(tmp_path, line, health_interval=0.1, command_timeout=0.3) as r:
        r.gw.modem.hung = True
        await asyncio.wait_for(r.recorder.reached(ModemState.PROBING, 2), WAIT)
        r.gw.modem.hung = False
        await asyncio.wait_for(r.recorder.reached(ModemState.READY, 2), WAIT)
        r.gw.deliver("000", "ping: back")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: back"


async def test_sim_busy_at_start_is_waited_out(tmp_path: Path, line: Line) -> None:
    def busy(gw: SimulatedModem) -> None:
        gw.modem.sim_ready = False

    async with rig(tmp_path, line, before_start=busy, wait_ready=False) as r:
        await asyncio.wait_for(r.recorder.reached(ModemState.WAITING_FOR_SIM), WAIT)
        r.gw.modem.sim_ready = True
        await asyncio.wait_for(r.recorder.ready.wait(), WAIT)
        assert r.recorder.states.count(ModemState.PROBING) == 1


async def test_reset_without_banner_is_noticed(tmp_path: Path, line: Line) -> None:
    async with rig(tmp_path, line, health_interval=0.1) as r:
        r.gw.modem.reset_settings()  # settings gone, no RDY
        await asyncio.wait_for(r.recorder.reached(ModemState.READY, 2), WAIT)
        assert r.gw.modem.settings.cscs is Charset.UCS2
        r.gw.deliver("000", "ping: after silent reset")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: after silent reset"
        assert [row.state for row in r.journal.inbox()] == [InboxState.DONE]


async def test_direct_delivery_is_journaled_and_indications_restored(
    tmp_path: Path, line: Line
) -> None:
    async with rig(tmp_path, line) as r:
        m = r.gw.modem
        m.settings = dataclasses.replace(m.settings, cnmi=Cnmi(2, 2, 0, 0, 0))
        r.gw.deliver("000", "ping: direct")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: direct"
        await r.gw.wait_until(lambda m: m.settings.cnmi.mt == 1, WAIT)
        (row,) = r.journal.inbox()
        assert row.storage is None and row.state is InboxState.DONE


async def test_safety_sweep_finds_a_message_whose_indication_never_came(
    tmp_path: Path, line: Line
) -> None:
    async with rig(tmp_path, line, sweep_interval=0.2) as r:
        # Stored with no +CMTI (as when indications go to another port).
        message = StoredMessage(Status.REC_UNREAD, "000", "ping: swept", WHEN)
        r.gw.modem.storages["SM"].store(message)
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: swept"


async def test_old_finished_rows_are_pruned_at_start(tmp_path: Path, line: Line) -> None:
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    with Journal.open(tmp_path / "journal.sqlite3", clock=lambda: long_ago) as journal:
        for n in range(3):
            row, _ = journal.record_incoming(sender="000", timestamp=WHEN, text=f"old {n}",
                                             storage="SM", index=n)  # fmt: skip
            journal.mark_deleted(row.id)
            out = journal.finish(row.id, reply="pong", state=InboxState.DONE, reply_to="000")
            assert out is not None
            journal.mark_sent(out.id, n)

    async with rig(tmp_path, line, keep_last=1) as r:
        assert [row.text for row in r.journal.inbox()] == ["old 2"]


async def test_pdu_mode_multipart_in_any_order_runs_once(tmp_path: Path, line: Line) -> None:
    argument = "".join(f"{n:03d}," for n in range(60))  # 240 characters: two parts
    text = "ping: " + argument

    async with rig(tmp_path, line, mode="pdu") as r:
        assert r.gw.modem.settings.cmgf.value == 0
        # Parts out of order, one of them twice.
        r.gw.deliver_concatenated("000", text, order=[1, 0, 1], reference=42)
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        await r.gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
        reply = r.gw.sent[0].text
        assert reply.startswith("pong: 000,001,") and reply.endswith("...")
        (row,) = r.journal.inbox()
        assert (row.text, row.concat, row.state) == (text, "42/2", InboxState.DONE)
        r.gw.deliver("000", "ping: single")
        await r.gw.wait_until(lambda m: len(m.sent) >= 2, WAIT)
        assert r.gw.sent[1].text == "pong: single"


async def test_pdu_mode_interleaved_messages_from_one_sender(tmp_path: Path, line: Line) -> None:
    first, second = "ping: " + "a" * 200, "ping: " + "b" * 200

    async with rig(tmp_path, line, mode="pdu") as r:
        r.gw.deliver_concatenated("000", first, order=[0], reference=1)
        r.gw.deliver_concatenated("000", second, order=[0, 1], reference=2)
        r.gw.deliver_concatenated("000", first, order=[1], reference=1)
        await r.gw.wait_until(lambda m: len(m.sent) >= 2, WAIT)
        texts = sorted(row.text for row in r.journal.inbox())
        assert texts == [first, second]


async def test_pdu_mode_incomplete_message_expires_into_the_journal(
    tmp_path: Path, line: Line
) -> None:
    async with rig(tmp_path, line, mode="pdu", concat_timeout=0.2, sweep_interval=0.3) as r:
        r.gw.deliver_concatenated("000", "ping: " + "q" * 400, order=[0, 2], reference=9)
        await asyncio.wait_for(
            r.recorder.until(
                lambda: any(x.state is InboxState.INCOMPLETE for x in r.recorder.rows)
            ),
            WAIT,
        )
        (row,) = r.journal.inbox()
        assert row.state is InboxState.INCOMPLETE and "[part 2 missing]" in row.text
        assert r.gw.sent == []  # never executed, never answered


async def test_pdu_mode_parts_survive_a_restart(tmp_path: Path, line: Line) -> None:
    text = "ping: " + "r" * 200

    async with rig(tmp_path, line, mode="pdu") as r:
        r.gw.deliver_concatenated("000", text, order=[0], reference=5)
        await r.gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
        assert r.journal.inbox() == []  # held as a part, not a message yet
    async with rig(tmp_path, line, mode="pdu") as r:  # a new agent process on the same journal
        r.gw.deliver_concatenated("000", text, order=[1], reference=5)
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert [row.text for row in r.journal.inbox()] == [text]


@pytest.mark.parametrize("name", sorted(PERSONAS))
async def test_each_persona_end_to_end(tmp_path: Path, line: Line, name: str) -> None:
    """Each module family: detected, commands answered, a silent or bannered reboot survived."""

    async with rig(tmp_path, line, modem_config=persona(name), health_interval=0.2) as r:
        assert r.agent.profile.name == name
        assert (await r.agent.status_report())["profile"] == name
        r.gw.deliver("000", "ping: one")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        r.gw.reboot()  # u-blox prints no banner: the health check notices instead
        await asyncio.wait_for(r.recorder.reached(ModemState.READY, 2), WAIT)
        r.gw.deliver("000", "ping: two")
        await r.gw.wait_until(lambda m: len(m.sent) >= 2, WAIT)
        assert [s.text for s in r.gw.sent] == ["pong: one", "pong: two"]


def test_profile_detection() -> None:
    from device.modem.profiles import detect

    assert detect("BG96", "Quectel").name == "quectel-bg96"
    assert detect("EG25", "Quectel").name == "quectel-eg25g"
    assert detect("SIMCOM_SIM7600E-H", "SIMCOM INCORPORATED").name == "simcom-sim7600"
    assert detect("SARA-R410M-02B", "u-blox").name == "ublox-sara-r410m"
    assert detect("Frobnicator 9000", "ACME").name == "generic"


async def test_registration_loss_waits_for_the_network_without_reinitialising(
    tmp_path: Path, line: Line
) -> None:
    """ready -> waiting_for_network -> ready: no re-probe, no re-initialisation counted."""
    async with rig(tmp_path, line, health_interval=0.1) as r:
        states_before = len(r.recorder.states)
        r.gw.modem.set_registration(RegStat.NOT_REGISTERED)
        await asyncio.wait_for(r.recorder.reached(ModemState.WAITING_FOR_NETWORK, 2), WAIT)
        r.gw.modem.set_registration(RegStat.ROAMING)
        await asyncio.wait_for(r.recorder.reached(ModemState.READY, 2), WAIT)
        assert r.recorder.states[states_before:] == [
            ModemState.WAITING_FOR_NETWORK,
            ModemState.READY,
        ]
        assert r.agent.counters.reinitialisations == 0
        r.gw.deliver("000", "ping: registered again")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: registered again"


async def test_a_silent_restart_while_off_the_network_is_caught_before_ready(
    tmp_path: Path, line: Line
) -> None:
    """A module that restarts with no banner and echo left off while unregistered
    shows itself by its settings when the network is back: re-initialised, not
    served with the module's defaults (PDU mode, GSM character set)."""
    async with rig(tmp_path, line, health_interval=0.1) as r:
        r.gw.modem.set_registration(RegStat.NOT_REGISTERED)
        await asyncio.wait_for(r.recorder.reached(ModemState.WAITING_FOR_NETWORK, 2), WAIT)
        states_before = len(r.recorder.states)
        modem = r.gw.modem
        modem.settings = dataclasses.replace(modem.config.defaults, echo=False)
        r.gw.modem.set_registration(RegStat.ROAMING)
        await asyncio.wait_for(r.recorder.reached(ModemState.READY, 2), WAIT)
        assert r.agent.counters.reinitialisations == 1
        assert r.recorder.states[states_before] is ModemState.PROBING
        r.gw.deliver("000", "ping: after a silent restart")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: after a silent restart"


async def test_a_port_lost_while_suspended_is_never_reported_ready(tmp_path: Path) -> None:
    """The journal-failure hold ends when the port closes: suspended -> disconnected."""
    async with rig(tmp_path, Line.pty(), reconnect_max=5.0) as r:
        r.journal.record_incoming = _raise_journal_error  # type: ignore[method-assign]
        r.gw.deliver("000", "ping: no disk")
        await asyncio.wait_for(r.recorder.reached(ModemState.SUSPENDED), WAIT)
        states_before = len(r.recorder.states)
        r.gw.unplug()
        await asyncio.wait_for(r.recorder.reached(ModemState.DISCONNECTED), WAIT)
        assert r.recorder.states[states_before] is ModemState.DISCONNECTED


def _raise_journal_error(**kwargs: Any) -> Any:
    raise JournalError("disk full")


async def test_journal_failure_suspends_a_healthy_modem_and_loses_nothing(
    tmp_path: Path, line: Line
) -> None:
    """A journal error is not the modem's: ready -> suspended -> ready without re-probing;
    the message it could not commit stays on the modem and is taken after the pause."""
    async with rig(tmp_path, line, reconnect_max=0.2) as r:
        states_before = len(r.recorder.states)
        record = r.journal.record_incoming
        failures = 0

        def failing_once(**kwargs: Any) -> Any:
            nonlocal failures
            if failures == 0:
                failures += 1
                raise JournalError("disk full")
            return record(**kwargs)

        r.journal.record_incoming = failing_once  # type: ignore[method-assign]
        r.gw.deliver("000", "ping: after the disk")
        await r.gw.wait_until(lambda m: len(m.sent) >= 1, WAIT)
        assert r.gw.sent[0].text == "pong: after the disk"
        assert failures == 1
        assert r.recorder.states[states_before:] == [ModemState.SUSPENDED, ModemState.READY]
        assert r.agent.counters.reinitialisations == 0
        assert [row.state for row in r.journal.inbox()] == [InboxState.DONE]
        await r.gw.wait_until(lambda m: m.storages["SM"].used == 0, WAIT)
