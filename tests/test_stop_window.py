"""A stop with a reply on the line (issue 14): the window "the modem accepted the reply
but ``sent`` was not recorded" (RELIABILITY.md: a crash there sends the reply again at
the next start) never opens at a graceful stop (SIGTERM, ``systemctl stop``: the agent's
:meth:`~device.agent.Agent.stop`). The agent waits for the ``AT+CMGS`` in flight and
records its outcome before it exits; an outcome the journal cannot record (a full disk)
is tried once more at the stop and, when it still cannot be, logged at ERROR with the
reply and its reference.

The stop is requested from hostsim's network hook (``on_submit``: the module has the
SMS and is about to answer), and the answer is made late with the FaultPlan's
``chunk_size``/``chunk_delay`` (one byte every 20 ms: ``+CMGS: <mr>`` and ``OK`` take
about 0.4 s), as a module waiting for the SMSC's acknowledgement (27.005 §3.5.1: the
``+CMGS`` result comes once the network has acknowledged the submit) answers seconds
late on a real network."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from harness import Line
from test_agent import WAIT, Rig, rig

from device.errors import JournalCannotRecord
from device.journal import OutboxState
from device.modem import ModemState


def stop_when_submitted(r: Rig) -> None:
    """At the module's submit: request the stop, and make its answer ~0.4 s late."""

    def decide(destination: str, text: str) -> None:
        r.agent.stop()
        r.gw.set_faults(chunk_size=1, chunk_delay=0.02)

    r.gw.on_submit(decide)


async def stopped(r: Rig) -> None:
    await asyncio.wait_for(r.recorder.reached(ModemState.STOPPED), WAIT)


async def test_a_stop_with_at_cmgs_in_flight_waits_for_the_answer_and_records_it(
    tmp_path: Path, line: Line
) -> None:
    """The stop comes before the module's ``+CMGS`` answer: the agent reads it, commits
    ``sent`` with that reference, then stops; nothing is left queued to be sent again."""
    async with rig(tmp_path, line) as r:
        stop_when_submitted(r)
        r.gw.deliver("000", "ping: last")
        await stopped(r)
        (sms,) = r.gw.sent
        (out,) = r.journal.outbox()
        assert (sms.text, out.state, out.mr) == ("pong: last", OutboxState.SENT, sms.reference)
        assert r.agent.outbox.unrecorded == {}


async def test_a_sent_that_cannot_be_recorded_is_tried_again_at_the_stop(
    tmp_path: Path, line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    """``mark_sent`` fails (the disk full) after the module accepted the reply, and the
    stop is under way: the outcome held in memory is recorded at the stop once the
    journal can write again, so the next start does not send it again."""
    async with rig(tmp_path, line) as r:
        real = r.journal.mark_sent
        refusals = []

        def full_once(outbox_id: int, mr: int) -> object:
            if not refusals:
                refusals.append(outbox_id)
                raise JournalCannotRecord("database or disk is full", condition="disk full")
            return real(outbox_id, mr)

        r.journal.mark_sent = full_once  # type: ignore[method-assign]
        stop_when_submitted(r)
        with caplog.at_level(logging.WARNING, logger="device.outbox"):
            r.gw.deliver("000", "ping: held")
            await stopped(r)
        (sms,) = r.gw.sent
        (out,) = r.journal.outbox()
        assert refusals == [out.id]
        assert (out.state, out.mr) == (OutboxState.SENT, sms.reference)
        assert f"outbox {out.id}: sent (reference {sms.reference}) recorded at last" in caplog.text


async def test_a_sent_never_recorded_is_logged_at_error_with_its_reference(
    tmp_path: Path, line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    """The journal still cannot record at the stop: the reply and its reference are
    logged at ERROR (the next start sends it again: the operator knows a duplicate may
    follow); the row stays ``queued``."""
    async with rig(tmp_path, line) as r:

        def full(outbox_id: int, mr: int) -> object:
            raise JournalCannotRecord("database or disk is full", condition="disk full")

        r.journal.mark_sent = full  # type: ignore[method-assign]
        stop_when_submitted(r)
        with caplog.at_level(logging.ERROR, logger="device.agent"):
            r.gw.deliver("000", "ping: lost")
            await stopped(r)
        (sms,) = r.gw.sent
        (out,) = r.journal.outbox()
        assert out.state is OutboxState.QUEUED
        assert (
            f"outbox {out.id}: sent (reference {sms.reference}) to 000 but never recorded: the "
            "next start sends it again (a duplicate): 'pong: lost'"
        ) in caplog.text
