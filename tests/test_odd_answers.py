"""One odd answer never stalls or duplicates (issue 12): the agent against hostsim printing
a superscript digit in an error code, and a line longer than the codec's bound.

In the in-memory tier (``hostsim.link``). The figures of the two reliability rows
(RELIABILITY.md, "Odd answers") come from :func:`test_odd_answer_reliability_row`:
``python3 -m pytest -s -p no:cacheprovider tests/test_odd_answers.py -k reliability_row``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import Line
from test_agent import WAIT, rig
from test_reliability import Fleet, check_exactly_once, start_fleet, stop_fleet

from device.journal import InboxState
from device.modem import ModemState
from hostsim.link import WHOLE
from hostsim.modem.interpreter import EmulatedModem
from hostsim.modem.storage import Status, StoredMessage
from hostsim.pty import SimulatedModem

#: ``+CME ERROR: 2`` with bit 7 of the digit flipped (0x32 → 0xB2): in latin-1 that is
#: ``²``, which ``str.isdigit()`` accepts and ``int()`` refuses. A parity or bit error
#: on a serial line without parity checking (8N1, what USB modules use) does this.
SUPERSCRIPT_ERROR = b"\r\n+CME ERROR: \xb2\r\n"


def after_each_send(modem: EmulatedModem, data: bytes) -> None:
    """hostsim prints ``data`` right after the ``OK`` of every ``AT+CMGS``, in the same
    write: the same read of the TE, whole link."""
    submit = modem.submit

    def submit_then_noise(*args: object) -> None:
        submit(*args)  # type: ignore[arg-type]
        modem.output.raw(data)

    modem.submit = submit_then_noise  # type: ignore[method-assign]


async def test_superscript_digit_after_a_send_does_not_duplicate_the_reply(
    tmp_path: Path,
) -> None:
    """Before the fix, ``+CME ERROR: ²`` raised ValueError in the read callback, which
    dropped the whole read, the send's ``+CMGS: <mr>`` and ``OK`` with it: the send timed
    out, counted as uncertain, and the reply went out twice."""
    async with rig(tmp_path, Line.loopback(WHOLE), send_retry_initial=0.05,
                   command_timeout=0.5, send_timeout=1.0) as r:  # fmt: skip
        after_each_send(r.gw.modem, SUPERSCRIPT_ERROR)
        r.gw.deliver("000", "ping: once")
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.sent_rows) == 1), WAIT)
        r.gw.deliver("000", "ping: again")
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.sent_rows) == 2), WAIT)
        assert [s.text for s in r.gw.sent] == ["pong: once", "pong: again"]
        assert r.recorder.failed_rows == []
        assert r.agent.counters.reinitialisations == 0


async def test_overlong_line_in_place_of_a_body_leaves_the_message_for_a_re_read(
    tmp_path: Path, line: Line
) -> None:
    """hostsim's ``overlong_line`` fault prints one body line longer than the agent's
    4096-byte bound. The message is not journaled empty and deleted: it stays on the
    modem, is read again, and runs once."""
    async with rig(tmp_path, line, command_timeout=0.5) as r:
        r.gw.set_faults(overlong_line=1)
        r.gw.deliver("000", "ping: long")
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.sent_rows) == 1), WAIT)
        assert r.gw.modem.faults.overlong_line == 0  # the fault fired
        assert [s.text for s in r.gw.sent] == ["pong: long"]
        rows = r.journal.inbox(limit=None)
        assert [(row.text, row.state) for row in rows] == [("ping: long", InboxState.DONE)]


async def test_overlong_line_in_a_listing_is_read_again_after_one_re_initialisation(
    tmp_path: Path, line: Line
) -> None:
    """The drain at start-up meets an over-long body in its ``AT+CMGL`` listing: nothing
    of that listing is journaled or deleted (the next message's header is never taken
    for the lost body); the supervisor re-initialises after its backoff and the second
    listing reads both messages, each run once."""
    when = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def store(gw: SimulatedModem) -> None:
        for text in ("ping: first", "ping: second"):
            gw.modem.storages["SM"].store(StoredMessage(Status.REC_READ, "000", text, when))
        gw.set_faults(overlong_line=1)

    async with rig(tmp_path, line, before_start=store, command_timeout=0.5) as r:
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.sent_rows) == 2), WAIT)
        assert sorted(s.text for s in r.gw.sent) == ["pong: first", "pong: second"]
        assert sorted(row.text for row in r.journal.inbox()) == ["ping: first", "ping: second"]
        assert r.recorder.states.count(ModemState.READY) == 2  # one re-initialisation


Fault = Callable[[Fleet], Awaitable[None]]


async def _superscript(f: Fleet) -> None:
    after_each_send(f.gw.modem, SUPERSCRIPT_ERROR)


async def _overlong(f: Fleet) -> None:
    f.gw.set_faults(overlong_line=3)


ROWS: dict[str, Fault] = {
    "superscript digits (+CME ERROR: ² after every send's OK)": _superscript,
    "an over-long line (3 bodies of 5000 bytes)": _overlong,
}


@pytest.mark.timeout(90)
@pytest.mark.async_timeout(80)
@pytest.mark.parametrize("name", list(ROWS))
async def test_odd_answer_reliability_row(tmp_path: Path, name: str) -> None:
    """RELIABILITY.md's rows: three commands, the fault, five more; each ran and was
    answered once; the re-initialisations it cost are counted."""
    fleet, task = await start_fleet(tmp_path, line=Line.loopback(WHOLE))
    supervisor = fleet.agent.supervisor
    bring_ups = 0
    bring_up = supervisor.bring_up

    async def counted(modem: Any) -> bool:
        # Every bring-up after the first is a re-initialisation, whatever the rule
        # that led to it (the agent's own counter counts restarts only).
        nonlocal bring_ups
        bring_ups += 1
        return await bring_up(modem)

    supervisor.bring_up = counted  # type: ignore[method-assign]
    try:
        before = [f"ping: b{n}" for n in range(3)]
        for p in before:
            fleet.send(p)
        await asyncio.wait_for(fleet.replies_for(before), WAIT * 3)
        reinits = bring_ups
        t0 = time.monotonic()
        await ROWS[name](fleet)
        after = [f"ping: a{n}" for n in range(5)]
        for p in after:
            fleet.send(p)
        await asyncio.wait_for(fleet.replies_for(after), WAIT * 3)
        reinits = bring_ups - reinits
        elapsed = time.monotonic() - t0
    finally:
        await stop_fleet(fleet, task)
    duplicates = check_exactly_once(fleet)
    assert duplicates == 0
    print(f"\nFAULT {name}: commands=8 lost=0 duplicates={duplicates} "
          f"reinitialisations={reinits} all answered in {elapsed * 1000:.0f} ms")  # fmt: skip
