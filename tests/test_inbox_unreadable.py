"""The inbox's read/skip path for a message the module refuses to read (issue 12).

A corrupt SIM record fails ``AT+CMGR`` and every ``AT+CMGL`` that would list it
(27.005 §3.2.5 ``<err>`` 320, memory failure; hostsim's ``unreadable_index`` fault
answers the same, see tests/test_reliability.py for the agent against it). Here
the inbox alone, against a scripted modem, for the edges the emulated modem does
not show: a module that refuses the delete too, a busy answer, a restart found
before giving up. Then the modem operations behind it and behind a setting that
will not stick: ``Modem.storage_indices`` and ``Modem.note_read_backs``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from device.at.errors import CmsError
from device.crash import CrashPoints
from device.inbox import MAX_READ_TRIES, Inbox
from device.journal import InboxState, Journal
from device.journal.worker import AsyncJournal
from device.modem.restarts import RestartDetected, Restarts
from device.observer import AgentObserver, Counters

CORRUPT = CmsError("AT+CMGR=1", 320, "memory failure")


class ScriptedModem:
    """Storage SM with indices 0..2; index 1 is corrupt; the others are empty."""

    storage = "SM"
    read_storage = "SM"

    def __init__(self, *, delete_fails: bool = False, settings: str | None = None) -> None:
        self.reads: list[int] = []
        self.deleted: list[int] = []
        self.delete_fails = delete_fails
        self.settings = settings
        self.read_error: CmsError = CORRUPT

    async def list_received(self) -> list[Any]:
        raise CmsError('AT+CMGL="ALL"', 320, "memory failure")

    async def storage_indices(self) -> range:
        return range(3)

    async def read(self, storage: str, index: int) -> None:
        self.reads.append(index)
        if index == 1:
            raise self.read_error

    async def delete(self, storage: str, index: int) -> None:
        if self.delete_fails:
            raise CmsError(f"AT+CMGD={index},0", 320, "memory failure")
        self.deleted.append(index)

    async def settings_intact(self) -> str | None:
        return self.settings


@asynccontextmanager
async def opened(path: Path) -> AsyncIterator[tuple[Journal, AsyncJournal]]:
    """The journal at ``path``, and its journal thread for the inbox (joined after)."""
    with Journal.open(path) as journal:
        threaded = AsyncJournal(journal)
        try:
            yield journal, threaded
        finally:
            await threaded.close()


def inbox(journal: AsyncJournal, counters: Counters) -> Inbox:
    wake = asyncio.Event()
    return Inbox(journal, allowed_senders=["000"], concat_timeout=60.0,
                 restart=Restarts(wake), counters=counters, observer=AgentObserver(),
                 crash=CrashPoints(), stop=asyncio.Event(), wake=wake)  # fmt: skip


async def sweeps(box: Inbox, modem: ScriptedModem, count: int) -> None:
    for _ in range(count):
        box.drain_needed = True
        await box.take(modem)  # type: ignore[arg-type]


async def test_a_refused_listing_is_read_index_by_index_and_the_poison_given_up(
    tmp_path: Path,
) -> None:
    counters = Counters()
    async with opened(tmp_path / "j.sqlite3") as (journal, threaded):
        box, modem = inbox(threaded, counters), ScriptedModem()
        await sweeps(box, modem, MAX_READ_TRIES - 1)
        assert journal.inbox(limit=None) == [] and modem.deleted == []  # not yet
        await sweeps(box, modem, 1)
        (row,) = journal.inbox(limit=None)
        assert (row.state, row.storage, row.index, row.on_modem) == (
            InboxState.UNDECODABLE, "SM", 1, False)  # fmt: skip
        assert row.error is not None and "+CMS ERROR 320" in row.error
        assert modem.deleted == [1] and counters.unreadable == 1
        assert modem.reads == [0, 1, 2] * MAX_READ_TRIES  # the others read every time


async def test_a_poison_the_module_will_not_delete_is_journaled_once_and_skipped(
    tmp_path: Path,
) -> None:
    counters = Counters()
    async with opened(tmp_path / "j.sqlite3") as (journal, threaded):
        box, modem = inbox(threaded, counters), ScriptedModem(delete_fails=True)
        await sweeps(box, modem, MAX_READ_TRIES + 3)
        (row,) = journal.inbox(limit=None)
        assert row.on_modem  # still there, and known to be
        assert modem.reads.count(1) == MAX_READ_TRIES  # never read again
        assert modem.reads.count(2) == MAX_READ_TRIES + 3
        assert counters.unreadable == 1


async def test_a_busy_answer_is_no_try(tmp_path: Path) -> None:
    """27.005 §3.2.5 314 "SIM busy": the read is tried later, not counted."""
    async with opened(tmp_path / "j.sqlite3") as (journal, threaded):
        box, modem = inbox(threaded, Counters()), ScriptedModem()
        modem.read_error = CmsError("AT+CMGR=1", 314, "SIM busy")
        for _ in range(MAX_READ_TRIES + 1):
            with pytest.raises(CmsError):
                await sweeps(box, modem, 1)
        assert journal.inbox(limit=None) == []


async def test_settings_lost_before_giving_up_are_a_restart(tmp_path: Path) -> None:
    """The read may have failed because the module restarted without a banner: then
    nothing is journaled or deleted; it is read again after the re-initialisation."""
    async with opened(tmp_path / "j.sqlite3") as (journal, threaded):
        box, modem = inbox(threaded, Counters()), ScriptedModem(settings="AT+CMGF is 0")
        await sweeps(box, modem, MAX_READ_TRIES - 1)
        with pytest.raises(RestartDetected, match="AT\\+CMGF is 0"):
            await sweeps(box, modem, 1)
        assert journal.inbox(limit=None) == [] and modem.deleted == []


# -- the modem operations behind it ----------------------------------------------------


class Channel:
    """Stands in for AtChannel: answers from a script (information lines, then OK)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.sent: list[str] = []

    async def command(self, command: str, *, timeout: float | None = None) -> Any:
        from device.at.channel import Response
        from device.at.codec import Final, ResultKind

        self.sent.append(command)
        return Response(command, tuple(self.answers.get(command, [])),
                        Final(ResultKind.OK, None, "", "OK"))  # fmt: skip


def scripted(answers: dict[str, list[str]]) -> Any:
    from device.modem import Modem, SmsSettings

    return Modem(Channel(answers), SmsSettings(), command_timeout=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cpms", "indices"),
    [
        # 27.005 §3.2.2 read form: <mem1>,<used1>,<total1>,<mem2>,... ; 0 .. total covers
        # 0-based (Quectel, SIMCom) and 1-based memories (an index past the end is 321).
        ('+CPMS: "SM",2,30,"SM",2,30,"SM",2,30', range(31)),
        ('+CPMS: "ME",0,255,"ME",0,255,"ME",0,255', range(256)),
        ('+CPMS: "SM",1,99999999', range(1000)),  # bounded
    ],
)
async def test_storage_indices_come_from_the_total_of_mem1(cpms: str, indices: range) -> None:
    modem = scripted({"AT+CPMS?": [cpms]})
    assert await modem.storage_indices() == indices


@pytest.mark.parametrize("cpms", [[], ['+CPMS: "SM",2'], ['+CPMS: "SM",2,²']])
async def test_storage_indices_without_a_total_is_a_response_error(cpms: list[str]) -> None:
    from device.at.errors import ResponseError

    with pytest.raises(ResponseError):
        await scripted({"AT+CPMS?": cpms}).storage_indices()


async def test_a_read_back_noted_after_set_up_is_intact_and_a_change_from_it_is_not() -> None:
    """The module of issue 12 that accepts AT+CSCS="UCS2" and shows "IRA": noted once,
    then intact while it shows "IRA"; another change (CMGF) is still a restart."""
    answers = {"AT+CMGF?": ["+CMGF: 1"], "AT+CSCS?": ['+CSCS: "IRA"'], "AT+CNMI?": ["+CNMI: 2,1"]}
    modem = scripted(answers)
    assert await modem.settings_intact() == "AT+CSCS is IRA"
    assert await modem.note_read_backs() == {"CSCS": "IRA"}
    assert await modem.settings_intact() is None
    answers["AT+CSCS?"] = ['+CSCS: "GSM"']
    assert await modem.settings_intact() == "AT+CSCS is GSM"
    answers["AT+CSCS?"], answers["AT+CMGF?"] = ['+CSCS: "IRA"'], ["+CMGF: 0"]
    assert await modem.settings_intact() == "AT+CMGF is 0"
